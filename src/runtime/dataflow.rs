//! Builds the timely dataflow of a validated pipeline on one worker.
//!
//! - A source is a timely source operator that only worker 0 drives: it drains the source's queue,
//!   sends each batch at the source's current watermark and downgrades its capability as
//!   watermarks arrive. Other workers drop their capability at once.
//! - An operator exchanges batches by subject, keeps one [`OperatorLogic`] per subject and calls it
//!   on every frontier advance, holding a capability for window outputs in the meantime.
//! - A sink gathers its inputs on worker 0 and writes rows in deterministic order as the frontier
//!   passes them.
//!
//! Invariant: a batch travels at a timely time no later than its first sample's timestamp, so an
//! input frontier `F` means every sample with a timestamp below `F` has arrived.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::{Receiver, TryRecvError};
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::core::Partition;
use timely::dataflow::operators::generic::operator::source;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::{Capability, Concatenate, Probe};
use timely::dataflow::{ProbeHandle, Scope, Stream};

use crate::metrics::PipelineMetrics;
use crate::operators::{OperatorLogic, Routing};
use crate::pipeline::{Pipeline, StreamId};
use crate::sinks::ordering::OrderedRows;
use crate::sinks::SinkWriter;
use crate::sources::SourceEvent;
use crate::stream::{Batch, Nanos};

/// A stream of batches in the dataflow, timestamped by event time.
pub type BatchStream<'s> = Stream<'s, Nanos, Vec<Batch>>;

/// What every worker shares while building and running the dataflow.
pub struct Shared {
    /// The validated pipeline.
    pub pipeline: Pipeline,
    /// Queue receivers per source; worker 0 takes them.
    pub receivers: Vec<Mutex<Option<Receiver<SourceEvent>>>>,
    /// Writers per sink; worker 0 takes them.
    pub writers: Vec<Mutex<Option<Box<dyn SinkWriter>>>>,
    /// Live counters.
    pub metrics: Arc<PipelineMetrics>,
    /// The first fatal error (a source failure or a sink write error).
    pub failure: Mutex<Option<String>>,
    /// Set to ask sources to stop; also set when a sink's reader went away.
    pub stop: Arc<std::sync::atomic::AtomicBool>,
    /// Set when a worker panicked: the others stop stepping (they would wait for it forever).
    pub aborted: std::sync::atomic::AtomicBool,
}

impl Shared {
    /// Records the first fatal error and asks the sources to stop.
    pub fn fail(&self, message: String) {
        let mut failure = self.failure.lock().unwrap_or_else(|e| e.into_inner());
        failure.get_or_insert(message);
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A stable hash of a subject id, so every worker routes a subject to the same peer.
pub fn subject_route(subject: &str) -> u64 {
    subject
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        })
}

/// Worker 0 takes the shared item (a source queue, a sink writer); other workers get nothing.
fn take_on_first_worker<T>(slot: &Mutex<Option<T>>, worker: usize) -> Option<T> {
    if worker == 0 {
        slot.lock().unwrap_or_else(|e| e.into_inner()).take()
    } else {
        None
    }
}

/// Builds the whole pipeline into `scope`; the probe tracks the sinks' progress.
pub fn build<'s>(
    scope: Scope<'s, Nanos>,
    shared: &Arc<Shared>,
    worker: usize,
    probe: &ProbeHandle<Nanos>,
) {
    let pipeline = &shared.pipeline;
    let mut streams: Vec<Option<BatchStream<'s>>> = vec![None; pipeline.streams.len()];

    for (index, node) in pipeline.sources.iter().enumerate() {
        let receiver = take_on_first_worker(&shared.receivers[index], worker);
        let all = source_operator(scope, &node.name, receiver, shared.clone());
        let outputs = node.outputs.clone();
        let parts = all.partition::<timely::container::CapacityContainerBuilder<Vec<Batch>>, _, _>(
            outputs.len() as u64,
            move |batch: Batch| {
                let part = outputs
                    .iter()
                    .position(|&id| id == batch.stream)
                    .unwrap_or(0);
                (part as u64, batch)
            },
        );
        for (&id, part) in node.outputs.iter().zip(parts) {
            streams[id as usize] = Some(part);
        }
    }

    for node in &pipeline.operators {
        let inputs: Vec<BatchStream<'s>> = node
            .inputs
            .iter()
            .filter_map(|&id| streams[id as usize].clone())
            .collect();
        let merged = scope.concatenate(inputs);
        let schemas: Vec<_> = node
            .inputs
            .iter()
            .map(|&id| pipeline.streams[id as usize].clone())
            .collect();
        let output_schema = pipeline.streams[node.output as usize].clone();
        let config = node.config.clone();
        let output_id = node.output;
        let factory = move |subject: &str| {
            let refs: Vec<_> = schemas.iter().collect();
            config
                .component()
                .logic(&refs, output_id, &output_schema, subject)
        };
        let routing = node.config.component().routing();
        let late = shared.clone();
        let output = keyed_operator(
            merged,
            &node.name,
            node.inputs.clone(),
            routing,
            factory,
            move |count| {
                late.metrics
                    .late_in_operators
                    .fetch_add(count, Ordering::Relaxed);
            },
        );
        streams[node.output as usize] = Some(output);
    }

    for (index, node) in pipeline.sinks.iter().enumerate() {
        let inputs: Vec<BatchStream<'s>> = node
            .inputs
            .iter()
            .filter_map(|&id| streams[id as usize].clone())
            .collect();
        let merged = scope.concatenate(inputs);
        let writer = take_on_first_worker(&shared.writers[index], worker);
        sink_operator(merged, index, &node.inputs, writer, shared.clone()).probe_with(probe);
    }
}

fn source_operator<'s>(
    scope: Scope<'s, Nanos>,
    name: &str,
    receiver: Option<Receiver<SourceEvent>>,
    shared: Arc<Shared>,
) -> BatchStream<'s> {
    let activator_scope = scope;
    source(scope, &format!("source {name}"), move |capability, info| {
        let activator = activator_scope.activator_for(info.address);
        let mut capability: Option<Capability<Nanos>> = receiver.as_ref().map(|_| capability);
        move |output| {
            let (Some(receiver), Some(cap)) = (receiver.as_ref(), capability.as_mut()) else {
                capability = None;
                return;
            };
            let mut done = false;
            for _ in 0..256 {
                match receiver.try_recv() {
                    Ok(SourceEvent::Data(batch)) => {
                        output.session(&*cap).give(batch);
                    }
                    Ok(SourceEvent::Watermark(time)) => {
                        if time > *cap.time() {
                            cap.downgrade(&time);
                        }
                    }
                    Ok(SourceEvent::Failed(message)) => {
                        shared.fail(message);
                        done = true;
                        break;
                    }
                    Err(TryRecvError::Empty) => {
                        activator.activate_after(Duration::from_millis(1));
                        return;
                    }
                    Err(TryRecvError::Disconnected) => {
                        done = true;
                        break;
                    }
                }
            }
            if done {
                capability = None;
            } else {
                activator.activate();
            }
        }
    })
}

/// Runs one operator kind's logic per subject (or once); `count_late` is told every input sample
/// a logic newly drops as late, when the frontier advances.
fn keyed_operator<'s, F, L>(
    stream: BatchStream<'s>,
    name: &str,
    input_ids: Vec<StreamId>,
    routing: Routing,
    factory: F,
    count_late: L,
) -> BatchStream<'s>
where
    F: Fn(&str) -> Box<dyn OperatorLogic> + 'static,
    L: Fn(u64) + 'static,
{
    let per_subject = routing == Routing::PerSubject;
    let route = Exchange::new(move |batch: &Batch| {
        if per_subject {
            subject_route(&batch.subject)
        } else {
            0
        }
    });
    stream.unary_frontier(route, name, move |_capability, _info| {
        let mut logics: BTreeMap<String, Box<dyn OperatorLogic>> = BTreeMap::new();
        let mut held: Option<Capability<Nanos>> = None;
        let mut out: Vec<Batch> = Vec::new();
        let mut late_counted = 0u64;
        move |(input, frontier), output| {
            input.for_each(|cap, data| {
                for batch in data.drain(..) {
                    let port = input_ids
                        .iter()
                        .position(|&id| id == batch.stream)
                        .unwrap_or(0);
                    let key = if per_subject {
                        batch.subject.as_str()
                    } else {
                        ""
                    };
                    let logic = logics
                        .entry(key.to_string())
                        .or_insert_with(|| factory(key));
                    logic.on_batch(port, &batch, &mut out);
                }
                if !out.is_empty() {
                    output.session(&cap).give_iterator(out.drain(..));
                }
                let earlier = held
                    .as_ref()
                    .is_none_or(|h| cap.least().is_some_and(|t| t < h.time()));
                if earlier {
                    held = cap.retain_least(0);
                }
            });
            let frontier = frontier.frontier();
            let time = frontier.iter().next().copied().unwrap_or(Nanos::MAX);
            if let Some(cap) = held.as_mut() {
                if time > *cap.time() {
                    for logic in logics.values_mut() {
                        logic.on_frontier(time, &mut out);
                    }
                    if !out.is_empty() {
                        output.session(&*cap).give_iterator(out.drain(..));
                    }
                    let late: u64 = logics.values().map(|l| l.late_samples()).sum();
                    if late > late_counted {
                        count_late(late - late_counted);
                        late_counted = late;
                    }
                    if frontier.is_empty() {
                        held = None;
                    } else {
                        let target = logics
                            .values()
                            .filter_map(|l| l.hold())
                            .fold(time, Nanos::min);
                        if target > *cap.time() {
                            cap.downgrade(&target);
                        }
                    }
                }
            }
        }
    })
}

fn sink_operator<'s>(
    stream: BatchStream<'s>,
    index: usize,
    input_ids: &[StreamId],
    writer: Option<Box<dyn SinkWriter>>,
    shared: Arc<Shared>,
) -> BatchStream<'s> {
    let schemas: Vec<_> = input_ids
        .iter()
        .map(|&id| shared.pipeline.streams[id as usize].clone())
        .collect();
    let input_ids = input_ids.to_vec();
    let writer = Rc::new(RefCell::new(writer));
    stream.unary_frontier(
        Exchange::new(|_: &Batch| 0),
        &format!("sink {}", shared.pipeline.sinks[index].name),
        move |_capability, _info| {
            let mut rows = OrderedRows::new();
            let mut released_until = Nanos::MIN;
            move |(input, frontier),
                  _output: &mut timely::dataflow::operators::generic::OutputBuilderSession<
                '_,
                Nanos,
                timely::container::CapacityContainerBuilder<Vec<Batch>>,
            >| {
                let closed = writer.borrow().is_none();
                input.for_each(|_cap, data| {
                    for batch in data.drain(..) {
                        if closed {
                            shared.metrics.sinks[index]
                                .unwritten
                                .fetch_add(batch.timestamps.len() as u64, Ordering::Relaxed);
                            continue;
                        }
                        let port = input_ids
                            .iter()
                            .position(|&id| id == batch.stream)
                            .unwrap_or(0);
                        rows.push(port, batch);
                    }
                });
                let frontier = frontier.frontier();
                let time = frontier.iter().next().copied().unwrap_or(Nanos::MAX);
                if time <= released_until && !frontier.is_empty() {
                    return;
                }
                released_until = time;
                let mut slot = writer.borrow_mut();
                let Some(sink) = slot.as_mut() else {
                    return;
                };
                // Rows count as written once flushed: a release that fails leaves its rows
                // buffered, a flush that fails loses the rows handed to the writer.
                let mut handed = 0;
                let result = rows
                    .release(time, &schemas, sink.as_mut())
                    .and_then(|count| {
                        handed = count;
                        sink.advance(time)
                    })
                    .and_then(|()| sink.flush());
                match result {
                    Ok(()) => {
                        shared.metrics.sinks[index]
                            .rows
                            .fetch_add(handed as u64, Ordering::Relaxed);
                    }
                    Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => {
                        // The reader went away (e.g. `| head`): stop, keep draining, and count
                        // every row not known to be written.
                        *slot = None;
                        let sink = &shared.metrics.sinks[index];
                        sink.closed.store(true, Ordering::Relaxed);
                        sink.unwritten
                            .fetch_add((handed + rows.discard()) as u64, Ordering::Relaxed);
                        shared.stop.store(true, Ordering::Relaxed);
                    }
                    Err(error) => {
                        *slot = None;
                        shared.fail(format!(
                            "sink `{}` failed to write: {error}",
                            shared.pipeline.sinks[index].name
                        ));
                    }
                }
            }
        },
    )
}
