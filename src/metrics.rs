//! Live counters shared between sources, the dataflow and the status line.
//!
//! Plain atomics, written by one thread each and read by the status reporter; designed so later
//! telemetry (Prometheus) can export the same figures.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Counters of one source.
#[derive(Debug, Default)]
pub struct SourceMetrics {
    /// Samples handed to the dataflow.
    pub samples: AtomicU64,
    /// Samples dropped because the queue was full (policy `drop_oldest`).
    pub dropped: AtomicU64,
    /// Event time up to which the source has produced everything (nanoseconds).
    pub watermark: AtomicI64,
    /// Per matched stream figures of network sources (LSL inlets); empty for other sources.
    pub inlets: Mutex<Vec<InletStats>>,
}

/// Live figures of one network stream a source reads (one LSL inlet), for telemetry.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InletStats {
    /// Stream name.
    pub name: String,
    /// The stream's `source_id`.
    pub source_id: String,
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
    /// Gaps seen (the stream went silent longer than the stall timeout, then returned).
    pub gaps: u64,
    /// Total event time lost in those gaps, seconds.
    pub gap_s: f64,
    /// Samples dropped because they arrived after event time had passed them.
    pub late: u64,
    /// Whether data is flowing now (false while the stream is silent).
    pub live: bool,
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
}

/// Counters of a whole pipeline run.
#[derive(Debug, Default)]
pub struct PipelineMetrics {
    /// One entry per source, in pipeline order.
    pub sources: Vec<Arc<SourceMetrics>>,
    /// One entry per sink, in pipeline order.
    pub sinks: Vec<SinkMetrics>,
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
        }
    }

    /// Total samples produced by all sources.
    pub fn samples_in(&self) -> u64 {
        self.sources
            .iter()
            .map(|s| s.samples.load(Ordering::Relaxed))
            .sum()
    }

    /// Total samples dropped by full queues.
    pub fn dropped(&self) -> u64 {
        self.sources
            .iter()
            .map(|s| s.dropped.load(Ordering::Relaxed))
            .sum()
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
