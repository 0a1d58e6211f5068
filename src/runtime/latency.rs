//! Window close-to-output latency: operators stamp the rows a frontier advance emitted, and the
//! sinks that write those rows observe the wall-clock time since.
//!
//! When an operator sees its input frontier pass a window's end it calls `on_frontier`; the rows
//! that call emits are stamped with the instant the operator first saw that frontier and the
//! latest event time among them. The stamp goes to every sink input that reads the operator's
//! output, before the rows are handed on, so it is there when they arrive. Once a sink's flush
//! has written every row of that input below a limit above the stamp's latest time, the stamp's
//! rows are all out, and the sink records `now - seen` in its input's histogram. A sink that
//! orders rows across inputs waits for its slowest input: that wait is part of the figure.
//!
//! Stamps travel on bounded lock-free channels; a full channel drops the stamp (one latency not
//! observed, no row affected).

use std::sync::Mutex;
use std::time::Instant;

use crossbeam_channel::{bounded, Receiver, Sender};

use crate::pipeline::Pipeline;
use crate::stream::{Batch, Nanos};
use crate::telemetry::histogram::Histogram;

/// Stamps one sink input may hold before new ones are dropped.
const STAMP_CAPACITY: usize = 4096;

/// The rows one frontier advance of an operator emitted.
#[derive(Clone, Copy, Debug)]
pub struct Stamp {
    /// When the operator saw the frontier advance.
    pub seen: Instant,
    /// The latest event time among the rows.
    pub latest: Nanos,
}

/// The channels from operators to the sink inputs that read their outputs.
pub struct LatencyStamps {
    /// Per operator, in pipeline order: one sender per sink input reading its output.
    senders: Vec<Vec<Sender<Stamp>>>,
    /// Per sink, per input: the receiver (inputs from sources have none); worker 0 takes them.
    receivers: Vec<Mutex<Vec<Option<Receiver<Stamp>>>>>,
}

impl LatencyStamps {
    /// Channels for every (operator, sink input) pair of `pipeline`.
    pub fn new(pipeline: &Pipeline) -> Self {
        let mut senders: Vec<Vec<Sender<Stamp>>> = vec![Vec::new(); pipeline.operators.len()];
        let receivers = pipeline
            .sinks
            .iter()
            .map(|sink| {
                let inputs = sink
                    .inputs
                    .iter()
                    .map(|&id| {
                        let producer = pipeline.operators.iter().position(|o| o.output == id)?;
                        let (sender, receiver) = bounded(STAMP_CAPACITY);
                        senders[producer].push(sender);
                        Some(receiver)
                    })
                    .collect();
                Mutex::new(inputs)
            })
            .collect();
        LatencyStamps { senders, receivers }
    }

    /// The senders of operator `index`.
    pub fn senders(&self, index: usize) -> Vec<Sender<Stamp>> {
        self.senders.get(index).cloned().unwrap_or_default()
    }

    /// Sink `index`'s receivers, for the sink operator that holds its writer (`take`, on worker
    /// 0); the others get none.
    pub fn receivers(&self, index: usize, take: bool) -> PendingStamps {
        let receivers = match self.receivers.get(index).filter(|_| take) {
            Some(slot) => std::mem::take(&mut *slot.lock().unwrap_or_else(|e| e.into_inner())),
            None => Vec::new(),
        };
        PendingStamps {
            waiting: vec![Vec::new(); receivers.len()],
            receivers,
        }
    }
}

/// An operator's side: stamps what a frontier advance emitted.
pub fn stamp(senders: &[Sender<Stamp>], seen: Instant, rows: &[Batch]) {
    let Some(latest) = rows
        .iter()
        .filter_map(|b| b.timestamps.last().copied())
        .max()
    else {
        return;
    };
    for sender in senders {
        // Full: the stamp is dropped; disconnected: the sink is on another worker or gone.
        let _ = sender.try_send(Stamp { seen, latest });
    }
}

/// A sink's side: the stamps whose rows it has not all written yet (none for a sink no
/// operator's output reaches).
#[derive(Default)]
pub struct PendingStamps {
    receivers: Vec<Option<Receiver<Stamp>>>,
    waiting: Vec<Vec<Stamp>>,
}

impl PendingStamps {
    /// After a flush that wrote every row of input `i` below `limits[i]`: records the latency of
    /// each stamp whose rows are all written in `latency[i]`.
    pub fn written(&mut self, limits: &[Nanos], latency: &[Option<Histogram>]) {
        let now = Instant::now();
        for (input, receiver) in self.receivers.iter().enumerate() {
            let Some(receiver) = receiver else {
                continue;
            };
            let waiting = &mut self.waiting[input];
            waiting.extend(receiver.try_iter());
            let limit = limits.get(input).copied().unwrap_or(Nanos::MIN);
            let histogram = latency.get(input).and_then(Option::as_ref);
            waiting.retain(|stamp| {
                if stamp.latest >= limit {
                    return true;
                }
                if let Some(histogram) = histogram {
                    histogram.observe_duration(now.saturating_duration_since(stamp.seen));
                }
                false
            });
        }
    }

    /// The sink's destination went away: no more stamps are taken.
    pub fn close(&mut self) {
        self.receivers.clear();
        self.waiting.clear();
    }
}
