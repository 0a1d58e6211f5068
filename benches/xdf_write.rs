//! XDF writing throughput for a full lab, next to pyxdf loading the same file, in one run.
//!
//! Workload: 64 channels at 2 kHz (float32) plus 20 other streams (10 x 8 channels at 500 Hz
//! float32, 5 x 3 channels at 100 Hz int16, 4 x 1 channel at 50 Hz double64, 1 marker stream at
//! 2 Hz), `XDF_BENCH_SECONDS` (default 120) seconds of it, handed to [`XdfWriter`] as
//! `heloflow record` does: 0.1 s chunks per stream, a flush every 0.25 s of data, a clock offset
//! per stream every 5 s, a boundary every 10 s, footers and a final sync. The values are
//! generated before timing starts. Then pyxdf 1.17.5 loads the file (defaults: clock
//! synchronisation and dejittering) and the ratio of the two times is printed.
//! Run: `cargo bench --bench xdf_write` (pyxdf from .venv, or python3 on PATH).

use std::process::Command;
use std::time::Instant;

use heloflow::stream::ChannelFormat;
use heloflow::xdf::writer::{ChannelDesc, CreateOptions, StreamHeader, Values, XdfWriter};

struct Stream {
    channels: usize,
    rate: f64,
    format: ChannelFormat,
}

/// One stream's data for one 0.1 s step.
enum Block {
    Float32(Vec<f32>),
    Int16(Vec<i16>),
    Double64(Vec<f64>),
    Strings(Vec<String>),
}

fn lab() -> Vec<Stream> {
    let mut streams = vec![Stream {
        channels: 64,
        rate: 2000.0,
        format: ChannelFormat::Float32,
    }];
    streams.extend((0..10).map(|_| Stream {
        channels: 8,
        rate: 500.0,
        format: ChannelFormat::Float32,
    }));
    streams.extend((0..5).map(|_| Stream {
        channels: 3,
        rate: 100.0,
        format: ChannelFormat::Int16,
    }));
    streams.extend((0..4).map(|_| Stream {
        channels: 1,
        rate: 50.0,
        format: ChannelFormat::Double64,
    }));
    streams.push(Stream {
        channels: 1,
        rate: 2.0,
        format: ChannelFormat::String,
    });
    streams
}

fn main() {
    let seconds: usize = std::env::var("XDF_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(120);
    let steps = seconds * 10;
    let streams = lab();
    // Every step's blocks, generated before timing.
    let mut blocks: Vec<Vec<(Vec<f64>, Block)>> = Vec::with_capacity(steps);
    let mut samples = 0u64;
    let mut values = 0u64;
    for step in 0..steps {
        let mut row = Vec::new();
        for stream in &streams {
            let per_step = (stream.rate / 10.0).round() as usize;
            let first = step * per_step;
            let stamps: Vec<f64> = (0..per_step)
                .map(|i| 1000.0 + (first + i) as f64 / stream.rate)
                .collect();
            let n = per_step * stream.channels;
            let block = match stream.format {
                ChannelFormat::Float32 => Block::Float32(
                    (0..n)
                        .map(|i| ((first * 7 + i) % 4093) as f32 * 0.25)
                        .collect(),
                ),
                ChannelFormat::Int16 => Block::Int16((0..n).map(|i| (i % 30_000) as i16).collect()),
                ChannelFormat::Double64 => {
                    Block::Double64((0..n).map(|i| i as f64 * 0.1).collect())
                }
                _ => Block::Strings(
                    (0..n)
                        .map(|i| format!("stimulus {} onset", first + i))
                        .collect(),
                ),
            };
            samples += per_step as u64;
            values += n as u64;
            row.push((stamps, block));
        }
        blocks.push(row);
    }

    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("lab.xdf");
    let started = Instant::now();
    let options = CreateOptions {
        overwrite: true,
        ..CreateOptions::default()
    };
    let mut writer = XdfWriter::create(&path, &options).expect("the file is created");
    let ids: Vec<u32> = streams
        .iter()
        .enumerate()
        .map(|(k, s)| {
            let channels = (0..s.channels)
                .map(|c| ChannelDesc::new(format!("ch{c}"), "microvolts", "EEG"))
                .collect();
            let mut header = StreamHeader::new(format!("s{k}"), "EEG", s.format, s.rate, channels);
            header.source_id = format!("bench:{k}");
            writer.add_stream(&header).expect("a stream")
        })
        .collect();
    for (step, row) in blocks.iter().enumerate() {
        for ((stamps, block), &id) in row.iter().zip(&ids) {
            let values = match block {
                Block::Float32(v) => Values::Float32(v),
                Block::Int16(v) => Values::Int16(v),
                Block::Double64(v) => Values::Double64(v),
                Block::Strings(v) => Values::Strings(v),
            };
            if !stamps.is_empty() {
                writer.push_samples(id, stamps, values).expect("samples");
            }
            if step % 50 == 0 {
                writer
                    .push_clock_offset(id, 1000.0 + step as f64 / 10.0, -1e-5)
                    .expect("an offset");
            }
        }
        if step % 100 == 99 {
            writer.push_boundary().expect("a boundary");
        }
        if step % 5 == 4 {
            writer.flush().expect("a flush");
        }
    }
    let summary = writer.finish().expect("footers");
    let write_s = started.elapsed().as_secs_f64();
    let megabytes = summary.bytes as f64 / 1e6;
    println!(
        "workload: {} streams (64 ch @ 2 kHz + 20 others), {seconds} s of data: {samples} samples, {values} values, {megabytes:.1} MB",
        streams.len()
    );
    println!(
        "heloflow XdfWriter: {write_s:.3} s = {:.0} samples/s, {:.0} values/s, {:.0} MB/s, {:.0}x real time",
        samples as f64 / write_s,
        values as f64 / write_s,
        megabytes / write_s,
        seconds as f64 / write_s
    );

    let python = std::env::var("XDF_BENCH_PYTHON").unwrap_or_else(|_| {
        let venv = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python3");
        if std::path::Path::new(venv).exists() {
            venv.to_string()
        } else {
            "python3".to_string()
        }
    });
    let script = "import sys, time, pyxdf\n\
        t = time.perf_counter(); streams, _ = pyxdf.load_xdf(sys.argv[1])\n\
        d = time.perf_counter() - t\n\
        t = time.perf_counter(); pyxdf.load_xdf(sys.argv[1], synchronize_clocks=False, dejitter_timestamps=False)\n\
        print(d, time.perf_counter() - t, sum(len(s['time_stamps']) for s in streams))";
    let output = Command::new(&python)
        .args(["-c", script])
        .arg(&path)
        .output()
        .expect("python3 runs");
    if !output.status.success() {
        println!(
            "pyxdf: could not load the file: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        return;
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let figures: Vec<f64> = text
        .split_whitespace()
        .filter_map(|t| t.parse().ok())
        .collect();
    let (load_s, raw_load_s, loaded) = (figures[0], figures[1], figures[2]);
    assert_eq!(loaded as u64, samples, "pyxdf loaded every sample");
    println!(
        "pyxdf 1.17.5 load_xdf (defaults): {load_s:.3} s = {:.0} samples/s, {:.0} MB/s; without sync and dejitter: {raw_load_s:.3} s",
        samples as f64 / load_s,
        megabytes / load_s
    );
    println!(
        "ratio: heloflow writes the file {:.1}x faster than pyxdf loads it ({:.1}x without sync and dejitter)",
        load_s / write_s,
        raw_load_s / write_s
    );
}
