//! `lsl`: publishes streams as Lab Streaming Layer outlets, above all the emotion distribution, so
//! any LSL client (pylsl, MNE-LSL, LabRecorder, OpenViBE, Unity, MATLAB) can subscribe.
//!
//! ```toml
//! [sinks.live]
//! kind = "lsl"
//! inputs = ["emotion"]
//! layout = "per_subject"                              # or "subject_channel": one outlet per input
//! name = "{stream}-{subject}"                         # outlet name template
//! source_id = "heloflow:{pipeline}:{stream}:{subject}" # stable, so clients reconnect after restarts
//! type = "EmotionDistribution"                        # default: the input's modality
//! event_codes = { "stimulus_start:*" = 1 }            # markers as int32 codes (see event_codes)
//! ```
//!
//! One channel per input channel with its label, unit and type in `desc/channels`, written as
//! MNE-LSL reads them (see [`outlet_channel`]); `desc` also has `subject` and
//! `heloflow/{pipeline,stream,modality,version}`, and the outlets of model outputs (`helo`,
//! `onnx`) have `model/{name,version,sha256,labels,window_s,hop_s}` from the model's manifest.
//! Timestamps are the rows' event time (for windowed streams the end of the window described).
//! liblsl objects are not `Send`, so the outlets live on a dedicated thread and the writer
//! forwards rows to it on every flush.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{bounded, unbounded, Receiver, Sender};
use lsl::{ExPushable, StreamInfo, StreamOutlet};

use super::event_codes::EventCodes;
use super::{ModelProvenance, Row, RowOrder, RowValues, Sink, SinkContext, SinkWriter};
use crate::config::options::Options;
use crate::config::PortError;
use crate::lsl_network::LslNetwork;
use crate::sources::lsl::metadata::lsl_format;
use crate::sources::selection::MAX_SUBJECTS;
use crate::stream::{nanos_to_secs, Channel, ChannelFormat, Modality, Nanos, StreamSchema};
use crate::units::{Quantity, Unit};

/// `source_id`s of the outlets this process publishes: LSL sources never read them back, so a
/// pipeline whose source predicate also matches its own outputs cannot feed on itself.
static OWN_OUTLETS: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// Whether this process publishes an outlet with this `source_id`.
pub fn is_own_outlet(source_id: &str) -> bool {
    OWN_OUTLETS
        .lock()
        .map(|own| own.contains(source_id))
        .unwrap_or(false)
}

/// `linger_s`: how long outlets stay open for their clients at the end, seconds; the run cannot
/// end before, even on Ctrl-C, which must stop a run within a second or two.
pub const LINGER_RANGE_S: std::ops::RangeInclusive<f64> = 0.0..=2.0;

/// Most outlets one `lsl` sink opens (inputs times subjects with one outlet per subject): each
/// liblsl outlet holds its own sockets and threads.
pub const MAX_OUTLETS: usize = 1_024;

/// How subjects are laid out over outlets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// One outlet per input stream and subject.
    PerSubject,
    /// One outlet per input stream; the first channel names the subject (its index in
    /// `desc/subjects` for numeric streams, the id itself for string streams).
    SubjectChannel,
}

/// Options of an `lsl` sink.
#[derive(Clone, Debug, PartialEq)]
pub struct LslSinkConfig {
    /// Subject layout.
    pub layout: Layout,
    /// Outlet name template (`{pipeline}`, `{stream}`, `{subject}`).
    pub name: String,
    /// Outlet `source_id` template.
    pub source_id: String,
    /// Content type override (default: the input's modality type).
    pub kind: Option<String>,
    /// Publish marker (string) inputs as int32 event codes, with this map in `desc/events`.
    pub event_codes: Option<EventCodes>,
    /// Subjects to announce up front (default: the inputs' known subjects).
    pub subjects: Vec<String>,
    /// Seconds to keep outlets open at the end when clients are connected, so they get the last rows.
    pub linger_s: f64,
    /// Pipeline name (filled in by [`LslSinkConfig::for_pipeline`]).
    pub pipeline: String,
}

impl Sink for LslSinkConfig {
    fn parse(options: &mut Options) -> Self {
        let layout =
            match options.choice("layout", "per_subject", &["per_subject", "subject_channel"]) {
                "subject_channel" => Layout::SubjectChannel,
                _ => Layout::PerSubject,
            };
        let (default_name, default_id) = match layout {
            Layout::PerSubject => (
                "{stream}-{subject}",
                "heloflow:{pipeline}:{stream}:{subject}",
            ),
            Layout::SubjectChannel => ("{stream}", "heloflow:{pipeline}:{stream}"),
        };
        let template = |options: &mut Options, key: &'static str, default: &str| {
            let text = options
                .string(key)
                .map_or_else(|| default.to_string(), |t| t.into_inner());
            if layout == Layout::PerSubject && !text.contains("{subject}") {
                options.error_at(
                    key,
                    format!("with one outlet per subject, `{key}` must contain {{subject}}"),
                    format!("for example {key} = \"{default}\""),
                );
            }
            if text.trim().is_empty() {
                options.error_at(
                    key,
                    format!("`{key}` must not be empty"),
                    format!("for example {key} = \"{default}\""),
                );
            }
            text
        };
        let name = template(options, "name", default_name);
        let source_id = template(options, "source_id", default_id);
        let kind = options.string("type").map(|t| t.into_inner());
        if options.raw("model").is_some() {
            options.error_at(
                "model",
                "the `lsl` sink no longer takes `model`: the outlets of model outputs (`helo`, `onnx`) carry desc/model (name, version, sha256, labels, window_s, hop_s) from the model's manifest, and other outlets none",
                "remove `model`; to change the name or version, edit the model's manifest",
            );
        }
        let event_codes = EventCodes::parse(options);
        let mut subjects: Vec<String> = Vec::new();
        let listed = options.string_list("subjects").unwrap_or_default();
        if listed.len() > MAX_SUBJECTS {
            options.error_at(
                "subjects",
                format!(
                    "`subjects` lists {} subjects, more than {MAX_SUBJECTS}",
                    listed.len()
                ),
                "split the subjects over several sinks or pipelines",
            );
        }
        for subject in listed.into_iter().take(MAX_SUBJECTS) {
            if subjects.contains(subject.get_ref()) {
                options.error_at_span(
                    subject.span(),
                    format!(
                        "subject \"{}\" is listed twice in `subjects`",
                        subject.get_ref()
                    ),
                    "list each subject once",
                );
            } else {
                subjects.push(subject.into_inner());
            }
        }
        LslSinkConfig {
            layout,
            name,
            source_id,
            kind,
            event_codes,
            subjects,
            linger_s: options.number_in("linger_s", 0.5, LINGER_RANGE_S),
            pipeline: String::new(),
        }
    }

    /// LSL outlets write to the network, not to a path.
    fn destination(&self) -> Option<&str> {
        None
    }

    /// A subject channel needs the subject list up front (it is written into `desc/subjects`).
    fn check_inputs(&self, inputs: &[&StreamSchema]) -> Result<(), PortError> {
        if self.layout == Layout::SubjectChannel && self.known_subjects(inputs).is_empty() {
            return Err(PortError::option(
                "layout",
                "`layout = \"subject_channel\"` needs the subject list, but the inputs do not know their subjects before the run",
                "add subjects = [\"P01\", \"P02\", ...] to this sink, or use layout = \"per_subject\"",
            ));
        }
        let outlets = self.outlets_at_start(inputs);
        if self.event_codes.is_some() {
            check_coded_inputs(inputs)?;
        }
        if outlets > MAX_OUTLETS {
            return Err(PortError::option(
                "layout",
                format!("this sink would open {outlets} LSL outlets (one per input and subject), more than {MAX_OUTLETS}"),
                "use layout = \"subject_channel\" (one outlet per input), or fewer subjects or inputs",
            ));
        }
        Ok(())
    }

    fn open(
        &self,
        inputs: &[StreamSchema],
        run: &SinkContext,
    ) -> Result<Box<dyn SinkWriter>, String> {
        let models = (0..inputs.len())
            .map(|i| {
                let id = run.input_ids.get(i)?;
                run.models.iter().find(|m| m.output == *id).cloned()
            })
            .collect();
        Ok(Box::new(
            self.for_pipeline(run.pipeline).start(inputs, models)?,
        ))
    }
}

/// Event codes replace one string channel: every marker input must have exactly one (the
/// `events` of an `lsl` source have three), and at least one input must be a marker stream.
fn check_coded_inputs(inputs: &[&StreamSchema]) -> Result<(), PortError> {
    let strings: Vec<&&StreamSchema> = inputs.iter().filter(|s| !s.format.is_numeric()).collect();
    if strings.is_empty() {
        return Err(PortError::option(
            "event_codes",
            "`event_codes` publishes marker (string) inputs as numbers, but this sink has no marker input",
            "remove `event_codes`, or add a markers stream to `inputs`",
        ));
    }
    if let Some(wide) = strings.iter().find(|s| s.channel_count() != 1) {
        return Err(PortError::option(
            "event_codes",
            format!(
                "`event_codes` turns one marker channel into a code, but `{}` has {} string channels ({})",
                wide.name,
                wide.channel_count(),
                wide.labels().join(", ")
            ),
            "publish that stream from another `lsl` sink without `event_codes`",
        ));
    }
    Ok(())
}

/// An outlet's `desc/channels/channel`: the label, the type MNE-LSL maps to the right MNE channel
/// type (signals by their modality's MNE type: `eeg`, `ecg`, `gsr`, `resp`, `temperature`,
/// `emg`, `stim`; other types such as `Feature`, `Quality`, `Emotion`, `PPG` are not MNE's and
/// read as `misc` unless the stream's type is one of MNE's), and the unit, spelled as MNE-LSL
/// parses it for signal channels (`microvolts`, `millivolts`, `volts`; a unit it cannot parse
/// reads as the type's unit itself, multiplier 0).
pub fn outlet_channel(channel: &Channel) -> Channel {
    let kind = Modality::from_content_type(&channel.kind)
        .and_then(Modality::mne_type)
        .unwrap_or(&channel.kind);
    let unit = match Unit::parse(&channel.unit, kind) {
        Some(unit) if Quantity::of_channel_type(kind) == Some(unit.quantity) => unit.name(),
        _ => channel.unit.clone(),
    };
    Channel::new(&channel.label, unit, kind)
}

impl LslSinkConfig {
    /// The same config for a pipeline of this name (used in `desc` and the default `source_id`).
    pub fn for_pipeline(&self, pipeline: &str) -> Self {
        LslSinkConfig {
            pipeline: pipeline.to_string(),
            ..self.clone()
        }
    }

    /// `linger_s` as a duration (every value validation accepts converts).
    pub fn linger(&self) -> Duration {
        Duration::from_secs_f64(self.linger_s)
    }

    /// How many outlets this sink opens before the first row: one per input, or one per input
    /// and subject known up front (subjects discovered later add theirs as they appear).
    pub fn outlets_at_start(&self, inputs: &[&StreamSchema]) -> usize {
        match self.layout {
            Layout::SubjectChannel => inputs.len(),
            Layout::PerSubject => inputs.len() * self.known_subjects(inputs).len(),
        }
    }

    fn known_subjects(&self, inputs: &[&StreamSchema]) -> Vec<String> {
        let mut subjects = self.subjects.clone();
        if subjects.is_empty() {
            for input in inputs {
                for subject in &input.subjects {
                    if !subjects.contains(subject) {
                        subjects.push(subject.clone());
                    }
                }
            }
        }
        subjects
    }

    /// Starts the outlet thread; outlets for subjects known up front exist when this returns.
    /// `models[i]` is the model that produces input `i`, if any.
    fn start(
        &self,
        inputs: &[StreamSchema],
        models: Vec<Option<ModelProvenance>>,
    ) -> Result<LslWriter, String> {
        let refs: Vec<&StreamSchema> = inputs.iter().collect();
        let plan = OutletPlan {
            config: self.clone(),
            subjects: self.known_subjects(&refs),
            inputs: inputs.to_vec(),
            network: LslNetwork::load(),
            outside: std::cell::Cell::new(0),
            models,
            uncoded: BTreeMap::new(),
        };
        let (rows, receiver) = unbounded();
        let (ready, started) = bounded(1);
        let thread = std::thread::Builder::new()
            .name("lsl outlets".to_string())
            .spawn(move || plan.run(&receiver, &ready))
            .map_err(|e| format!("cannot start the LSL outlet thread: {e}"))?;
        match started.recv() {
            Ok(Ok(())) => {}
            Ok(Err(message)) => return Err(message),
            Err(_) => return Err("the LSL outlet thread stopped while starting".to_string()),
        }
        Ok(LslWriter {
            inputs: inputs.iter().map(|s| s.name.clone()).collect(),
            pending: Vec::new(),
            rows: Some(rows),
            thread: Some(thread),
        })
    }
}

/// One row on its way to the outlet thread.
struct OutRow {
    input: usize,
    subject: String,
    time: f64,
    values: OutValues,
}

enum OutValues {
    Numeric(Vec<f64>),
    Text(Vec<String>),
}

/// Forwards rows to the thread that owns the outlets.
pub struct LslWriter {
    inputs: Vec<String>,
    pending: Vec<OutRow>,
    rows: Option<Sender<Vec<OutRow>>>,
    thread: Option<JoinHandle<Result<(), String>>>,
}

impl SinkWriter for LslWriter {
    /// Each outlet carries one input: its rows need their own order only.
    fn order(&self) -> RowOrder {
        RowOrder::PerInput
    }

    fn write_row(&mut self, row: &Row<'_>) -> io::Result<()> {
        let input = self
            .inputs
            .iter()
            .position(|name| *name == row.schema.name)
            .unwrap_or(0);
        self.pending.push(OutRow {
            input,
            subject: row.subject.to_string(),
            time: nanos_to_secs(row.time),
            values: match row.values {
                RowValues::Numeric(v) => OutValues::Numeric(v.to_vec()),
                RowValues::Text(v) => OutValues::Text(v.to_vec()),
            },
        });
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.pending);
        let sent = self.rows.as_ref().is_some_and(|s| s.send(rows).is_ok());
        if sent {
            return Ok(());
        }
        self.rows = None;
        Err(io::Error::other(self.join().err().unwrap_or_else(|| {
            "the LSL outlet thread stopped".to_string()
        })))
    }

    /// At the end of input, hands over the last rows, lets clients take them (`linger_s`) and
    /// reports whatever stopped the outlet thread.
    fn advance(&mut self, frontier: Nanos) -> io::Result<()> {
        if frontier < Nanos::MAX || self.thread.is_none() {
            return Ok(());
        }
        self.flush()?;
        self.rows = None;
        self.join().map_err(io::Error::other)
    }
}

impl LslWriter {
    /// Waits for the outlet thread; its error, or a note that it panicked.
    fn join(&mut self) -> Result<(), String> {
        match self.thread.take().map(JoinHandle::join) {
            None | Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err(message))) => Err(message),
            Some(Err(_)) => Err("the LSL outlet thread stopped on an internal error".to_string()),
        }
    }
}

impl Drop for LslWriter {
    fn drop(&mut self) {
        let _ = self.flush();
        self.rows = None;
        if let Err(message) = self.join() {
            eprintln!("heloflow: lsl sink: {}", crate::display::escaped(&message));
        }
    }
}

/// Everything the outlet thread needs to create outlets.
struct OutletPlan {
    config: LslSinkConfig,
    subjects: Vec<String>,
    inputs: Vec<StreamSchema>,
    network: LslNetwork,
    /// Outlets whose service port fell outside liblsl's port range.
    outside: std::cell::Cell<usize>,
    /// The model producing each input, if any (its outlets get `desc/model`).
    models: Vec<Option<ModelProvenance>>,
    /// Markers that matched no event code and were not published: value -> count (at most
    /// [`MAX_UNCODED_SHOWN`] values kept, the rest counted under the empty string).
    uncoded: BTreeMap<String, u64>,
}

/// Distinct uncoded marker values named in the end-of-run note (the rest are counted).
const MAX_UNCODED_SHOWN: usize = 20;

impl OutletPlan {
    fn run(
        mut self,
        rows: &Receiver<Vec<OutRow>>,
        ready: &Sender<Result<(), String>>,
    ) -> Result<(), String> {
        let mut outlets: BTreeMap<(usize, String), StreamOutlet> = BTreeMap::new();
        let eager = (0..self.inputs.len()).try_for_each(|input| match self.config.layout {
            Layout::SubjectChannel => self.outlet(&mut outlets, input, "").map(|_| ()),
            Layout::PerSubject => self
                .subjects
                .iter()
                .try_for_each(|subject| self.outlet(&mut outlets, input, subject).map(|_| ())),
        });
        let _ = ready.send(eager.clone());
        eager?;
        for batch in rows {
            for row in batch {
                self.push(&mut outlets, &row)?;
            }
        }
        self.report_uncoded();
        if outlets.values().any(StreamOutlet::have_consumers) {
            std::thread::sleep(self.config.linger());
        }
        if self.outside.get() > 0 {
            crate::notice!(
                "heloflow: warning: lsl sink: {} of {} outlets had ports outside liblsl's range {}-{}; unicast clients could not discover them",
                self.outside.get(),
                outlets.len(),
                self.network.base_port,
                self.network.last_port()
            );
        }
        Ok(())
    }

    /// Whether input `input` goes out as event codes (a marker stream with `event_codes` set).
    fn coded(&self, input: usize) -> Option<&EventCodes> {
        self.config
            .event_codes
            .as_ref()
            .filter(|_| !self.inputs[input].format.is_numeric())
    }

    /// Counts a marker that matched no event code; its first occurrence is announced.
    fn note_uncoded(&mut self, marker: &str) {
        let known = self.uncoded.len() - usize::from(self.uncoded.contains_key(""));
        let key = if self.uncoded.contains_key(marker) || known < MAX_UNCODED_SHOWN {
            marker
        } else {
            ""
        };
        let count = self.uncoded.entry(key.to_string()).or_insert(0);
        *count += 1;
        if *count == 1 && !key.is_empty() {
            crate::notice!(
                "heloflow: lsl sink: marker \"{marker}\" matches no name in `event_codes`; it is not published (counted at the end)"
            );
        }
    }

    /// One line at the end: how many markers were not published for want of a code.
    fn report_uncoded(&self) {
        let total: u64 = self.uncoded.values().sum();
        if total == 0 {
            return;
        }
        let listed: Vec<String> = self
            .uncoded
            .iter()
            .map(|(value, n)| match value.as_str() {
                "" => format!("{n} of other values"),
                value => format!("\"{value}\" x{n}"),
            })
            .collect();
        crate::notice!(
            "heloflow: lsl sink: {total} marker(s) matched no name in `event_codes` and were not published: {}",
            listed.join(", ")
        );
    }

    fn fill(&self, template: &str, input: usize, subject: &str) -> String {
        template
            .replace("{pipeline}", &self.config.pipeline)
            .replace("{stream}", &self.inputs[input].name)
            .replace("{subject}", subject)
    }

    fn outlet<'o>(
        &self,
        outlets: &'o mut BTreeMap<(usize, String), StreamOutlet>,
        input: usize,
        subject: &str,
    ) -> Result<&'o StreamOutlet, String> {
        let key = (input, subject.to_string());
        if !outlets.contains_key(&key) {
            if outlets.len() >= MAX_OUTLETS {
                return Err(format!(
                    "a new subject ({subject}) would need more than {MAX_OUTLETS} LSL outlets; use layout = \"subject_channel\""
                ));
            }
            let outlet = self.create(input, subject)?;
            self.check_port(&outlet);
            outlets.insert(key.clone(), outlet);
        }
        Ok(&outlets[&key])
    }

    /// Counts an outlet that liblsl had to put outside its port range, and says so for the
    /// first: unicast resolvers (KnownPeers) never query it, so such clients cannot find it.
    fn check_port(&self, outlet: &StreamOutlet) {
        let Ok(info) = outlet.info() else {
            return;
        };
        let xml = info.to_xml().unwrap_or_default();
        let Some(port) = crate::lsl_network::service_port(&xml) else {
            return;
        };
        if self.network.in_range(port) {
            return;
        }
        self.outside.set(self.outside.get() + 1);
        if self.outside.get() == 1 {
            let name = info.stream_name();
            crate::notice!(
                "heloflow: warning: lsl sink: outlet \"{name}\" got port {port}, outside liblsl's port range {}-{} (all in use; configuration: {}): clients that find streams by unicast (KnownPeers, the only way on loopback) cannot discover it, multicast clients can. Raise [ports] PortRange (README: \"LSL on a lab network\")",
                self.network.base_port,
                self.network.last_port(),
                self.network.describe()
            );
        }
    }

    fn create(&self, input: usize, subject: &str) -> Result<StreamOutlet, String> {
        let schema = &self.inputs[input];
        let name = self.fill(&self.config.name, input, subject);
        let source_id = self.fill(&self.config.source_id, input, subject);
        let kind = self
            .config
            .kind
            .clone()
            .unwrap_or_else(|| schema.modality.lsl_type().to_string());
        let subject_channel = self.config.layout == Layout::SubjectChannel;
        let codes = self.coded(input);
        let format = match codes {
            Some(_) => ChannelFormat::Int32,
            None => schema.format,
        };
        let count = schema.channel_count() + usize::from(subject_channel);
        let mut info = StreamInfo::new(
            &name,
            &kind,
            count as u32,
            schema.rate.nominal_srate(),
            lsl_format(format),
            &source_id,
        )
        .map_err(|e| format!("cannot describe LSL outlet \"{name}\": {e:?}"))?;
        let mut desc = info.desc();
        let mut channels = desc.append_child("channels");
        if subject_channel {
            let mut channel = channels.append_child("channel");
            channel.append_child_value("label", "subject");
            channel.append_child_value("unit", if format.is_numeric() { "index" } else { "" });
            // Not "Subject": MNE would read an unknown type as the stream's (an index as EEG).
            channel.append_child_value("type", "misc");
        }
        for c in &schema.channels {
            let c = match codes {
                Some(_) => Channel::new(&c.label, "code", "stim"),
                None => outlet_channel(c),
            };
            let mut channel = channels.append_child("channel");
            channel.append_child_value("label", &c.label);
            channel.append_child_value("unit", &c.unit);
            channel.append_child_value("type", &c.kind);
        }
        if let Some(codes) = codes {
            let mut events = desc.append_child("events");
            for (marker, code) in &codes.entries {
                let mut event = events.append_child("event");
                event.append_child_value("code", &code.to_string());
                event.append_child_value("name", marker);
            }
        }
        if subject_channel {
            let mut subjects = desc.append_child("subjects");
            for id in &self.subjects {
                subjects.append_child_value("subject", id);
            }
        } else {
            desc.append_child_value("subject", subject);
        }
        let mut heloflow = desc.append_child("heloflow");
        heloflow.append_child_value("pipeline", &self.config.pipeline);
        heloflow.append_child_value("stream", &schema.name);
        heloflow.append_child_value("modality", schema.modality.name());
        heloflow.append_child_value("version", env!("CARGO_PKG_VERSION"));
        if let Some(provenance) = &self.models[input] {
            let mut model = desc.append_child("model");
            model.append_child_value("name", &provenance.name);
            model.append_child_value("version", &provenance.version);
            model.append_child_value("sha256", &provenance.sha256);
            let mut labels = model.append_child("labels");
            for label in &provenance.labels {
                labels.append_child_value("label", label);
            }
            model.append_child_value("window_s", &provenance.window_s.to_string());
            model.append_child_value("hop_s", &provenance.hop_s.to_string());
        }
        if let Ok(mut own) = OWN_OUTLETS.lock() {
            own.insert(source_id.clone());
        }
        StreamOutlet::new(&info, 0, 360)
            .map_err(|e| format!("cannot create LSL outlet \"{name}\" ({source_id}): {e:?}"))
    }

    fn push(
        &mut self,
        outlets: &mut BTreeMap<(usize, String), StreamOutlet>,
        row: &OutRow,
    ) -> Result<(), String> {
        let subject_channel = self.config.layout == Layout::SubjectChannel;
        let subject_index = if subject_channel {
            Some(
                self.subjects
                    .iter()
                    .position(|s| *s == row.subject)
                    .ok_or_else(|| {
                        format!(
                    "subject {} is not in this sink's subject list [{}]; add it to `subjects`",
                    row.subject,
                    self.subjects.join(", ")
                )
                    })?,
            )
        } else {
            None
        };
        let key_subject = if subject_channel {
            ""
        } else {
            row.subject.as_str()
        };
        let format = self.inputs[row.input].format;
        let code = match (self.coded(row.input), &row.values) {
            (Some(codes), OutValues::Text(values)) => {
                let marker = values.first().map_or("", String::as_str);
                match codes.code(marker) {
                    Some(code) => Some(code),
                    None => {
                        self.note_uncoded(marker);
                        return Ok(());
                    }
                }
            }
            _ => None,
        };
        let outlet = self.outlet(outlets, row.input, key_subject)?;
        if let Some(code) = code {
            let mut all = Vec::with_capacity(2);
            all.extend(subject_index.map(|i| i as i32));
            all.push(code);
            return outlet
                .push_sample_ex(&all, row.time, true)
                .map_err(|e| format!("cannot push to LSL outlet: {e:?}"));
        }
        let pushed = match &row.values {
            OutValues::Numeric(values) => {
                let mut all = Vec::with_capacity(values.len() + 1);
                all.extend(subject_index.map(|i| i as f64));
                all.extend_from_slice(values);
                match format {
                    ChannelFormat::Float32 => {
                        let v: Vec<f32> = all.iter().map(|x| *x as f32).collect();
                        outlet.push_sample_ex(&v, row.time, true)
                    }
                    ChannelFormat::Int8 => {
                        let v: Vec<i8> = all.iter().map(|x| x.round() as i8).collect();
                        outlet.push_sample_ex(&v, row.time, true)
                    }
                    ChannelFormat::Int16 => {
                        let v: Vec<i16> = all.iter().map(|x| x.round() as i16).collect();
                        outlet.push_sample_ex(&v, row.time, true)
                    }
                    ChannelFormat::Int64 => {
                        let v: Vec<i64> = all.iter().map(|x| x.round() as i64).collect();
                        outlet.push_sample_ex(&v, row.time, true)
                    }
                    ChannelFormat::Int32 => {
                        let v: Vec<i32> = all.iter().map(|x| x.round() as i32).collect();
                        outlet.push_sample_ex(&v, row.time, true)
                    }
                    _ => outlet.push_sample_ex(&all, row.time, true),
                }
            }
            OutValues::Text(values) => {
                let mut all = Vec::with_capacity(values.len() + 1);
                all.extend(subject_index.map(|_| row.subject.clone()));
                all.extend(values.iter().cloned());
                outlet.push_sample_ex(&all, row.time, true)
            }
        };
        pushed.map_err(|e| format!("cannot push to LSL outlet: {e:?}"))
    }
}

#[cfg(test)]
mod tests {
    use crate::pipeline;
    use crate::sinks::SinkConfig;

    fn parse(sink: &str) -> Result<pipeline::Pipeline, String> {
        let text = format!(
            "[pipeline]\nname = \"p\"\n[sources.sim]\nkind = \"simulator\"\nstreams = [\"emotion\"]\n[sinks.live]\nkind = \"lsl\"\ninputs = [\"sim.emotion\"]\n{sink}"
        );
        pipeline::parse("t.toml", &text).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_give_stable_per_subject_ids() {
        let pipeline = parse("").expect("valid");
        let SinkConfig::Lsl(config) = &pipeline.sinks[0].config else {
            panic!("an lsl sink");
        };
        let config = config.for_pipeline("p");
        assert_eq!(config.source_id, "heloflow:{pipeline}:{stream}:{subject}");
        assert_eq!(config.event_codes, None);
        assert_eq!(config.pipeline, "p");
    }

    #[test]
    fn model_metadata_comes_from_manifests_not_from_the_sink() {
        let error = parse("model = { name = \"HeLo\", version = \"1.0\" }\n").unwrap_err();
        assert!(error.contains("no longer takes `model`"), "{error}");
        assert!(error.contains("remove `model`"), "{error}");
    }

    /// A pipeline with a string marker stream (and the simulator's emotion) into an lsl sink.
    fn markers_sink(sink: &str) -> Result<pipeline::Pipeline, String> {
        let text = format!(
            "[pipeline]\nname = \"p\"\n[sources.sim]\nkind = \"simulator\"\nstreams = [\"emotion\", \"markers\"]\n[sinks.live]\nkind = \"lsl\"\n{sink}"
        );
        pipeline::parse("t.toml", &text).map_err(|e| e.to_string())
    }

    #[test]
    fn event_codes_are_positive_int32_codes_for_one_marker_channel() {
        let ok = markers_sink(
            "inputs = [\"sim.markers\", \"sim.emotion\"]\nevent_codes = { \"stimulus_start:*\" = 1, \"stimulus_end:*\" = 2 }\n",
        )
        .expect("valid");
        let SinkConfig::Lsl(config) = &ok.sinks[0].config else {
            panic!("an lsl sink");
        };
        let codes = config.event_codes.as_ref().expect("codes");
        assert_eq!(codes.code("stimulus_end:clip_03"), Some(2));
        for (codes, message) in [
            ("{ rest = 0 }", "must be an integer from 1 to 2147483647"),
            ("{ rest = 2147483648 }", "must be an integer from 1 to"),
            ("{ rest = 1.5 }", "must be an integer"),
            ("{ rest = \"1\" }", "must be an integer"),
            ("{}", "`event_codes` is empty"),
            ("[1, 2]", "must be a table of marker = code"),
            ("{ \"\" = 1 }", "non-empty marker name"),
        ] {
            let error = markers_sink(&format!(
                "inputs = [\"sim.markers\"]\nevent_codes = {codes}\n"
            ))
            .unwrap_err();
            assert!(error.contains(message), "{codes}: {error}");
        }
        let none =
            markers_sink("inputs = [\"sim.emotion\"]\nevent_codes = { rest = 1 }\n").unwrap_err();
        assert!(none.contains("has no marker input"), "{none}");
    }

    #[test]
    fn event_codes_refuse_marker_streams_of_several_channels() {
        let text = "[sources.amp]\nkind = \"lsl\"\ntype = \"EEG\"\nchannels = 2\nrate = 100\n[sinks.live]\nkind = \"lsl\"\ninputs = [\"amp.events\"]\nevent_codes = { lost = 1 }\n";
        let error = pipeline::parse("t.toml", text).unwrap_err().to_string();
        assert!(
            error.contains("`amp.events` has 3 string channels"),
            "{error}"
        );
        assert!(error.contains("another `lsl` sink"), "{error}");
    }

    #[test]
    fn outlet_channels_carry_the_types_and_units_mne_lsl_reads() {
        use super::outlet_channel;
        use crate::stream::Channel;
        for ((label, unit, kind), (want_unit, want_kind)) in [
            (("Fp1", "microvolts", "EEG"), ("microvolts", "eeg")),
            (("Fp1", "µV", "EEG"), ("microvolts", "eeg")),
            (("ECG", "mV", "ECG"), ("millivolts", "ecg")),
            (("EDA", "uS", "GSR"), ("microsiemens", "gsr")),
            (("TEMP", "degC", "TEMP"), ("degC", "temperature")),
            (("RESP", "percent", "RESP"), ("percent", "resp")),
            (("Marker", "", "Markers"), ("", "stim")),
            (("PPG", "arbitrary", "PPG"), ("arbitrary", "PPG")),
            (
                ("Fp1_alpha", "log10(microvolts^2)", "Feature"),
                ("log10(microvolts^2)", "Feature"),
            ),
            (("coverage", "fraction", "Quality"), ("fraction", "Quality")),
            (
                ("joy", "probability", "Emotion"),
                ("probability", "Emotion"),
            ),
            (("gsr_mean", "uS", "Feature"), ("uS", "Feature")),
        ] {
            let out = outlet_channel(&Channel::new(label, unit, kind));
            assert_eq!(
                out,
                Channel::new(label, want_unit, want_kind),
                "{label} {unit} {kind}"
            );
        }
    }

    #[test]
    fn per_subject_outlets_need_the_subject_in_their_ids() {
        let error = parse("source_id = \"fixed\"\n").unwrap_err();
        assert!(error.contains("must contain {subject}"), "{error}");
        let ok = parse("layout = \"subject_channel\"\nsource_id = \"fixed\"\n");
        assert!(ok.is_ok(), "{ok:?}");
    }
}
