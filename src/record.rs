//! `heloflow record`: LabRecorder without a window. Records Lab Streaming Layer streams from the
//! network into one crash-safe XDF file.
//!
//! ```text
//! heloflow record --type EEG --min-streams 2 --out session.xdf
//! heloflow record --bids-root study --subject P01 --session S1 --task music --run 1
//! ```
//!
//! - **Selection** as the `lsl` source matches: `--type`, `--name`, `--source-id`, `--hostname`
//!   and `--predicate` make one XPath predicate; none of them records every stream. At the start
//!   it waits up to `--timeout` seconds for `--min-streams` streams; streams that appear later
//!   are added (a new stream header), as LabRecorder does.
//! - **Recording.** Every stream's full info (the inlet's XML, `desc` included), its raw
//!   timestamps, a clock offset (`time_correction`) when it connects and about every 5 s, a
//!   Boundary chunk about every 10 s, footers at the end. Inlets recover (liblsl `recover`): a
//!   stream whose outlet vanishes is reported, and recorded again when it returns.
//! - **Threads.** Each inlet is pulled on a thread of its own (liblsl objects are not `Send`, so
//!   each is created inside its thread from the stream's XML) and hands chunks to one writer
//!   thread through a bounded channel. When the writer falls behind, an inlet holds its chunks
//!   (up to 120 s of its data) and keeps pulling; past that it drops the oldest and counts them.
//! - **Stopping.** `--duration`, Ctrl-C or SIGTERM stop cleanly: remaining samples are pulled,
//!   footers written, and a summary per stream printed (samples, duration, effective rate, clock
//!   offsets, dropped). A failed write (full disk) stops the recording with an error; the file
//!   keeps everything written before it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{
    bounded, Receiver, RecvTimeoutError, SendTimeoutError, Sender, TrySendError,
};
use lsl::{ContinuousResolver, Pullable, StreamInlet};

use crate::sources::lsl::metadata::{format_name, stream_key, visible_streams_listing};
use crate::sources::selection::{readable_predicate, xpath_literal, SelectArgs};
use crate::stream::ChannelFormat;
use crate::xdf::bids::BidsName;
use crate::xdf::writer::{local_hostname, CreateOptions, FileSummary, Values, XdfWriter, XmlNode};

/// How often the writer thread flushes what it has.
const FLUSH_EVERY: Duration = Duration::from_millis(250);
/// How often a Boundary chunk is written.
const BOUNDARY_EVERY: Duration = Duration::from_secs(10);
/// How often each stream's clock offset is measured.
const OFFSET_EVERY: Duration = Duration::from_secs(5);
/// How often the network is searched for new, vanished and returning streams.
const DISCOVER_EVERY: Duration = Duration::from_secs(1);
/// Seconds after which a silent outlet drops out of the resolver's results.
const FORGET_AFTER_S: f64 = 2.0;
/// Messages the channel to the writer holds.
const CHANNEL_CAPACITY: usize = 4096;
/// Most samples pulled from one inlet per message.
const MAX_CHUNK: usize = 8192;
/// Seconds of its own data an inlet holds while the writer is behind, before dropping.
const HOLD_S: f64 = 120.0;

/// The command line of `heloflow record`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct RecordArgs {
    /// Which streams to record (all when none is given).
    #[command(flatten)]
    pub select: SelectArgs,
    /// Streams to wait for before recording starts.
    #[arg(long, default_value_t = 1)]
    pub min_streams: usize,
    /// Seconds to wait for them.
    #[arg(long, default_value_t = 10.0)]
    pub timeout: f64,
    /// The XDF file to write.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// BIDS naming: the dataset root (with --subject, --task, optionally --session and --run).
    #[arg(long)]
    pub bids_root: Option<String>,
    /// BIDS participant label.
    #[arg(long)]
    pub subject: Option<String>,
    /// BIDS session label.
    #[arg(long)]
    pub session: Option<String>,
    /// BIDS task label.
    #[arg(long)]
    pub task: Option<String>,
    /// BIDS run index.
    #[arg(long)]
    pub run: Option<String>,
    /// BIDS data type directory and suffix.
    #[arg(long, default_value = "eeg")]
    pub modality: String,
    /// Replace the file if it exists.
    #[arg(long)]
    pub overwrite: bool,
    /// Seconds to record (default: until Ctrl-C or SIGTERM).
    #[arg(long)]
    pub duration: Option<f64>,
}

/// A checked recording plan.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordPlan {
    /// XPath predicate streams must match, or `None` for every stream.
    pub predicate: Option<String>,
    /// Streams to wait for at the start.
    pub min_streams: usize,
    /// Seconds to wait for them.
    pub timeout_s: f64,
    /// The file.
    pub path: PathBuf,
    /// Replace an existing file.
    pub overwrite: bool,
    /// Seconds to record, or until stopped.
    pub duration_s: Option<f64>,
}

/// Longest accepted `--timeout`, seconds (a day).
const MAX_TIMEOUT_S: f64 = 86_400.0;
/// Longest accepted `--duration`, seconds (31 days).
const MAX_DURATION_S: f64 = 31.0 * 86_400.0;

fn check_seconds(flag: &str, value: f64, max: f64) -> Result<f64, String> {
    if value.is_finite() && value > 0.0 && value <= max {
        Ok(value)
    } else {
        Err(format!(
            "error: {flag} must be a number of seconds greater than 0 and at most {max}, found {value}"
        ))
    }
}

impl RecordArgs {
    /// Checks every option and builds the plan, or says what is wrong.
    pub fn plan(&self) -> Result<RecordPlan, String> {
        let selection = self.select.selection()?;
        let timeout_s = check_seconds("--timeout", self.timeout, MAX_TIMEOUT_S)?;
        let duration_s = self
            .duration
            .map(|d| check_seconds("--duration", d, MAX_DURATION_S))
            .transpose()?;
        if self.min_streams > 10_000 {
            return Err(format!(
                "error: --min-streams must be at most 10000, found {}",
                self.min_streams
            ));
        }
        let bids_parts = self.subject.is_some()
            || self.session.is_some()
            || self.task.is_some()
            || self.run.is_some();
        let path = match (&self.out, &self.bids_root) {
            (Some(_), Some(_)) => {
                return Err("error: give --out or --bids-root, not both".to_string());
            }
            (Some(_), None) if bids_parts => {
                return Err(
                    "error: --subject, --session, --task and --run name the file with --bids-root; with --out, leave them out".to_string(),
                );
            }
            (Some(out), None) if out.as_os_str().is_empty() => {
                return Err("error: --out must not be empty".to_string());
            }
            (Some(out), None) => out.clone(),
            (None, Some(root)) => {
                let (Some(subject), Some(task)) = (&self.subject, &self.task) else {
                    return Err(
                        "error: --bids-root needs --subject and --task (and optionally --session, --run, --modality)".to_string(),
                    );
                };
                BidsName {
                    root: root.clone(),
                    subject: subject.clone(),
                    session: self.session.clone(),
                    task: task.clone(),
                    run: self.run.clone(),
                    modality: self.modality.clone(),
                }
                .path()
                .map_err(|e| format!("error: {e}"))?
            }
            (None, None) => {
                return Err(
                    "error: say where to record: --out FILE, or --bids-root DIR --subject P --task T".to_string(),
                );
            }
        };
        Ok(RecordPlan {
            predicate: (!selection.is_empty()).then_some(selection.predicate),
            min_streams: self.min_streams,
            timeout_s,
            path,
            overwrite: self.overwrite,
            duration_s,
        })
    }
}

/// What was recorded of one stream.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamReport {
    /// Its name, type and source_id, in one line.
    pub description: String,
    /// Samples written.
    pub samples: u64,
    /// Seconds from the first to the last sample.
    pub duration_s: f64,
    /// Samples per second over that time.
    pub effective_rate_hz: f64,
    /// Clock offsets written.
    pub clock_offsets: usize,
    /// Samples dropped because the writer fell behind or had stopped.
    pub dropped: u64,
}

/// What a recording wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordReport {
    /// The file.
    pub path: PathBuf,
    /// Its size.
    pub bytes: u64,
    /// Per stream, in the order they joined.
    pub streams: Vec<StreamReport>,
}

impl RecordReport {
    /// The summary printed when recording stops.
    pub fn summary(&self) -> String {
        let mut text = format!(
            "recorded {} stream(s) into {} ({} bytes)\n",
            self.streams.len(),
            self.path.display(),
            self.bytes
        );
        for stream in &self.streams {
            text.push_str(&format!(
                "  {}: {} samples, {:.3} s, {:.3} Hz effective, {} clock offsets, {} dropped\n",
                stream.description,
                stream.samples,
                stream.duration_s,
                stream.effective_rate_hz,
                stream.clock_offsets,
                stream.dropped
            ));
        }
        text
    }
}

/// The values of one pulled chunk, in the stream's own format.
enum Pulled {
    Int8(Vec<i8>),
    Int16(Vec<i16>),
    Int32(Vec<i32>),
    Int64(Vec<i64>),
    Float32(Vec<f32>),
    Double64(Vec<f64>),
    Bytes(Vec<Vec<u8>>),
}

impl Pulled {
    fn values(&self) -> Values<'_> {
        match self {
            Pulled::Int8(v) => Values::Int8(v),
            Pulled::Int16(v) => Values::Int16(v),
            Pulled::Int32(v) => Values::Int32(v),
            Pulled::Int64(v) => Values::Int64(v),
            Pulled::Float32(v) => Values::Float32(v),
            Pulled::Double64(v) => Values::Double64(v),
            Pulled::Bytes(v) => Values::Bytes(v),
        }
    }
}

/// What inlet threads tell the writer thread.
enum Message {
    /// A stream joined: its full info.
    Stream { slot: usize, xml: String },
    /// Samples with the sender's timestamps.
    Samples {
        slot: usize,
        stamps: Vec<f64>,
        values: Pulled,
    },
    /// A clock offset measurement.
    Offset {
        slot: usize,
        collected: f64,
        offset: f64,
    },
}

/// Per-stream figures the inlet threads keep.
#[derive(Default)]
struct SlotStats {
    description: Mutex<String>,
    dropped: AtomicU64,
}

/// State shared by the recording's threads.
struct Shared {
    stop: Arc<AtomicBool>,
    failure: Mutex<Option<String>>,
    slots: Mutex<Vec<Arc<SlotStats>>>,
    /// Inlets that are open and have handed their stream's header over, or gave up.
    settled: AtomicU64,
}

impl Shared {
    fn fail(&self, message: String) {
        self.failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert(message);
        self.stop.store(true, Ordering::SeqCst);
    }

    fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Runs `heloflow record` until its duration passes or `stop` is set (Ctrl-C, SIGTERM); prints
/// the summary.
pub fn main(args: &RecordArgs, stop: Arc<AtomicBool>) -> Result<(), String> {
    let plan = args.plan()?;
    let report = record(&plan, stop)?;
    print!("{}", report.summary());
    Ok(())
}

/// Records until `plan.duration_s` passes or `stop` is set.
pub fn record(plan: &RecordPlan, stop: Arc<AtomicBool>) -> Result<RecordReport, String> {
    let selection = plan
        .predicate
        .clone()
        .unwrap_or_else(|| "every stream".to_string());
    let options = CreateOptions {
        overwrite: plan.overwrite,
        provenance: vec![XmlNode::element(
            "heloflow",
            vec![
                XmlNode::text("version", env!("CARGO_PKG_VERSION")),
                XmlNode::text("command", "record"),
                XmlNode::text("selection", &selection),
                XmlNode::text("hostname", local_hostname()),
            ],
        )],
        ..CreateOptions::default()
    };
    let writer = XdfWriter::create(&plan.path, &options).map_err(|e| {
        if e.kind == std::io::ErrorKind::AlreadyExists {
            format!(
                "error: {} already exists and is left untouched; pass --overwrite to replace it",
                plan.path.display()
            )
        } else {
            format!("error: {}", e.message)
        }
    })?;
    let resolver = match &plan.predicate {
        Some(predicate) => ContinuousResolver::new_with_pred(predicate, FORGET_AFTER_S),
        None => ContinuousResolver::new(FORGET_AFTER_S),
    }
    .map_err(|e| format!("error: cannot look for streams matching [{selection}]: {e:?}"))?;

    let shared = Arc::new(Shared {
        stop: stop.clone(),
        failure: Mutex::new(None),
        slots: Mutex::new(Vec::new()),
        settled: AtomicU64::new(0),
    });
    let (sender, receiver) = bounded(CHANNEL_CAPACITY);
    let writer_shared = shared.clone();
    let writer_thread = std::thread::Builder::new()
        .name("xdf writer".to_string())
        .spawn(move || write_loop(writer, &receiver, &writer_shared))
        .map_err(|e| format!("error: cannot start the writer thread: {e}"))?;
    let mut recorder = Recorder {
        shared: shared.clone(),
        sender,
        keys: BTreeMap::new(),
        threads: Vec::new(),
    };

    let started = recorder.wait_for_streams(&resolver, plan);
    if let Err(message) = started {
        recorder.stop_inlets();
        drop(recorder);
        let _ = writer_thread.join();
        let _ = std::fs::remove_file(&plan.path);
        return Err(message);
    }
    recorder.wait_for_inlets();
    crate::notice!(
        "heloflow record: recording {} stream(s) into {}{}",
        recorder.keys.len(),
        plan.path.display(),
        match plan.duration_s {
            Some(d) => format!(" for {d} s"),
            None => " until Ctrl-C".to_string(),
        }
    );
    recorder.watch(&resolver, plan.duration_s);
    recorder.stop_inlets();
    drop(recorder);
    let outcome = writer_thread
        .join()
        .map_err(|_| "error: the writer thread stopped unexpectedly".to_string())?;
    if let Some(failure) = shared.failure() {
        return Err(format!("heloflow record: error: {failure}"));
    }
    let summary = outcome.ok_or("error: the recording was not finished")?;
    let slots = shared.slots.lock().unwrap_or_else(|e| e.into_inner());
    let streams = summary
        .streams
        .iter()
        .zip(outcome_slots(&summary, &slots))
        .map(|(stream, slot)| {
            let duration_s = match (stream.first_timestamp, stream.last_timestamp) {
                (Some(first), Some(last)) => last - first,
                _ => 0.0,
            };
            StreamReport {
                description: slot
                    .description
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone(),
                samples: stream.samples,
                duration_s,
                effective_rate_hz: if duration_s > 0.0 {
                    (stream.samples.saturating_sub(1)) as f64 / duration_s
                } else {
                    0.0
                },
                clock_offsets: stream.clock_offsets.len(),
                dropped: slot.dropped.load(Ordering::Relaxed),
            }
        })
        .collect();
    Ok(RecordReport {
        path: summary.path.clone(),
        bytes: summary.bytes,
        streams,
    })
}

/// The slot statistics in XDF stream order (the writer numbers streams as their headers arrive,
/// and records the slot of each).
fn outcome_slots(summary: &FinishedRecording, slots: &[Arc<SlotStats>]) -> Vec<Arc<SlotStats>> {
    summary
        .slot_of_stream
        .iter()
        .map(|&slot| slots.get(slot).cloned().unwrap_or_default())
        .collect()
}

/// What the writer thread leaves: the file's summary and which slot each stream came from.
struct FinishedRecording {
    path: PathBuf,
    bytes: u64,
    streams: Vec<crate::xdf::writer::StreamSummary>,
    slot_of_stream: Vec<usize>,
}

impl FinishedRecording {
    fn new(summary: FileSummary, slot_of_stream: Vec<usize>) -> Self {
        FinishedRecording {
            path: summary.path,
            bytes: summary.bytes,
            streams: summary.streams,
            slot_of_stream,
        }
    }
}

/// The main thread's side: discovery, inlet threads, presence reports.
struct Recorder {
    shared: Arc<Shared>,
    sender: Sender<Message>,
    /// Stream key (see `stream_key`) -> whether it is visible now, and how messages name it.
    keys: BTreeMap<String, (bool, String)>,
    threads: Vec<JoinHandle<()>>,
}

/// The key a stream is known by: its `source_id`, or its uid when it has none.
impl Recorder {
    fn wait_for_streams(
        &mut self,
        resolver: &ContinuousResolver,
        plan: &RecordPlan,
    ) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs_f64(plan.timeout_s);
        loop {
            self.discover(resolver, false);
            if self.keys.len() >= plan.min_streams || self.shared.stop.load(Ordering::SeqCst) {
                return match self.shared.failure() {
                    Some(failure) => Err(format!("heloflow record: error: {failure}")),
                    None => Ok(()),
                };
            }
            if Instant::now() >= deadline {
                let list = visible_streams_listing(1.0);
                return Err(format!(
                    "error: found {} of {} stream(s) matching [{}] within {} s, so nothing was recorded (the file is removed); visible streams:\n{list}",
                    self.keys.len(),
                    plan.min_streams,
                    plan.predicate
                        .as_deref()
                        .map_or("every stream".to_string(), readable_predicate),
                    plan.timeout_s
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Takes in new streams; reports streams that vanished or returned (when `report`).
    fn discover(&mut self, resolver: &ContinuousResolver, report: bool) {
        let results = resolver.results().unwrap_or_default();
        let mut visible = BTreeSet::new();
        for info in &results {
            let key = stream_key(info);
            visible.insert(key.clone());
            if self.keys.contains_key(&key) {
                continue;
            }
            let uid = info.uid();
            // Names from the network are shown escaped (see `crate::display`).
            let description = crate::display::escaped(&format!(
                "\"{}\" type={} source_id={} host={}",
                info.stream_name(),
                info.stream_type(),
                info.source_id(),
                info.hostname()
            ))
            .into_owned();
            if report {
                crate::notice!("heloflow record: new stream {description}: recording it too");
            }
            let label = match info.source_id() {
                id if id.is_empty() => format!("\"{}\" (uid {uid})", info.stream_name()),
                id => id,
            };
            let label = crate::display::escaped(&label).into_owned();
            self.keys.insert(key, (true, label));
            self.start_inlet(uid, description);
        }
        if report {
            for (key, (present, label)) in &mut self.keys {
                let now = visible.contains(key);
                if *present && !now {
                    crate::notice!(
                        "heloflow record: stream {label} vanished (its outlet is gone); it is recorded again if it returns"
                    );
                } else if !*present && now {
                    crate::notice!("heloflow record: stream {label} is back");
                }
                *present = now;
            }
        }
    }

    fn start_inlet(&mut self, uid: String, description: String) {
        let stats = Arc::new(SlotStats {
            description: Mutex::new(description),
            dropped: AtomicU64::new(0),
        });
        let slot = {
            let mut slots = self.shared.slots.lock().unwrap_or_else(|e| e.into_inner());
            slots.push(stats.clone());
            slots.len() - 1
        };
        let inlet = InletThread {
            slot,
            sender: self.sender.clone(),
            shared: self.shared.clone(),
            stats,
            held: VecDeque::new(),
            held_samples: 0,
            hold_limit: 0,
        };
        match std::thread::Builder::new()
            .name(format!("inlet {slot}"))
            .spawn(move || inlet.run(&uid))
        {
            Ok(thread) => self.threads.push(thread),
            Err(e) => self
                .shared
                .fail(format!("cannot start the thread of an inlet: {e}")),
        }
    }

    /// Waits (at most 30 s) until every inlet started so far is open, so "recording" is true
    /// when it is said.
    fn wait_for_inlets(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.shared.settled.load(Ordering::SeqCst) < self.threads.len() as u64
            && Instant::now() < deadline
            && !self.shared.stop.load(Ordering::SeqCst)
        {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn watch(&mut self, resolver: &ContinuousResolver, duration_s: Option<f64>) {
        let started = Instant::now();
        let mut last_discover = Instant::now();
        while !self.shared.stop.load(Ordering::SeqCst) {
            if duration_s.is_some_and(|d| started.elapsed().as_secs_f64() >= d) {
                break;
            }
            if last_discover.elapsed() >= DISCOVER_EVERY {
                last_discover = Instant::now();
                self.discover(resolver, true);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop_inlets(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// One inlet, pulled on its own thread.
struct InletThread {
    slot: usize,
    sender: Sender<Message>,
    shared: Arc<Shared>,
    stats: Arc<SlotStats>,
    /// Messages the writer could not take yet, oldest first.
    held: VecDeque<Message>,
    held_samples: usize,
    hold_limit: usize,
}

/// Pulls whatever is waiting, up to `max` samples: the first sample waits up to `wait` seconds.
fn pull<T: Clone + Default>(
    inlet: &StreamInlet,
    buffer: &mut Vec<T>,
    stamps: &mut Vec<f64>,
    values: &mut Vec<T>,
    max: usize,
    wait: f64,
) -> Result<(), lsl::Error>
where
    StreamInlet: Pullable<T>,
{
    let mut timeout = wait;
    while stamps.len() < max {
        let stamp = inlet.pull_sample_buf(buffer, timeout)?;
        if stamp == 0.0 {
            break;
        }
        timeout = 0.0;
        stamps.push(stamp);
        values.extend_from_slice(buffer);
    }
    Ok(())
}

impl InletThread {
    fn run(mut self, uid: &str) {
        let description = self
            .stats
            .description
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let settled = self.shared.clone();
        let result = self.record(uid, || {
            settled.settled.fetch_add(1, Ordering::SeqCst);
        });
        if let Err((message, opened)) = result {
            if !opened {
                self.shared.settled.fetch_add(1, Ordering::SeqCst);
            }
            crate::notice!("heloflow record: stream {description}: {message} (no longer recorded)");
        }
    }

    /// Finds the stream again by its uid (a resolver's stream info cannot cross threads, and its
    /// XML lacks the address liblsl connects to), then records it until the stop.
    /// Returns the error and whether the inlet had opened (`on_open` ran) when it failed.
    fn record(&mut self, uid: &str, on_open: impl FnOnce()) -> Result<(), (String, bool)> {
        let inlet = self.open(uid).map_err(|e| (e, false))?;
        let format = self.announce(&inlet).map_err(|e| (e, false))?;
        on_open();
        self.stream(&inlet, format).map_err(|e| (e, true))
    }

    fn open(&mut self, uid: &str) -> Result<StreamInlet, String> {
        let info = lsl::resolve_bypred(&format!("uid={}", xpath_literal(uid)), 1, 10.0)
            .ok()
            .and_then(|found| found.into_iter().next())
            .ok_or("it vanished before recording started")?;
        let inlet = StreamInlet::new(&info, 360, 0, true)
            .map_err(|e| format!("cannot open an inlet: {e:?}"))?;
        inlet
            .open_stream(10.0)
            .map_err(|e| format!("cannot open the stream: {e:?}"))?;
        Ok(inlet)
    }

    /// Hands the stream's full info over (its header) and measures its first clock offset.
    fn announce(&mut self, inlet: &StreamInlet) -> Result<ChannelFormat, String> {
        let full = inlet
            .info(10.0)
            .map_err(|e| format!("cannot read its full info: {e:?}"))?;
        let format = ChannelFormat::from_lsl_name(format_name(full.channel_format()))
            .ok_or("its channel format is undefined, so it cannot be recorded")?;
        let full_xml = full
            .to_xml()
            .map_err(|e| format!("cannot read its full info: {e:?}"))?;
        let rate = full.nominal_srate();
        self.hold_limit = if rate > 0.0 {
            ((rate * HOLD_S) as usize).max(10_000)
        } else {
            100_000
        };
        self.hand_over(Message::Stream {
            slot: self.slot,
            xml: full_xml,
        });
        self.measure_offset(inlet, 2.0);
        Ok(format)
    }

    /// Pulls until the stop, then what the inlet still holds.
    fn stream(&mut self, inlet: &StreamInlet, format: ChannelFormat) -> Result<(), String> {
        let mut last_offset = Instant::now();
        loop {
            let stop = self.shared.stop.load(Ordering::SeqCst);
            // After the stop, pull what the inlet still holds, then leave.
            let wait = if stop { 0.0 } else { 0.02 };
            let pulled = self
                .pull_chunk(inlet, format, wait)
                .map_err(|e| format!("reading failed: {e:?}"))?;
            let got = pulled.is_some();
            if let Some(message) = pulled {
                self.hand_over(message);
            }
            if stop && !got {
                break;
            }
            if !stop && last_offset.elapsed() >= OFFSET_EVERY {
                last_offset = Instant::now();
                self.measure_offset(inlet, 1.0);
            }
        }
        self.drain_held();
        Ok(())
    }

    fn measure_offset(&mut self, inlet: &StreamInlet, timeout: f64) {
        // A failed measurement writes nothing (LabRecorder writes an uninitialised value).
        if let Ok(offset) = inlet.time_correction(timeout) {
            if offset.is_finite() {
                self.hand_over(Message::Offset {
                    slot: self.slot,
                    collected: lsl::local_clock(),
                    offset,
                });
            }
        }
    }

    fn pull_chunk(
        &self,
        inlet: &StreamInlet,
        format: ChannelFormat,
        wait: f64,
    ) -> Result<Option<Message>, lsl::Error> {
        let mut stamps = Vec::new();
        macro_rules! typed {
            ($t:ty, $variant:ident) => {{
                let (mut buffer, mut values) = (Vec::<$t>::new(), Vec::<$t>::new());
                pull(
                    inlet,
                    &mut buffer,
                    &mut stamps,
                    &mut values,
                    MAX_CHUNK,
                    wait,
                )?;
                Pulled::$variant(values)
            }};
        }
        let values = match format {
            ChannelFormat::Int8 => typed!(i8, Int8),
            ChannelFormat::Int16 => typed!(i16, Int16),
            ChannelFormat::Int32 => typed!(i32, Int32),
            ChannelFormat::Int64 => {
                // liblsl 1.13's typed int64 pull never returns on 64-bit Linux (its `long`
                // overload calls itself); its text conversion of int64 values is exact.
                let (mut buffer, mut texts) = (Vec::<Vec<u8>>::new(), Vec::<Vec<u8>>::new());
                pull(inlet, &mut buffer, &mut stamps, &mut texts, MAX_CHUNK, wait)?;
                let numbers = texts
                    .iter()
                    .map(|t| {
                        std::str::from_utf8(t)
                            .ok()
                            .and_then(|t| t.trim().parse::<i64>().ok())
                            .ok_or(lsl::Error::Internal)
                    })
                    .collect::<Result<Vec<i64>, _>>()?;
                Pulled::Int64(numbers)
            }
            ChannelFormat::Float32 => typed!(f32, Float32),
            ChannelFormat::Double64 => typed!(f64, Double64),
            ChannelFormat::String => typed!(Vec<u8>, Bytes),
        };
        Ok((!stamps.is_empty()).then_some(Message::Samples {
            slot: self.slot,
            stamps,
            values,
        }))
    }

    /// Queues a message for the writer and sends what the channel takes; beyond the hold limit
    /// the oldest held samples are dropped and counted.
    fn hand_over(&mut self, message: Message) {
        if let Message::Samples { stamps, .. } = &message {
            self.held_samples += stamps.len();
        }
        self.held.push_back(message);
        while let Some(message) = self.held.pop_front() {
            match self.sender.try_send(message) {
                Ok(()) => {}
                Err(TrySendError::Full(message)) => {
                    self.held.push_front(message);
                    break;
                }
                Err(TrySendError::Disconnected(message)) => {
                    self.held.push_front(message);
                    self.drop_held();
                    return;
                }
            }
        }
        self.held_samples = self.held.iter().map(samples_in).sum();
        while self.held_samples > self.hold_limit {
            let Some(index) = self.held.iter().position(|m| samples_in(m) > 0) else {
                break;
            };
            let dropped = self.held.remove(index).map_or(0, |m| samples_in(&m));
            if self
                .stats
                .dropped
                .fetch_add(dropped as u64, Ordering::Relaxed)
                == 0
            {
                crate::notice!(
                    "heloflow record: slot {}: the writer is more than {HOLD_S} s behind; dropping the oldest samples (counted)",
                    self.slot
                );
            }
            self.held_samples -= dropped;
        }
    }

    /// At the end: waits for the writer to take every held message (it stops only after the
    /// inlets, unless it failed).
    fn drain_held(&mut self) {
        while let Some(message) = self.held.pop_front() {
            match self.sender.send_timeout(message, Duration::from_secs(30)) {
                Ok(()) => {}
                Err(
                    SendTimeoutError::Timeout(message) | SendTimeoutError::Disconnected(message),
                ) => {
                    self.held.push_front(message);
                    self.drop_held();
                    return;
                }
            }
        }
    }

    fn drop_held(&mut self) {
        let dropped: usize = self.held.drain(..).map(|m| samples_in(&m)).sum();
        self.stats
            .dropped
            .fetch_add(dropped as u64, Ordering::Relaxed);
        self.held_samples = 0;
    }
}

fn samples_in(message: &Message) -> usize {
    match message {
        Message::Samples { stamps, .. } => stamps.len(),
        _ => 0,
    }
}

/// The writer thread: takes messages, flushes every 250 ms with a Boundary chunk every 10 s,
/// writes footers when every inlet is done. After a write failure it stops the recording and
/// counts what reaches it as dropped.
fn write_loop(
    mut writer: XdfWriter,
    receiver: &Receiver<Message>,
    shared: &Shared,
) -> Option<FinishedRecording> {
    let mut ids: BTreeMap<usize, u32> = BTreeMap::new();
    let mut slot_of_stream = Vec::new();
    let mut last_flush = Instant::now();
    let mut last_boundary = Instant::now();
    let mut failed = false;
    loop {
        let message = match receiver.recv_timeout(FLUSH_EVERY / 5) {
            Ok(message) => Some(message),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        if failed {
            if let Some(message) = message {
                count_dropped(shared, &message);
            }
            continue;
        }
        let result = match message {
            None => Ok(()),
            Some(Message::Stream { slot, xml }) => writer.add_stream_xml(&xml).map(|id| {
                ids.insert(slot, id);
                slot_of_stream.push(slot);
            }),
            Some(Message::Samples {
                slot,
                stamps,
                values,
            }) => match ids.get(&slot) {
                Some(&id) => writer.push_samples(id, &stamps, values.values()),
                None => Ok(()),
            },
            Some(Message::Offset {
                slot,
                collected,
                offset,
            }) => match ids.get(&slot) {
                Some(&id) => writer.push_clock_offset(id, collected, offset),
                None => Ok(()),
            },
        };
        let result = result.and_then(|()| {
            if last_flush.elapsed() < FLUSH_EVERY {
                return Ok(());
            }
            last_flush = Instant::now();
            if last_boundary.elapsed() >= BOUNDARY_EVERY {
                last_boundary = Instant::now();
                writer.push_boundary()?;
            }
            writer.flush()
        });
        if let Err(error) = result {
            shared.fail(error.message);
            failed = true;
        }
    }
    if failed {
        return None;
    }
    match writer.finish() {
        Ok(summary) => Some(FinishedRecording::new(summary, slot_of_stream)),
        Err(error) => {
            shared.fail(error.message);
            None
        }
    }
}

fn count_dropped(shared: &Shared, message: &Message) {
    if let Message::Samples { slot, stamps, .. } = message {
        let slots = shared.slots.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(stats) = slots.get(*slot) {
            stats
                .dropped
                .fetch_add(stamps.len() as u64, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> RecordArgs {
        RecordArgs {
            out: Some(PathBuf::from("x.xdf")),
            timeout: 10.0,
            min_streams: 1,
            modality: "eeg".into(),
            ..RecordArgs::default()
        }
    }

    #[test]
    fn selections_combine_into_one_predicate() {
        let mut a = args();
        assert_eq!(a.plan().unwrap().predicate, None);
        a.select.kind = Some("EEG".into());
        a.select.name = Some("Bob's amp".into());
        a.select.predicate = Some("nominal_srate>100".into());
        assert_eq!(
            a.plan().unwrap().predicate.as_deref(),
            Some(
                format!(
                    "name=concat('Bob', \"'\", 's amp') and {}='eeg' and (nominal_srate>100)",
                    crate::sources::selection::TYPE_ANY_CASE
                )
                .as_str()
            )
        );
    }

    #[test]
    fn numbers_outside_their_range_are_refused() {
        for (duration, timeout) in [
            (Some(f64::NAN), 1.0),
            (Some(0.0), 1.0),
            (Some(-1.0), 1.0),
            (Some(f64::INFINITY), 1.0),
            (Some(1e12), 1.0),
            (None, 0.0),
            (None, f64::NAN),
            (None, 1e9),
        ] {
            let mut a = args();
            a.duration = duration;
            a.timeout = timeout;
            let error = a.plan().unwrap_err();
            assert!(error.contains("must be a number of seconds"), "{error}");
        }
        let mut a = args();
        a.min_streams = 10_001;
        assert!(a.plan().is_err());
    }

    fn inlet(capacity: usize, hold_limit: usize) -> (InletThread, Receiver<Message>) {
        let (sender, receiver) = bounded(capacity);
        let inlet = InletThread {
            slot: 0,
            sender,
            shared: Arc::new(Shared {
                stop: Arc::new(AtomicBool::new(false)),
                failure: Mutex::new(None),
                slots: Mutex::new(Vec::new()),
                settled: AtomicU64::new(0),
            }),
            stats: Arc::new(SlotStats::default()),
            held: VecDeque::new(),
            held_samples: 0,
            hold_limit,
        };
        (inlet, receiver)
    }

    fn samples(n: usize) -> Message {
        Message::Samples {
            slot: 0,
            stamps: vec![1.0; n],
            values: Pulled::Double64(vec![0.0; n]),
        }
    }

    #[test]
    fn a_stalled_writer_costs_the_oldest_samples_counted_never_headers() {
        let (mut inlet, receiver) = inlet(1, 25);
        inlet.hand_over(Message::Stream {
            slot: 0,
            xml: "<info/>".into(),
        });
        for _ in 0..5 {
            inlet.hand_over(samples(10));
        }
        inlet.hand_over(Message::Offset {
            slot: 0,
            collected: 1.0,
            offset: 0.0,
        });
        // The channel holds the header; 50 samples wait, 25 may: the oldest 30 went.
        assert_eq!(inlet.stats.dropped.load(Ordering::Relaxed), 30);
        assert_eq!(inlet.held_samples, 20);
        assert!(matches!(receiver.try_recv(), Ok(Message::Stream { .. })));
        // Once the writer takes messages again, everything held arrives in order.
        drop(receiver.try_recv());
        let kept: Vec<usize> = std::iter::from_fn(|| {
            inlet.hand_over(samples(0));
            receiver.try_recv().ok()
        })
        .map(|m| samples_in(&m))
        .take(3)
        .collect();
        assert_eq!(kept, [10, 10, 0]);
        drop(receiver);
        inlet.hand_over(samples(7));
        assert_eq!(
            inlet.stats.dropped.load(Ordering::Relaxed),
            37,
            "a gone writer drops, counted"
        );
    }

    #[test]
    fn bids_naming_needs_its_parts() {
        let mut a = args();
        a.out = None;
        assert!(a.plan().unwrap_err().contains("say where to record"));
        a.bids_root = Some("study".into());
        assert!(a.plan().unwrap_err().contains("--subject and --task"));
        a.subject = Some("P01".into());
        a.task = Some("music".into());
        a.session = Some("S1".into());
        a.run = Some("3".into());
        assert_eq!(
            a.plan().unwrap().path,
            PathBuf::from("study/sub-P01/ses-S1/eeg/sub-P01_ses-S1_task-music_run-3_eeg.xdf")
        );
        a.subject = Some("P_01".into());
        assert!(a.plan().unwrap_err().contains("letters and digits"));
        a.out = Some("x.xdf".into());
        assert!(a.plan().unwrap_err().contains("not both"));
    }
}
