//! Live counters shared between sources, the dataflow and the status line.
//!
//! Plain atomics, written by one thread each and read by the status reporter and by
//! [`crate::telemetry`] (Prometheus `/metrics`, `heloflow top`) at scrape time.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::pipeline::{Pipeline, StreamId};
use crate::stream::{Nanos, Rate};
use crate::telemetry::histogram::Histogram;

/// Counters of one source.
#[derive(Debug, Default)]
pub struct SourceMetrics {
    /// Samples handed to the dataflow.
    pub samples: AtomicU64,
    /// Samples dropped because the queue was full (policy `drop_oldest`).
    pub dropped: AtomicU64,
    /// Samples a file source could not play (out of order, non-finite times).
    pub unplayable: AtomicU64,
    /// When a realtime source was due to have sent what it is sending now: 1 + nanoseconds since
    /// [`epoch`], or 0 (not a realtime source, or nothing due). A source blocked by a full queue
    /// falls further behind while it waits.
    pub due_ns: AtomicI64,
    /// The most it was ever behind, nanoseconds.
    pub max_behind_ns: AtomicI64,
    /// Event time up to which the source has produced everything (nanoseconds).
    pub watermark: AtomicI64,
    /// Per matched stream figures of network sources (LSL inlets); empty for other sources.
    pub inlets: Mutex<Vec<InletStats>>,
    /// Batches waiting in the source's queue, as last seen by the source or the dataflow.
    pub queued: AtomicU64,
    /// The most batches its queue ever held.
    pub queue_peak: AtomicU64,
    /// Counters per output stream, in output order (empty when made without the pipeline).
    pub outputs: Vec<StreamCounters>,
    /// When the source handed its first samples on (a file source: after reading its file), so
    /// a benchmark can time from the first chunk in, as the peers it is compared with do.
    pub first_sent: OnceLock<Instant>,
}

/// Counters of one stream a source produces.
#[derive(Debug, Default)]
pub struct StreamCounters {
    /// The stream.
    pub stream: StreamId,
    /// Its nominal sample interval (regular streams), nanoseconds: samples of one subject
    /// further apart than twice this are a gap.
    pub period_ns: Option<Nanos>,
    /// Samples handed to the dataflow.
    pub samples: AtomicU64,
    /// Samples dropped because the queue was full.
    pub dropped: AtomicU64,
    /// Gaps in event time: consecutive samples of one subject more than two nominal intervals
    /// apart.
    pub gaps: AtomicU64,
    /// Event time lost in those gaps (interval minus one nominal interval), nanoseconds.
    pub gap_ns: AtomicU64,
}

/// The instant realtime sources' due times are counted from: an hour before its first use (when
/// the clock allows), so that a source's earlier due times count too.
pub fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(|| {
        let now = Instant::now();
        now.checked_sub(Duration::from_secs(3600)).unwrap_or(now)
    })
}

fn nanos_since_epoch(at: Instant) -> i64 {
    i64::try_from(at.saturating_duration_since(epoch()).as_nanos()).unwrap_or(i64::MAX - 1)
}

impl SourceMetrics {
    /// The counters of output stream `stream`, when kept.
    pub fn output(&self, stream: StreamId) -> Option<&StreamCounters> {
        self.outputs.iter().find(|o| o.stream == stream)
    }

    /// Notes the queue's depth (batches) now.
    pub fn note_queued(&self, depth: usize) {
        let depth = depth as u64;
        self.queued.store(depth, Ordering::Relaxed);
        self.queue_peak.fetch_max(depth, Ordering::Relaxed);
    }

    /// Notes when what a realtime source sends now was due by the wall clock; `None` when it has
    /// nothing more to send (it ended).
    pub fn note_due(&self, due: Option<Instant>) {
        let due = due.map_or(0, |at| nanos_since_epoch(at) + 1);
        self.due_ns.store(due, Ordering::Relaxed);
        self.behind_now();
    }

    /// Notes that a realtime source reads its data `behind` the wall clock now (an LSL stream
    /// read late).
    pub fn note_behind(&self, behind: Duration) {
        let now = Instant::now();
        self.note_due(Some(now.checked_sub(behind).unwrap_or(now)));
    }

    /// How far the source is behind the wall clock now (zero when on time or not realtime); keeps
    /// the largest seen.
    pub fn behind_now(&self) -> Duration {
        let due = self.due_ns.load(Ordering::Relaxed);
        if due == 0 {
            return Duration::ZERO;
        }
        let behind = (nanos_since_epoch(Instant::now()) + 1)
            .saturating_sub(due)
            .max(0);
        self.max_behind_ns.fetch_max(behind, Ordering::Relaxed);
        Duration::from_nanos(behind as u64)
    }
}

/// Live figures of one network stream a source reads (one LSL inlet), for telemetry.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InletStats {
    /// Stream name.
    pub name: String,
    /// The stream's `source_id`.
    pub source_id: String,
    /// The pipeline stream its samples feed.
    pub stream: StreamId,
    /// Subject the stream feeds.
    pub subject: String,
    /// Last clock offset (`time_correction`) added to its timestamps, seconds.
    pub clock_offset_s: f64,
    /// RMS deviation of sample intervals from the nominal interval, seconds (regular streams).
    pub jitter_s: f64,
    /// Measured rate over the current unbroken segment, Hz.
    pub effective_rate_hz: f64,
    /// Samples received.
    pub samples: u64,
    /// Gaps seen (the stream went silent longer than the stall timeout), the last one possibly
    /// still open (then `live` is false).
    pub gaps: u64,
    /// Total event time lost in the gaps that ended, seconds.
    pub gap_s: f64,
    /// Samples dropped because their timestamps could not be placed, by reason.
    pub dropped: TimestampDrops,
    /// Clock steps of the sender seen (its stamps jumped against the local clock and stayed).
    pub clock_steps: u64,
    /// Seconds added to its stamps because of those steps.
    pub clock_shift_s: f64,
    /// Whether data is flowing now (false while the stream is silent).
    pub live: bool,
}

/// Samples of a network stream dropped because their timestamps could not be placed in event
/// time, by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimestampDrops {
    /// Before event time already passed, or before the stream's previous sample (by less than a
    /// clock step).
    pub late: u64,
    /// Stamped after their arrival on the local clock (beyond the tolerance), and no clock step
    /// followed.
    pub ahead: u64,
    /// Stamped well before the stream's previous sample, and no clock step followed.
    pub behind: u64,
    /// Stamped with a non-finite time or one beyond event time's range.
    pub invalid: u64,
}

impl TimestampDrops {
    /// Every sample dropped.
    pub fn total(&self) -> u64 {
        self.late + self.ahead + self.behind + self.invalid
    }

    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &TimestampDrops) {
        self.late += other.late;
        self.ahead += other.ahead;
        self.behind += other.behind;
        self.invalid += other.invalid;
    }
}

/// Samples a run dropped, by reason: what the summary and the status line show.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Drops {
    /// A source's queue was full (policy `drop_oldest`).
    pub queue_full: u64,
    /// A file source could not play them.
    pub unplayable: u64,
    /// A network stream's timestamps could not be placed in event time.
    pub timestamps: TimestampDrops,
    /// An operator had already emitted their place in its output.
    pub late_in_operators: u64,
}

impl Drops {
    /// Every sample dropped.
    pub fn total(&self) -> u64 {
        self.queue_full + self.unplayable + self.timestamps.total() + self.late_in_operators
    }
}

/// `N samples dropped`, then the non-zero reasons in parentheses: `12 samples dropped (10 ahead
/// of the clock, 2 late)`.
impl std::fmt::Display for Drops {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} samples dropped", self.total())?;
        let t = &self.timestamps;
        let reasons: Vec<String> = [
            (self.queue_full, "queue full"),
            (self.unplayable, "unplayable"),
            (t.late, "late"),
            (t.ahead, "ahead of the clock"),
            (t.behind, "behind earlier samples"),
            (t.invalid, "without a valid time"),
            (self.late_in_operators, "late at an operator"),
        ]
        .into_iter()
        .filter(|(count, _)| *count > 0)
        .map(|(count, why)| format!("{count} {why}"))
        .collect();
        if !reasons.is_empty() {
            write!(f, " ({})", reasons.join(", "))?;
        }
        Ok(())
    }
}

/// Counters of one sink.
#[derive(Debug, Default)]
pub struct SinkMetrics {
    /// Rows written.
    pub rows: AtomicU64,
    /// Whether the destination was closed by its reader (a broken pipe): later rows are lost.
    pub closed: AtomicBool,
    /// Rows not written because the destination was closed.
    pub unwritten: AtomicU64,
    /// Rows written per input, in the sink's input order (empty when made without the pipeline).
    pub inputs: Vec<AtomicU64>,
    /// Per input produced by an operator: wall-clock time from the operator seeing the frontier
    /// that closed a window (its `on_frontier` call) to the sink's flush of that window's rows.
    /// `None` for inputs from sources.
    pub window_latency: Vec<Option<Histogram>>,
}

/// Counters of one operator.
#[derive(Debug)]
pub struct OperatorMetrics {
    /// Samples it emitted.
    pub samples_out: AtomicU64,
    /// Input samples it dropped as late (see [`PipelineMetrics::late_in_operators`]).
    pub late: AtomicU64,
    /// Wall-clock time from seeing a frontier advance that emitted rows to handing them on
    /// (its work, and a model's yield and inference); one observation per such advance.
    pub emit_latency: Histogram,
    /// Model operators: time of each inference run.
    pub inference: Histogram,
    /// Model operators: rows (subject windows) scored together per run.
    pub batch_rows: Histogram,
    /// Model operators: the execution provider running the model, once it is open.
    pub provider: OnceLock<&'static str>,
}

impl Default for OperatorMetrics {
    fn default() -> Self {
        OperatorMetrics {
            samples_out: AtomicU64::new(0),
            late: AtomicU64::new(0),
            emit_latency: Histogram::latency(),
            inference: Histogram::latency(),
            batch_rows: Histogram::batch_sizes(),
            provider: OnceLock::new(),
        }
    }
}

/// Counters of a whole pipeline run.
#[derive(Debug, Default)]
pub struct PipelineMetrics {
    /// One entry per source, in pipeline order.
    pub sources: Vec<Arc<SourceMetrics>>,
    /// One entry per sink, in pipeline order.
    pub sinks: Vec<SinkMetrics>,
    /// The live taps' sink (rows published to the server), not counted in [`Self::rows_out`].
    pub tap: SinkMetrics,
    /// One entry per operator, in pipeline order (empty when made without the pipeline).
    pub operators: Vec<OperatorMetrics>,
    /// Samples operators dropped because they came after their place in the output had been
    /// emitted (sources drop late samples first, so this stays 0 unless something is wrong).
    pub late_in_operators: AtomicU64,
}

impl PipelineMetrics {
    /// Zeroed counters for `sources` sources and `sinks` sinks.
    pub fn new(sources: usize, sinks: usize) -> Self {
        PipelineMetrics {
            sources: (0..sources)
                .map(|_| {
                    Arc::new(SourceMetrics {
                        watermark: AtomicI64::new(i64::MIN),
                        ..SourceMetrics::default()
                    })
                })
                .collect(),
            sinks: (0..sinks).map(|_| SinkMetrics::default()).collect(),
            tap: SinkMetrics::default(),
            operators: Vec::new(),
            late_in_operators: AtomicU64::new(0),
        }
    }

    /// Zeroed counters shaped for `pipeline`: per source output stream, per operator, per sink
    /// input (what telemetry exports).
    pub fn for_pipeline(pipeline: &Pipeline) -> Arc<Self> {
        let mut metrics = PipelineMetrics::new(pipeline.sources.len(), pipeline.sinks.len());
        for (source, node) in metrics.sources.iter_mut().zip(&pipeline.sources) {
            let outputs = node
                .outputs
                .iter()
                .map(|&stream| StreamCounters {
                    stream,
                    period_ns: match pipeline.streams[stream as usize].rate {
                        Rate::Regular(hz) if hz > 0.0 => Some((1e9 / hz).round() as Nanos),
                        _ => None,
                    },
                    ..StreamCounters::default()
                })
                .collect();
            if let Some(source) = Arc::get_mut(source) {
                source.outputs = outputs;
            }
        }
        let produced_by_operator = |id: StreamId| pipeline.operators.iter().any(|o| o.output == id);
        for (sink, node) in metrics.sinks.iter_mut().zip(&pipeline.sinks) {
            sink.inputs = node.inputs.iter().map(|_| AtomicU64::new(0)).collect();
            sink.window_latency = node
                .inputs
                .iter()
                .map(|&id| produced_by_operator(id).then(Histogram::latency))
                .collect();
        }
        metrics.operators = pipeline
            .operators
            .iter()
            .map(|_| OperatorMetrics::default())
            .collect();
        Arc::new(metrics)
    }

    /// Whether these counters were made for `pipeline` (the same sources, operators and sinks).
    pub fn fits(&self, pipeline: &Pipeline) -> bool {
        self.sources.len() == pipeline.sources.len()
            && self.sinks.len() == pipeline.sinks.len()
            && self.operators.len() == pipeline.operators.len()
            && self.sources.iter().zip(&pipeline.sources).all(|(m, node)| {
                m.outputs
                    .iter()
                    .map(|o| o.stream)
                    .eq(node.outputs.iter().copied())
            })
            && self
                .sinks
                .iter()
                .zip(&pipeline.sinks)
                .all(|(m, node)| m.inputs.len() == node.inputs.len())
    }

    /// What one process of a cluster run counted that process 0's summary adds up: per source
    /// its samples and drops (also per output stream), per operator its rows out and late
    /// samples, and the operators' late drops, in pipeline order. Every process of a run has
    /// the same pipeline, so the same shape.
    pub fn cluster_counts(&self) -> Vec<u64> {
        self.counters().map(|c| c.load(Ordering::Relaxed)).collect()
    }

    /// Adds another process's [`PipelineMetrics::cluster_counts`] to these; refuses counts of
    /// another shape.
    pub fn add_cluster_counts(&self, counts: &[u64]) -> Result<(), String> {
        let mine = self.counters().count();
        if counts.len() != mine {
            return Err(format!(
                "{} counters, where this pipeline has {mine}",
                counts.len()
            ));
        }
        for (counter, &count) in self.counters().zip(counts) {
            counter.fetch_add(count, Ordering::Relaxed);
        }
        Ok(())
    }

    /// The counters [`PipelineMetrics::cluster_counts`] carries, in its order.
    fn counters(&self) -> impl Iterator<Item = &AtomicU64> {
        let sources = self.sources.iter().flat_map(|source| {
            [&source.samples, &source.dropped, &source.unplayable]
                .into_iter()
                .chain(
                    source
                        .outputs
                        .iter()
                        .flat_map(|o| [&o.samples, &o.dropped, &o.gaps, &o.gap_ns]),
                )
        });
        let operators = self
            .operators
            .iter()
            .flat_map(|operator| [&operator.samples_out, &operator.late]);
        sources
            .chain(operators)
            .chain(std::iter::once(&self.late_in_operators))
    }

    /// Total samples produced by all sources.
    pub fn samples_in(&self) -> u64 {
        self.sources
            .iter()
            .map(|s| s.samples.load(Ordering::Relaxed))
            .sum()
    }

    /// Total samples dropped, for every reason.
    pub fn dropped(&self) -> u64 {
        self.drops().total()
    }

    /// Samples dropped so far, by reason.
    pub fn drops(&self) -> Drops {
        let mut drops = Drops {
            late_in_operators: self.late_in_operators.load(Ordering::Relaxed),
            ..Drops::default()
        };
        for source in &self.sources {
            drops.queue_full += source.dropped.load(Ordering::Relaxed);
            drops.unplayable += source.unplayable.load(Ordering::Relaxed);
            if let Ok(inlets) = source.inlets.lock() {
                for inlet in inlets.iter() {
                    drops.timestamps.add(&inlet.dropped);
                }
            }
        }
        drops
    }

    /// How far the realtime sources are behind the wall clock now, and the most they ever were,
    /// seconds (the worst source).
    pub fn behind_real_time_s(&self) -> (f64, f64) {
        let now = self
            .sources
            .iter()
            .map(|s| s.behind_now())
            .max()
            .unwrap_or_default();
        let most = self
            .sources
            .iter()
            .map(|s| s.max_behind_ns.load(Ordering::Relaxed))
            .max()
            .unwrap_or(0);
        (now.as_secs_f64(), most.max(0) as f64 / 1e9)
    }

    /// Total rows written by all sinks.
    pub fn rows_out(&self) -> u64 {
        self.sinks
            .iter()
            .map(|s| s.rows.load(Ordering::Relaxed))
            .sum()
    }

    /// The least watermark over all sources (how far event time has progressed).
    pub fn event_time(&self) -> Option<i64> {
        self.sources
            .iter()
            .map(|s| s.watermark.load(Ordering::Relaxed))
            .min()
            .filter(|t| *t != i64::MIN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_are_counted_and_shown_by_reason() {
        let metrics = PipelineMetrics::new(2, 0);
        metrics.sources[0].dropped.store(3, Ordering::Relaxed);
        metrics.sources[1].inlets.lock().unwrap().push(InletStats {
            dropped: TimestampDrops {
                ahead: 50,
                late: 2,
                ..TimestampDrops::default()
            },
            ..InletStats::default()
        });
        assert_eq!(metrics.dropped(), 55);
        assert_eq!(
            metrics.drops().to_string(),
            "55 samples dropped (3 queue full, 2 late, 50 ahead of the clock)"
        );
        metrics.late_in_operators.store(4, Ordering::Relaxed);
        assert_eq!(
            metrics.drops().to_string(),
            "59 samples dropped (3 queue full, 2 late, 50 ahead of the clock, 4 late at an operator)"
        );
        assert_eq!(Drops::default().to_string(), "0 samples dropped");
    }

    #[test]
    fn falling_behind_real_time_keeps_its_worst() {
        let metrics = PipelineMetrics::new(1, 0);
        assert_eq!(metrics.behind_real_time_s(), (0.0, 0.0));
        metrics.sources[0].note_behind(Duration::from_secs(3));
        let (now, most) = metrics.behind_real_time_s();
        assert!((3.0..3.5).contains(&now) && (3.0..3.5).contains(&most));
        metrics.sources[0].note_due(None);
        let (now, most) = metrics.behind_real_time_s();
        assert!(now == 0.0 && (3.0..3.5).contains(&most));
    }
}
