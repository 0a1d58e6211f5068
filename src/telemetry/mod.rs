//! Telemetry of one run: the live counters as Prometheus text (`/metrics`), as JSON for the
//! dashboard's session panel (`/api/status`), and `heloflow top`, a terminal view of the same.
//!
//! A [`Telemetry`] is made from a pipeline before it runs ([`Telemetry::new`]), and its
//! [`Telemetry::metrics`] are handed to [`crate::runtime::run`] through
//! [`crate::runtime::RunOptions::metrics`]; the run fills them with plain atomics (no lock on the
//! hot path), and every scrape reads them as they are then. Each run has its own registry, so
//! several pipelines in one process do not share figures.
//!
//! What is measured, and the labels (each bounded by the pipeline: streams, sources, operators,
//! sinks; `subject` only on inlets, one series per LSL stream a source reads):
//! - per stream: samples in (from the source, or emitted by the operator), samples out (written
//!   by each sink), samples dropped by reason, gaps in event time, late samples;
//! - per source queue: depth and peak (batches), capacity;
//! - per LSL inlet: clock offset, jitter, effective rate, gaps;
//! - per operator: window close-to-output latency, from the operator seeing the frontier that
//!   closed a window to the sink's flush of its rows (per sink, see [`crate::runtime::latency`]),
//!   and to the rows being handed on (per operator);
//! - per model: inference latency and batch size (rows scored together), provider.

mod collector;
pub mod exposition;
pub mod fetch;
pub mod histogram;
mod status;
pub mod top;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Instant;

use prometheus_client::registry::Registry;

use crate::metrics::PipelineMetrics;
use crate::pipeline::{Pipeline, StreamId};

/// The figures of one run, readable while it runs (shared as `Arc<Telemetry>`).
pub struct Telemetry {
    state: Arc<State>,
    registry: Registry,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("pipeline", &self.state.layout.pipeline)
            .finish_non_exhaustive()
    }
}

/// What the collector and the status read: the pipeline's shape and its live counters.
#[derive(Debug)]
struct State {
    layout: Layout,
    metrics: Arc<PipelineMetrics>,
    created: Instant,
}

/// The names telemetry labels its figures with, from the pipeline.
#[derive(Debug)]
struct Layout {
    pipeline: String,
    sources: Vec<SourceInfo>,
    streams: Vec<StreamInfo>,
    operators: Vec<OperatorInfo>,
    sinks: Vec<SinkInfo>,
}

#[derive(Debug)]
struct SourceInfo {
    name: String,
    kind: &'static str,
    capacity: usize,
    policy: &'static str,
}

/// Where a stream comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Producer {
    /// Source `index`, its output `output`.
    Source { index: usize, output: usize },
    /// Operator `index`.
    Operator(usize),
}

#[derive(Debug)]
struct StreamInfo {
    name: String,
    producer: Producer,
}

#[derive(Debug)]
struct OperatorInfo {
    name: String,
    kind: &'static str,
    /// Model operators: the manifest's name and version.
    model: Option<(String, String)>,
}

#[derive(Debug)]
struct SinkInfo {
    name: String,
    kind: &'static str,
    inputs: Vec<StreamId>,
}

impl Telemetry {
    /// Telemetry for a run of `pipeline`, with zeroed counters shaped for it: pass
    /// [`Telemetry::metrics`] to the run.
    pub fn new(pipeline: &Pipeline) -> Self {
        Telemetry::with_metrics(pipeline, PipelineMetrics::for_pipeline(pipeline))
    }

    /// Telemetry over counters already made for `pipeline` (by
    /// [`PipelineMetrics::for_pipeline`]).
    pub fn with_metrics(pipeline: &Pipeline, metrics: Arc<PipelineMetrics>) -> Self {
        let state = Arc::new(State {
            layout: Layout::of(pipeline),
            metrics,
            created: Instant::now(),
        });
        let mut registry = Registry::with_prefix("heloflow");
        registry.register_collector(Box::new(collector::RunCollector(state.clone())));
        Telemetry { state, registry }
    }

    /// The counters the run fills.
    pub fn metrics(&self) -> &Arc<PipelineMetrics> {
        &self.state.metrics
    }

    /// Every figure now, in the Prometheus text exposition format 0.0.4 (content type
    /// [`CONTENT_TYPE`]).
    pub fn prometheus_text(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail; a collector error would leave the text cut short.
        if let Err(error) =
            prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)
        {
            tracing::warn!("telemetry: encoding the metrics failed: {error}");
        }
        text
    }

    /// The session's figures as JSON, for the dashboard's session panel (`/api/status`).
    pub fn status_json(&self) -> serde_json::Value {
        status::status(&self.state)
    }
}

/// What the live server's `/metrics` and `/api/status` serve.
impl crate::server::LiveFigures for Telemetry {
    fn status_json(&self) -> serde_json::Value {
        Telemetry::status_json(self)
    }

    fn prometheus_text(&self) -> String {
        Telemetry::prometheus_text(self)
    }
}

/// The `Content-Type` of [`Telemetry::prometheus_text`].
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

impl Layout {
    fn of(pipeline: &Pipeline) -> Self {
        let mut streams: Vec<StreamInfo> = pipeline
            .streams
            .iter()
            .map(|s| StreamInfo {
                name: s.name.clone(),
                producer: Producer::Operator(usize::MAX),
            })
            .collect();
        for (index, node) in pipeline.sources.iter().enumerate() {
            for (output, &id) in node.outputs.iter().enumerate() {
                if let Some(stream) = streams.get_mut(id as usize) {
                    stream.producer = Producer::Source { index, output };
                }
            }
        }
        for (index, node) in pipeline.operators.iter().enumerate() {
            if let Some(stream) = streams.get_mut(node.output as usize) {
                stream.producer = Producer::Operator(index);
            }
        }
        Layout {
            pipeline: pipeline.name.clone(),
            sources: pipeline
                .sources
                .iter()
                .map(|node| {
                    let queue = node.config.component().queue();
                    SourceInfo {
                        name: node.name.clone(),
                        kind: node.config.kind(),
                        capacity: queue.capacity,
                        policy: queue.policy.name(),
                    }
                })
                .collect(),
            streams,
            operators: pipeline
                .operators
                .iter()
                .map(|node| OperatorInfo {
                    name: node.name.clone(),
                    kind: node.config.kind(),
                    model: node.config.model().map(|m| {
                        let manifest = &m.manifest.manifest;
                        (manifest.name.clone(), manifest.version.clone())
                    }),
                })
                .collect(),
            sinks: pipeline
                .sinks
                .iter()
                .map(|node| SinkInfo {
                    name: node.name.clone(),
                    kind: node.config.kind(),
                    inputs: node.inputs.clone(),
                })
                .collect(),
        }
    }

    fn stream_name(&self, id: StreamId) -> &str {
        self.streams
            .get(id as usize)
            .map_or("", |s| s.name.as_str())
    }
}
