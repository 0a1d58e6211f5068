//! LSL-in to LSL-out latency of a pass-through pipeline (lsl source -> lsl sink), next to a bare
//! pylsl relay measured in the same run (a benchmark, not a test).
//!
//! Run: `cargo bench --bench lsl_latency` (needs `python3` with pylsl, e.g. `.venv/bin` first on
//! PATH). This process pushes one sample at a time into an outlet, the relay forwards it, and an
//! inlet here measures the time from push to arrival on the one local clock; loopback-only liblsl
//! configuration (fixtures/lsl/lsl_api.cfg).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use lsl::{ExPushable, Pullable, StreamInfo, StreamInlet, StreamOutlet};

const SAMPLES: usize = 500;
const PERIOD: Duration = Duration::from_millis(10);

const PASS_THROUGH: &str = r#"
[pipeline]
name = "lsl-latency"

[sources.in]
kind = "lsl"
source_id = "heloflow-bench-src"
modality = "eeg"
channels = 1
rate = 100
format = "double64"
subjects = { "heloflow-bench-src" = "B" }
timeout_s = 20

[sinks.out]
kind = "lsl"
inputs = ["in.eeg"]
source_id = "heloflow-bench-out:{subject}"
"#;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Pushes samples one at a time through a relay (`relay_id` is the relay's outlet) and returns
/// the push-to-arrival latencies in milliseconds.
fn measure(outlet: &StreamOutlet, relay_id: &str) -> Result<Vec<f64>, String> {
    let found = lsl::resolve_byprop("source_id", relay_id, 1, 20.0)
        .map_err(|e| format!("resolve: {e:?}"))?;
    let info = found
        .first()
        .ok_or_else(|| format!("relay outlet {relay_id} never appeared"))?;
    let inlet = StreamInlet::new(info, 10, 0, true).map_err(|e| format!("inlet: {e:?}"))?;
    inlet
        .open_stream(10.0)
        .map_err(|e| format!("open: {e:?}"))?;
    if !outlet.wait_for_consumers(20.0) {
        return Err("the relay never connected".to_string());
    }
    std::thread::sleep(Duration::from_millis(500));
    let mut latencies = Vec::with_capacity(SAMPLES);
    let mut buffer: Vec<f64> = Vec::new();
    for index in 0..SAMPLES + 20 {
        let sent = lsl::local_clock();
        outlet
            .push_sample_ex(&vec![index as f64], sent, true)
            .map_err(|e| format!("push: {e:?}"))?;
        loop {
            let stamp = inlet
                .pull_sample_buf(&mut buffer, 2.0)
                .map_err(|e| format!("pull: {e:?}"))?;
            if stamp == 0.0 {
                return Err(format!("sample {index} never came back"));
            }
            if buffer[0] as usize == index {
                break;
            }
        }
        if index >= 20 {
            latencies.push((lsl::local_clock() - sent) * 1e3);
        }
        std::thread::sleep(PERIOD);
    }
    Ok(latencies)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn report(name: &str, mut latencies: Vec<f64>) {
    latencies.sort_by(f64::total_cmp);
    println!(
        "| {name} | {} | {:.3} | {:.3} | {:.3} |",
        latencies.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies[latencies.len() - 1]
    );
}

fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    std::thread::sleep(Duration::from_millis(300));
    let _ = child.kill();
    let _ = child.wait();
}

fn main() {
    let config = root().join("fixtures/lsl/lsl_api.cfg");
    std::env::set_var("LSLAPICFG", &config);
    let mut info = StreamInfo::new(
        "bench-src",
        "EEG",
        1,
        100.0,
        lsl::ChannelFormat::Double64,
        "heloflow-bench-src",
    )
    .expect("stream info");
    info.desc().append_child("channels");
    let outlet = StreamOutlet::new(&info, 0, 10).expect("outlet");

    let dir = tempfile::tempdir().expect("temporary directory");
    let pipeline = dir.path().join("pass-through.toml");
    std::fs::write(&pipeline, PASS_THROUGH).expect("pipeline file");
    println!(
        "LSL in -> LSL out latency, {SAMPLES} samples one at a time every {PERIOD:?}, loopback"
    );
    println!();
    println!("| relay | samples | p50 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|");

    let heloflow = Command::new(env!("CARGO_BIN_EXE_heloflow"))
        .args(["run", pipeline.to_str().unwrap(), "--status", "off"])
        .env("LSLAPICFG", &config)
        .stderr(Stdio::null())
        .spawn()
        .expect("heloflow runs");
    let result = measure(&outlet, "heloflow-bench-out:B");
    stop(heloflow);
    match result {
        Ok(latencies) => report("heloflow pass-through (lsl source -> lsl sink)", latencies),
        Err(e) => println!("| heloflow pass-through | failed: {e} | | | |"),
    }

    let relay = Command::new("python3")
        .arg(root().join("benches/lsl_relay.py"))
        .args(["heloflow-bench-src", "heloflow-bench-pylsl"])
        .env("LSLAPICFG", &config)
        .spawn()
        .expect("python3 runs (put .venv/bin first on PATH)");
    let result = measure(&outlet, "heloflow-bench-pylsl");
    stop(relay);
    match result {
        Ok(latencies) => report("bare pylsl relay (pull_sample -> push_sample)", latencies),
        Err(e) => println!("| bare pylsl relay | failed: {e} | | | |"),
    }
}
