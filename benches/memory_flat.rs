//! Whether memory stays flat on a long run: the real `heloflow demo --fast` (the demo pipeline:
//! DMER features of four streams, HeLo on ONNX Runtime, jsonl and csv sinks) with 200 simulated
//! subjects for 10 minutes of simulated time, as fast as possible, its resident set size sampled
//! every 2 s. Prints the RSS against event time, and whether the largest RSS after the first
//! simulated minute stays within 10% of the RSS at that minute.
//!
//! Run: `cargo bench --bench memory_flat` (release build; ONNX Runtime from `.venv`: put
//! `.venv/bin` first on PATH). `MEMORY_BENCH_SUBJECTS` and `MEMORY_BENCH_SECONDS` change the 200
//! subjects and 600 s. Linux only (reads `/proc/<pid>/status`).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Event time after which memory must stay flat, seconds.
const WARM_UP_S: f64 = 60.0;

/// How much memory may grow after the warm-up and still count as flat.
const TOLERANCE: f64 = 0.10;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Resident set size of process `pid`, MiB; `None` once it has exited.
fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// The event time a plain status line reports (`demo: event time 12.300s | ...`), seconds.
fn event_time_s(line: &str) -> Option<f64> {
    let rest = line.split("event time ").nth(1)?;
    rest.split('s').next()?.parse().ok()
}

fn main() {
    let subjects = setting("MEMORY_BENCH_SUBJECTS", 200);
    let seconds = setting("MEMORY_BENCH_SECONDS", 600);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_heloflow"))
        .args([
            "demo",
            "--fast",
            "--subjects",
            &subjects.to_string(),
            "--duration",
            &seconds.to_string(),
            "--status",
            "plain",
        ])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the heloflow binary starts");
    let pid = child.id();
    let event_ms = Arc::new(AtomicU64::new(0));
    let stderr = child.stderr.take().expect("stderr is piped");
    let reader_event_ms = event_ms.clone();
    let reader = std::thread::spawn(move || {
        let mut last = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(t) = event_time_s(&line) {
                reader_event_ms.store((t * 1000.0) as u64, Ordering::Relaxed);
            }
            last = line;
        }
        last
    });
    let mut samples: Vec<(f64, f64, f64)> = Vec::new();
    while let Some(rss) = rss_mib(pid) {
        if child.try_wait().ok().flatten().is_some() {
            break;
        }
        let event = event_ms.load(Ordering::Relaxed) as f64 / 1000.0;
        samples.push((started.elapsed().as_secs_f64(), event, rss));
        std::thread::sleep(Duration::from_secs(2));
    }
    let status = child.wait().expect("heloflow ends");
    let summary = reader.join().unwrap_or_default();
    assert!(status.success(), "heloflow demo failed: {summary}");
    let wall = started.elapsed().as_secs_f64();

    println!(
        "heloflow demo --fast --subjects {subjects} --duration {seconds}: {wall:.1} s wall\n{summary}\n"
    );
    println!("  wall s | event time s | RSS MiB");
    let every = (samples.len() / 25).max(1);
    for (index, (at, event, rss)) in samples.iter().enumerate() {
        if index % every == 0 || index + 1 == samples.len() {
            println!("  {at:6.1} | {event:12.1} | {rss:7.1}");
        }
    }
    let Some(&(_, _, baseline)) = samples.iter().find(|s| s.1 >= WARM_UP_S) else {
        println!("\nthe run ended before {WARM_UP_S} s of event time: no verdict");
        return;
    };
    let after: Vec<f64> = samples
        .iter()
        .filter(|s| s.1 >= WARM_UP_S)
        .map(|s| s.2)
        .collect();
    let peak = after.iter().copied().fold(f64::MIN, f64::max);
    let last = after.last().copied().unwrap_or(baseline);
    let growth = peak / baseline - 1.0;
    println!(
        "\nRSS at {WARM_UP_S} s of event time {baseline:.1} MiB, peak after it {peak:.1} MiB (+{:.1}%), at the end {last:.1} MiB: {}",
        growth * 100.0,
        if growth <= TOLERANCE {
            "FLAT (within 10%)"
        } else {
            "NOT FLAT (grew more than 10%)"
        }
    );
}
