//! Builds the timely dataflow of a validated pipeline on one worker.
//!
//! - A source is a timely source operator on every worker that drains the queues it was given: it
//!   sends each batch at the queue's current watermark and downgrades its capability as watermarks
//!   arrive. A source that does not split has one queue, on worker 0; one that splits by subject
//!   has a queue per worker, carrying the subjects that worker owns. A worker without a queue
//!   drops its capability at once.
//! - An operator exchanges batches by subject, keeps one [`OperatorLogic`] per subject (for
//!   models, one per worker over that worker's subjects) and calls it on every frontier advance,
//!   holding a capability for window outputs in the meantime. A kind with its own fragment
//!   ([`crate::operators::DataflowOperator`]) builds that instead.
//! - A sink gathers its inputs on worker 0, one port per input, and writes rows in deterministic
//!   order as the frontiers pass them: the least of its inputs' frontiers for files, each input's
//!   own for writers that keep inputs apart (LSL outlets), so no outlet waits for another input.
//!
//! Invariant: a batch travels at a timely time no later than its first sample's timestamp, so an
//! input frontier `F` means every sample with a timestamp below `F` has arrived.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::TryRecvError;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::core::Partition;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::operator::source;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::{Capability, Concatenate};
use timely::dataflow::{Scope, Stream};

use super::latency::{self, LatencyStamps, PendingStamps, Stamp};
use crate::metrics::{OperatorMetrics, PipelineMetrics};
use crate::operators::{FragmentPorts, OperatorLogic, Routing};
use crate::pipeline::{Pipeline, StreamId};
use crate::sinks::ordering::OrderedRows;
use crate::sinks::{RowOrder, SinkWriter};
use crate::sources::queue::SourceReceiver;
use crate::sources::SourceEvent;
use crate::stream::{subject_route, Batch, Nanos};

/// A stream of batches in the dataflow, timestamped by event time.
pub type BatchStream<'s> = Stream<'s, Nanos, Vec<Batch>>;

/// What every worker shares while building and running the dataflow.
pub struct Shared {
    /// The validated pipeline.
    pub pipeline: Pipeline,
    /// Queue receivers per source, by the (run-wide) index of the worker that drains each: worker
    /// 0 for a source that does not split, every worker its own share for one that does.
    pub receivers: Vec<Mutex<BTreeMap<usize, SourceReceiver>>>,
    /// Writers per sink; worker 0 takes them.
    pub writers: Vec<Mutex<Option<Box<dyn SinkWriter>>>>,
    /// The tap sink's writer over every stream, when live taps were asked for; worker 0 takes it.
    pub tap: Mutex<Option<Box<dyn SinkWriter>>>,
    /// Whether the graph has the tap sink (the same on every worker).
    pub taps_every_stream: bool,
    /// Live counters.
    pub metrics: Arc<PipelineMetrics>,
    /// Window close-to-output stamps from operators to sinks.
    pub stamps: LatencyStamps,
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

/// Worker 0 takes the shared item (a source queue, a sink writer); other workers get nothing.
fn take_on_first_worker<T>(slot: &Mutex<Option<T>>, worker: usize) -> Option<T> {
    if worker == 0 {
        slot.lock().unwrap_or_else(|e| e.into_inner()).take()
    } else {
        None
    }
}

/// Builds the whole pipeline into `scope`.
pub fn build<'s>(scope: Scope<'s, Nanos>, shared: &Arc<Shared>, worker: usize) {
    let pipeline = &shared.pipeline;
    let mut streams: Vec<Option<BatchStream<'s>>> = vec![None; pipeline.streams.len()];

    for (index, node) in pipeline.sources.iter().enumerate() {
        let receiver = shared.receivers[index]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&worker);
        let all = source_operator(scope, (index, &node.name), receiver, shared.clone());
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

    for (index, node) in pipeline.operators.iter().enumerate() {
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
        if let Some(fragment) = node.config.component().dataflow() {
            let ports = FragmentPorts {
                name: node.name.clone(),
                input_ids: node.inputs.clone(),
                inputs: schemas,
                output_id: node.output,
                output: output_schema,
            };
            streams[node.output as usize] = Some(fragment.build(merged, &ports));
            continue;
        }
        let config = node.config.clone();
        let output_id = node.output;
        let factory = move |subject: &str| {
            let refs: Vec<_> = schemas.iter().collect();
            config
                .component()
                .logic(&refs, output_id, &output_schema, subject)
        };
        let routing = node.config.component().routing();
        let yields_first = node.config.component().yields_first();
        let probe = Probe {
            stamps: shared.stamps.senders(index),
            shared: shared.clone(),
            index,
        };
        let output = keyed_operator(
            merged,
            &node.name,
            node.inputs.clone(),
            (routing, yields_first),
            factory,
            probe,
        );
        streams[node.output as usize] = Some(output);
    }

    for (index, node) in pipeline.sinks.iter().enumerate() {
        let inputs: Vec<BatchStream<'s>> = node
            .inputs
            .iter()
            .filter_map(|&id| streams[id as usize].clone())
            .collect();
        let writer = take_on_first_worker(&shared.writers[index], worker);
        sink_operator(
            scope,
            inputs,
            SinkSlot::Pipeline(index),
            writer,
            shared.clone(),
        );
    }

    // Every worker builds the same graph; only worker 0's tap operator holds the writer.
    if shared.taps_every_stream {
        let writer = take_on_first_worker(&shared.tap, worker);
        let inputs: Vec<BatchStream<'s>> = streams.iter().flatten().cloned().collect();
        sink_operator(scope, inputs, SinkSlot::Tap, writer, shared.clone());
    }
}

/// Which sink a sink operator runs: one of the pipeline's, or the tap sink over every stream.
#[derive(Clone, Copy)]
enum SinkSlot {
    Pipeline(usize),
    Tap,
}

impl SinkSlot {
    /// The sink's counters.
    fn counters(self, shared: &Shared) -> &crate::metrics::SinkMetrics {
        match self {
            SinkSlot::Pipeline(index) => &shared.metrics.sinks[index],
            SinkSlot::Tap => &shared.metrics.tap,
        }
    }
}

/// Most queue events a source operator hands on per activation: downstream operators see the
/// frontier move after each round, so a source that reads ahead of them (a file played as fast as
/// possible) keeps only a few rounds of samples in their window buffers.
const SOURCE_EVENTS_PER_STEP: usize = 32;

/// How often a source operator looks at its queue when no send woke it.
const SOURCE_POLL: Duration = Duration::from_millis(50);

fn source_operator<'s>(
    scope: Scope<'s, Nanos>,
    (index, name): (usize, &str),
    receiver: Option<SourceReceiver>,
    shared: Arc<Shared>,
) -> BatchStream<'s> {
    let activator_scope = scope;
    source(scope, &format!("source {name}"), move |capability, info| {
        if let Some(receiver) = receiver.as_ref() {
            receiver.wake_on_send(
                activator_scope
                    .worker()
                    .sync_activator_for(info.address.to_vec()),
            );
        }
        let activator = activator_scope.activator_for(info.address);
        let mut capability: Option<Capability<Nanos>> = receiver.as_ref().map(|_| capability);
        let receiver = receiver.map(|r| r.events);
        move |output| {
            let (Some(receiver), Some(cap)) = (receiver.as_ref(), capability.as_mut()) else {
                capability = None;
                return;
            };
            let mut done = false;
            for _ in 0..SOURCE_EVENTS_PER_STEP {
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
                        // Sends wake the operator; the poll only covers events sent before it
                        // registered its activator.
                        activator.activate_after(SOURCE_POLL);
                        return;
                    }
                    Err(TryRecvError::Disconnected) => {
                        done = true;
                        break;
                    }
                }
            }
            if let Some(source) = shared.metrics.sources.get(index) {
                source.note_queued(receiver.len());
            }
            if done {
                capability = None;
            } else {
                activator.activate();
            }
        }
    })
}

/// What an operator reports as it runs: its counters, and the stamps for the sinks reading it.
struct Probe {
    shared: Arc<Shared>,
    index: usize,
    stamps: Vec<crossbeam_channel::Sender<Stamp>>,
}

impl Probe {
    fn metrics(&self) -> Option<&OperatorMetrics> {
        self.shared.metrics.operators.get(self.index)
    }

    /// Input samples the operator newly dropped as late.
    fn late(&self, count: u64) {
        self.shared
            .metrics
            .late_in_operators
            .fetch_add(count, Ordering::Relaxed);
        if let Some(metrics) = self.metrics() {
            metrics.late.fetch_add(count, Ordering::Relaxed);
        }
    }

    /// Rows about to be handed on.
    fn emitting(&self, rows: &[Batch]) {
        if let Some(metrics) = self.metrics() {
            let samples: usize = rows.iter().map(Batch::len).sum();
            metrics
                .samples_out
                .fetch_add(samples as u64, Ordering::Relaxed);
        }
    }

    /// A model run the last frontier advance made.
    fn inference(&self, run: crate::operators::Inference) {
        if let Some(metrics) = self.metrics() {
            metrics.inference.observe_duration(run.elapsed);
            metrics.batch_rows.observe(run.rows as u64);
        }
    }
}

/// Runs one operator kind's logic per subject (or once); `probe` is told every input sample a
/// logic newly drops as late, when the frontier advances, what it emits and how long a frontier
/// advance took to emit (see [`super::latency`]). With `yields_first`, a frontier advance is
/// handled on the operator's next activation, after the rest of the dataflow has run once (see
/// [`crate::operators::Operator::yields_first`]).
fn keyed_operator<'s, F>(
    stream: BatchStream<'s>,
    name: &str,
    input_ids: Vec<StreamId>,
    (routing, yields_first): (Routing, bool),
    factory: F,
    probe: Probe,
) -> BatchStream<'s>
where
    F: Fn(&str) -> Box<dyn OperatorLogic> + 'static,
{
    let per_subject = routing == Routing::PerSubject;
    let route = Exchange::new(move |batch: &Batch| subject_route(&batch.subject));
    let scope = stream.scope();
    stream.unary_frontier(route, name, move |_capability, info| {
        let activator = scope.activator_for(info.address);
        let mut yielded = false;
        let mut logics: BTreeMap<String, Box<dyn OperatorLogic>> = BTreeMap::new();
        let mut held: Option<Capability<Nanos>> = None;
        let mut out: Vec<Batch> = Vec::new();
        let mut late_counted = 0u64;
        let mut seen: Option<Instant> = None;
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
                    probe.emitting(&out);
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
                    let seen_at = *seen.get_or_insert_with(Instant::now);
                    if yields_first && !yielded {
                        yielded = true;
                        activator.activate();
                        return;
                    }
                    yielded = false;
                    seen = None;
                    for logic in logics.values_mut() {
                        logic.on_frontier(time, &mut out);
                        if let Some(run) = logic.take_inference() {
                            probe.inference(run);
                        }
                    }
                    if !out.is_empty() {
                        probe.emitting(&out);
                        latency::stamp(&probe.stamps, seen_at, &out);
                        output.session(&*cap).give_iterator(out.drain(..));
                        if let Some(metrics) = probe.metrics() {
                            metrics.emit_latency.observe_duration(seen_at.elapsed());
                        }
                    }
                    let late: u64 = logics.values().map(|l| l.late_samples()).sum();
                    if late > late_counted {
                        probe.late(late - late_counted);
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

/// A sink: one port per input (in the sink's input order), all gathered on worker 0.
fn sink_operator<'s>(
    scope: Scope<'s, Nanos>,
    inputs: Vec<BatchStream<'s>>,
    slot: SinkSlot,
    writer: Option<Box<dyn SinkWriter>>,
    shared: Arc<Shared>,
) {
    let (name, schemas): (String, Vec<_>) = match slot {
        SinkSlot::Pipeline(index) => (
            shared.pipeline.sinks[index].name.clone(),
            shared.pipeline.sinks[index]
                .inputs
                .iter()
                .map(|&id| shared.pipeline.streams[id as usize].clone())
                .collect(),
        ),
        SinkSlot::Tap => ("live taps".to_string(), shared.pipeline.streams.clone()),
    };
    let mut builder = OperatorBuilder::new(format!("sink {name}"), scope);
    let mut ports: Vec<_> = inputs
        .into_iter()
        .map(|input| builder.new_input(input, Exchange::new(|_: &Batch| 0)))
        .collect();
    let order = writer
        .as_ref()
        .map_or(RowOrder::AcrossInputs, |w| w.order());
    let mut stamps = match slot {
        SinkSlot::Pipeline(index) => shared.stamps.receivers(index, writer.is_some()),
        SinkSlot::Tap => PendingStamps::default(),
    };
    builder.build(move |_capabilities| {
        let mut writer = writer;
        let mut rows = OrderedRows::new();
        let mut released: Vec<Nanos> = Vec::new();
        move |frontiers| {
            let closed = writer.is_none();
            for (port, input) in ports.iter_mut().enumerate() {
                input.for_each(|_cap, data| {
                    for batch in data.drain(..) {
                        if closed {
                            slot.counters(&shared)
                                .unwritten
                                .fetch_add(batch.timestamps.len() as u64, Ordering::Relaxed);
                            continue;
                        }
                        rows.push(port, batch);
                    }
                });
            }
            let own: Vec<Nanos> = frontiers
                .iter()
                .map(|f| f.frontier().iter().next().copied().unwrap_or(Nanos::MAX))
                .collect();
            let least = own.iter().copied().min().unwrap_or(Nanos::MAX);
            let limits = match order {
                RowOrder::AcrossInputs => vec![least; own.len()],
                RowOrder::PerInput => own,
            };
            if limits == released && least < Nanos::MAX {
                return;
            }
            released.clone_from(&limits);
            let Some(sink) = writer.as_mut() else {
                return;
            };
            // Rows count as written once flushed: a release that fails leaves its rows
            // buffered, a flush that fails loses the rows handed to the writer.
            let mut handed = 0;
            let ready = rows.ready(&limits);
            let result = rows
                .release(&limits, &schemas, sink.as_mut())
                .and_then(|count| {
                    handed = count;
                    sink.advance(least)
                })
                .and_then(|()| sink.flush());
            match result {
                Ok(()) => {
                    let counters = slot.counters(&shared);
                    counters.rows.fetch_add(handed as u64, Ordering::Relaxed);
                    for (input, rows) in counters.inputs.iter().zip(ready) {
                        input.fetch_add(rows as u64, Ordering::Relaxed);
                    }
                    stamps.written(&limits, &counters.window_latency);
                }
                Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => {
                    // The reader went away (e.g. `| head`): stop, keep draining, and count
                    // every row not known to be written.
                    writer = None;
                    stamps.close();
                    let sink = slot.counters(&shared);
                    sink.closed.store(true, Ordering::Relaxed);
                    sink.unwritten
                        .fetch_add((handed + rows.discard()) as u64, Ordering::Relaxed);
                    shared.stop.store(true, Ordering::Relaxed);
                }
                Err(error) => {
                    writer = None;
                    stamps.close();
                    shared.fail(format!("sink `{name}` failed to write: {error}"));
                }
            }
        }
    });
}
