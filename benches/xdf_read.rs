//! Reading speed of heloflow's XDF reader on a ~100 MB synthetic recording (a benchmark, not a
//! test), beside real pyxdf loading the same file.
//!
//! Run: `cargo bench --bench xdf_read` (pyxdf is timed when `python3` on PATH has it, e.g. with
//! `.venv/bin` first on PATH). The file is the integration tests' synthetic recording (every value
//! format, clock offsets, boundaries) with a 64-channel float32 EEG stream at 250 Hz, 25 minutes
//! long. Each case is timed once after one warm-up read (the file is in the page cache).

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use heloflow::xdf::chunks::Chunks;
use heloflow::xdf::reader::{read, ReadOptions};

#[path = "../integration-tests/xdf/synthetic.rs"]
mod synthetic;

fn time<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let start = Instant::now();
    let value = f();
    (value, start.elapsed().as_secs_f64())
}

fn main() {
    let file = synthetic::build(&synthetic::default_streams(8), 1500.0, 1);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("bench.xdf");
    std::fs::write(&path, &file.bytes).expect("the file is written");
    let megabytes = file.bytes.len() as f64 / 1e6;
    println!(
        "synthetic recording: {megabytes:.1} MB, {} streams",
        file.streams.len()
    );
    read(&path, &ReadOptions::default()).expect("warm-up read");

    let cases: [(&str, ReadOptions); 3] = [
        ("pyxdf defaults (sync + dejitter)", ReadOptions::default()),
        ("raw (no sync, no dejitter)", ReadOptions::raw()),
        (
            "timestamps only (decode_values = false)",
            ReadOptions {
                decode_values: false,
                ..ReadOptions::default()
            },
        ),
    ];
    println!("| case | seconds | MB/s |");
    println!("|---|---|---|");
    for (name, options) in cases {
        let (recording, seconds) = time(|| read(&path, &options).expect("the file reads"));
        assert!(recording.damage.is_empty());
        println!(
            "| heloflow {name} | {seconds:.3} | {:.0} |",
            megabytes / seconds
        );
    }
    let (count, seconds) = time(|| {
        let reader =
            std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(&path).unwrap());
        Chunks::new(reader).unwrap().count()
    });
    println!(
        "| heloflow chunk iterator alone ({count} chunks, values decoded) | {seconds:.3} | {:.0} |",
        megabytes / seconds
    );
    pyxdf(&path, megabytes);
}

fn pyxdf(path: &Path, megabytes: f64) {
    let script = "import sys, time, pyxdf\nstart = time.perf_counter()\npyxdf.load_xdf(sys.argv[1])\nprint(time.perf_counter() - start)";
    match Command::new("python3")
        .args(["-c", script])
        .arg(path)
        .output()
    {
        Ok(output) if output.status.success() => {
            let seconds: f64 = String::from_utf8_lossy(&output.stdout)
                .trim()
                .parse()
                .unwrap_or(f64::NAN);
            println!(
                "| pyxdf 1.17.5 load_xdf (defaults) | {seconds:.3} | {:.0} |",
                megabytes / seconds
            );
        }
        _ => println!("(pyxdf not available: put .venv/bin first on PATH to time it)"),
    }
}
