//! `condition_means`: per subject and experimental condition, the number of windows and the mean
//! of every input channel, kept up to date on differential-dataflow as windows and markers arrive,
//! markers that come late or are corrected included.
//!
//! **Inputs.** One or more numeric streams of windows (a model's emotion distribution, feature
//! streams; at most 100 rows per second each, since every row is kept) and exactly one marker
//! (string) stream, in any order.
//!
//! **Conditions** are declared, so the output schema is fixed before anything runs. `conditions`
//! is a list of names or a table of name -> marker value; `start` (default `"{condition}"`) and
//! `end` are the marker texts, `{condition}` standing for the value. A condition's intervals come
//! from its markers in one of two ways:
//! - `epoch_s = [from, to]`: each start marker at time `m` opens the epoch `[m + from, m + to)`
//!   (epochs of one condition may overlap; a window in two of them counts once).
//! - `end = "..."`: a start marker opens the condition and the next end marker of the same
//!   condition closes it (`[start, end)`); a start while open and an end while closed are ignored;
//!   at one instant an end comes before a start (back-to-back presentations). A condition still
//!   open extends to the end of time, so the running condition's means update live.
//!
//! A window belongs to a condition when its time, the row's `t` (for windowed features: the
//! window's end), falls in one of the condition's intervals. A channel's mean is over the
//! windows where it is finite (NaN features are left out); it is NaN when there are none.
//!
//! **Late and corrected markers.** A marker may name the time it refers to and may be retracted:
//! - `stimulus_start:clip_03` happened when it arrived (its sample's timestamp);
//! - `stimulus_start:clip_03@12.5` happened at 12.5 s of event time (as `t` in the jsonl sink),
//!   whenever it arrives;
//! - `retract:stimulus_start:clip_03@12.5` withdraws that marker (the text and the time name it).
//!
//! A marker counts while its insertions outnumber its retractions (a retraction that comes first
//! cancels the insertion that follows). `@` followed by anything but a finite number of seconds
//! within ±9e9 s is part of the marker text. Inside the dataflow each marker is an update of a
//! differential collection (diff +1, or -1 for a retraction) at the time it arrived; windows join
//! the condition intervals the markers imply and are reduced per subject, condition and input, so
//! a late marker moves earlier windows between conditions and the means are corrected.
//!
//! **Output** (stream named after the operator, irregular rate): a subject's first row comes with
//! its first input row (every condition empty), then one row each time its aggregates change, at
//! the event time of the change: a window's `t`, or the arrival time of a marker (not its `@`
//! time). Channels, per condition in declaration order: `<condition>/windows` (the count), then
//! `<condition>/<label>` per input channel (the mean); with two or more numeric inputs every input
//! has its own count and labels are `<condition>/<input>.windows`, `<condition>/<input>.<label>`.
//! Sums are taken in window-time order, so the values do not depend on arrival order or worker
//! count. Every window row of the session is kept (a late marker may claim any of them): about
//! `8 * channels` bytes per row.
//!
//! ```toml
//! [operators.by_clip]
//! kind = "condition_means"
//! inputs = ["helo", "sim.markers"]          # numeric windows, and one marker stream
//! conditions = ["clip_01", "clip_02"]       # or a table: { neutral = "1", disgust = "2" }
//! start = "stimulus_start:{condition}"      # default "{condition}"
//! end = "stimulus_end:{condition}"          # or epoch_s = [0.0, 6.0] after each start marker
//! ```

use std::collections::HashMap;

use differential_dataflow::{AsCollection, VecCollection};
use serde::{Deserialize, Serialize};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator as _;

use super::{DataflowOperator, FragmentPorts, Operator, OperatorLogic, PortError, PortSite};
use crate::config::document::Node;
use crate::config::options::Options;
use crate::runtime::BatchStream;
use crate::sources::playback::MAX_TIME_S;
use crate::stream::{
    secs_to_nanos, Batch, Channel, ChannelFormat, Modality, Nanos, Rate, StreamSchema, Values,
    FEATURE_KIND, NANOS_PER_SEC,
};

/// The prefix of a marker that withdraws an earlier one.
pub const RETRACT_PREFIX: &str = "retract:";

/// What `{condition}` in `start` and `end` stands for.
const PLACEHOLDER: &str = "{condition}";

/// The largest `|from|`, `|to|` of `epoch_s`, seconds (a day).
const EPOCH_LIMIT_S: f64 = 86_400.0;

/// The shortest epoch, seconds (a millisecond, as the shortest window).
const MIN_EPOCH_S: f64 = 0.001;

/// At most this many conditions (each adds its channels to every output row).
const MAX_CONDITIONS: usize = 256;

/// The fastest numeric input: every row is kept, so raw signals belong in a feature operator first.
const MAX_INPUT_RATE_HZ: f64 = 100.0;

/// One declared condition and the marker texts that delimit it.
#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    /// The name used in output labels.
    pub name: String,
    /// The marker that starts it (an epoch's onset).
    pub start: String,
    /// The marker that ends it (start/end rule only).
    pub end: Option<String>,
}

/// How a condition's intervals follow from its markers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum IntervalRule {
    /// Each start marker at `m` opens `[m + from, m + to)`.
    Epoch {
        /// Offset of the epoch's start from the onset, nanoseconds.
        from: Nanos,
        /// Offset of the epoch's end from the onset, nanoseconds.
        to: Nanos,
    },
    /// A start marker opens the condition, the next end marker closes it.
    StartEnd,
}

/// Options of a `condition_means` operator.
#[derive(Clone, Debug, PartialEq)]
pub struct ConditionMeansConfig {
    /// The conditions, in output order.
    pub conditions: Vec<Condition>,
    /// How markers delimit them.
    pub rule: IntervalRule,
}

/// A marker sample read as an update of the marker collection.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MarkerUpdate<'a> {
    /// The marker's text, without `retract:` and `@<seconds>`.
    pub text: &'a str,
    /// When it happened: its `@` time, else its arrival.
    pub time: Nanos,
    /// +1 for a marker, -1 for a retraction.
    pub diff: isize,
}

impl<'a> MarkerUpdate<'a> {
    /// Reads a marker sample that arrived at `arrival` (see the module docs for the convention).
    pub fn parse(raw: &'a str, arrival: Nanos) -> Self {
        let (diff, rest) = match raw.strip_prefix(RETRACT_PREFIX) {
            Some(rest) => (-1, rest),
            None => (1, raw),
        };
        let stated = rest.rsplit_once('@').and_then(|(text, seconds)| {
            let seconds: f64 = seconds.trim().parse().ok()?;
            (seconds.is_finite() && seconds.abs() <= MAX_TIME_S)
                .then(|| (text, secs_to_nanos(seconds)))
        });
        let (text, time) = stated.unwrap_or((rest, arrival));
        MarkerUpdate { text, time, diff }
    }
}

impl ConditionMeansConfig {
    /// Reads `conditions`, `start`, and `end` or `epoch_s`.
    pub fn parse(options: &mut Options) -> Self {
        let named = parse_conditions(options);
        let start = options
            .string("start")
            .map_or_else(|| PLACEHOLDER.to_string(), |s| s.into_inner());
        let end = options.string("end").map(|s| s.into_inner());
        let epoch = options
            .raw("epoch_s")
            .map(|_| options.number_list("epoch_s"));
        let rule = match (&end, epoch) {
            (Some(_), Some(_)) => {
                options.error_at(
                    "end",
                    "`condition_means` takes either `end` markers or `epoch_s`, not both",
                    "use end = \"...\" for conditions that last until a marker, or epoch_s = [from, to] for a fixed epoch after each start marker",
                );
                IntervalRule::StartEnd
            }
            (None, None) => {
                options.error_at(
                    "epoch_s",
                    "`condition_means` needs `epoch_s` (an epoch after each start marker) or `end` (the marker that closes a condition)",
                    "for example epoch_s = [0.0, 6.0], or end = \"stimulus_end:{condition}\"",
                );
                IntervalRule::StartEnd
            }
            (Some(_), None) => IntervalRule::StartEnd,
            (None, Some(numbers)) => parse_epoch(options, numbers),
        };
        let conditions: Vec<Condition> = named
            .into_iter()
            .map(|(name, value)| Condition {
                start: start.replace(PLACEHOLDER, &value),
                end: end.as_ref().map(|e| e.replace(PLACEHOLDER, &value)),
                name,
            })
            .collect();
        check_markers(options, &conditions);
        ConditionMeansConfig { conditions, rule }
    }

    /// The condition and edge (start or end) a marker text stands for, by text.
    fn edges(&self) -> HashMap<String, (u32, Edge)> {
        let mut edges = HashMap::new();
        for (index, condition) in self.conditions.iter().enumerate() {
            edges.insert(condition.start.clone(), (index as u32, Edge::Start));
            if let (Some(end), IntervalRule::StartEnd) = (&condition.end, self.rule) {
                edges.insert(end.clone(), (index as u32, Edge::End));
            }
        }
        edges
    }
}

/// `conditions`: a list of names (each its own marker value) or a table name -> value.
fn parse_conditions(options: &mut Options) -> Vec<(String, String)> {
    let help = "write conditions = [\"clip_01\", \"clip_02\"], or conditions = { neutral = \"1\", disgust = \"2\" }";
    let Some(node) = options.raw("conditions") else {
        options.error_at(
            "conditions",
            "`condition_means` is missing the required option `conditions`",
            help,
        );
        return Vec::new();
    };
    let mut named: Vec<(String, String)> = Vec::new();
    let entries: Vec<(String, std::ops::Range<usize>, Option<String>)> = match node.get_ref() {
        Node::Array(items) => items
            .iter()
            .map(|item| match item.get_ref() {
                Node::Str(s) => (s.clone(), item.span(), Some(s.clone())),
                other => (other.describe(), item.span(), None),
            })
            .collect(),
        Node::Table(entries) => entries
            .iter()
            .map(|(key, value)| match value.get_ref() {
                Node::Str(s) => (key.get_ref().clone(), value.span(), Some(s.clone())),
                _ => (key.get_ref().clone(), value.span(), None),
            })
            .collect(),
        other => {
            options.error_at(
                "conditions",
                format!(
                    "`conditions` must be a list of names or a table of marker values, found {}",
                    other.describe()
                ),
                help,
            );
            return Vec::new();
        }
    };
    for (name, span, value) in entries {
        let problem = match &value {
            None => Some("must be a string".to_string()),
            Some(_) if name.is_empty() => Some("has an empty name".to_string()),
            Some(_) if name.contains('/') => Some(format!(
                "\"{name}\" contains `/`, which separates condition and channel in output labels"
            )),
            Some(v) if v.is_empty() => Some(format!("\"{name}\" has an empty marker value")),
            Some(_) if named.iter().any(|(n, _)| *n == name) => {
                Some(format!("\"{name}\" is listed twice"))
            }
            Some(_) => None,
        };
        match (problem, value) {
            (Some(problem), _) => {
                options.error_at_span(span, format!("condition {problem}"), help);
            }
            (None, Some(value)) => named.push((name, value)),
            (None, None) => {}
        }
    }
    if named.len() > MAX_CONDITIONS {
        options.error_at(
            "conditions",
            format!(
                "`conditions` lists {} conditions, more than {MAX_CONDITIONS}",
                named.len()
            ),
            "aggregate fewer conditions per operator",
        );
    } else if named.is_empty() && !matches!(node.get_ref(), Node::Array(a) if !a.is_empty()) {
        options.error_at("conditions", "`conditions` is empty", help);
    }
    named
}

/// `epoch_s = [from, to]`: seconds relative to the onset, `from < to` by a millisecond or more,
/// each within a day.
fn parse_epoch(options: &mut Options, numbers: Option<Vec<f64>>) -> IntervalRule {
    let fallback = IntervalRule::Epoch {
        from: 0,
        to: NANOS_PER_SEC,
    };
    let Some(numbers) = numbers else {
        return fallback;
    };
    match numbers[..] {
        [from, to]
            if from.abs() <= EPOCH_LIMIT_S
                && to.abs() <= EPOCH_LIMIT_S
                && to - from >= MIN_EPOCH_S =>
        {
            IntervalRule::Epoch {
                from: secs_to_nanos(from),
                to: secs_to_nanos(to),
            }
        }
        _ => {
            options.error_at(
                "epoch_s",
                format!(
                    "`epoch_s` must be [from, to] in seconds from each start marker, with from < to (by {MIN_EPOCH_S} s or more), both between -{EPOCH_LIMIT_S} and {EPOCH_LIMIT_S}, found {numbers:?}"
                ),
                "for example epoch_s = [0.0, 6.0]",
            );
            fallback
        }
    }
}

/// Every marker text names one edge of one condition and reads back as itself (no `retract:`
/// prefix, no `@<seconds>` suffix).
fn check_markers(options: &mut Options, conditions: &[Condition]) {
    let mut seen: HashMap<&str, &str> = HashMap::new();
    for condition in conditions {
        let texts = std::iter::once(("start", &condition.start))
            .chain(condition.end.as_ref().map(|end| ("end", end)));
        for (key, text) in texts {
            let parsed = MarkerUpdate::parse(text, 0);
            let clash = seen.insert(text, &condition.name);
            let problem = if text.is_empty() {
                Some(format!(
                    "the {key} marker of condition \"{}\" is empty",
                    condition.name
                ))
            } else if parsed.diff != 1 || parsed.text != text.as_str() {
                Some(format!(
                    "the {key} marker \"{text}\" of condition \"{}\" would read as a retraction or a stated time (`{RETRACT_PREFIX}`, `@<seconds>`)",
                    condition.name
                ))
            } else {
                clash.map(|other| {
                    if other == condition.name {
                        format!(
                            "condition \"{other}\" starts and ends at the same marker \"{text}\""
                        )
                    } else {
                        format!(
                            "conditions \"{other}\" and \"{}\" both use the marker \"{text}\"",
                            condition.name
                        )
                    }
                })
            };
            if let Some(problem) = problem {
                let at = if options.value_span(key).is_some() {
                    key
                } else {
                    "conditions"
                };
                options.error_at(
                    at,
                    problem,
                    format!("give every condition its own markers, e.g. {key} = \"stimulus_{key}:{PLACEHOLDER}\""),
                );
            }
        }
    }
}

/// Which edge of a condition a marker is: at one instant, ends sort before starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
enum Edge {
    /// Closes the condition (start/end rule).
    End,
    /// Opens the condition, or an epoch.
    Start,
}

/// The intervals `[from, to)` one condition's present markers give, from markers sorted by
/// (time, edge).
fn condition_intervals(
    rule: IntervalRule,
    markers: impl IntoIterator<Item = (Nanos, Edge)>,
) -> Vec<(Nanos, Nanos)> {
    let mut intervals = Vec::new();
    match rule {
        IntervalRule::Epoch { from, to } => {
            for (time, edge) in markers {
                if edge == Edge::Start {
                    intervals.push((time.saturating_add(from), time.saturating_add(to)));
                }
            }
        }
        IntervalRule::StartEnd => {
            let mut open: Option<Nanos> = None;
            for (time, edge) in markers {
                match (edge, open) {
                    (Edge::Start, None) => open = Some(time),
                    (Edge::End, Some(start)) => {
                        if start < time {
                            intervals.push((start, time));
                        }
                        open = None;
                    }
                    _ => {}
                }
            }
            if let Some(start) = open {
                intervals.push((start, Nanos::MAX));
            }
        }
    }
    intervals
}

/// Values with a total order (by `f64::total_cmp`), so rows can be differential-dataflow data.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Row(Vec<f64>);

impl Ord for Row {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let by_value = self.0.iter().zip(&other.0).map(|(a, b)| a.total_cmp(b));
        by_value
            .chain(std::iter::once(self.0.len().cmp(&other.0.len())))
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    }
}

impl PartialOrd for Row {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Row {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for Row {}

impl std::hash::Hash for Row {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        for value in &self.0 {
            value.to_bits().hash(state);
        }
    }
}

/// The window count and per-channel means of the windows given in time order (each once).
fn window_means<'a>(width: usize, rows: impl IntoIterator<Item = &'a [f64]>) -> (u64, Vec<f64>) {
    let mut sums = vec![0.0; width];
    let mut finite = vec![0u64; width];
    let mut windows = 0u64;
    for row in rows {
        windows += 1;
        for ((sum, count), value) in sums.iter_mut().zip(&mut finite).zip(row) {
            if value.is_finite() {
                *sum += value;
                *count += 1;
            }
        }
    }
    let means = sums
        .iter()
        .zip(&finite)
        .map(|(sum, &count)| {
            if count == 0 {
                f64::NAN
            } else {
                sum / count as f64
            }
        })
        .collect();
    (windows, means)
}

/// Where each input port's rows go: a numeric input (its index among them and width), or markers.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Port {
    Numeric { index: u32, width: usize },
    Markers,
}

/// The input ports of a `condition_means` fragment, in input order, and each numeric input's
/// offset inside one condition's block of output channels.
#[derive(Clone, Debug)]
struct Layout {
    ports: Vec<Port>,
    offsets: Vec<usize>,
    block: usize,
    conditions: usize,
}

impl Layout {
    fn new(inputs: &[StreamSchema], conditions: usize) -> Layout {
        let mut ports = Vec::new();
        let (mut offsets, mut block) = (Vec::new(), 0);
        for input in inputs {
            if input.format.is_numeric() {
                ports.push(Port::Numeric {
                    index: offsets.len() as u32,
                    width: input.channel_count(),
                });
                offsets.push(block);
                block += 1 + input.channel_count();
            } else {
                ports.push(Port::Markers);
            }
        }
        Layout {
            ports,
            offsets,
            block,
            conditions,
        }
    }

    /// One output row: every condition empty, then the aggregates filled in.
    fn row<'a>(&self, aggregates: impl IntoIterator<Item = (u32, u32, u64, &'a Row)>) -> Vec<f64> {
        let mut row = vec![f64::NAN; self.block * self.conditions];
        for condition in 0..self.conditions {
            for offset in &self.offsets {
                row[condition * self.block + offset] = 0.0;
            }
        }
        for (condition, input, windows, means) in aggregates {
            let start = condition as usize * self.block + self.offsets[input as usize];
            row[start] = windows as f64;
            row[start + 1..start + 1 + means.0.len()].copy_from_slice(&means.0);
        }
        row
    }
}

impl Operator for ConditionMeansConfig {
    /// Output: per condition, the window count and the mean of every numeric input channel.
    fn output_schema(
        &self,
        name: &str,
        inputs: &[&StreamSchema],
    ) -> Result<StreamSchema, PortError> {
        let markers: Vec<usize> = (0..inputs.len())
            .filter(|&i| !inputs[i].format.is_numeric())
            .collect();
        let numeric: Vec<&StreamSchema> = inputs
            .iter()
            .copied()
            .filter(|s| s.format.is_numeric())
            .collect();
        if markers.len() != 1 || numeric.is_empty() {
            return Err(PortError {
                site: PortSite::Inputs,
                message: format!(
                    "`condition_means` takes one or more numeric streams and exactly one marker stream, found {} numeric and {} marker streams",
                    numeric.len(),
                    markers.len()
                ),
                help: "list windowed streams (features, a model's output) and one marker stream, e.g. inputs = [\"helo\", \"sim.markers\"]".into(),
            });
        }
        for (index, input) in inputs.iter().enumerate() {
            if let Some(hz) = input
                .rate
                .hz()
                .filter(|&hz| input.format.is_numeric() && hz > MAX_INPUT_RATE_HZ)
            {
                return Err(PortError::input(
                    index,
                    format!(
                        "`condition_means` keeps every row it averages, and `{}` has {hz} rows per second (at most {MAX_INPUT_RATE_HZ})",
                        input.name
                    ),
                    "average windowed features: put a feature operator (window_stats, heart_rate_variability, ...) in between",
                ));
            }
        }
        let mut channels: Vec<Channel> = Vec::new();
        for condition in &self.conditions {
            for input in &numeric {
                let prefix = if numeric.len() > 1 {
                    format!("{}/{}.", condition.name, input.name)
                } else {
                    format!("{}/", condition.name)
                };
                channels.push(Channel::new(
                    format!("{prefix}windows"),
                    "count",
                    FEATURE_KIND,
                ));
                for c in &input.channels {
                    channels.push(Channel {
                        label: format!("{prefix}{}", c.label),
                        ..c.clone()
                    });
                }
            }
        }
        for (index, channel) in channels.iter().enumerate() {
            if channels[..index].iter().any(|c| c.label == channel.label) {
                let input = inputs
                    .iter()
                    .position(|s| {
                        s.channels
                            .iter()
                            .any(|c| channel.label.ends_with(&format!("/{}", c.label)))
                    })
                    .unwrap_or(0);
                return Err(PortError::input(
                    input,
                    format!(
                        "two output channels would be called `{}` (a channel named `windows`?)",
                        channel.label
                    ),
                    "select or rename the channels upstream",
                ));
            }
        }
        let mut subjects: Vec<String> = Vec::new();
        for input in inputs {
            for subject in &input.subjects {
                if !subjects.contains(subject) {
                    subjects.push(subject.clone());
                }
            }
        }
        Ok(StreamSchema {
            name: name.to_string(),
            modality: Modality::Features,
            channels,
            format: ChannelFormat::Double64,
            rate: Rate::Irregular,
            subjects,
        })
    }

    fn logic(
        &self,
        _inputs: &[&StreamSchema],
        _output_id: u32,
        _output: &StreamSchema,
        _subject: &str,
    ) -> Box<dyn OperatorLogic> {
        Box::new(FragmentOnly)
    }

    fn dataflow(&self) -> Option<&dyn DataflowOperator> {
        Some(self)
    }
}

/// `condition_means` runs as a dataflow fragment ([`Operator::dataflow`]): the runtime never asks
/// it for per-subject logic, and this one would emit nothing.
struct FragmentOnly;

impl OperatorLogic for FragmentOnly {
    fn on_batch(&mut self, _input: usize, _batch: &Batch, _out: &mut Vec<Batch>) {}

    fn on_frontier(&mut self, _frontier: Nanos, _out: &mut Vec<Batch>) {}
}

/// Differential updates from the input batches: `each` turns one batch, whose samples may not be
/// stamped before `floor` (the batch's timely time), into `(data, time, diff)` updates.
fn updates<'s, D, F>(
    input: &BatchStream<'s>,
    name: &str,
    mut each: F,
) -> VecCollection<'s, Nanos, D>
where
    D: Clone + 'static,
    F: FnMut(&Batch, Nanos, &mut Vec<(D, Nanos, isize)>) + 'static,
{
    input
        .clone()
        .unary::<CapacityContainerBuilder<Vec<(D, Nanos, isize)>>, _, _, _>(
            Pipeline,
            name,
            move |_, _| {
                let mut buffer = Vec::new();
                move |input, output| {
                    input.for_each(|cap, data| {
                        let floor = cap.least().copied().unwrap_or(Nanos::MIN);
                        for batch in data.iter() {
                            each(batch, floor, &mut buffer);
                        }
                        output.session(&cap).give_iterator(buffer.drain(..));
                    });
                }
            },
        )
        .as_collection()
}

/// A subject's part of the output row: `None` says the subject has input, `Some` is one
/// condition's aggregate of one input (condition, input, windows, means).
type Part = Option<(u32, u32, u64, Row)>;

impl DataflowOperator for ConditionMeansConfig {
    fn build<'s>(&self, input: BatchStream<'s>, ports: &FragmentPorts) -> BatchStream<'s> {
        let layout = Layout::new(&ports.inputs, self.conditions.len());
        let port_of = {
            let ids = ports.input_ids.clone();
            let layout = layout.clone();
            move |batch: &Batch| {
                ids.iter()
                    .position(|&id| id == batch.stream)
                    .map(|p| layout.ports[p])
            }
        };
        let name = &ports.name;

        // Windows: (subject, (input, t, values)) at t.
        let windows_port = port_of.clone();
        let windows = updates(
            &input,
            &format!("{name}: windows"),
            move |batch, floor, out| {
                let Some(Port::Numeric { index, width }) = windows_port(batch) else {
                    return;
                };
                let Values::Numeric(values) = &batch.values else {
                    return;
                };
                for (&time, row) in batch
                    .timestamps
                    .iter()
                    .zip(values.chunks_exact(width.max(1)))
                {
                    let data = (batch.subject.clone(), (index, time, Row(row.to_vec())));
                    out.push((data, time.max(floor), 1));
                }
            },
        );

        // Condition markers: ((subject, condition), (time, edge)) at their arrival, +1 or -1.
        let edges = self.edges();
        let markers_port = port_of.clone();
        let markers = updates(
            &input,
            &format!("{name}: markers"),
            move |batch, floor, out| {
                if markers_port(batch) != Some(Port::Markers) {
                    return;
                }
                let Values::Text(texts) = &batch.values else {
                    return;
                };
                for (&arrival, raw) in batch.timestamps.iter().zip(texts) {
                    let marker = MarkerUpdate::parse(raw, arrival);
                    if let Some(&(condition, edge)) = edges.get(marker.text) {
                        let data = ((batch.subject.clone(), condition), (marker.time, edge));
                        out.push((data, arrival.max(floor), marker.diff));
                    }
                }
            },
        );

        // Every input sample says its subject exists (so an emptied subject still gets a row).
        let seen = updates(
            &input,
            &format!("{name}: subjects"),
            move |batch, floor, out| {
                for &time in &batch.timestamps {
                    out.push((
                        (batch.subject.clone(), None::<(u32, u32, u64, Row)>),
                        time.max(floor),
                        1,
                    ));
                }
            },
        );

        // A marker is present while its insertions outnumber its retractions.
        let rule = self.rule;
        let intervals = markers
            .threshold(|_, count| isize::from(*count > 0))
            .reduce(move |_, present, output| {
                let sorted = present.iter().map(|(marker, _)| **marker);
                for interval in condition_intervals(rule, sorted) {
                    output.push((interval, 1isize));
                }
            })
            .map(|((subject, condition), (from, to))| (subject, (condition, from, to)));

        // Windows in a condition's intervals, reduced per subject, condition and input.
        let widths: Vec<usize> = layout
            .ports
            .iter()
            .filter_map(|p| match p {
                Port::Numeric { width, .. } => Some(*width),
                Port::Markers => None,
            })
            .collect();
        let aggregates = windows
            .join_core(intervals.arrange_by_key(), |subject, window, interval| {
                let (input, time, row) = window;
                let &(condition, from, to) = interval;
                (from <= *time && *time < to)
                    .then(|| ((subject.clone(), condition, *input), (*time, row.clone())))
            })
            .reduce(move |key: &(String, u32, u32), members, output| {
                let width = widths[key.2 as usize];
                let rows = members.iter().map(|((_, row), _)| row.0.as_slice());
                let (count, means) = window_means(width, rows);
                output.push(((count, Row(means)), 1isize));
            })
            .map(|((subject, condition, input), (count, means))| {
                (subject, Some((condition, input, count, means)))
            });

        // One row per subject: every condition's aggregates side by side.
        let rows = aggregates
            .concat(seen)
            .reduce(move |_, parts: &[(&Part, isize)], output| {
                let filled = parts
                    .iter()
                    .filter_map(|(part, _)| part.as_ref())
                    .map(|(c, i, n, means)| (*c, *i, *n, means));
                output.push((Row(layout.row(filled)), 1isize));
            });

        let output_id = ports.output_id;
        rows.inner
            .unary::<CapacityContainerBuilder<Vec<Batch>>, _, _, _>(
                Pipeline,
                &format!("{name}: rows"),
                move |_, _| {
                    move |input, output| {
                        input.for_each(|cap, data| {
                            let rows = data.drain(..).filter(|(_, _, diff)| *diff > 0);
                            let batches = rows.map(|((subject, row), time, _)| Batch {
                                stream: output_id,
                                subject,
                                timestamps: vec![time],
                                values: Values::Numeric(row.0),
                            });
                            output.session(&cap).give_iterator(batches);
                        });
                    }
                },
            )
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    use proptest::prelude::*;
    use timely::dataflow::operators::core::{Input, Inspect, Probe};

    use super::*;
    use crate::operators::OperatorConfig;
    use crate::stream::nanos_to_secs;

    const PIPELINE: &str = "[sources.sim]\nkind = \"simulator\"\nstreams = [\"emotion\", \"markers\"]\nduration_s = 1\n\n[operators.w]\nkind = \"window_stats\"\ninputs = [\"sim.emotion\"]\nstats = [\"mean\"]\n\n[sinks.out]\nkind = \"jsonl\"\ninputs = [\"c\"]\n\n[operators.c]\nkind = \"condition_means\"\n";

    /// The `condition_means` config of a pipeline whose operator `c` has `options`, or the errors.
    fn parse(options: &str) -> Result<(ConditionMeansConfig, StreamSchema), String> {
        let text = format!("{PIPELINE}inputs = [\"w\", \"sim.markers\"]\n{options}");
        let pipeline = crate::pipeline::parse("t.toml", &text).map_err(|e| e.to_string())?;
        let node = pipeline.operators.iter().find(|n| n.name == "c").unwrap();
        let OperatorConfig::ConditionMeans(config) = &node.config else {
            panic!("not condition_means")
        };
        Ok((
            config.clone(),
            pipeline.streams[node.output as usize].clone(),
        ))
    }

    fn error(options: &str) -> String {
        parse(options).expect_err("accepted").to_string()
    }

    #[test]
    fn reads_both_rules_and_names_the_channels() {
        let (config, schema) = parse(
            "conditions = [\"clip_01\", \"clip_02\"]\nstart = \"stimulus_start:{condition}\"\nend = \"stimulus_end:{condition}\"\n",
        )
        .unwrap();
        assert_eq!(config.rule, IntervalRule::StartEnd);
        assert_eq!(config.conditions[1].start, "stimulus_start:clip_02");
        assert_eq!(
            config.conditions[1].end.as_deref(),
            Some("stimulus_end:clip_02")
        );
        assert_eq!(schema.channels.len(), 2 * 11);
        assert_eq!(schema.channels[0].label, "clip_01/windows");
        assert_eq!(schema.channels[1].label, "clip_01/neutral");
        assert_eq!(schema.channels[11].label, "clip_02/windows");
        assert_eq!(schema.rate, Rate::Irregular);

        let (config, _) =
            parse("conditions = { neutral = \"1\", disgust = \"2\" }\nepoch_s = [-0.5, 6]\n")
                .unwrap();
        assert_eq!(
            config.rule,
            IntervalRule::Epoch {
                from: -NANOS_PER_SEC / 2,
                to: 6 * NANOS_PER_SEC
            }
        );
        let names: Vec<_> = config
            .conditions
            .iter()
            .map(|c| (&*c.name, &*c.start))
            .collect();
        assert_eq!(names, [("neutral", "1"), ("disgust", "2")]);
    }

    #[test]
    fn bad_options_are_located_errors() {
        let cases = [
            ("conditions = [\"a\"]\n", "needs `epoch_s`"),
            (
                "conditions = [\"a\"]\nend = \"x\"\nepoch_s = [0, 1]\n",
                "not both",
            ),
            ("conditions = [\"a\"]\nepoch_s = [1, 1]\n", "from < to"),
            (
                "conditions = [\"a\"]\nepoch_s = [0, 1e-4]\n",
                "0.001 s or more",
            ),
            (
                "conditions = [\"a\"]\nepoch_s = [0, 1e6]\n",
                "between -86400 and 86400",
            ),
            ("conditions = [\"a\"]\nepoch_s = [0]\n", "[from, to]"),
            ("conditions = [\"a\"]\nepoch_s = [0, nan]\n", "[from, to]"),
            (
                "epoch_s = [0, 1]\n",
                "missing the required option `conditions`",
            ),
            (
                "conditions = []\nepoch_s = [0, 1]\n",
                "`conditions` is empty",
            ),
            (
                "conditions = [\"a\", \"a\"]\nepoch_s = [0, 1]\n",
                "listed twice",
            ),
            ("conditions = [\"a/b\"]\nepoch_s = [0, 1]\n", "contains `/`"),
            (
                "conditions = [\"a\", 3]\nepoch_s = [0, 1]\n",
                "must be a string",
            ),
            (
                "conditions = \"a\"\nepoch_s = [0, 1]\n",
                "a list of names or a table",
            ),
            (
                "conditions = [\"a\", \"b\"]\nstart = \"go\"\nepoch_s = [0, 1]\n",
                "both use the marker \"go\"",
            ),
            (
                "conditions = [\"a\"]\nend = \"{condition}\"\n",
                "starts and ends at the same marker \"a\"",
            ),
            (
                "conditions = [\"a@1\"]\nepoch_s = [0, 1]\n",
                "would read as a retraction",
            ),
            (
                "conditions = [\"a\"]\nstart = \"retract:{condition}\"\nepoch_s = [0, 1]\n",
                "would read as a retraction",
            ),
        ];
        for (options, expected) in cases {
            let message = error(options);
            assert!(message.contains(expected), "{options}: {message}");
            assert!(
                message.contains("t.toml:"),
                "{options}: not located: {message}"
            );
        }
        let too_many: Vec<String> = (0..=MAX_CONDITIONS).map(|i| format!("\"c{i}\"")).collect();
        let message = error(&format!(
            "conditions = [{}]\nepoch_s = [0, 1]\n",
            too_many.join(", ")
        ));
        assert!(message.contains("more than 256"), "{message}");
    }

    #[test]
    fn inputs_are_checked() {
        let conditions = "conditions = [\"a\"]\nepoch_s = [0, 1]\n";
        let text = format!("{PIPELINE}inputs = [\"w\"]\n{conditions}");
        let message = crate::pipeline::parse("t.toml", &text)
            .unwrap_err()
            .to_string();
        assert!(message.contains("exactly one marker stream"), "{message}");
        let text = format!("{PIPELINE}inputs = [\"sim.markers\", \"sim.emotion\"]\n{conditions}");
        assert!(
            crate::pipeline::parse("t.toml", &text).is_ok(),
            "10 Hz, markers first"
        );
        let text = format!(
            "{}inputs = [\"w\", \"sim.emotion\", \"sim.markers\"]\n{conditions}",
            PIPELINE.replace(
                "\"emotion\", \"markers\"",
                "\"emotion\", \"markers\", \"eeg\""
            )
        );
        let pipeline = crate::pipeline::parse("t.toml", &text).unwrap();
        let node = pipeline.operators.iter().find(|n| n.name == "c").unwrap();
        let labels = pipeline.streams[node.output as usize].labels();
        assert_eq!(labels[0], "a/w.windows");
        assert_eq!(labels[11], "a/sim.emotion.windows");
        let text = format!("{}inputs = [\"sim.eeg\", \"sim.markers\"]\n{conditions}", PIPELINE.replace("\"emotion\", \"markers\"", "\"eeg\", \"markers\"").replace("[operators.w]\nkind = \"window_stats\"\ninputs = [\"sim.emotion\"]\nstats = [\"mean\"]\n\n", ""));
        let message = crate::pipeline::parse("t.toml", &text)
            .unwrap_err()
            .to_string();
        assert!(message.contains("300 rows per second"), "{message}");
    }

    #[test]
    fn markers_follow_the_convention() {
        let at = |s: f64| secs_to_nanos(s);
        assert_eq!(
            MarkerUpdate::parse("stimulus_start:clip_03", at(20.0)),
            MarkerUpdate {
                text: "stimulus_start:clip_03",
                time: at(20.0),
                diff: 1
            }
        );
        assert_eq!(
            MarkerUpdate::parse("stimulus_start:clip_03@12.5", at(20.0)),
            MarkerUpdate {
                text: "stimulus_start:clip_03",
                time: at(12.5),
                diff: 1
            }
        );
        assert_eq!(
            MarkerUpdate::parse("retract:stimulus_start:clip_03@12.5", at(30.0)),
            MarkerUpdate {
                text: "stimulus_start:clip_03",
                time: at(12.5),
                diff: -1
            }
        );
        assert_eq!(
            MarkerUpdate::parse("retract:1", at(3.0)),
            MarkerUpdate {
                text: "1",
                time: at(3.0),
                diff: -1
            }
        );
        for text in ["mail@example.org", "x@inf", "x@nan", "x@1e10", "x@"] {
            assert_eq!(
                MarkerUpdate::parse(text, 7),
                MarkerUpdate {
                    text,
                    time: 7,
                    diff: 1
                }
            );
        }
    }

    #[test]
    fn start_end_pairs_and_epochs() {
        use Edge::{End, Start};
        let s = NANOS_PER_SEC;
        let markers = [
            (s, Start),
            (2 * s, Start),
            (3 * s, End),
            (3 * s, Start),
            (4 * s, End),
            (5 * s, End),
            (6 * s, Start),
        ];
        assert_eq!(
            condition_intervals(IntervalRule::StartEnd, markers),
            [(s, 3 * s), (3 * s, 4 * s), (6 * s, Nanos::MAX)]
        );
        let epoch = IntervalRule::Epoch {
            from: -s,
            to: 2 * s,
        };
        assert_eq!(
            condition_intervals(epoch, markers),
            [(0, 3 * s), (s, 4 * s), (2 * s, 5 * s), (5 * s, 8 * s)]
        );
    }

    /// A marker event as the proptest generates it: what it says and when it arrives.
    #[derive(Clone, Debug)]
    struct Event {
        subject: usize,
        condition: usize,
        edge: Edge,
        /// When it happened (seconds).
        time: f64,
        /// How much later it arrives (seconds; 0 = on time, written without `@`).
        delay: f64,
        /// Retracted this long after its arrival, and then re-inserted this long after that,
        /// possibly at a corrected time.
        retraction: Option<(f64, Option<(f64, f64)>)>,
    }

    /// One marker row: subject, arrival (seconds), the text, and what it means for the batch side
    /// (text, time, diff).
    type MarkerRow = (usize, f64, String, Option<(usize, Edge, f64, isize)>);

    fn marker_text(config: &ConditionMeansConfig, condition: usize, edge: Edge) -> String {
        let c = &config.conditions[condition];
        match edge {
            Edge::Start => c.start.clone(),
            Edge::End => c.end.clone().unwrap_or_else(|| format!("end:{}", c.name)),
        }
    }

    /// The marker rows the events give, in arrival order per subject.
    fn marker_rows(config: &ConditionMeansConfig, events: &[Event]) -> Vec<MarkerRow> {
        let mut rows: Vec<MarkerRow> = Vec::new();
        for e in events {
            let text = marker_text(config, e.condition, e.edge);
            // Epochs have no end marker: its text is just another marker.
            let counts = e.edge == Edge::Start || config.rule == IntervalRule::StartEnd;
            let meaning =
                |time: f64, diff: isize| counts.then_some((e.condition, e.edge, time, diff));
            let arrival = e.time + e.delay;
            let written = if e.delay == 0.0 {
                text.clone()
            } else {
                format!("{text}@{}", e.time)
            };
            rows.push((e.subject, arrival, written, meaning(e.time, 1)));
            if let Some((after, again)) = e.retraction {
                let retracted_at = arrival + after;
                rows.push((
                    e.subject,
                    retracted_at,
                    format!("retract:{text}@{}", e.time),
                    meaning(e.time, -1),
                ));
                if let Some((after, corrected)) = again {
                    rows.push((
                        e.subject,
                        retracted_at + after,
                        format!("{text}@{corrected}"),
                        meaning(corrected, 1),
                    ));
                }
            }
            rows.push((e.subject, e.time + 0.25, "unrelated@3".into(), None));
        }
        rows.sort_by(|a, b| a.1.total_cmp(&b.1));
        rows
    }

    /// A window row: subject, input, time (seconds), values.
    type WindowRow = (usize, u32, f64, Vec<f64>);

    /// The rows the operator should emit, recomputed from scratch at every time something arrives.
    fn batch_recomputation(
        config: &ConditionMeansConfig,
        widths: &[usize],
        windows: &[WindowRow],
        markers: &[MarkerRow],
        subjects: usize,
    ) -> Vec<(Nanos, String, Vec<u64>)> {
        let mut out = Vec::new();
        for subject in 0..subjects {
            let mut times: Vec<Nanos> = windows
                .iter()
                .filter(|w| w.0 == subject)
                .map(|w| secs_to_nanos(w.2))
                .chain(
                    markers
                        .iter()
                        .filter(|m| m.0 == subject)
                        .map(|m| secs_to_nanos(m.1)),
                )
                .collect();
            times.sort_unstable();
            times.dedup();
            let mut previous: Option<Vec<u64>> = None;
            for &now in &times {
                let row = state_at(config, widths, windows, markers, subject, now);
                let bits: Vec<u64> = row.iter().map(|v| v.to_bits()).collect();
                if previous.as_ref() != Some(&bits) {
                    out.push((now, format!("S{subject}"), bits.clone()));
                    previous = Some(bits);
                }
            }
        }
        out.sort();
        out
    }

    /// The output row of `subject` from everything that arrived by `now`.
    fn state_at(
        config: &ConditionMeansConfig,
        widths: &[usize],
        windows: &[WindowRow],
        markers: &[MarkerRow],
        subject: usize,
        now: Nanos,
    ) -> Vec<f64> {
        let mut counts: BTreeMap<(usize, u8, Nanos), isize> = BTreeMap::new();
        for (s, arrival, _, meaning) in markers {
            if let (true, Some((condition, edge, time, diff))) =
                (*s == subject && secs_to_nanos(*arrival) <= now, meaning)
            {
                *counts
                    .entry((*condition, *edge as u8, secs_to_nanos(*time)))
                    .or_default() += diff;
            }
        }
        let mut row = Vec::new();
        for condition in 0..config.conditions.len() {
            let mut present: Vec<(Nanos, u8)> = counts
                .iter()
                .filter(|(k, &n)| k.0 == condition && n > 0)
                .map(|(k, _)| (k.2, k.1))
                .collect();
            present.sort();
            let mut spans = Vec::new();
            match config.rule {
                IntervalRule::Epoch { from, to } => {
                    spans.extend(present.iter().map(|&(t, _)| (t + from, t + to)));
                }
                IntervalRule::StartEnd => {
                    let mut open = None;
                    for (t, edge) in present {
                        if edge == Edge::Start as u8 && open.is_none() {
                            open = Some(t);
                        } else if edge == Edge::End as u8 {
                            if let Some(start) = open.take() {
                                spans.push((start, t));
                            }
                        }
                    }
                    spans.extend(open.map(|start| (start, Nanos::MAX)));
                }
            }
            for (input, &width) in widths.iter().enumerate() {
                let mut members: Vec<&WindowRow> = windows
                    .iter()
                    .filter(|w| w.0 == subject && w.1 as usize == input)
                    .filter(|w| secs_to_nanos(w.2) <= now)
                    .filter(|w| {
                        spans
                            .iter()
                            .any(|&(a, b)| a <= secs_to_nanos(w.2) && secs_to_nanos(w.2) < b)
                    })
                    .collect();
                members.sort_by(|a, b| a.2.total_cmp(&b.2));
                row.push(members.len() as f64);
                for channel in 0..width {
                    let finite: Vec<f64> = members
                        .iter()
                        .map(|w| w.3[channel])
                        .filter(|v| v.is_finite())
                        .collect();
                    row.push(if finite.is_empty() {
                        f64::NAN
                    } else {
                        finite.iter().fold(0.0, |sum, v| sum + v) / finite.len() as f64
                    });
                }
            }
        }
        row
    }

    fn numeric_schema(name: &str, width: usize) -> StreamSchema {
        StreamSchema {
            name: name.into(),
            modality: Modality::Features,
            channels: (0..width)
                .map(|i| Channel::new(format!("f{i}"), "", FEATURE_KIND))
                .collect(),
            format: ChannelFormat::Double64,
            rate: Rate::Regular(1.0),
            subjects: vec![],
        }
    }

    /// Runs the fragment on `workers` timely workers: each batch is sent at its timely time (at or
    /// before its sample). Returns every output row (time, subject, value bits), checking that each
    /// travelled no later than its timestamp.
    fn run_fragment(
        config: &ConditionMeansConfig,
        widths: &[usize],
        feed: Vec<(Nanos, Batch)>,
        workers: usize,
    ) -> Vec<(Nanos, String, Vec<u64>)> {
        let mut inputs: Vec<StreamSchema> = widths
            .iter()
            .enumerate()
            .map(|(i, &w)| numeric_schema(&format!("in{i}"), w))
            .collect();
        inputs.insert(
            1,
            StreamSchema {
                name: "markers".into(),
                modality: Modality::Markers,
                channels: vec![Channel::new("marker", "", "Markers")],
                format: ChannelFormat::String,
                rate: Rate::Irregular,
                subjects: vec![],
            },
        );
        let refs: Vec<&StreamSchema> = inputs.iter().collect();
        let output = config.output_schema("means", &refs).unwrap();
        let ports = FragmentPorts {
            name: "means".into(),
            input_ids: (0..inputs.len() as u32).collect(),
            inputs,
            output_id: 99,
            output,
        };
        let (config, feed) = (config.clone(), Arc::new(feed));
        let rows = Arc::new(Mutex::new(Vec::new()));
        let collected = rows.clone();
        timely::execute(timely::Config::process(workers), move |worker| {
            let rows = collected.clone();
            let (mut input, probe) = worker.dataflow::<Nanos, _, _>(|scope| {
                let (input, stream) = scope.new_input::<Vec<Batch>>();
                let probe = config
                    .build(stream, &ports)
                    .inspect_core(move |event| {
                        let Ok((stamp, batches)) = event else { return };
                        let sent = *stamp.least().unwrap();
                        for batch in batches {
                            assert!(
                                sent <= batch.timestamps[0],
                                "sent at {sent} after {batch:?}"
                            );
                            assert_eq!(batch.stream, 99);
                            let Values::Numeric(values) = &batch.values else {
                                panic!()
                            };
                            let bits = values.iter().map(|v| v.to_bits()).collect();
                            rows.lock().unwrap().push((
                                batch.timestamps[0],
                                batch.subject.clone(),
                                bits,
                            ));
                        }
                    })
                    .probe()
                    .0;
                (input, probe)
            });
            if worker.index() == 0 {
                for (time, batch) in feed.iter() {
                    if *time > *input.time() {
                        input.advance_to(*time);
                    }
                    input.send(batch.clone());
                    worker.step();
                }
            }
            drop(input);
            while !probe.done() {
                worker.step();
            }
        })
        .unwrap()
        .join()
        .into_iter()
        .for_each(|r| r.unwrap());
        let mut rows = Arc::try_unwrap(rows).unwrap().into_inner().unwrap();
        rows.sort();
        rows
    }

    /// The batches of windows and markers, each sent `early` seconds before its first sample
    /// (never before the previous send), in send order.
    fn feed(
        widths: &[usize],
        windows: &[WindowRow],
        markers: &[MarkerRow],
        early: &[f64],
    ) -> Vec<(Nanos, Batch)> {
        let mut batches: Vec<(Nanos, Batch)> = Vec::new();
        for (subject, input, time, values) in windows {
            let stream = if *input == 0 { 0 } else { *input + 1 };
            assert_eq!(values.len(), widths[*input as usize]);
            batches.push((
                secs_to_nanos(*time),
                Batch {
                    stream,
                    subject: format!("S{subject}"),
                    timestamps: vec![secs_to_nanos(*time)],
                    values: Values::Numeric(values.clone()),
                },
            ));
        }
        for (subject, arrival, text, _) in markers {
            batches.push((
                secs_to_nanos(*arrival),
                Batch {
                    stream: 1,
                    subject: format!("S{subject}"),
                    timestamps: vec![secs_to_nanos(*arrival)],
                    values: Values::Text(vec![text.clone()]),
                },
            ));
        }
        batches.sort_by_key(|(time, b)| (*time, b.stream, b.subject.clone()));
        for (i, (time, _)) in batches.iter_mut().enumerate() {
            *time -= secs_to_nanos(early[i % early.len()]);
        }
        let mut floor = Nanos::MIN;
        for (time, _) in batches.iter_mut() {
            floor = floor.max(*time);
            *time = floor;
        }
        batches
    }

    fn events() -> impl Strategy<Value = Vec<Event>> {
        let event = (
            0..2usize,
            0..2usize,
            prop_oneof![Just(Edge::Start), Just(Edge::End)],
            0..80u32,
            prop_oneof![Just(0.0), (1..30u32).prop_map(|d| d as f64 * 0.5)],
            proptest::option::of((
                (1..20u32).prop_map(|d| d as f64 * 0.5),
                proptest::option::of((
                    (1..20u32).prop_map(|d| d as f64 * 0.5),
                    (0..80u32).prop_map(|t| t as f64 * 0.5),
                )),
            )),
        );
        proptest::collection::vec(event, 0..14).prop_map(|events| {
            events
                .into_iter()
                .map(
                    |(subject, condition, edge, time, delay, retraction)| Event {
                        subject,
                        condition,
                        edge,
                        time: time as f64 * 0.5,
                        delay,
                        retraction,
                    },
                )
                .collect()
        })
    }

    fn windows() -> impl Strategy<Value = Vec<WindowRow>> {
        let value =
            prop_oneof![8 => (-1000..1000i32).prop_map(|v| v as f64 / 7.0), 1 => Just(f64::NAN)];
        proptest::collection::vec(
            (
                0..2usize,
                0..2u32,
                0..45u32,
                proptest::collection::vec(value, 2),
            ),
            0..60,
        )
        .prop_map(|rows| {
            let mut seen = std::collections::BTreeSet::new();
            rows.into_iter()
                .filter(|(s, i, t, _)| seen.insert((*s, *i, *t)))
                .map(|(s, i, t, mut v)| {
                    v.truncate(if i == 0 { 2 } else { 1 });
                    (s, i, t as f64, v)
                })
                .collect()
        })
    }

    fn config(epoch: bool) -> ConditionMeansConfig {
        let conditions = ["x", "y"]
            .iter()
            .map(|name| Condition {
                name: name.to_string(),
                start: format!("go:{name}"),
                end: (!epoch).then(|| format!("stop:{name}")),
            })
            .collect();
        let rule = if epoch {
            IntervalRule::Epoch {
                from: -NANOS_PER_SEC,
                to: 4 * NANOS_PER_SEC,
            }
        } else {
            IntervalRule::StartEnd
        };
        ConditionMeansConfig { conditions, rule }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Every row the operator emits, intermediate ones included, equals the batch recomputation
        /// over what had arrived by then, with markers late, retracted and re-inserted, sent at
        /// uneven timely times, on one and on three workers.
        #[test]
        fn equals_a_batch_recomputation(
            epoch in any::<bool>(),
            events in events(),
            windows in windows(),
            early in proptest::collection::vec(prop_oneof![Just(0.0), Just(0.3), Just(2.0)], 1..5),
        ) {
            let config = config(epoch);
            let widths = [2, 1];
            let markers = marker_rows(&config, &events);
            let expected = batch_recomputation(&config, &widths, &windows, &markers, 2);
            let batches = feed(&widths, &windows, &markers, &early);
            let one = run_fragment(&config, &widths, batches.clone(), 1);
            prop_assert_eq!(&one, &expected, "markers {:?}", markers);
            let three = run_fragment(&config, &widths, batches, 3);
            prop_assert_eq!(&three, &expected);
        }
    }

    #[test]
    fn a_late_marker_moves_earlier_windows_and_a_retraction_moves_them_back() {
        let config = config(false);
        let windows: Vec<WindowRow> = (1..=10)
            .map(|t| (0, 0, t as f64, vec![t as f64, 1.0]))
            .collect();
        let markers: Vec<MarkerRow> = vec![
            (0, 2.0, "go:x".into(), Some((0, Edge::Start, 2.0, 1))),
            (0, 8.5, "stop:x@5".into(), Some((0, Edge::End, 5.0, 1))),
            (
                0,
                9.5,
                "retract:stop:x@5".into(),
                Some((0, Edge::End, 5.0, -1)),
            ),
        ];
        let rows = run_fragment(&config, &[2], feed(&[2], &windows, &markers, &[0.0]), 2);
        let at = |t: f64| -> Vec<f64> {
            let row = rows.iter().rev().find(|r| r.0 <= secs_to_nanos(t)).unwrap();
            row.2.iter().map(|b| f64::from_bits(*b)).collect()
        };
        // Before the end marker arrives, x holds windows 2..=8; at 8.5 s the end at 5 s leaves 2..=4.
        assert_eq!(at(8.0)[..2], [7.0, 5.0]);
        assert_eq!(at(8.5)[..2], [3.0, 3.0]);
        // Window 9 arrives after the end: x is unchanged; the retraction at 9.5 s reopens x.
        assert_eq!(at(9.0)[..2], [3.0, 3.0]);
        assert_eq!(at(9.5)[..2], [8.0, 5.5]);
        assert!(at(10.0)[4].is_nan() && at(10.0)[3] == 0.0, "y is empty");
        assert_eq!(
            rows,
            batch_recomputation(&config, &[2], &windows, &markers, 1)
        );
        assert!(rows.iter().all(|r| nanos_to_secs(r.0) >= 1.0));
    }
}
