//! Runs a validated pipeline: starts source threads, executes the dataflow on timely workers,
//! reports progress, and drains and flushes everything on Ctrl-C.

pub mod cluster;
mod dataflow;
pub mod latency;
pub mod status;

pub use dataflow::BatchStream;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::metrics::PipelineMetrics;
use crate::origin::Origins;
use crate::pipeline::Pipeline;
use crate::sinks::destination::stdout_closed_at_start;
use crate::sinks::tap::{TapHub, TapWriter};
use crate::sinks::{Destination, ModelProvenance, SinkContext};
use crate::sources::queue::source_queue;
use crate::sources::Split;
use crate::stream::{Nanos, SubjectShare};
use cluster::{Cluster, StdoutAside};
use dataflow::Shared;
use status::{StatusMode, StatusReporter};

/// How to run a pipeline.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Timely worker threads; subjects are partitioned across them.
    pub workers: usize,
    /// Progress display.
    pub status: StatusMode,
    /// Publishes every stream's rows here (for the live server), when set.
    pub taps: Option<Arc<TapHub>>,
    /// Counters to fill, when the caller reads them during the run (the live server's
    /// telemetry); made for the run otherwise. Made by [`PipelineMetrics::for_pipeline`]
    /// (or [`crate::telemetry::Telemetry::new`], whose `metrics()` they are).
    pub metrics: Option<Arc<PipelineMetrics>>,
    /// This process's place in a cluster run, when the pipeline runs over several processes.
    pub cluster: Option<Cluster>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            workers: 1,
            status: StatusMode::Auto,
            taps: None,
            metrics: None,
            cluster: None,
        }
    }
}

/// What a finished run did.
#[derive(Clone, Debug, PartialEq)]
pub struct RunReport {
    /// Samples the sources produced.
    pub samples_in: u64,
    /// Samples dropped, for every reason.
    pub dropped: u64,
    /// Samples dropped, by reason.
    pub drops: crate::metrics::Drops,
    /// The most a realtime source fell behind the wall clock, seconds (0 when it kept up).
    pub behind_real_time_s: f64,
    /// Rows the sinks wrote.
    pub rows_out: u64,
    /// Wall-clock duration.
    pub elapsed: Duration,
    /// Whether the run was stopped early (Ctrl-C or a closed output) and drained.
    pub interrupted: bool,
    /// Sinks whose destination was closed by its reader (a broken pipe), in pipeline order.
    pub closed_outputs: Vec<ClosedOutput>,
}

/// A sink whose destination was closed by its reader during the run (e.g. `| head`).
#[derive(Clone, Debug, PartialEq)]
pub struct ClosedOutput {
    /// The sink's name.
    pub sink: String,
    /// Where it wrote (`standard output` or a path).
    pub destination: String,
    /// Rows written before it closed (at least these reached it).
    pub rows: u64,
    /// Rows that were not written because it closed.
    pub unwritten: u64,
}

/// Runs `pipeline` to completion, or until `stop` is set; then drains and flushes every sink.
/// In a cluster run, only the leading process starts sources and opens sinks; the others run
/// their share of the operators (see [`cluster`]).
pub fn run(
    pipeline: &Pipeline,
    options: &RunOptions,
    stop: Arc<AtomicBool>,
) -> Result<RunReport, String> {
    if options.workers == 0 || options.workers > MAX_WORKERS {
        return Err(format!(
            "the number of workers must be 1 to {MAX_WORKERS}, found {}",
            options.workers
        ));
    }
    let started = Instant::now();
    let cluster = options.cluster.as_ref();
    let leads = cluster.is_none_or(Cluster::leads);
    let mut pipeline = pipeline.clone();
    for operator in &mut pipeline.operators {
        operator.config.component_mut().prepare(&operator.name)?;
    }
    let pipeline = &pipeline;
    let metrics = match &options.metrics {
        Some(metrics) if metrics.fits(pipeline) => metrics.clone(),
        Some(_) => return Err("the run's counters were made for another pipeline".to_string()),
        None => PipelineMetrics::for_pipeline(pipeline),
    };
    for (node, counters) in pipeline.operators.iter().zip(&metrics.operators) {
        if let Some(provider) = node.config.model().and_then(|m| m.provider()) {
            let _ = counters.provider.set(provider);
        }
    }

    // Before anything is opened: every process of a cluster was given this same run.
    let peers = match cluster {
        Some(cluster) => Some(cluster.handshake(
            cluster.fingerprint(&run_identity(pipeline), options.workers),
            options.workers,
        )?),
        None => None,
    };
    if leads {
        check_destinations(pipeline)?;
    }
    let origins = Arc::new(Origins::default());
    let models = model_provenance(pipeline);
    let mut writers = Vec::new();
    for sink in &pipeline.sinks {
        if !leads {
            writers.push(Mutex::new(None));
            continue;
        }
        let inputs: Vec<_> = sink
            .inputs
            .iter()
            .map(|&id| pipeline.streams[id as usize].clone())
            .collect();
        let context = SinkContext {
            pipeline: &pipeline.name,
            origins: &origins,
            pipeline_text: &pipeline.text,
            input_ids: &sink.inputs,
            models: &models,
        };
        let writer = sink
            .config
            .component()
            .open(&inputs, &context)
            .map_err(|e| format!("sink `{}`: {e}", sink.name))?;
        writers.push(Mutex::new(Some(writer)));
    }

    // Worker indices of this process among every worker of the run.
    let processes = cluster.map_or(1, |c| c.addresses.len());
    let first_worker = cluster.map_or(0, |c| c.process) * options.workers;
    let mut receivers = Vec::new();
    let mut threads = Vec::new();
    for (index, node) in pipeline.sources.iter().enumerate() {
        let source = node.config.component();
        let shares: Vec<SubjectShare> = match source.split() {
            Split::Everywhere => (first_worker..first_worker + options.workers)
                .map(|worker| SubjectShare {
                    index: worker,
                    count: options.workers * processes,
                })
                .collect(),
            // On process 0 worker indices start at 0; shares of process 0's workers only, so a
            // subject another process owns reaches it through the operators' exchange.
            Split::OnFirstProcess if leads => (0..options.workers)
                .map(|worker| SubjectShare {
                    index: worker,
                    count: options.workers,
                })
                .collect(),
            Split::Whole if leads => vec![SubjectShare::ALL],
            _ => Vec::new(),
        };
        // Each queue is sized for its share of the source's batches.
        let queue = source.queue().for_shares(shares.len());
        let queues = shares.into_iter().map(|share| {
            let (sender, receiver) = source_queue(
                queue,
                metrics.sources[index].clone(),
                origins.clone(),
                stop.clone(),
            );
            (share, sender, receiver)
        });
        let mut by_worker = BTreeMap::new();
        let mut senders = Vec::new();
        for (share, sender, receiver) in queues {
            by_worker.insert(share.index, receiver);
            senders.push((share, sender));
        }
        receivers.push(Mutex::new(by_worker));
        if senders.is_empty() {
            continue;
        }
        let started = source
            .spawn_shares(&node.name, node.outputs.clone(), senders)
            .map_err(|e| format!("cannot start source `{}`: {e}", node.name))?;
        threads.extend(started.into_iter().map(|thread| (thread, index)));
    }

    let tap: Option<Box<dyn crate::sinks::SinkWriter>> = options
        .taps
        .as_ref()
        .filter(|_| leads)
        .map(|hub| Box::new(TapWriter::new(hub.clone())) as _);
    let taps_every_stream = match cluster {
        Some(cluster) => cluster.leader_serves,
        None => tap.is_some(),
    };
    let shared = Arc::new(Shared {
        pipeline: pipeline.clone(),
        receivers,
        writers: writers.into_iter().collect(),
        taps_every_stream,
        tap: Mutex::new(tap),
        stamps: latency::LatencyStamps::new(pipeline),
        metrics: metrics.clone(),
        failure: Mutex::new(None),
        stop: stop.clone(),
        aborted: AtomicBool::new(false),
    });

    let reporter = StatusReporter::start(options.status, pipeline, metrics.clone());
    let worker_shared = shared.clone();
    let per_process = options.workers;
    let config = match cluster {
        Some(cluster) => cluster.timely_config(per_process),
        None => timely::Config::process(per_process),
    };
    // Workers wait until timely has connected the processes and standard output is back.
    let (open_gate, gate) = crossbeam_channel::bounded::<()>(0);
    let stdout_aside = cluster.map(|_| StdoutAside::new());
    let guards = timely::execute(config, move |worker| {
        let _ = gate.recv();
        let index = worker.index();
        let shared = worker_shared.clone();
        let _abort_on_panic = AbortOnPanic(&shared);
        worker.dataflow::<Nanos, _, _>(|scope| {
            dataflow::build(scope, &shared, index);
        });
        step_until_done(worker, &shared.aborted);
    });
    drop(stdout_aside);
    drop(open_gate);
    let guards = guards.map_err(|e| format!("cannot start the dataflow workers: {e}"))?;
    // In a cluster run whose connection broke, timely's network threads panicked, and joining
    // them (as the guards do when dropped) panics here too: that is a failed worker.
    let worker_results = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| guards.join()))
        .unwrap_or_else(|_| vec![Err("the cluster's network threads failed".to_string())]);
    // A worker that stopped before taking its queues (one that failed at start) leaves them here;
    // dropping them ends the sources' sends.
    for slot in &shared.receivers {
        slot.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
    if let Some(hub) = &options.taps {
        hub.end();
    }
    let interrupted = stop.swap(true, Ordering::Relaxed);
    let mut panicked_sources = Vec::new();
    for (thread, index) in threads {
        let name = format!("`{}`", pipeline.sources[index].name);
        if thread.join().is_err() && !panicked_sources.contains(&name) {
            panicked_sources.push(name);
        }
    }
    let reporter_healthy = reporter.finish();
    if worker_results.iter().any(|r| r.is_err()) {
        return Err(match cluster {
            Some(_) => "a dataflow worker stopped: another process of the cluster went away, or a worker hit an internal error".to_string(),
            None => "a dataflow worker stopped on an internal error".to_string(),
        });
    }
    if !panicked_sources.is_empty() {
        return Err(format!(
            "source {} stopped on an internal error",
            panicked_sources.join(", ")
        ));
    }
    if !reporter_healthy {
        return Err("the status reporter stopped on an internal error".to_string());
    }
    if let Some(failure) = shared
        .failure
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
    {
        return Err(failure);
    }
    // Process 0's summary counts the whole run: the others send what they counted.
    if let Some(Err(message)) = peers.map(|peers| peers.share_counts(&metrics)) {
        crate::notice!("heloflow: {message}");
    }
    let closed_outputs = pipeline
        .sinks
        .iter()
        .zip(&metrics.sinks)
        .filter(|(_, m)| m.closed.load(Ordering::Relaxed))
        .map(|(sink, m)| ClosedOutput {
            sink: sink.name.clone(),
            destination: sink
                .config
                .component()
                .destination()
                .map_or_else(String::new, |d| Destination::parse(d).describe()),
            rows: m.rows.load(Ordering::Relaxed),
            unwritten: m.unwritten.load(Ordering::Relaxed),
        })
        .collect();
    Ok(RunReport {
        samples_in: metrics.samples_in(),
        dropped: metrics.dropped(),
        drops: metrics.drops(),
        behind_real_time_s: metrics.behind_real_time_s().1,
        rows_out: metrics.rows_out(),
        elapsed: started.elapsed(),
        interrupted,
        closed_outputs,
    })
}

/// Refuses, before any file is opened for writing, sinks that write to one place (or onto the
/// pipeline file), now that the files as they are can be compared: symlinks created since
/// validation, hard links, standard output redirected onto a sink's file.
fn check_destinations(pipeline: &Pipeline) -> Result<(), String> {
    let file = pipeline
        .file
        .as_ref()
        .and_then(|f| f.to_str())
        .map(Destination::parse);
    let mut seen: Vec<(&str, Destination)> = Vec::new();
    for sink in &pipeline.sinks {
        let Some(path) = sink.config.component().destination() else {
            continue;
        };
        let destination = Destination::parse(path);
        if destination.is_stdout() && stdout_closed_at_start() {
            return Err(format!(
                "sink `{}` writes to standard output, which is closed (e.g. `>&-`): nothing it wrote could be read; redirect standard output to a file or give the sink a `path`",
                sink.name
            ));
        }
        if file.as_ref().is_some_and(|f| destination.same_place(f)) {
            return Err(format!(
                "sink `{}` would overwrite the pipeline file itself ({path})",
                sink.name
            ));
        }
        if let Some((other, _)) = seen.iter().find(|(_, d)| d.same_place(&destination)) {
            return Err(format!(
                "sinks `{other}` and `{}` would both write to {} ({path}); give each sink its own `path`",
                sink.name,
                destination.describe()
            ));
        }
        seen.push((&sink.name, destination));
    }
    Ok(())
}

/// Most timely workers a run may start (each takes memory for channels to every other worker);
/// subjects are what is spread over them, so more workers than cores gains nothing.
pub const MAX_WORKERS: usize = 256;

/// Steps a worker until its dataflows are complete, or until another worker panicked: then this
/// one would wait for the dead worker's progress forever, so its dataflows are dropped (timely
/// itself steps a returning worker until it has none left).
fn step_until_done(worker: &mut timely::worker::Worker, aborted: &AtomicBool) {
    while !aborted.load(Ordering::SeqCst) && worker.step_or_park(Some(Duration::from_millis(20))) {}
    if aborted.load(Ordering::SeqCst) {
        for dataflow in worker.installed_dataflows() {
            worker.drop_dataflow(dataflow);
        }
    }
}

/// Held by each worker: if the worker panics, the run fails and the other workers stop.
struct AbortOnPanic<'a>(&'a Shared);

impl Drop for AbortOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0
                .fail("a dataflow worker stopped on an internal error".to_string());
            self.0.aborted.store(true, Ordering::SeqCst);
        }
    }
}

/// What the processes of a cluster run must share: the pipeline file's text, and the simulated
/// sources as the command line left them (`heloflow demo --subjects`).
fn run_identity(pipeline: &Pipeline) -> String {
    let mut identity = pipeline.text.clone();
    for source in &pipeline.sources {
        if let crate::sources::SourceConfig::Simulator(config) = &source.config {
            identity.push_str(&format!("\n{}: {config:?}", source.name));
        }
    }
    identity
}

/// The models the pipeline's `helo`/`onnx` operators run, from their manifests.
fn model_provenance(pipeline: &Pipeline) -> Vec<ModelProvenance> {
    pipeline
        .operators
        .iter()
        .filter_map(|node| {
            let manifest = &node.config.model()?.manifest.manifest;
            Some(ModelProvenance {
                operator: node.name.clone(),
                output: node.output,
                name: manifest.name.clone(),
                version: manifest.version.clone(),
                sha256: manifest.sha256.clone(),
                labels: manifest.labels.clone(),
                window_s: manifest.window_s,
                hop_s: manifest.hop_s,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real timely workers: one panics inside an operator while the dataflow is still running.
    #[test]
    fn a_panicking_worker_stops_the_others_and_fails_the_run() {
        let pipeline = crate::pipeline::parse(
            "t.toml",
            "[sources.sim]\nkind = \"simulator\"\nstreams = [\"temp\"]\nduration_s = 1\n\n[sinks.out]\nkind = \"jsonl\"\ninputs = [\"sim.temp\"]\n",
        )
        .unwrap();
        let stamps = latency::LatencyStamps::new(&pipeline);
        let shared = Arc::new(Shared {
            pipeline,
            receivers: Vec::new(),
            writers: Vec::new(),
            tap: Mutex::new(None),
            taps_every_stream: false,
            stamps,
            metrics: Arc::new(PipelineMetrics::new(0, 0)),
            failure: Mutex::new(None),
            stop: Arc::default(),
            aborted: AtomicBool::new(false),
        });
        let (done, finished) = crossbeam_channel::bounded(1);
        let worker_shared = shared.clone();
        std::thread::spawn(move || {
            let guards = timely::execute(timely::Config::process(2), move |worker| {
                use timely::dataflow::operators::{Exchange, Inspect, ToStream};
                let shared = worker_shared.clone();
                let _abort_on_panic = AbortOnPanic(&shared);
                let index = worker.index();
                worker.dataflow::<u64, _, _>(|scope| {
                    (0..100_000u64)
                        .to_stream(scope)
                        .container::<Vec<_>>()
                        .exchange(|x| *x)
                        .inspect(move |x: &u64| {
                            if index == 1 && *x == 5_001 {
                                panic!("a bug in an operator");
                            }
                        });
                });
                step_until_done(worker, &shared.aborted);
            })
            .unwrap();
            let _ = done.send(guards.join());
        });
        let results = finished
            .recv_timeout(Duration::from_secs(60))
            .expect("the healthy worker stopped too");
        assert!(results[0].is_ok());
        assert!(results[1].is_err());
        assert!(shared.aborted.load(Ordering::SeqCst));
        let failure = shared.failure.lock().unwrap().clone();
        assert_eq!(
            failure.as_deref(),
            Some("a dataflow worker stopped on an internal error")
        );
        assert!(shared.stop.load(Ordering::SeqCst));
    }
}
