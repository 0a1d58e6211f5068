//! The common workload, side by side: heloflow, ezmsg (ezmsg-sigproc), Timeflux (timeflux_dsp)
//! and a plain numpy/scipy loop on the same data, in one run, each peer in its own virtual
//! environment (`benches/common_workload/setup.sh` installs them under `target/bench-venvs/`).
//!
//! Workload (BENCHMARKS.md, "The common workload"): 8 channels of float32 at 700 Hz for 120 s
//! (84,000 samples) in 70-sample chunks, as fast as possible; a causal 4th-order 0.5-40 Hz
//! Butterworth band-pass started at `sosfilt_zi(sos) * x[0]`; 10 s windows every 1 s (111);
//! per channel the mean, the standard deviation and `scipy.signal.welch(win, fs=700,
//! nperseg=700)` band powers. heloflow runs `pipelines/common-workload.toml` through the real
//! runtime, reading the data from an XDF file this benchmark writes first (untimed); every
//! implementation must give the same check values (the sum of the last window's 56 features,
//! and of all 111 windows' features) to 6 decimals, or the benchmark fails.
//!
//! Run: `cargo bench --bench common_workload` (`-- --repeat N` for the best of N runs each,
//! default 5 for heloflow and 3 for the peers; `-- --skip-peers` for heloflow alone).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use heloflow::metrics::PipelineMetrics;
use heloflow::pipeline;
use heloflow::runtime::status::StatusMode;
use heloflow::runtime::{run, RunOptions};

#[path = "common/workload.rs"]
mod workload;
use workload::{check_values, read_f32, write_xdf, ALL_WINDOWS_SUM, LAST_WINDOW_SUM, SAMPLES};
const PEERS: [&str; 3] = ["ezmsg", "timeflux", "numpy"];

/// One implementation's figures.
struct Figures {
    name: String,
    versions: String,
    seconds: f64,
    latency_p50_ms: f64,
    latency_p99_ms: f64,
    latency_what: &'static str,
    last_window_sum: f64,
    all_windows_sum: f64,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let repeat = args
        .iter()
        .position(|a| a == "--repeat")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    let skip_peers = args.iter().any(|a| a == "--skip-peers");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::env::set_current_dir(root).expect("the repository root");
    let dir = root.join("target/common-workload");
    std::fs::create_dir_all(&dir).expect("target/common-workload");
    let scripts = root.join("benches/common_workload");
    if !skip_peers {
        shell(
            Command::new("bash").arg(scripts.join("setup.sh")),
            "peer setup",
        );
    }
    let data = dir.join("data.f32");
    let python = peer_python(root, "numpy", skip_peers);
    let generated = shell(
        Command::new(&python)
            .arg(scripts.join("data.py"))
            .arg("--out")
            .arg(&data),
        "data.py",
    );
    println!("data: {}", generated.trim());
    let samples = read_f32(&data);
    println!(
        "sum of all samples (float64): {:.3}",
        samples.iter().map(|&v| f64::from(v)).sum::<f64>()
    );
    write_xdf(&samples, &dir.join("data.xdf"));

    let runs = |default: usize| if repeat == 0 { default } else { repeat };
    let mut table = vec![run_heloflow(&dir, runs(5))];
    if !skip_peers {
        for peer in PEERS {
            table.push(run_peer(root, &scripts, &data, peer, runs(3)));
        }
    }
    print_table(&table);
    let wrong: Vec<&Figures> = table
        .iter()
        .filter(|f| {
            (f.last_window_sum - LAST_WINDOW_SUM).abs() > 5e-7
                || (f.all_windows_sum - ALL_WINDOWS_SUM).abs() > 5e-7
        })
        .collect();
    if !wrong.is_empty() {
        for f in wrong {
            eprintln!(
                "{}: check values {:.6} / {:.6}, expected {LAST_WINDOW_SUM} / {ALL_WINDOWS_SUM}",
                f.name, f.last_window_sum, f.all_windows_sum
            );
        }
        std::process::exit(1);
    }
}

/// The Python of a peer's virtual environment (the project's `.venv` for the data alone when
/// the peers are skipped).
fn peer_python(root: &Path, peer: &str, skip_peers: bool) -> PathBuf {
    let venv = root
        .join("target/bench-venvs")
        .join(peer)
        .join("bin/python");
    if venv.exists() || !skip_peers {
        venv
    } else {
        root.join(".venv/bin/python")
    }
}

/// Runs `command`, returning its standard output; exits with its error output on failure.
fn shell(command: &mut Command, what: &str) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    if !output.status.success() {
        eprintln!("{what} failed ({}):", output.status);
        eprintln!("{}", String::from_utf8_lossy(&output.stdout));
        eprintln!("{}", String::from_utf8_lossy(&output.stderr));
        std::process::exit(1);
    }
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Best of `repeat` runs of `pipelines/common-workload.toml`, with its check values.
fn run_heloflow(dir: &Path, repeat: usize) -> Figures {
    let text = std::fs::read_to_string("pipelines/common-workload.toml").expect("the pipeline");
    let pipeline = pipeline::parse("pipelines/common-workload.toml", &text).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(1)
    });
    let mut best: Option<(f64, f64, f64)> = None;
    let mut whole = f64::INFINITY;
    for _ in 0..repeat {
        let metrics = PipelineMetrics::for_pipeline(&pipeline);
        let options = RunOptions {
            workers: 1,
            status: StatusMode::Off,
            metrics: Some(Arc::clone(&metrics)),
            ..RunOptions::default()
        };
        let report = run(&pipeline, &options, Arc::new(AtomicBool::new(false))).expect("the run");
        let finished = Instant::now();
        assert_eq!(report.samples_in, SAMPLES as u64, "every sample read");
        assert_eq!(report.dropped, 0, "no sample dropped");
        let latency = metrics.sinks[0]
            .window_latency
            .iter()
            .flatten()
            .map(|h| h.snapshot())
            .fold(None, |acc: Option<(f64, f64)>, s| {
                let (p50, p99) = (
                    s.quantile(0.5).unwrap_or(0.0),
                    s.quantile(0.99).unwrap_or(0.0),
                );
                Some(acc.map_or((p50, p99), |(a, b)| (a.max(p50), b.max(p99))))
            })
            .unwrap_or((f64::NAN, f64::NAN));
        // As the peers are timed: from the first chunk handed on (the file already read) to the
        // last row written; the whole run (reading the file included) is printed beside it.
        let first = *metrics.sources[0]
            .first_sent
            .get()
            .expect("samples were sent");
        let seconds = finished.duration_since(first).as_secs_f64();
        if best.is_none_or(|(s, _, _)| seconds < s) {
            best = Some((seconds, latency.0 * 1e3, latency.1 * 1e3));
        }
        whole = whole.min(report.elapsed.as_secs_f64());
    }
    let (seconds, p50, p99) = best.expect("at least one run");
    println!(
        "heloflow, whole run (graph built, XDF file read and decoded, then processed): best {whole:.4} s = {:.3e} samples/s",
        SAMPLES as f64 / whole
    );
    let (last, all) = check_values(&dir.join("heloflow-features.jsonl"));
    Figures {
        name: "heloflow".into(),
        versions: format!("heloflow {}", env!("CARGO_PKG_VERSION")),
        seconds,
        latency_p50_ms: p50,
        latency_p99_ms: p99,
        latency_what: "window close to sink write",
        last_window_sum: last,
        all_windows_sum: all,
    }
}

/// Best of `repeat` runs of one peer in its own environment.
fn run_peer(root: &Path, scripts: &Path, data: &Path, peer: &str, repeat: usize) -> Figures {
    let out = shell(
        Command::new(peer_python(root, peer, false))
            .arg(scripts.join(format!("peer_{peer}.py")))
            .arg("--data")
            .arg(data)
            .arg("--repeat")
            .arg(repeat.to_string()),
        peer,
    );
    let line = out.lines().last().unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("{peer}: not a JSON line ({e}): {line}"));
    let versions = v["versions"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k} {}", v.as_str().unwrap_or("?")))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    Figures {
        name: peer.into(),
        versions,
        seconds: v["seconds"].as_f64().expect("seconds"),
        latency_p50_ms: v["chunk_latency_ms"]["p50"].as_f64().unwrap_or(f64::NAN),
        latency_p99_ms: v["chunk_latency_ms"]["p99"].as_f64().unwrap_or(f64::NAN),
        latency_what: "chunk in to its output out",
        last_window_sum: v["last_window_sum"].as_f64().unwrap_or(f64::NAN),
        all_windows_sum: v["all_windows_sum"].as_f64().unwrap_or(f64::NAN),
    }
}

fn print_table(table: &[Figures]) {
    let heloflow = &table[0];
    println!();
    println!("| implementation | seconds | samples/s | heloflow faster by | latency p50 ms | latency p99 ms | latency measured | last window sum | all windows sum |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for f in table {
        println!(
            "| {} | {:.4} | {:.3e} | {:.1}x | {:.3} | {:.3} | {} | {:.6} | {:.6} |",
            f.name,
            f.seconds,
            SAMPLES as f64 / f.seconds,
            f.seconds / heloflow.seconds,
            f.latency_p50_ms,
            f.latency_p99_ms,
            f.latency_what,
            f.last_window_sum,
            f.all_windows_sum
        );
    }
    println!();
    for f in table {
        println!("{}: {}", f.name, f.versions);
    }
}
