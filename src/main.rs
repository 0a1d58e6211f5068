//! The `heloflow` command line: run, validate and draw pipelines, run the demo, simulate subjects.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};

use heloflow::config::diagnostic::Diagnostics;
use heloflow::display::{escaped, escaped_lines};
use heloflow::pipeline::{self, Pipeline};
use heloflow::runtime::status::StatusMode;
use heloflow::runtime::{self, RunOptions, RunReport};
use heloflow::server::config::ServerConfig;
use heloflow::sinks::SinkConfig;
use heloflow::sources::selection::MAX_SUBJECTS;
use heloflow::sources::simulator::{SimStream, MAX_DURATION_S};
use heloflow::sources::SourceConfig;

/// The demo pipeline shipped in `pipelines/demo.toml`, embedded so `heloflow demo` needs no files.
const DEMO_PIPELINE: &str = include_str!("../pipelines/demo.toml");

#[derive(Parser)]
#[command(
    name = "heloflow",
    version,
    about = "Streaming dataflow pipelines for physiological signals and live emotion distributions"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum StatusArg {
    Auto,
    Plain,
    Off,
}

#[derive(clap::Args)]
struct RunArgs {
    /// Timely worker threads (1 to 256); subjects are partitioned across them.
    #[arg(short = 'w', long, default_value_t = 1)]
    workers: usize,
    /// Progress on standard error: a live line on a terminal (auto), log lines, or nothing.
    #[arg(long, value_enum, default_value_t = StatusArg::Auto)]
    status: StatusArg,
    /// Serve the dashboard and live taps of every stream on this address (IP:port; port 0 picks
    /// a free one), as a `[server]` section would; overrides the section's `listen`.
    #[arg(long, value_name = "ADDR")]
    serve: Option<String>,
    /// Processes in a cluster run (1 to 64): start this same command on each, with its own
    /// `--process`; process 0 runs the sources and writes the sinks.
    #[arg(short = 'n', long, default_value_t = 1)]
    processes: usize,
    /// This process's index in a cluster run, 0 to `--processes` - 1.
    #[arg(short = 'p', long, default_value_t = 0)]
    process: usize,
    /// The cluster's addresses, one `host:port` per line, process 0 first (default: 127.0.0.1,
    /// ports 2101 onwards).
    #[arg(long, value_name = "FILE")]
    hostfile: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run a pipeline file until its sources end or Ctrl-C (which drains and flushes every sink).
    Run {
        /// The pipeline file (TOML).
        file: PathBuf,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Check pipeline files without running them.
    Validate {
        /// Pipeline files (TOML).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print a pipeline as a Graphviz DOT graph.
    Graph {
        /// The pipeline file (TOML).
        file: PathBuf,
    },
    /// Run the embedded demo: a simulated subject through the demo pipeline, live on the terminal.
    Demo {
        /// Seconds of simulated recording; 0 runs until Ctrl-C.
        #[arg(long, default_value_t = 20.0)]
        duration: f64,
        /// Number of simulated subjects.
        #[arg(long, default_value_t = 1)]
        subjects: usize,
        /// Run as fast as possible instead of in real time.
        #[arg(long)]
        fast: bool,
        /// Print the demo pipeline file and exit.
        #[arg(long)]
        print: bool,
        /// JSON Lines on standard output even on a terminal (pipes always get them).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Print a live stream of a running heloflow server, one JSON object per row, until it ends.
    Tap {
        /// A stream name (`helo`, `sim.markers`), or an http://…/sse or ws://…/ws URL.
        target: String,
        /// The server (IP:port) for stream names.
        #[arg(long, default_value = "127.0.0.1:8750")]
        server: String,
        /// Only this subject's rows.
        #[arg(long)]
        subject: Option<String>,
        /// First print this many kept rows (or `all`), then the live ones.
        #[arg(long)]
        history: Option<String>,
    },
    /// Watch a running pipeline's telemetry live (its `/metrics`, from `heloflow run --serve`).
    ///
    /// Sends HELOFLOW_TOKEN as a bearer token when set. `q` or Ctrl-C quits; when standard output
    /// is not a terminal, prints one snapshot and exits.
    Top {
        /// The server's address (host:port or http://host:port).
        #[arg(default_value = heloflow::telemetry::top::DEFAULT_ADDR)]
        addr: String,
        /// Print one plain-text snapshot and exit.
        #[arg(long)]
        once: bool,
    },
    /// List the Lab Streaming Layer streams visible on the network, with their metadata.
    Streams {
        /// Seconds to wait for streams to answer (0 to 3600); their metadata then takes at most 2 s more.
        #[arg(long, default_value_t = 2.0, value_parser = wait_seconds, allow_hyphen_values = true)]
        timeout: f64,
        /// One JSON object per line instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Write simulated subjects' streams (and their hidden emotion state) as JSON Lines or CSV.
    Simulate {
        /// Number of subjects.
        #[arg(long, default_value_t = 1)]
        subjects: usize,
        /// Seed: the same seed gives byte-identical output.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Seconds of recording.
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        /// Streams to produce (comma-separated); default all.
        #[arg(long, value_delimiter = ',')]
        streams: Vec<String>,
        /// Pace by the wall clock instead of running as fast as possible.
        #[arg(long)]
        realtime: bool,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Jsonl)]
        format: Format,
        /// Publish the streams as live LSL outlets (real time, LSL clock) instead of writing them;
        /// `--duration 0` then runs until Ctrl-C. Writes no file, so `--format`/`--out` are refused.
        #[arg(long, conflicts_with_all = ["format", "out"])]
        lsl: bool,
        /// Output: a file for jsonl (`-` = standard output), a directory for csv (one file per stream).
        #[arg(long, default_value = "-")]
        out: String,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Score a model on a recording with ground truth, beside baselines (six LDL metrics).
    Eval {
        /// The model's manifest (JSON).
        #[arg(long, default_value = heloflow::operators::DEFAULT_HELO_MANIFEST)]
        model: PathBuf,
        /// A JSON Lines recording holding the model's input streams and the ground truth.
        #[arg(long)]
        recording: PathBuf,
        /// Name of the ground-truth emotion stream in the recording.
        #[arg(long, default_value = "emotion")]
        truth: String,
        /// Subjects to score (comma-separated); default: the model's held-out test subjects.
        #[arg(long, value_delimiter = ',')]
        subjects: Vec<String>,
        /// Execution provider.
        #[arg(long, value_enum, default_value_t = ProviderArg::Cpu)]
        execution_provider: ProviderArg,
    },
    /// Republish a recording's streams as live LSL outlets with their full metadata, in real time
    /// or at a speed factor, optionally looped (for testing LSL pipelines and tools).
    Replay(heloflow::replay::ReplayArgs),
    /// Inspect and repair XDF recordings.
    Xdf {
        #[command(subcommand)]
        command: XdfCommand,
    },
    /// Record LSL streams from the network into one XDF file (LabRecorder, headless).
    Record(Box<heloflow::record::RecordArgs>),
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ProviderArg {
    Cpu,
    Cuda,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Jsonl,
    Csv,
}

/// Runs before Rust's runtime, which reopens a closed standard output on `/dev/null`: notes
/// whether `heloflow ... >&-` closed it, so a sink writing there is refused instead of claiming
/// rows nobody can read.
#[cfg(target_os = "linux")]
#[used]
#[link_section = ".init_array"]
static NOTE_STDOUT_AT_START: extern "C" fn() = note_stdout_at_start;

#[cfg(target_os = "linux")]
extern "C" fn note_stdout_at_start() {
    heloflow::sinks::destination::note_stdout_at_start();
}

/// Set once the loss of a cluster connection has been told (every worker then panics too).
static CONNECTION_LOSS_TOLD: AtomicBool = AtomicBool::new(false);

fn main() -> ExitCode {
    std::panic::set_hook(Box::new(|info| {
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        use heloflow::runtime::cluster::{network_panic, NetworkPanic};
        match network_panic(&payload) {
            Some(NetworkPanic::ConnectionLost) => {
                if !CONNECTION_LOSS_TOLD.swap(true, Ordering::SeqCst) {
                    eprintln!(
                        "heloflow: the connection to another process of the cluster was lost ({})",
                        payload.trim_start_matches("timely communication error: ")
                    );
                }
            }
            Some(NetworkPanic::Consequence) => {}
            None => eprintln!("heloflow: internal error: {info}\nThis is a bug; please report it with the pipeline file you ran."),
        }
    }));
    // A file-size limit then fails writes with EFBIG (which writers report) instead of killing us.
    // SAFETY: setting a signal's disposition to "ignore" has no preconditions.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    let cli = Cli::parse();
    match execute(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{}", escaped_lines(&message));
            ExitCode::FAILURE
        }
    }
}

fn execute(command: Command) -> Result<(), String> {
    match command {
        Command::Run { file, run } => {
            let pipeline = pipeline::load(&file).map_err(|e| e.to_string())?;
            run_pipeline(&pipeline, &run)
        }
        Command::Validate { files } => validate(&files),
        Command::Record(args) => {
            heloflow::lsl_network::check_api_config()?;
            let stop = interrupt_flag("pulling what is left and writing footers")?;
            heloflow::record::main(&args, stop)
        }
        Command::Streams { timeout, json } => {
            heloflow::lsl_network::check_api_config()?;
            list_streams(timeout, json);
            Ok(())
        }
        Command::Top { addr, once } => {
            heloflow::telemetry::top::run(&addr, once).map_err(|e| format!("heloflow: error: {e}"))
        }
        Command::Graph { file } => {
            let pipeline = pipeline::load(&file).map_err(|e| e.to_string())?;
            print!("{}", pipeline::graph::to_dot(&pipeline));
            Ok(())
        }
        Command::Demo {
            duration,
            subjects,
            fast,
            print,
            json,
            mut run,
        } => {
            if print {
                print!("{DEMO_PIPELINE}");
                return Ok(());
            }
            let mut pipeline = pipeline::parse("pipelines/demo.toml", DEMO_PIPELINE)
                .map_err(|e| format!("the embedded demo pipeline is invalid (a bug):\n{e}"))?;
            check_subjects(subjects)?;
            check_duration(duration, true)?;
            for source in &mut pipeline.sources {
                let SourceConfig::Simulator(config) = &mut source.config else {
                    continue;
                };
                config.duration_s = (duration > 0.0).then_some(duration);
                config.subjects = heloflow::sources::simulator::subject_ids(subjects);
                config.realtime = !fast;
            }
            let view = !json && std::io::stdout().is_terminal();
            eprintln!(
                "heloflow demo: {subjects} simulated subject(s) -> pipelines/demo.toml -> {} ({}; Ctrl-C stops)",
                if view { "live emotion distributions below (--json for JSON Lines)" } else { "JSON Lines below" },
                if duration > 0.0 { format!("{duration} s") } else { "until stopped".to_string() }
            );
            if pipeline.server.is_none() && run.serve.is_none() {
                pipeline.server = Some(ServerConfig {
                    any_port_if_taken: true,
                    ..ServerConfig::default()
                });
            }
            if view {
                // The view replaces the JSON on the terminal, and the status line with it.
                pipeline.sinks.retain(|sink| sink.name != "live");
                run.status = StatusArg::Off;
                run_pipeline_with_view(&pipeline, &run, Some(("helo", Some("truth"))))
            } else {
                run_pipeline(&pipeline, &run)
            }
        }
        Command::Tap {
            target,
            server,
            subject,
            history,
        } => {
            let request = heloflow::server::client::TapRequest {
                target,
                server,
                subject,
                history,
            };
            heloflow::server::client::tap(&request, &mut std::io::stdout().lock())
                .map(|_| ())
                .map_err(|e| format!("heloflow tap: {e}"))
        }
        Command::Eval {
            model,
            recording,
            truth,
            subjects,
            execution_provider,
        } => eval(&model, &recording, &truth, subjects, execution_provider),
        Command::Xdf { command } => run_xdf(command),
        Command::Replay(args) => {
            heloflow::lsl_network::check_api_config()?;
            let stop = interrupt_flag("closing the outlets")?;
            heloflow::replay::main(&args, &stop)
        }
        Command::Simulate {
            subjects,
            seed,
            duration,
            streams,
            realtime,
            lsl,
            format,
            out,
            run,
        } => {
            let text = if lsl {
                simulate_lsl_pipeline(subjects, seed, duration, &streams)?
            } else {
                simulate_pipeline(subjects, seed, duration, &streams, realtime, format, &out)?
            };
            let pipeline = pipeline::parse("simulate", &text).map_err(|e| simulate_errors(&e))?;
            run_pipeline(&pipeline, &run)
        }
    }
}

fn eval(
    model: &std::path::Path,
    recording: &std::path::Path,
    truth: &str,
    subjects: Vec<String>,
    provider: ProviderArg,
) -> Result<(), String> {
    use heloflow::model::manifest::LoadedManifest;
    use heloflow::model::onnx::{Fallback, Provider, SessionOptions};
    let manifest = LoadedManifest::read(model).map_err(|e| format!("error: {e}"))?;
    let subjects = if subjects.is_empty() {
        manifest.manifest.trained_on["test_subjects"]
            .as_array()
            .map(|list| {
                list.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    } else {
        subjects
    };
    let options = SessionOptions {
        provider: match provider {
            ProviderArg::Cpu => Provider::Cpu,
            ProviderArg::Cuda => Provider::Cuda,
        },
        fallback: Fallback::Cpu,
        ..SessionOptions::default()
    };
    let evaluation = heloflow::model::eval::evaluate(model, recording, truth, &subjects, &options)
        .map_err(|e| format!("error: {e}"))?;
    for warning in &evaluation.warnings {
        eprintln!("heloflow eval: WARNING: {}", escaped_lines(warning));
    }
    eprintln!("heloflow eval: the model runs on {}", evaluation.provider);
    eprintln!(
        "heloflow eval: {} window(s) scored; {} window(s) without every model input and the truth at the same subject and event time skipped",
        evaluation.windows, evaluation.incomplete
    );
    println!(
        "{} on {} (subjects {}):\n",
        model.display(),
        recording.display(),
        escaped(&evaluation.subjects.join(", "))
    );
    print!("{}", evaluation.table());
    let (first, baselines) = evaluation.rows.split_first().ok_or("nothing scored")?;
    println!();
    for (name, scores) in baselines {
        let won: Vec<&str> = first.1.better_on(scores).iter().map(|m| m.name()).collect();
        println!(
            "{} is better than {name} on {} of 6 metrics: {}",
            first.0,
            won.len(),
            if won.is_empty() {
                "none".to_string()
            } else {
                won.join(", ")
            }
        );
    }
    Ok(())
}

fn validate(files: &[PathBuf]) -> Result<(), String> {
    let mut failed = 0;
    for file in files {
        match pipeline::load(file) {
            Ok(p) => println!(
                "{}: ok ({} sources, {} operators, {} sinks, {} streams)",
                file.display(),
                p.sources.len(),
                p.operators.len(),
                p.sinks.len(),
                p.streams.len()
            ),
            Err(error) => {
                failed += 1;
                eprintln!("{}\n", escaped_lines(&error.to_string()));
            }
        }
    }
    match failed {
        0 => Ok(()),
        n => Err(format!("{n} of {} pipeline files are invalid", files.len())),
    }
}

/// A flag set by the first Ctrl-C, SIGTERM or SIGHUP (the ctrlc crate's `termination` feature:
/// systemd, Docker and `kill` stop a run exactly as Ctrl-C does), announced with `stopping`; a
/// second one exits at once.
fn interrupt_flag(stopping: &'static str) -> Result<Arc<AtomicBool>, String> {
    let stop = Arc::new(AtomicBool::new(false));
    let handler_stop = stop.clone();
    ctrlc::set_handler(move || {
        if handler_stop.swap(true, Ordering::SeqCst) {
            eprintln!("\nheloflow: second interrupt, exiting without flushing");
            std::process::exit(130);
        }
        eprintln!("\nheloflow: stopping: {stopping} (interrupt again to abort)");
    })
    .map_err(|e| format!("cannot install the Ctrl-C handler: {e}"))?;
    Ok(stop)
}

fn run_pipeline(pipeline: &Pipeline, args: &RunArgs) -> Result<(), String> {
    run_pipeline_with_view(pipeline, args, None)
}

/// Runs a pipeline, drawing `view` (the model stream and the truth stream) on the terminal
/// instead of writing its rows there, when given.
fn run_pipeline_with_view(
    pipeline: &Pipeline,
    args: &RunArgs,
    view: Option<(&str, Option<&str>)>,
) -> Result<(), String> {
    let mut cluster = heloflow::runtime::cluster::Cluster::new(
        args.processes,
        args.process,
        args.hostfile.as_deref(),
    )
    .map_err(|e| format!("heloflow: error: {e}"))?;
    if let Some(cluster) = &mut cluster {
        cluster.leader_serves = pipeline.server.is_some() || args.serve.is_some();
        if !cluster.leads() {
            return run_follower(pipeline, args, cluster.clone());
        }
    }
    let uses_lsl = pipeline
        .sources
        .iter()
        .any(|s| matches!(s.config, SourceConfig::Lsl(_)))
        || pipeline
            .sinks
            .iter()
            .any(|s| matches!(s.config, SinkConfig::Lsl(_)));
    if uses_lsl {
        heloflow::lsl_network::check_api_config()?;
        warn_if_ports_run_short(pipeline);
    }
    let stop = interrupt_flag("draining the pipeline and flushing every sink")?;
    let mut options = RunOptions {
        workers: args.workers,
        status: status_mode(args.status),
        cluster,
        ..RunOptions::default()
    };
    let server = start_server(pipeline, args, &mut options)?;
    let view = match (view, &options.taps, &options.metrics, &server) {
        (Some((model, truth)), Some(hub), Some(metrics), Some(server)) => {
            Some(heloflow::terminal_view::TerminalView::start(
                format!(
                    "heloflow {} · dashboard http://{}/",
                    escaped(&pipeline.name),
                    server.address()
                ),
                hub.clone(),
                metrics.clone(),
                model.to_string(),
                truth.map(str::to_string),
            ))
        }
        _ => None,
    };
    let result = runtime::run(pipeline, &options, stop);
    if let Some(view) = view {
        view.finish();
    }
    if let Some(server) = server {
        server.stop();
    }
    let report = result.map_err(|e| format!("heloflow: error: {e}"))?;
    if options.status != StatusMode::Off {
        summarise(&pipeline.name, &report);
    }
    warn_closed_outputs(&pipeline.name, &report);
    Ok(())
}

fn status_mode(status: StatusArg) -> StatusMode {
    match status {
        StatusArg::Auto => StatusMode::Auto,
        StatusArg::Plain => StatusMode::Plain,
        StatusArg::Off => StatusMode::Off,
    }
}

/// Runs a process other than process 0 of a cluster run: its workers run their subjects'
/// operators, with no sources, sinks or server of their own; it says what it computed.
fn run_follower(
    pipeline: &Pipeline,
    args: &RunArgs,
    cluster: heloflow::runtime::cluster::Cluster,
) -> Result<(), String> {
    let stop = interrupt_flag("waiting for process 0 to drain the pipeline")?;
    let (process, processes) = (cluster.process, cluster.addresses.len());
    let metrics = heloflow::metrics::PipelineMetrics::for_pipeline(pipeline);
    let options = RunOptions {
        workers: args.workers,
        status: StatusMode::Off,
        metrics: Some(metrics.clone()),
        cluster: Some(cluster),
        ..RunOptions::default()
    };
    let report =
        runtime::run(pipeline, &options, stop).map_err(|e| format!("heloflow: error: {e}"))?;
    if args.status != StatusArg::Off {
        let rows: u64 = metrics
            .operators
            .iter()
            .map(|o| o.samples_out.load(Ordering::Relaxed))
            .sum();
        eprintln!(
            "{}: process {process} of {processes} done in {:.2} s: its operators computed {rows} rows, written by process 0; {}",
            escaped(&pipeline.name),
            report.elapsed.as_secs_f64(),
            report.drops
        );
    }
    Ok(())
}

/// Starts the live server when the pipeline has a `[server]` section or `--serve` was given, and
/// points the run's taps and counters at it.
fn start_server(
    pipeline: &Pipeline,
    args: &RunArgs,
    options: &mut RunOptions,
) -> Result<Option<heloflow::server::RunningServer>, String> {
    use heloflow::server;
    use heloflow::sinks::tap::TapHub;
    use heloflow::telemetry::Telemetry;
    let mut config = match (&pipeline.server, &args.serve) {
        (None, None) => return Ok(None),
        (Some(config), _) => config.clone(),
        (None, Some(_)) => ServerConfig::default(),
    };
    if let Some(listen) = &args.serve {
        config.listen = heloflow::server::config::parse_listen(listen)
            .map_err(|e| format!("heloflow: error: --serve: {e}"))?;
    }
    let hub = Arc::new(TapHub::new(&pipeline.streams, config.taps));
    let telemetry = Arc::new(Telemetry::new(pipeline));
    let metrics = telemetry.metrics().clone();
    let running = server::start(&config, pipeline, hub.clone(), telemetry)
        .map_err(|e| format!("heloflow: error: {e}"))?;
    eprintln!(
        "heloflow: dashboard at http://{}/ (live taps: /api/streams/NAME/sse or /ws; schema: /api/schema; metrics: /metrics)",
        running.address()
    );
    options.taps = Some(hub);
    options.metrics = Some(metrics);
    Ok(Some(running))
}

/// Warns when the pipeline's LSL outlets known at start and its stream resolvers (one per `lsl`
/// source) need more ports than liblsl's range has free on this machine.
fn warn_if_ports_run_short(pipeline: &Pipeline) {
    let resolvers = pipeline
        .sources
        .iter()
        .filter(|s| matches!(s.config, SourceConfig::Lsl(_)))
        .count();
    let outlets: usize = pipeline
        .sinks
        .iter()
        .filter_map(|sink| match &sink.config {
            SinkConfig::Lsl(config) => {
                let inputs: Vec<&heloflow::stream::StreamSchema> = sink
                    .inputs
                    .iter()
                    .map(|id| &pipeline.streams[*id as usize])
                    .collect();
                Some(config.outlets_at_start(&inputs))
            }
            _ => None,
        })
        .sum();
    let network = heloflow::lsl_network::LslNetwork::load();
    if let Some(warning) = network.shortage(outlets, resolvers, network.free_udp_ports()) {
        eprintln!("heloflow: warning: {}", escaped(&warning));
    }
}

/// Prints the run's summary on standard error ("rows written" counts only rows flushed to their
/// destination).
fn summarise(name: &str, report: &RunReport) {
    let name = escaped(name);
    let seconds = report.elapsed.as_secs_f64().max(1e-9);
    eprintln!(
        "{name}: {} {} samples in {:.2} s ({:.0} samples/s), {} rows written, {}",
        if report.interrupted {
            "stopped and drained after"
        } else {
            "done:"
        },
        report.samples_in,
        seconds,
        report.samples_in as f64 / seconds,
        report.rows_out,
        report.drops
    );
    if report.behind_real_time_s >= heloflow::runtime::status::BEHIND_NOTICE_S {
        eprintln!(
            "{name}: warning: a realtime source fell behind real time by up to {:.1} s: the pipeline could not keep up (fewer subjects or workers, or a faster machine)",
            report.behind_real_time_s
        );
    }
}

/// Warns, whatever the status mode, of every output its reader closed (`| head`): the run goes on
/// to its end and exits 0, but the rows after the close are not written and are not counted.
fn warn_closed_outputs(name: &str, report: &RunReport) {
    for closed in &report.closed_outputs {
        eprintln!(
            "{}: WARNING: sink `{}`: {} was closed by its reader (e.g. `| head`): {} rows confirmed written, {} rows not written",
            escaped(name),
            escaped(&closed.sink),
            escaped(&closed.destination),
            closed.rows,
            closed.unwritten
        );
    }
}

/// Prints the LSL streams on the network (`heloflow streams`).
fn list_streams(timeout: f64, json: bool) {
    let view = heloflow::sources::lsl::metadata::describe_network(timeout);
    if !view.incomplete.is_empty() {
        eprintln!(
            "heloflow: warning: {} stream(s) did not send their full metadata within {} s of being resolved (stalled or gone since), so their channels are missing: {}",
            view.incomplete.len(),
            heloflow::sources::lsl::metadata::METADATA_WAIT_S,
            escaped(&view.incomplete.join(", "))
        );
    }
    let streams = view.streams;
    if json {
        for stream in &streams {
            println!("{}", serde_json::to_string(stream).unwrap_or_default());
        }
        return;
    }
    if streams.is_empty() {
        eprintln!("no LSL streams visible within {timeout} s");
        return;
    }
    for stream in &streams {
        println!("{}", escaped(&stream.summary()));
        let channels: Vec<String> = stream
            .channels
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let label = if c.label.is_empty() {
                    format!("#{}", i + 1)
                } else {
                    c.label.clone()
                };
                let detail: Vec<&str> = [c.unit.as_str(), c.kind.as_str()]
                    .into_iter()
                    .filter(|s| !s.is_empty())
                    .collect();
                if detail.is_empty() {
                    label
                } else {
                    format!("{label} ({})", detail.join(", "))
                }
            })
            .collect();
        println!("    channels: {}", escaped(&channels.join(", ")));
    }
}

/// Builds the pipeline behind `heloflow simulate --lsl`: simulated streams, paced in real time on the
/// LSL clock, published as one LSL outlet per subject and stream.
fn simulate_lsl_pipeline(
    subjects: usize,
    seed: u64,
    duration: f64,
    streams: &[String],
) -> Result<String, String> {
    check_duration(duration, true)?;
    let names = stream_names(streams)?;
    check_subjects(subjects)?;
    let duration_line = if duration > 0.0 {
        format!("duration_s = {duration:?}\n")
    } else {
        String::new()
    };
    let inputs: Vec<String> = names.iter().map(|n| format!("sim.{n}")).collect();
    Ok(format!(
        "[pipeline]\nname = \"simulate\"\n\n[sources.sim]\nkind = \"simulator\"\nseed = {seed}\nsubjects = {subjects}\n{duration_line}realtime = true\nstart_s = \"now\"\nchunk_s = 0.05\nstreams = [{}]\n\n[sinks.lsl]\nkind = \"lsl\"\ninputs = [{}]\nname = \"{{stream}}-{{subject}}\"\nsource_id = \"heloflow-sim:seed{seed}:{{stream}}:{{subject}}\"\n",
        quote_list(&names),
        quote_list(&inputs)
    ))
}

/// The simulator stream names asked for (all when none), or an error naming the unknown one.
fn stream_names(streams: &[String]) -> Result<Vec<String>, String> {
    if let Some(unknown) = streams.iter().find(|s| SimStream::from_name(s).is_none()) {
        let valid: Vec<&str> = SimStream::ALL.iter().map(|s| s.name()).collect();
        return Err(format!(
            "error: the simulator has no stream \"{unknown}\"; valid: {}",
            valid.join(", ")
        ));
    }
    Ok(if streams.is_empty() {
        SimStream::ALL
            .iter()
            .map(|s| s.name().to_string())
            .collect()
    } else {
        streams.to_vec()
    })
}

/// Builds the pipeline file behind `heloflow simulate`, so it is validated like any other.
fn simulate_pipeline(
    subjects: usize,
    seed: u64,
    duration: f64,
    streams: &[String],
    realtime: bool,
    format: Format,
    out: &str,
) -> Result<String, String> {
    check_subjects(subjects)?;
    check_duration(duration, false)?;
    let names = stream_names(streams)?;
    let mut text = format!(
        "[pipeline]\nname = \"simulate\"\n\n[sources.sim]\nkind = \"simulator\"\nseed = {seed}\nsubjects = {subjects}\nduration_s = {duration:?}\nrealtime = {realtime}\nstreams = [{}]\n",
        quote_list(&names)
    );
    let inputs: Vec<String> = names.iter().map(|n| format!("sim.{n}")).collect();
    match format {
        Format::Jsonl => {
            text.push_str(&format!(
                "\n[sinks.out]\nkind = \"jsonl\"\ninputs = [{}]\npath = {out:?}\n",
                quote_list(&inputs)
            ));
        }
        Format::Csv => {
            if out == "-" {
                return Err(
                    "error: --format csv writes one file per stream; give a directory with --out"
                        .into(),
                );
            }
            for name in &names {
                let path = PathBuf::from(out).join(format!("{name}.csv"));
                text.push_str(&format!(
                    "\n[sinks.{name}]\nkind = \"csv\"\ninputs = [\"sim.{name}\"]\npath = {:?}\n",
                    path.display().to_string()
                ));
            }
        }
    }
    Ok(text)
}

/// The errors of the pipeline `heloflow simulate` builds, told by the flag that set the option
/// (the pipeline text is internal: its line numbers would mean nothing to the user).
fn simulate_errors(diagnostics: &Diagnostics) -> String {
    const FLAGS: [(&str, &str); 5] = [
        ("subjects", "--subjects"),
        ("seed", "--seed"),
        ("duration_s", "--duration"),
        ("streams", "--streams"),
        ("path", "--out"),
    ];
    let lines: Vec<String> = diagnostics
        .0
        .iter()
        .map(|d| {
            let key = d.line_text.split('=').next().unwrap_or("").trim();
            match FLAGS.iter().find(|(option, _)| *option == key) {
                Some((option, flag)) => format!(
                    "error: heloflow simulate {flag}: {}",
                    d.message
                        .replace(&format!("`{option}`"), &format!("`{flag}`"))
                        .replace("invalid TOML", "not a valid value")
                ),
                None => format!(
                    "error: heloflow simulate: the pipeline it builds is invalid (a bug): {}",
                    d.message
                ),
            }
        })
        .collect();
    lines.join("\n")
}

/// Seconds for `streams --timeout`: a finite number from 0 (the shortest wait, 0.1 s) to an hour.
fn wait_seconds(text: &str) -> Result<f64, String> {
    let seconds: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    if !(0.0..=3600.0).contains(&seconds) {
        return Err(format!(
            "the wait must be from 0 to 3600 seconds, found {text}"
        ));
    }
    Ok(seconds)
}

/// `--subjects` of `demo` and `simulate`: 1 to [`MAX_SUBJECTS`], the cap every pipeline has.
fn check_subjects(subjects: usize) -> Result<(), String> {
    if (1..=MAX_SUBJECTS).contains(&subjects) {
        Ok(())
    } else {
        Err(format!(
            "error: --subjects must be 1 to {MAX_SUBJECTS}, found {subjects}"
        ))
    }
}

/// `--duration` of `demo` and `simulate`, seconds: greater than 0 (or 0 to run until stopped,
/// where `until_stopped` allows it) and at most the simulator's [`MAX_DURATION_S`].
fn check_duration(duration: f64, until_stopped: bool) -> Result<(), String> {
    let least = if until_stopped {
        "at least 0 (0 runs until Ctrl-C)"
    } else {
        "greater than 0"
    };
    let valid =
        (duration > 0.0 || (until_stopped && duration == 0.0)) && duration <= MAX_DURATION_S;
    if valid {
        Ok(())
    } else {
        Err(format!(
            "error: --duration must be {least} and at most {MAX_DURATION_S} s, found {duration}"
        ))
    }
}

/// `"a", "b"`: strings quoted for a TOML array.
fn quote_list(items: &[String]) -> String {
    items
        .iter()
        .map(|s| format!("{s:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `xdf` subcommands.
#[derive(Clone, Debug, Subcommand)]
enum XdfCommand {
    /// Summarise a recording: streams, rates, clock offsets, gaps, markers, footers, damage.
    Info {
        /// The XDF file.
        file: PathBuf,
        /// JSON for programs instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Complete a cut-off or damaged recording: keep every intact chunk, add missing footers.
    Repair {
        /// The XDF file.
        file: PathBuf,
        /// Write the repaired file here instead of replacing FILE (safely, via a temporary file).
        #[arg(long)]
        out: Option<PathBuf>,
        /// The report as JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Runs one `xdf` subcommand, printing its result; the error is the message to show.
fn run_xdf(command: XdfCommand) -> Result<(), String> {
    match command {
        XdfCommand::Info { file, json } => {
            let summary = heloflow::xdf::info::summarize(&file)
                .map_err(|e| format!("heloflow xdf info: {}: {e}", file.display()))?;
            if json {
                println!("{}", summary.to_json());
            } else {
                print!("{}", summary.to_text());
            }
            Ok(())
        }
        XdfCommand::Repair { file, out, json } => {
            let report = heloflow::xdf::repair::repair(&file, out.as_deref())
                .map_err(|e| format!("heloflow xdf repair: {}: {e}", file.display()))?;
            if json {
                println!("{}", report.to_json());
            } else {
                print!("{}", report.to_text());
            }
            Ok(())
        }
    }
}
