//! Runs the real pyxdf (`fixtures/xdf/pyxdf_load.py`) and compares what it loaded with what
//! heloflow's reader read.

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

use heloflow::xdf::reader::{Recording, Samples, Stream};
use serde_json::Value;

/// The loader script.
fn script() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/xdf/pyxdf_load.py")
}

/// Fails the test with instructions unless `python3` on PATH can import pyxdf.
pub fn require_pyxdf() {
    let output = Command::new("python3")
        .args(["-c", "import pyxdf; print(pyxdf.__version__)"])
        .output();
    match output {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "pyxdf is missing: these tests load files with the real pyxdf. Put the project's \
             virtual environment first on PATH (export PATH=$PWD/.venv/bin:$PATH) or install \
             pyxdf 1.17.5.\n{}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => panic!("cannot run python3 ({e}): put .venv/bin first on PATH"),
    }
}

/// Loads `file` with pyxdf `load_xdf`, passing `args` (`--synchronize-clocks false`...).
pub fn load(file: &Path, args: &[&str]) -> Value {
    require_pyxdf();
    let output = Command::new("python3")
        .arg(script())
        .arg(file)
        .args(args)
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "pyxdf could not load {} {args:?}: {}",
        file.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the loader prints JSON")
}

/// A float written by the loader (Python's repr in a string).
pub fn number(value: &Value) -> f64 {
    value
        .as_str()
        .unwrap_or_else(|| panic!("not a float string: {value}"))
        .parse()
        .unwrap_or_else(|e| panic!("{value}: {e}"))
}

fn numbers(value: &Value) -> Vec<f64> {
    value
        .as_array()
        .expect("a list")
        .iter()
        .map(number)
        .collect()
}

fn ranges(value: &Value) -> Vec<(usize, usize)> {
    value
        .as_array()
        .expect("a list of ranges")
        .iter()
        .map(|r| {
            (
                r[0].as_u64().expect("start") as usize,
                r[1].as_u64().expect("end") as usize,
            )
        })
        .collect()
}

/// The streams pyxdf loaded, by stream id.
pub fn streams(loaded: &Value) -> Vec<&Value> {
    loaded["streams"]
        .as_array()
        .expect("streams")
        .iter()
        .collect()
}

/// pyxdf's stream with id `id`.
pub fn stream(loaded: &Value, id: u32) -> &Value {
    streams(loaded)
        .into_iter()
        .find(|s| s["stream_id"].as_u64() == Some(u64::from(id)))
        .unwrap_or_else(|| panic!("pyxdf has no stream {id}"))
}

/// Checks every value of `ours` equals pyxdf's `time_series` exactly.
fn compare_values(ours: &Stream, theirs: &Value, what: &str) {
    let rows = theirs["time_series"].as_array().expect("time_series");
    let channels = ours.info.channel_count;
    assert_eq!(rows.len(), ours.sample_count(), "{what}: sample count");
    assert_eq!(
        ours.samples.value_count(),
        rows.len() * channels,
        "{what}: value count"
    );
    for (k, row) in rows.iter().enumerate() {
        let row = row.as_array().expect("a sample");
        assert_eq!(row.len(), channels, "{what}: channels of sample {k}");
        for (c, expected) in row.iter().enumerate() {
            let i = k * channels + c;
            let equal = match &ours.samples {
                Samples::String(v) => expected.as_str() == Some(v[i].as_str()),
                Samples::Float32(v) => number(expected).to_bits() == f64::from(v[i]).to_bits(),
                Samples::Double64(v) => number(expected).to_bits() == v[i].to_bits(),
                Samples::Int8(v) => expected.as_i64() == Some(i64::from(v[i])),
                Samples::Int16(v) => expected.as_i64() == Some(i64::from(v[i])),
                Samples::Int32(v) => expected.as_i64() == Some(i64::from(v[i])),
                Samples::Int64(v) => expected.as_i64() == Some(v[i]),
            };
            assert!(
                equal,
                "{what}: sample {k} channel {c}: pyxdf {expected}, ours {:?}",
                ours.samples.value_f64(i)
            );
        }
    }
}

/// Compares a whole recording with pyxdf's load of the same file; returns the largest timestamp
/// difference in seconds (which must stay within `tolerance`).
pub fn compare(ours: &Recording, theirs: &Value, tolerance: f64, what: &str) -> f64 {
    let their_streams = streams(theirs);
    let our_ids: Vec<u32> = ours.streams.iter().map(|s| s.id).collect();
    let their_ids: Vec<u32> = their_streams
        .iter()
        .map(|s| s["stream_id"].as_u64().expect("stream_id") as u32)
        .collect();
    let mut sorted_ours = our_ids.clone();
    let mut sorted_theirs = their_ids.clone();
    sorted_ours.sort_unstable();
    sorted_theirs.sort_unstable();
    assert_eq!(sorted_ours, sorted_theirs, "{what}: stream ids");
    let mut worst: f64 = 0.0;
    for stream in &ours.streams {
        let what = format!("{what}, stream {} ({})", stream.id, stream.info.name);
        let theirs = stream_of(&their_streams, stream.id);
        let info = &theirs["info"];
        assert_eq!(
            info["name"].as_str().unwrap_or(""),
            stream.info.name,
            "{what}: name"
        );
        assert_eq!(
            info["type"].as_str().unwrap_or(""),
            stream.info.kind,
            "{what}: type"
        );
        assert_eq!(
            info["channel_format"].as_str(),
            Some(stream.info.channel_format.lsl_name()),
            "{what}: channel_format"
        );
        assert_eq!(
            info["source_id"].as_str().unwrap_or(""),
            stream.info.source_id,
            "{what}: source_id"
        );
        let stamps = numbers(&theirs["time_stamps"]);
        assert_eq!(stamps.len(), stream.time_stamps.len(), "{what}: timestamps");
        for (k, (a, b)) in stream.time_stamps.iter().zip(&stamps).enumerate() {
            let difference = (a - b).abs();
            assert!(
                difference <= tolerance,
                "{what}: timestamp {k}: ours {a:?}, pyxdf {b:?} (difference {difference:e} s)"
            );
            worst = worst.max(difference);
        }
        compare_values(stream, theirs, &what);
        assert_eq!(
            numbers(&theirs["clock_times"]),
            stream.clock_times,
            "{what}: clock_times"
        );
        assert_eq!(
            numbers(&theirs["clock_values"]),
            stream.clock_values,
            "{what}: clock_values"
        );
        let rate = number(&theirs["effective_srate"]);
        let rate_difference = (rate - stream.effective_srate).abs();
        assert!(
            rate_difference <= 1e-9 * rate.abs().max(1.0),
            "{what}: effective_srate ours {}, pyxdf {rate}",
            stream.effective_srate
        );
        assert_eq!(
            ranges(&theirs["segments"]),
            stream.segments,
            "{what}: segments"
        );
        assert_eq!(
            ranges(&theirs["clock_segments"]),
            stream.clock_segments,
            "{what}: clock_segments"
        );
        match (&theirs["footer"], &stream.footer) {
            (Value::Null, None) => {}
            (Value::Null, Some(_)) => panic!("{what}: pyxdf has no footer, we have one"),
            (_, None) => panic!("{what}: pyxdf has a footer, we have none"),
            (footer, Some(ours)) => {
                let count = footer["sample_count"]
                    .as_str()
                    .and_then(|s| s.trim().parse().ok());
                assert_eq!(count, ours.sample_count, "{what}: footer sample_count");
                let first = footer["first_timestamp"]
                    .as_str()
                    .and_then(|s| s.trim().parse().ok());
                assert_eq!(
                    first, ours.first_timestamp,
                    "{what}: footer first_timestamp"
                );
                let offsets: Vec<(f64, f64)> = footer["clock_offsets"]
                    .as_array()
                    .expect("offsets")
                    .iter()
                    .map(|o| {
                        (
                            o[0].as_str().unwrap().trim().parse().unwrap(),
                            o[1].as_str().unwrap().trim().parse().unwrap(),
                        )
                    })
                    .collect();
                assert_eq!(offsets, ours.clock_offsets, "{what}: footer clock offsets");
            }
        }
    }
    // pyxdf keeps streams in the order of their headers, as we do.
    assert_eq!(our_ids, their_ids, "{what}: stream order");
    worst
}

fn stream_of<'a>(streams: &[&'a Value], id: u32) -> &'a Value {
    streams
        .iter()
        .find(|s| s["stream_id"].as_u64() == Some(u64::from(id)))
        .copied()
        .unwrap_or_else(|| panic!("pyxdf has no stream {id}"))
}
