//! Window-close-to-output latency of `pipelines/lsl-live.toml` (HeLo) over real LSL, next to a bare
//! pylsl relay of the same input streams measured in the same run (a benchmark, not a test).
//!
//! Run: `cargo bench --bench live_latency` (needs `python3` with pylsl, e.g. `.venv/bin` first on
//! PATH, and the onnxruntime wheel in .venv as ./scripts/test installs). Options after `--`:
//! `--subjects N` (1), `--seconds S` (120), `--stamp-at-push` (the publisher's samples are stamped
//! when pushed, with its timing jitter, instead of on their exact grid), `--hiccups S` (implies
//! `--stamp-at-push`: the publisher also stops for 0.2 s every S seconds, then catches up, its
//! samples stamped as they leave in a burst). `LIVE_LATENCY_DUMP=1`
//! prints every window's latency and heloflow's whole standard error.
//!
//! `benches/live_publisher.py` publishes the pipeline's six input streams per subject with pylsl,
//! each sample pushed on its own when the local clock reaches its timestamp, and logs every push.
//! `heloflow run pipelines/lsl-live.toml` (unchanged, in a temporary directory) and
//! `benches/live_relay.py` (pylsl inlet -> pylsl outlet per stream) both subscribe to them; this
//! process subscribes to heloflow's four LSL outputs and to the relay's outlets and notes when each
//! sample arrives, on the one local clock (`lsl::local_clock`, the clock pylsl uses too).
//!
//! For the output row of window end `e` (timestamp `e`), the sample that completes the window is
//! the latest pushed of the last samples before `e` of the input streams the output depends on;
//! the latency is the row's arrival here minus that sample's push. The relay's latency is the
//! arrival here of that same sample through the relay, minus its push. Every process uses a
//! private copy of `fixtures/lsl/lsl_api.cfg` (loopback only) with its own `SessionID`, so other
//! LSL streams on the machine are invisible (its `PortRange` of 1024 holds the run's outlets).

#[allow(dead_code)] // this bench reads only numbers
#[path = "common/args.rs"]
mod args;
#[allow(dead_code)] // this bench builds no batches
#[path = "common/helo_fixture.rs"]
mod helo_fixture;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use heloflow::model::onnx::{ModelSession, SessionOptions};
use lsl::{Pullable, StreamInlet};

const PREFIX: &str = "heloflow-bench-live";
/// Input streams with a nominal rate, as the publisher names them.
const REGULAR: [&str; 5] = ["eeg", "face", "eda", "ppg", "truth"];
/// heloflow's outputs in the `live` sink and the input streams each one depends on.
const OUTPUTS: [(&str, &[&str]); 4] = [
    ("emotion", &["eeg", "face", "eda", "ppg"]),
    ("truth_windows", &["truth"]),
    ("expression", &["face"]),
    ("eeg_bands", &["eeg"]),
];
/// Windows ending this soon after the publisher's first sample are left out (connection, the
/// 5 s peripheral windows filling, HeLo's first window).
const WARM_UP_S: f64 = 12.0;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One input stream of one subject as the publisher logged it.
struct Published {
    stamp: Vec<f64>,
    push: Vec<f64>,
}

/// The publisher's log: its first whole second and every stream's pushes.
struct Log {
    t0: f64,
    streams: HashMap<(String, String), Published>,
}

impl Log {
    fn read(path: &Path) -> Log {
        let text = std::fs::read_to_string(path).expect("the publisher wrote its log");
        let value: serde_json::Value = serde_json::from_str(&text).expect("log JSON");
        let mut streams = HashMap::new();
        for stream in value["streams"].as_array().expect("streams") {
            let key = (
                stream["subject"].as_str().unwrap().to_string(),
                stream["stream"].as_str().unwrap().to_string(),
            );
            let numbers = |name: &str| -> Vec<f64> {
                stream[name]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap())
                    .collect()
            };
            streams.insert(
                key,
                Published {
                    stamp: numbers("stamp"),
                    push: numbers("push"),
                },
            );
        }
        Log {
            t0: value["t0"].as_f64().expect("t0"),
            streams,
        }
    }

    /// Index of the last sample of `stream` stamped before `end`.
    fn last_before(stream: &Published, end: f64) -> Option<usize> {
        stream.stamp.partition_point(|&t| t < end).checked_sub(1)
    }

    /// Index of the sample of `stream` stamped nearest to `stamp` (a relay adds its clock
    /// correction, microseconds here).
    fn index_of(stream: &Published, stamp: f64) -> Option<usize> {
        let after = stream.stamp.partition_point(|&t| t < stamp);
        [after.checked_sub(1), Some(after)]
            .into_iter()
            .flatten()
            .filter(|&n| n < stream.stamp.len())
            .min_by(|&a, &b| {
                (stream.stamp[a] - stamp)
                    .abs()
                    .total_cmp(&(stream.stamp[b] - stamp).abs())
            })
    }
}

/// What one subscription saw: when its inlet was open, and (timestamp, arrival) of every sample.
type Subscription = (f64, Vec<(f64, f64)>);

/// Subscribes to the outlet `source_id` on a thread of its own (liblsl objects stay on the thread
/// that made them) and notes (timestamp, arrival) of every sample until `stop` is set.
fn subscribe(source_id: String, stop: Arc<AtomicBool>) -> JoinHandle<Result<Subscription, String>> {
    std::thread::spawn(move || {
        let found = lsl::resolve_byprop("source_id", &source_id, 1, 60.0)
            .map_err(|e| format!("resolve {source_id}: {e:?}"))?;
        let info = found
            .first()
            .ok_or_else(|| format!("{source_id} never appeared"))?;
        let inlet = StreamInlet::new(info, 360, 0, true)
            .map_err(|e| format!("inlet {source_id}: {e:?}"))?;
        inlet
            .open_stream(20.0)
            .map_err(|e| format!("open {source_id}: {e:?}"))?;
        let opened = lsl::local_clock();
        let mut arrivals = Vec::new();
        let mut buffer: Vec<f64> = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let stamp = inlet
                .pull_sample_buf(&mut buffer, 0.2)
                .map_err(|e| format!("pull {source_id}: {e:?}"))?;
            if stamp != 0.0 {
                arrivals.push((stamp, lsl::local_clock()));
            }
        }
        Ok((opened, arrivals))
    })
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Prints one table row; returns (p50, p99).
fn report(name: &str, mut latencies: Vec<f64>, expected: usize) -> Option<(f64, f64)> {
    if latencies.is_empty() {
        println!("| {name} | 0 of {expected} | | | |");
        return None;
    }
    latencies.sort_by(f64::total_cmp);
    let (p50, p99) = (percentile(&latencies, 0.5), percentile(&latencies, 0.99));
    println!(
        "| {name} | {} of {expected} | {p50:.3} | {p99:.3} | {:.3} |",
        latencies.len(),
        latencies[latencies.len() - 1]
    );
    Some((p50, p99))
}

fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    for _ in 0..50 {
        if child.try_wait().ok().flatten().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Milliseconds of single HeLo inferences (batch 1, the operator's defaults: CPU, one thread) on
/// the shipped model's fixture windows, `runs` of them; with `cold`, 64 MiB are written before
/// each, so the model's 2.9 MB of weights come from memory as in a pipeline that scores once a
/// second, else they run back to back (weights in cache).
fn helo_inference(runs: usize, cold: bool) -> Vec<f64> {
    let (manifest, rows) = helo_fixture::shipped_model_and_windows();
    let mut session =
        ModelSession::open(&manifest, &SessionOptions::default()).expect("model opens");
    let mut evict = vec![0u8; 64 << 20];
    (0..runs + 10)
        .map(|run| {
            let inputs: Vec<Vec<f32>> = rows
                .iter()
                .map(|input| input[run % input.len()].clone())
                .collect();
            if cold {
                evict
                    .iter_mut()
                    .for_each(|b| *b = b.wrapping_add(run as u8));
                std::hint::black_box(&evict);
            }
            let started = std::time::Instant::now();
            session.run(1, &inputs).expect("inference");
            started.elapsed().as_secs_f64() * 1e3
        })
        .skip(10)
        .collect()
}

fn main() {
    let subjects: usize = args::number("--subjects", 1);
    let seconds: f64 = args::number("--seconds", 120.0);
    let hiccups: f64 = args::number("--hiccups", 0.0);
    let stamp = if hiccups > 0.0 || std::env::args().any(|a| a == "--stamp-at-push") {
        "push"
    } else {
        "grid"
    };
    let dir = tempfile::tempdir().expect("temporary directory");
    let shipped = std::fs::read_to_string(root().join("fixtures/lsl/lsl_api.cfg"))
        .expect("the loopback configuration");
    let config = dir.path().join("lsl_api.cfg");
    std::fs::write(
        &config,
        shipped.replace(
            "[lab]\n",
            &format!("[lab]\nSessionID = heloflow-bench-{}\n", std::process::id()),
        ) + "[log]\nlevel = -2\n",
    )
    .expect("private configuration");
    std::env::set_var("LSLAPICFG", &config);

    let log_path = dir.path().join("published.json");
    let mut publisher = Command::new("python3")
        .arg(root().join("benches/live_publisher.py"))
        .args([PREFIX, &subjects.to_string(), &seconds.to_string()])
        .arg(&log_path)
        .arg(stamp)
        .args((hiccups > 0.0).then(|| hiccups.to_string()))
        .env("LSLAPICFG", &config)
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs (put .venv/bin first on PATH)");
    let mut line = String::new();
    BufReader::new(publisher.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("the publisher starts");
    assert!(line.starts_with("ready"), "publisher said {line:?}");

    let heloflow_log = dir.path().join("heloflow.stderr");
    let heloflow = Command::new(env!("CARGO_BIN_EXE_heloflow"))
        .arg("run")
        .arg(root().join("pipelines/lsl-live.toml"))
        .args([
            "--status",
            if std::env::var_os("LIVE_LATENCY_DUMP").is_some() {
                "plain"
            } else {
                "off"
            },
        ])
        .current_dir(dir.path())
        .env("LSLAPICFG", &config)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&heloflow_log).expect("stderr file"))
        .spawn()
        .expect("heloflow runs");
    let relay = Command::new("python3")
        .arg(root().join("benches/live_relay.py"))
        .args([PREFIX, &(6 * subjects).to_string()])
        .env("LSLAPICFG", &config)
        .spawn()
        .expect("the relay runs");

    let halt = Arc::new(AtomicBool::new(false));
    let mut heloflow_inlets = Vec::new();
    let mut relay_inlets = Vec::new();
    for s in 1..=subjects {
        let subject = format!("S{s}");
        for (output, _) in OUTPUTS {
            let id = format!("heloflow:lsl-live:{output}:{subject}");
            heloflow_inlets.push(((subject.clone(), output), subscribe(id, halt.clone())));
        }
        for stream in REGULAR {
            let id = format!("{PREFIX}:{stream}:{subject}:relay");
            relay_inlets.push(((subject.clone(), stream), subscribe(id, halt.clone())));
        }
    }
    let status = publisher.wait().expect("the publisher ends");
    assert!(status.success(), "the publisher failed");
    std::thread::sleep(Duration::from_millis(1500));
    halt.store(true, Ordering::Relaxed);
    stop(heloflow);
    stop(relay);

    let log = Log::read(&log_path);
    // heloflow opens an outlet with its first row: windows count from the first whole second
    // after every subscription was open (and after the warm-up).
    let mut opened = log.t0 + WARM_UP_S;
    let mut joined = |handle: JoinHandle<Result<Subscription, String>>| {
        let (open, arrivals) = handle
            .join()
            .expect("subscriber thread")
            .unwrap_or_else(|e| {
                println!("subscription failed: {e}");
                (f64::NEG_INFINITY, Vec::new())
            });
        opened = opened.max(open);
        arrivals
    };
    let relay_arrivals: Vec<_> = relay_inlets
        .into_iter()
        .map(|(key, handle)| (key, joined(handle)))
        .collect();
    let heloflow_arrivals: Vec<_> = heloflow_inlets
        .into_iter()
        .map(|(key, handle)| (key, joined(handle)))
        .collect();
    let mut relayed: HashMap<(String, &str), HashMap<usize, f64>> = HashMap::new();
    for ((subject, stream), arrivals) in relay_arrivals {
        let published = &log.streams[&(subject.clone(), stream.to_string())];
        let by_index = arrivals
            .into_iter()
            .filter_map(|(stamp, arrival)| Some((Log::index_of(published, stamp)?, arrival)))
            .collect();
        relayed.insert((subject, stream), by_index);
    }

    let first_end = opened.ceil();
    let last_end = (log.t0 + seconds).floor() - 1.0;
    let ends: Vec<f64> = (first_end as i64..=last_end as i64)
        .map(|e| e as f64)
        .collect();
    let expected_per_output = ends.len() * subjects;
    println!(
        "lsl-live.toml window-close-to-output latency, {subjects} subject(s), {} window ends per output and subject ({seconds} s published, samples stamped {}), loopback",
        ends.len(),
        match (stamp, hiccups > 0.0) {
            ("push", true) => format!("when pushed, 0.2 s hiccups every {hiccups} s"),
            ("push", false) => "when pushed".to_string(),
            _ => "on their grid".to_string(),
        }
    );
    println!();
    println!("| path | windows | p50 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|");
    let mut all = Vec::new();
    let mut relay_all = Vec::new();
    let mut per_output: HashMap<&str, Vec<f64>> = HashMap::new();
    let mut missing = Vec::new();
    for ((subject, output), arrivals) in heloflow_arrivals {
        let depends = OUTPUTS.iter().find(|(o, _)| *o == output).unwrap().1;
        let arrived: HashMap<i64, f64> = arrivals
            .into_iter()
            .filter(|(stamp, _)| (stamp - stamp.round()).abs() < 1e-3)
            .map(|(stamp, arrival)| (stamp.round() as i64, arrival))
            .collect();
        for &end in &ends {
            let completing = depends
                .iter()
                .filter_map(|&stream| {
                    let published = &log.streams[&(subject.clone(), stream.to_string())];
                    let n = Log::last_before(published, end)?;
                    Some((published.push[n], stream, n))
                })
                .max_by(|a, b| a.0.total_cmp(&b.0));
            let Some((pushed, stream, n)) = completing else {
                continue;
            };
            if let Some(arrival) = arrived.get(&(end as i64)) {
                let latency = (arrival - pushed) * 1e3;
                if std::env::var_os("LIVE_LATENCY_DUMP").is_some() {
                    eprintln!(
                        "{output} {subject} {:.0} {latency:.3} via {stream}",
                        end - log.t0
                    );
                }
                all.push(latency);
                per_output.entry(output).or_default().push(latency);
            } else {
                missing.push(format!("{output}/{subject}@{:.0}", end - log.t0));
            }
            if let Some(arrival) = relayed[&(subject.clone(), stream)].get(&n) {
                relay_all.push((arrival - pushed) * 1e3);
            }
        }
    }
    for (output, _) in OUTPUTS {
        let name = if output == "emotion" {
            "heloflow lsl-live: emotion (HeLo)".to_string()
        } else {
            format!("heloflow lsl-live: {output}")
        };
        report(
            &name,
            per_output.remove(output).unwrap_or_default(),
            expected_per_output,
        );
    }
    let expected = expected_per_output * OUTPUTS.len();
    let heloflow = report("heloflow lsl-live: all four outputs", all, expected);
    let relay = report(
        "bare pylsl relay: the same completing samples",
        relay_all,
        expected,
    );
    if let (Some(h), Some(r)) = (heloflow, relay) {
        println!(
            "| ratio heloflow / relay | | {:.2}x | {:.2}x | |",
            h.0 / r.0,
            h.1 / r.1
        );
    }
    for (cold, name) in [
        (
            false,
            "HeLo inference alone, back to back (batch 1, CPU, 1 thread)",
        ),
        (true, "HeLo inference alone, caches evicted before each"),
    ] {
        let inference = helo_inference(200, cold);
        let count = inference.len();
        report(name, inference, count);
    }
    if !missing.is_empty() {
        println!();
        println!(
            "rows that never arrived (output/subject@seconds after T0): {}",
            missing.join(" ")
        );
    }
    let stderr = std::fs::read_to_string(&heloflow_log).unwrap_or_default();
    println!();
    println!("heloflow's summary:");
    let dump = std::env::var_os("LIVE_LATENCY_DUMP").is_some();
    for line in stderr
        .lines()
        .filter(|l| dump || l.contains("dropped") || l.contains("error"))
    {
        println!("  {line}");
    }
}
