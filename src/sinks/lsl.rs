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
//! model = { name = "HeLo", version = "1.0" }          # written to desc/model
//! ```
//!
//! One channel per input channel with its label, unit and type in `desc/channels`; `desc` also has
//! `subject`, `heloflow/{pipeline,stream,version}` and `model`. Timestamps are the rows' event time
//! (for windowed streams the end of the window described). liblsl objects are not `Send`, so the
//! outlets live on a dedicated thread and the writer forwards rows to it on every flush.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{bounded, unbounded, Receiver, Sender};
use lsl::{ExPushable, StreamInfo, StreamOutlet};

use super::{Row, RowOrder, RowValues, Sink, SinkContext, SinkWriter};
use crate::config::options::Options;
use crate::config::PortError;
use crate::sources::lsl::metadata::lsl_format;
use crate::sources::selection::MAX_SUBJECTS;
use crate::stream::{nanos_to_secs, ChannelFormat, Nanos, StreamSchema};

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
    /// Model name and version for `desc/model`.
    pub model: Option<(String, String)>,
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
        let model = options
            .table("model", |model| {
                let name = model.string("name").map(|n| n.into_inner());
                let version = model.string("version").map(|v| v.into_inner());
                (name.unwrap_or_default(), version.unwrap_or_default())
            })
            .filter(|(name, _)| !name.is_empty());
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
            model,
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
        let outlets = match self.layout {
            Layout::SubjectChannel => inputs.len(),
            Layout::PerSubject => inputs.len() * self.known_subjects(inputs).len(),
        };
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
        Ok(Box::new(self.for_pipeline(run.pipeline).start(inputs)?))
    }
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
    fn start(&self, inputs: &[StreamSchema]) -> Result<LslWriter, String> {
        let refs: Vec<&StreamSchema> = inputs.iter().collect();
        let plan = OutletPlan {
            config: self.clone(),
            subjects: self.known_subjects(&refs),
            inputs: inputs.to_vec(),
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
}

impl OutletPlan {
    fn run(
        self,
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
        if outlets.values().any(StreamOutlet::have_consumers) {
            std::thread::sleep(self.config.linger());
        }
        Ok(())
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
            outlets.insert(key.clone(), outlet);
        }
        Ok(&outlets[&key])
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
        let count = schema.channel_count() + usize::from(subject_channel);
        let mut info = StreamInfo::new(
            &name,
            &kind,
            count as u32,
            schema.rate.nominal_srate(),
            lsl_format(schema.format),
            &source_id,
        )
        .map_err(|e| format!("cannot describe LSL outlet \"{name}\": {e:?}"))?;
        let mut desc = info.desc();
        let mut channels = desc.append_child("channels");
        if subject_channel {
            let mut channel = channels.append_child("channel");
            channel.append_child_value("label", "subject");
            channel.append_child_value(
                "unit",
                if schema.format.is_numeric() {
                    "index"
                } else {
                    ""
                },
            );
            channel.append_child_value("type", "Subject");
        }
        for c in &schema.channels {
            let mut channel = channels.append_child("channel");
            channel.append_child_value("label", &c.label);
            channel.append_child_value("unit", &c.unit);
            channel.append_child_value("type", &c.kind);
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
        if let Some((model_name, version)) = &self.config.model {
            let mut model = desc.append_child("model");
            model.append_child_value("name", model_name);
            model.append_child_value("version", version);
        }
        if let Ok(mut own) = OWN_OUTLETS.lock() {
            own.insert(source_id.clone());
        }
        StreamOutlet::new(&info, 0, 360)
            .map_err(|e| format!("cannot create LSL outlet \"{name}\" ({source_id}): {e:?}"))
    }

    fn push(
        &self,
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
        let outlet = self.outlet(outlets, row.input, key_subject)?;
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
        let pipeline = parse("model = { name = \"HeLo\", version = \"1.0\" }\n").expect("valid");
        let SinkConfig::Lsl(config) = &pipeline.sinks[0].config else {
            panic!("an lsl sink");
        };
        let config = config.for_pipeline("p");
        assert_eq!(config.source_id, "heloflow:{pipeline}:{stream}:{subject}");
        assert_eq!(config.model, Some(("HeLo".to_string(), "1.0".to_string())));
        assert_eq!(config.pipeline, "p");
    }

    #[test]
    fn per_subject_outlets_need_the_subject_in_their_ids() {
        let error = parse("source_id = \"fixed\"\n").unwrap_err();
        assert!(error.contains("must contain {subject}"), "{error}");
        let ok = parse("layout = \"subject_channel\"\nsource_id = \"fixed\"\n");
        assert!(ok.is_ok(), "{ok:?}");
    }
}
