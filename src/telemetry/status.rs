//! The session's figures as JSON (`/api/status`): what the dashboard's session panel shows.
//!
//! The same counters as `/metrics`, shaped for a page: latencies as count, mean and quantiles
//! estimated from the histograms' buckets, drops by reason, and per source its queue, lag and
//! inlets.

use std::sync::atomic::Ordering;

use serde_json::{json, Value};

use super::histogram::HistogramSnapshot;
use super::{Producer, State};
use crate::metrics::TimestampDrops;

/// A histogram as `{"count", "mean", "p50", "p95", "p99"}` (`null` figures when empty).
pub fn summary(h: &HistogramSnapshot) -> Value {
    json!({
        "count": h.count,
        "mean": h.mean(),
        "p50": h.quantile(0.5),
        "p95": h.quantile(0.95),
        "p99": h.quantile(0.99),
    })
}

fn timestamp_drops(d: &TimestampDrops) -> Value {
    json!({"late": d.late, "ahead": d.ahead, "behind": d.behind, "invalid": d.invalid})
}

/// Every figure of the run now.
pub fn status(state: &State) -> Value {
    let layout = &state.layout;
    let metrics = &state.metrics;
    let drops = metrics.drops();
    let (behind_now, behind_most) = metrics.behind_real_time_s();
    let sources: Vec<Value> = layout
        .sources
        .iter()
        .zip(&metrics.sources)
        .map(|(info, m)| {
            let inlets: Vec<Value> = m.inlets.lock().map_or_else(
                |_| Vec::new(),
                |inlets| {
                    inlets
                        .iter()
                        .map(|i| {
                            json!({
                                "name": i.name,
                                "source_id": i.source_id,
                                "stream": layout.stream_name(i.stream),
                                "subject": i.subject,
                                "clock_offset_s": i.clock_offset_s,
                                "jitter_s": i.jitter_s,
                                "effective_rate_hz": i.effective_rate_hz,
                                "samples": i.samples,
                                "gaps": i.gaps,
                                "gap_s": i.gap_s,
                                "dropped": timestamp_drops(&i.dropped),
                                "clock_steps": i.clock_steps,
                                "clock_shift_s": i.clock_shift_s,
                                "live": i.live,
                            })
                        })
                        .collect()
                },
            );
            let watermark = m.watermark.load(Ordering::Relaxed);
            json!({
                "name": info.name,
                "kind": info.kind,
                "samples": m.samples.load(Ordering::Relaxed),
                "dropped_queue_full": m.dropped.load(Ordering::Relaxed),
                "unplayable": m.unplayable.load(Ordering::Relaxed),
                "queue": {
                    "depth": m.queued.load(Ordering::Relaxed),
                    "peak": m.queue_peak.load(Ordering::Relaxed),
                    "capacity": info.capacity,
                    "policy": info.policy,
                },
                "watermark_s": (watermark != i64::MIN && watermark != i64::MAX)
                    .then(|| watermark as f64 / 1e9),
                "behind_real_time_s": m.behind_now().as_secs_f64(),
                "behind_real_time_max_s": m.max_behind_ns.load(Ordering::Relaxed).max(0) as f64 / 1e9,
                "inlets": inlets,
            })
        })
        .collect();
    let streams: Vec<Value> = layout
        .streams
        .iter()
        .enumerate()
        .map(|(id, stream)| {
            let written: u64 = layout
                .sinks
                .iter()
                .zip(&metrics.sinks)
                .flat_map(|(info, m)| info.inputs.iter().zip(&m.inputs))
                .filter(|(&input, _)| input as usize == id)
                .map(|(_, n)| n.load(Ordering::Relaxed))
                .sum();
            match stream.producer {
                Producer::Source { index, output } => {
                    let counters = metrics
                        .sources
                        .get(index)
                        .and_then(|s| s.outputs.get(output));
                    let load =
                        |f: fn(&crate::metrics::StreamCounters) -> u64| counters.map_or(0, f);
                    json!({
                        "name": stream.name,
                        "producer": "source",
                        "samples_in": load(|c| c.samples.load(Ordering::Relaxed)),
                        "samples_out": written,
                        "dropped_queue_full": load(|c| c.dropped.load(Ordering::Relaxed)),
                        "gaps": load(|c| c.gaps.load(Ordering::Relaxed)),
                        "gap_s": load(|c| c.gap_ns.load(Ordering::Relaxed)) as f64 / 1e9,
                    })
                }
                Producer::Operator(index) => json!({
                    "name": stream.name,
                    "producer": "operator",
                    "samples_in": metrics.operators.get(index)
                        .map_or(0, |o| o.samples_out.load(Ordering::Relaxed)),
                    "samples_out": written,
                }),
            }
        })
        .collect();
    let operators: Vec<Value> = layout
        .operators
        .iter()
        .zip(&metrics.operators)
        .enumerate()
        .map(|(index, (info, m))| {
            let outputs: Vec<Value> = layout
                .sinks
                .iter()
                .zip(&metrics.sinks)
                .flat_map(|(sink, m)| {
                    sink.inputs
                        .iter()
                        .zip(&m.window_latency)
                        .map(move |(&id, h)| (sink, id, h))
                })
                .filter(|(_, id, _)| {
                    layout.streams[*id as usize].producer == Producer::Operator(index)
                })
                .filter_map(|(sink, _, h)| {
                    let h = h.as_ref()?;
                    Some(json!({"sink": sink.name, "latency_s": summary(&h.snapshot())}))
                })
                .collect();
            json!({
                "name": info.name,
                "kind": info.kind,
                "samples_out": m.samples_out.load(Ordering::Relaxed),
                "late_samples": m.late.load(Ordering::Relaxed),
                "emit_latency_s": summary(&m.emit_latency.snapshot()),
                "window_output_latency_s": outputs,
            })
        })
        .collect();
    let models: Vec<Value> = layout
        .operators
        .iter()
        .zip(&metrics.operators)
        .filter_map(|(info, m)| {
            let (name, version) = info.model.as_ref()?;
            Some(json!({
                "operator": info.name,
                "name": name,
                "version": version,
                "provider": m.provider.get(),
                "inference_s": summary(&m.inference.snapshot()),
                "batch_rows": summary(&m.batch_rows.snapshot()),
            }))
        })
        .collect();
    let sinks: Vec<Value> = layout
        .sinks
        .iter()
        .zip(&metrics.sinks)
        .map(|(info, m)| {
            json!({
                "name": info.name,
                "kind": info.kind,
                "rows": m.rows.load(Ordering::Relaxed),
                "unwritten": m.unwritten.load(Ordering::Relaxed),
                "closed": m.closed.load(Ordering::Relaxed),
            })
        })
        .collect();
    json!({
        "pipeline": layout.pipeline,
        "uptime_s": state.created.elapsed().as_secs_f64(),
        "event_time_s": metrics.event_time().map(|t| t as f64 / 1e9),
        "samples_in": metrics.samples_in(),
        "rows_out": metrics.rows_out(),
        "behind_real_time_s": behind_now,
        "behind_real_time_max_s": behind_most,
        "drops": {
            "total": drops.total(),
            "queue_full": drops.queue_full,
            "unplayable": drops.unplayable,
            "late": drops.timestamps.late,
            "ahead": drops.timestamps.ahead,
            "behind": drops.timestamps.behind,
            "invalid": drops.timestamps.invalid,
            "late_in_operators": drops.late_in_operators,
        },
        "sources": sources,
        "streams": streams,
        "operators": operators,
        "models": models,
        "sinks": sinks,
    })
}
