//! The `prometheus-client` collector of a run: reads the live counters at scrape time and writes
//! them as metric families (names below, all prefixed `heloflow_`; counters get `_total`).

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;

use super::histogram::HistogramSnapshot;
use super::{Producer, State};
use crate::metrics::{InletStats, TimestampDrops};

/// Reads one run's counters on every scrape.
#[derive(Debug)]
pub struct RunCollector(pub Arc<State>);

type Labels = Vec<(&'static str, String)>;

enum Sample {
    Count(u64),
    Value(f64),
    Histogram(HistogramSnapshot),
}

struct Family {
    name: &'static str,
    help: &'static str,
    kind: MetricType,
    series: Vec<(Labels, Sample)>,
}

impl Family {
    fn new(name: &'static str, kind: MetricType, help: &'static str) -> Self {
        Family {
            name,
            help,
            kind,
            series: Vec::new(),
        }
    }

    fn push(&mut self, labels: Labels, sample: Sample) {
        self.series.push((labels, sample));
    }

    fn encode(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        if self.series.is_empty() {
            return Ok(());
        }
        let mut metric = encoder.encode_descriptor(self.name, self.help, None, self.kind)?;
        for (labels, sample) in &self.series {
            let mut series = metric.encode_family(labels)?;
            match (sample, self.kind) {
                (Sample::Count(v), MetricType::Counter) => ConstCounter::new(*v).encode(series)?,
                (Sample::Value(v), MetricType::Counter) => ConstCounter::new(*v).encode(series)?,
                (Sample::Count(v), _) => ConstGauge::new(*v as f64).encode(series)?,
                (Sample::Value(v), _) => ConstGauge::new(*v).encode(series)?,
                (Sample::Histogram(h), _) => {
                    series.encode_histogram::<NoLabelSet>(h.sum, h.count, &h.buckets, None)?
                }
            }
        }
        Ok(())
    }
}

/// Reasons a sample is dropped, as the `reason` label spells them.
const TIMESTAMP_REASONS: [&str; 4] = ["late", "ahead", "behind", "invalid"];

fn timestamp_counts(drops: &TimestampDrops) -> [u64; 4] {
    [drops.late, drops.ahead, drops.behind, drops.invalid]
}

fn label(key: &'static str, value: &str) -> Labels {
    vec![(key, value.to_string())]
}

impl Collector for RunCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let families = families(&self.0);
        for family in &families {
            family.encode(&mut encoder)?;
        }
        Ok(())
    }
}

/// Every family, read from the counters now.
fn families(state: &State) -> Vec<Family> {
    let mut out = run_families(state);
    out.extend(source_families(state));
    out.extend(stream_families(state));
    out.extend(inlet_families(state));
    out.extend(operator_families(state));
    out.extend(sink_families(state));
    out
}

fn run_families(state: &State) -> Vec<Family> {
    let metrics = &state.metrics;
    let mut info = Family::new(
        "pipeline_info",
        MetricType::Gauge,
        "The pipeline this heloflow process runs (always 1)",
    );
    info.push(
        label("pipeline", &state.layout.pipeline),
        Sample::Value(1.0),
    );
    let mut uptime = Family::new(
        "uptime_seconds",
        MetricType::Gauge,
        "Seconds since the run's telemetry was made",
    );
    uptime.push(
        Vec::new(),
        Sample::Value(state.created.elapsed().as_secs_f64()),
    );
    let mut samples = Family::new(
        "samples_in",
        MetricType::Counter,
        "Samples the sources handed to the dataflow",
    );
    samples.push(Vec::new(), Sample::Count(metrics.samples_in()));
    let mut rows = Family::new(
        "rows_out",
        MetricType::Counter,
        "Rows the pipeline's sinks wrote",
    );
    rows.push(Vec::new(), Sample::Count(metrics.rows_out()));
    let drops = metrics.drops();
    let mut dropped = Family::new(
        "dropped_samples",
        MetricType::Counter,
        "Samples the run dropped, by reason (queue_full, unplayable, late, ahead, behind, invalid, late_in_operator)",
    );
    let reasons = [
        ("queue_full", drops.queue_full),
        ("unplayable", drops.unplayable),
        ("late", drops.timestamps.late),
        ("ahead", drops.timestamps.ahead),
        ("behind", drops.timestamps.behind),
        ("invalid", drops.timestamps.invalid),
        ("late_in_operator", drops.late_in_operators),
    ];
    for (reason, count) in reasons {
        dropped.push(label("reason", reason), Sample::Count(count));
    }
    let (behind_now, behind_most) = metrics.behind_real_time_s();
    let mut behind = Family::new(
        "behind_real_time_seconds",
        MetricType::Gauge,
        "How far the realtime sources are behind the wall clock now (the worst source)",
    );
    behind.push(Vec::new(), Sample::Value(behind_now));
    let mut behind_max = Family::new(
        "behind_real_time_max_seconds",
        MetricType::Gauge,
        "The most a realtime source was ever behind the wall clock",
    );
    behind_max.push(Vec::new(), Sample::Value(behind_most));
    let mut event_time = Family::new(
        "event_time_seconds",
        MetricType::Gauge,
        "Event time every source has passed (the least watermark), seconds",
    );
    if let Some(t) = metrics.event_time() {
        event_time.push(Vec::new(), Sample::Value(t as f64 / 1e9));
    }
    vec![
        info, uptime, samples, rows, dropped, behind, behind_max, event_time,
    ]
}

fn source_families(state: &State) -> Vec<Family> {
    let mut depth = Family::new(
        "queue_depth_batches",
        MetricType::Gauge,
        "Batches waiting in a source's queue to the dataflow",
    );
    let mut peak = Family::new(
        "queue_peak_batches",
        MetricType::Gauge,
        "The most batches a source's queue held",
    );
    let mut capacity = Family::new(
        "queue_capacity_batches",
        MetricType::Gauge,
        "Batches a source's queue holds at most",
    );
    let mut watermark = Family::new(
        "source_watermark_seconds",
        MetricType::Gauge,
        "Event time up to which a source has produced everything, seconds",
    );
    let mut behind = Family::new(
        "source_behind_real_time_seconds",
        MetricType::Gauge,
        "How far a realtime source is behind the wall clock now",
    );
    for (info, metrics) in state.layout.sources.iter().zip(&state.metrics.sources) {
        let source = || label("source", &info.name);
        depth.push(
            source(),
            Sample::Count(metrics.queued.load(Ordering::Relaxed)),
        );
        peak.push(
            source(),
            Sample::Count(metrics.queue_peak.load(Ordering::Relaxed)),
        );
        capacity.push(source(), Sample::Count(info.capacity as u64));
        let mark = metrics.watermark.load(Ordering::Relaxed);
        if mark != i64::MIN && mark != i64::MAX {
            watermark.push(source(), Sample::Value(mark as f64 / 1e9));
        }
        behind.push(source(), Sample::Value(metrics.behind_now().as_secs_f64()));
    }
    vec![depth, peak, capacity, watermark, behind]
}

/// The inlets of every source, each (source, stream, subject) once.
fn inlets(state: &State) -> Vec<(usize, InletStats)> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for (index, metrics) in state.metrics.sources.iter().enumerate() {
        let Ok(inlets) = metrics.inlets.lock() else {
            continue;
        };
        for inlet in inlets.iter() {
            if seen.insert((index, inlet.stream, inlet.subject.clone())) {
                out.push((index, inlet.clone()));
            }
        }
    }
    out
}

fn stream_families(state: &State) -> Vec<Family> {
    let layout = &state.layout;
    let metrics = &state.metrics;
    let inlets = inlets(state);
    let mut samples_in = Family::new(
        "stream_samples_in",
        MetricType::Counter,
        "Samples that entered a stream: handed on by its source, or emitted by its operator",
    );
    let mut samples_out = Family::new(
        "stream_samples_out",
        MetricType::Counter,
        "Samples of a stream a sink wrote",
    );
    let mut dropped = Family::new(
        "stream_dropped_samples",
        MetricType::Counter,
        "Samples of a source stream dropped, by reason (queue_full, late, ahead, behind, invalid)",
    );
    let mut gaps = Family::new(
        "stream_gaps",
        MetricType::Counter,
        "Gaps in a regular source stream's event time: one subject's consecutive samples more than two nominal intervals apart",
    );
    let mut gap_seconds = Family::new(
        "stream_gap_seconds",
        MetricType::Counter,
        "Event time lost in those gaps (each interval less one nominal interval)",
    );
    let mut late = Family::new(
        "stream_late_samples",
        MetricType::Counter,
        "Samples of a source stream that came after event time had passed them (dropped)",
    );
    for (id, stream) in layout.streams.iter().enumerate() {
        let name = || label("stream", &stream.name);
        match stream.producer {
            Producer::Source { index, output } => {
                let Some(counters) = metrics
                    .sources
                    .get(index)
                    .and_then(|s| s.outputs.get(output))
                else {
                    continue;
                };
                samples_in.push(
                    name(),
                    Sample::Count(counters.samples.load(Ordering::Relaxed)),
                );
                let mut timestamps = TimestampDrops::default();
                for (_, inlet) in inlets
                    .iter()
                    .filter(|(source, inlet)| *source == index && inlet.stream as usize == id)
                {
                    timestamps.add(&inlet.dropped);
                }
                let mut reason = |why: &'static str, count: u64| {
                    let mut labels = name();
                    labels.push(("reason", why.to_string()));
                    dropped.push(labels, Sample::Count(count));
                };
                reason("queue_full", counters.dropped.load(Ordering::Relaxed));
                for (why, count) in TIMESTAMP_REASONS.iter().zip(timestamp_counts(&timestamps)) {
                    reason(why, count);
                }
                gaps.push(name(), Sample::Count(counters.gaps.load(Ordering::Relaxed)));
                gap_seconds.push(
                    name(),
                    Sample::Value(counters.gap_ns.load(Ordering::Relaxed) as f64 / 1e9),
                );
                late.push(name(), Sample::Count(timestamps.late));
            }
            Producer::Operator(index) => {
                if let Some(counters) = metrics.operators.get(index) {
                    samples_in.push(
                        name(),
                        Sample::Count(counters.samples_out.load(Ordering::Relaxed)),
                    );
                }
            }
        }
    }
    for (info, counters) in layout.sinks.iter().zip(&metrics.sinks) {
        for (&id, written) in info.inputs.iter().zip(&counters.inputs) {
            samples_out.push(
                vec![
                    ("stream", layout.stream_name(id).to_string()),
                    ("sink", info.name.clone()),
                ],
                Sample::Count(written.load(Ordering::Relaxed)),
            );
        }
    }
    vec![samples_in, samples_out, dropped, gaps, gap_seconds, late]
}

fn inlet_families(state: &State) -> Vec<Family> {
    let mut offset = Family::new(
        "inlet_clock_offset_seconds",
        MetricType::Gauge,
        "Last clock offset (LSL time_correction) added to an inlet's timestamps",
    );
    let mut jitter = Family::new(
        "inlet_jitter_seconds",
        MetricType::Gauge,
        "RMS deviation of an inlet's sample intervals from the nominal interval",
    );
    let mut rate = Family::new(
        "inlet_effective_rate_hertz",
        MetricType::Gauge,
        "An inlet's measured rate over its current unbroken segment",
    );
    let mut samples = Family::new(
        "inlet_samples",
        MetricType::Counter,
        "Samples an inlet received",
    );
    let mut gaps = Family::new(
        "inlet_gaps",
        MetricType::Counter,
        "Times an inlet went silent longer than its stall timeout",
    );
    let mut steps = Family::new(
        "inlet_clock_steps",
        MetricType::Counter,
        "Clock steps of an inlet's sender",
    );
    let mut live = Family::new(
        "inlet_live",
        MetricType::Gauge,
        "Whether data is flowing on an inlet now (1) or it is silent (0)",
    );
    for (source, inlet) in inlets(state) {
        let labels = || {
            vec![
                ("source", state.layout.sources[source].name.clone()),
                ("stream", state.layout.stream_name(inlet.stream).to_string()),
                ("subject", inlet.subject.clone()),
            ]
        };
        offset.push(labels(), Sample::Value(inlet.clock_offset_s));
        jitter.push(labels(), Sample::Value(inlet.jitter_s));
        rate.push(labels(), Sample::Value(inlet.effective_rate_hz));
        samples.push(labels(), Sample::Count(inlet.samples));
        gaps.push(labels(), Sample::Count(inlet.gaps));
        steps.push(labels(), Sample::Count(inlet.clock_steps));
        live.push(labels(), Sample::Count(u64::from(inlet.live)));
    }
    vec![offset, jitter, rate, samples, gaps, steps, live]
}

fn operator_families(state: &State) -> Vec<Family> {
    let layout = &state.layout;
    let metrics = &state.metrics;
    let mut late = Family::new(
        "operator_late_samples",
        MetricType::Counter,
        "Input samples an operator dropped because its output had passed their place",
    );
    let mut emit = Family::new(
        "operator_emit_latency_seconds",
        MetricType::Histogram,
        "Wall-clock time from an operator seeing a frontier that closed windows to handing their rows on",
    );
    let mut output = Family::new(
        "window_output_latency_seconds",
        MetricType::Histogram,
        "Wall-clock time from an operator seeing a frontier that closed windows to a sink's flush of their rows",
    );
    let mut model = Family::new(
        "model_info",
        MetricType::Gauge,
        "A model operator's model, version and execution provider (always 1)",
    );
    let mut inference = Family::new(
        "model_inference_seconds",
        MetricType::Histogram,
        "Time of one model inference run",
    );
    let mut batch = Family::new(
        "model_batch_rows",
        MetricType::Histogram,
        "Rows (subject windows) a model scored together in one run",
    );
    for (info, counters) in layout.operators.iter().zip(&metrics.operators) {
        let operator = || label("operator", &info.name);
        late.push(
            operator(),
            Sample::Count(counters.late.load(Ordering::Relaxed)),
        );
        emit.push(
            operator(),
            Sample::Histogram(counters.emit_latency.snapshot()),
        );
        if let Some((name, version)) = &info.model {
            let provider = counters.provider.get().copied().unwrap_or("not open yet");
            model.push(
                vec![
                    ("operator", info.name.clone()),
                    ("model", name.clone()),
                    ("version", version.clone()),
                    ("provider", provider.to_string()),
                ],
                Sample::Value(1.0),
            );
            let labels = || vec![("operator", info.name.clone()), ("model", name.clone())];
            inference.push(labels(), Sample::Histogram(counters.inference.snapshot()));
            batch.push(labels(), Sample::Histogram(counters.batch_rows.snapshot()));
        }
    }
    for (info, counters) in layout.sinks.iter().zip(&metrics.sinks) {
        for (&id, histogram) in info.inputs.iter().zip(&counters.window_latency) {
            let (Some(histogram), Producer::Operator(index)) =
                (histogram, layout.streams[id as usize].producer)
            else {
                continue;
            };
            output.push(
                vec![
                    ("operator", layout.operators[index].name.clone()),
                    ("sink", info.name.clone()),
                ],
                Sample::Histogram(histogram.snapshot()),
            );
        }
    }
    vec![late, emit, output, model, inference, batch]
}

fn sink_families(state: &State) -> Vec<Family> {
    let mut rows = Family::new("sink_rows", MetricType::Counter, "Rows a sink wrote");
    let mut unwritten = Family::new(
        "sink_unwritten_rows",
        MetricType::Counter,
        "Rows a sink could not write because its destination was closed",
    );
    let mut closed = Family::new(
        "sink_closed",
        MetricType::Gauge,
        "Whether a sink's destination was closed by its reader (1)",
    );
    for (info, counters) in state.layout.sinks.iter().zip(&state.metrics.sinks) {
        let sink = || label("sink", &info.name);
        rows.push(sink(), Sample::Count(counters.rows.load(Ordering::Relaxed)));
        unwritten.push(
            sink(),
            Sample::Count(counters.unwritten.load(Ordering::Relaxed)),
        );
        closed.push(
            sink(),
            Sample::Count(u64::from(counters.closed.load(Ordering::Relaxed))),
        );
    }
    vec![rows, unwritten, closed]
}
