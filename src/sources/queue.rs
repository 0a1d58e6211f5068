//! The bounded queue between a source thread and the dataflow, with its full-queue policy.
//!
//! Memory is always bounded: when the queue is full a source either waits (`block`), discards the
//! oldest queued batch and counts its samples as dropped (`drop_oldest`), or, when the queue stays
//! full, gives up whole subjects, greatest id first, and counts their later samples
//! (`shed_subjects`: the subjects still served keep every input). Every event sent wakes the
//! dataflow operator that drains the queue (once it has registered, [`SourceReceiver::wake_on_send`]),
//! so live data does not wait for the operator's next poll.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, SendTimeoutError, Sender, TrySendError};
use timely::scheduling::SyncActivator;

use crate::config::options::Options;
use crate::metrics::SourceMetrics;
use crate::origin::Origins;
use crate::stream::{Batch, Nanos};

/// What a source does when the dataflow falls behind and its queue is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueuePolicy {
    /// Wait for room (no data lost; the source slows down).
    Block,
    /// Drop the oldest queued batch and count its samples.
    DropOldest,
    /// Give up whole subjects: when the queue stays full for [`SHED_AFTER`], stop sending the
    /// greatest ids still sent (one in [`SHED_FRACTION`], at most once per [`SHED_SETTLE`];
    /// their later samples are dropped and counted), so the subjects still served keep every
    /// input and the work shrinks with the load.
    ShedSubjects,
}

impl QueuePolicy {
    /// The policy's name in a pipeline file.
    pub fn name(&self) -> &'static str {
        match self {
            QueuePolicy::Block => "block",
            QueuePolicy::DropOldest => "drop_oldest",
            QueuePolicy::ShedSubjects => "shed_subjects",
        }
    }
}

/// How long a full queue waits for room, under `shed_subjects`, before subjects are shed.
pub const SHED_AFTER: Duration = Duration::from_millis(100);

/// Under `shed_subjects`, each time the queue stays full one in this many of the subjects still
/// served is shed.
pub const SHED_FRACTION: usize = 10;

/// Under `shed_subjects`, the least time between two sheds: what is queued and in the operators
/// when subjects are shed takes this long to drain, so shedding again sooner would give up more
/// subjects than the overload needs (meanwhile a full queue waits, as `block` does).
pub const SHED_SETTLE: Duration = Duration::from_secs(1);

/// Most batches a source's queue may hold: its slots are allocated up front, and a full queue of
/// one-second batches of EEG then holds a few gigabytes at most.
pub const MAX_QUEUE_CAPACITY: usize = 65_536;

/// Capacity (in batches) and policy of a source's queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueConfig {
    /// Maximum queued batches.
    pub capacity: usize,
    /// Full-queue policy.
    pub policy: QueuePolicy,
    /// The batches per step the capacity was sized for when the pipeline did not set it, so a
    /// source split over several queues sizes each for its own share ([`QueueConfig::for_shares`]).
    pub sized_for_round: Option<usize>,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            capacity: 1024,
            policy: QueuePolicy::Block,
            sized_for_round: None,
        }
    }
}

/// How many rounds of a source's batches (one batch per stream and subject) its queue holds by
/// default, so a full round never overflows it on its own.
pub const DEFAULT_ROUNDS: usize = 4;

impl QueueConfig {
    /// Reads an optional `queue = { capacity = N, policy = "block" | "drop_oldest" |
    /// "shed_subjects" }`; the capacity is 1 to [`MAX_QUEUE_CAPACITY`] batches, 1024 by default.
    pub fn parse(options: &mut Options) -> Self {
        Self::parse_for_round(options, 0)
    }

    /// Like [`QueueConfig::parse`] for a source that sends `round` batches per step (one per
    /// stream and subject): the default capacity is [`DEFAULT_ROUNDS`] rounds, at least 1024
    /// and at most [`MAX_QUEUE_CAPACITY`], so a source of thousands of subjects does not drop
    /// most of a step under `drop_oldest` only because the default was small.
    pub fn parse_for_round(options: &mut Options, round: usize) -> Self {
        let sized = QueueConfig {
            capacity: Self::capacity_for_round(round),
            sized_for_round: Some(round),
            ..QueueConfig::default()
        };
        options
            .table("queue", |queue| {
                let given = queue.raw("capacity").is_some();
                let capacity = queue.integer(
                    "capacity",
                    sized.capacity as i64,
                    1..MAX_QUEUE_CAPACITY as i64 + 1,
                ) as usize;
                QueueConfig {
                    capacity,
                    policy: match queue.choice(
                        "policy",
                        "block",
                        &["block", "drop_oldest", "shed_subjects"],
                    ) {
                        "drop_oldest" => QueuePolicy::DropOldest,
                        "shed_subjects" => QueuePolicy::ShedSubjects,
                        _ => QueuePolicy::Block,
                    },
                    sized_for_round: (!given).then_some(round),
                }
            })
            .unwrap_or(sized)
    }

    /// The queue of one of `shares` threads a source is split into: a default capacity is sized
    /// for the share's part of the round; a capacity the pipeline set holds for each queue.
    pub fn for_shares(self, shares: usize) -> Self {
        match self.sized_for_round {
            Some(round) => QueueConfig {
                capacity: Self::capacity_for_round(round.div_ceil(shares.max(1))),
                ..self
            },
            None => self,
        }
    }

    /// The default capacity for `round` batches per step.
    pub fn capacity_for_round(round: usize) -> usize {
        round
            .saturating_mul(DEFAULT_ROUNDS)
            .clamp(QueueConfig::default().capacity, MAX_QUEUE_CAPACITY)
    }
}

/// What a source thread sends to the dataflow.
#[derive(Debug)]
pub enum SourceEvent {
    /// Samples; every timestamp is at or above the last watermark.
    Data(Batch),
    /// Every future sample will have a timestamp at or above this.
    Watermark(Nanos),
    /// The source cannot go on; the pipeline stops with this message.
    Failed(String),
}

/// The sending end a source thread owns.
pub struct SourceSender {
    sender: Sender<SourceEvent>,
    /// A second receiver used to discard the oldest batch (only with `drop_oldest`).
    oldest: Option<Receiver<SourceEvent>>,
    policy: QueuePolicy,
    metrics: Arc<SourceMetrics>,
    origins: Arc<Origins>,
    stop: Arc<AtomicBool>,
    wake: Arc<OnceLock<SyncActivator>>,
    /// Per output stream (as in the metrics' outputs), each subject's last timestamp sent: what
    /// gaps are measured from. Only the source's own thread sends.
    last_sent: RefCell<Vec<HashMap<String, Nanos>>>,
    /// Under `shed_subjects`: the subjects sent so far, and those shed.
    subjects: RefCell<(BTreeSet<String>, BTreeSet<String>)>,
    /// Under `shed_subjects`: when subjects were last shed.
    last_shed: Cell<Option<Instant>>,
}

/// The receiving end the dataflow owns.
pub struct SourceReceiver {
    /// The events, in the order the source sent them.
    pub events: Receiver<SourceEvent>,
    wake: Arc<OnceLock<SyncActivator>>,
}

impl SourceReceiver {
    /// From now on every event sent also activates `activator` (the operator draining the
    /// queue), waking its worker if it is parked.
    pub fn wake_on_send(&self, activator: SyncActivator) {
        let _ = self.wake.set(activator);
    }
}

/// Creates a source's queue: the sender for its thread, the receiver for the dataflow.
pub fn source_queue(
    config: QueueConfig,
    metrics: Arc<SourceMetrics>,
    origins: Arc<Origins>,
    stop: Arc<AtomicBool>,
) -> (SourceSender, SourceReceiver) {
    let (sender, receiver) = bounded(config.capacity);
    let wake = Arc::new(OnceLock::new());
    let last_sent = RefCell::new(vec![HashMap::new(); metrics.outputs.len()]);
    (
        SourceSender {
            last_sent,
            subjects: RefCell::default(),
            last_shed: Cell::new(None),
            sender,
            oldest: (config.policy == QueuePolicy::DropOldest).then(|| receiver.clone()),
            policy: config.policy,
            metrics,
            origins,
            stop,
            wake: wake.clone(),
        },
        SourceReceiver {
            events: receiver,
            wake,
        },
    )
}

impl SourceSender {
    /// Whether the pipeline asked sources to stop (Ctrl-C, an error elsewhere).
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// The source's counters.
    pub fn metrics(&self) -> &SourceMetrics {
        &self.metrics
    }

    /// Where the run records what each stream's sender is (read by recording sinks).
    pub fn origins(&self) -> &Origins {
        &self.origins
    }

    /// Sends samples; returns false when the pipeline is gone and the source should end.
    pub fn data(&self, batch: Batch) -> bool {
        let samples = batch.len() as u64;
        if self.policy == QueuePolicy::ShedSubjects {
            let mut subjects = self.subjects.borrow_mut();
            if subjects.1.contains(&batch.subject) {
                drop(subjects);
                self.count_dropped(&batch);
                return !self.stopping();
            }
            if !subjects.0.contains(&batch.subject) {
                subjects.0.insert(batch.subject.clone());
            }
        }
        let output = self
            .metrics
            .outputs
            .iter()
            .position(|o| o.stream == batch.stream);
        let gaps = output.map_or((0, 0), |index| self.gaps(index, &batch));
        let sent = self.send(SourceEvent::Data(batch));
        if sent {
            self.metrics.first_sent.get_or_init(std::time::Instant::now);
            self.metrics.samples.fetch_add(samples, Ordering::Relaxed);
            if let Some(counters) = output.map(|index| &self.metrics.outputs[index]) {
                counters.samples.fetch_add(samples, Ordering::Relaxed);
                if gaps.0 > 0 {
                    counters.gaps.fetch_add(gaps.0, Ordering::Relaxed);
                    counters.gap_ns.fetch_add(gaps.1, Ordering::Relaxed);
                }
            }
        }
        sent
    }

    /// Gaps in `batch`, a batch of output `index`'s stream, counting from its subject's previous
    /// sample: how many intervals exceed two nominal intervals, and the event time they lost
    /// (nanoseconds). Irregular streams have none.
    fn gaps(&self, index: usize, batch: &Batch) -> (u64, u64) {
        let (Some(period), Some(&last)) = (
            self.metrics.outputs[index].period_ns,
            batch.timestamps.last(),
        ) else {
            return (0, 0);
        };
        let mut last_sent = self.last_sent.borrow_mut();
        let Some(seen) = last_sent.get_mut(index) else {
            return (0, 0);
        };
        let mut before = match seen.get_mut(batch.subject.as_str()) {
            Some(previous) => Some(std::mem::replace(previous, last)),
            None => {
                seen.insert(batch.subject.clone(), last);
                None
            }
        };
        let (mut count, mut lost) = (0, 0);
        for &time in &batch.timestamps {
            if let Some(previous) = before {
                let interval = time.saturating_sub(previous);
                if interval > period.saturating_mul(2) {
                    count += 1;
                    lost += (interval - period) as u64;
                }
            }
            before = Some(time);
        }
        (count, lost)
    }

    /// Promises that no later sample has a timestamp below `time`.
    pub fn watermark(&self, time: Nanos) -> bool {
        let sent = self.send(SourceEvent::Watermark(time));
        if sent {
            self.metrics.watermark.fetch_max(time, Ordering::Relaxed);
        }
        sent
    }

    /// Reports a fatal error of this source.
    pub fn fail(&self, message: impl Into<String>) {
        let _ = self.sender.send(SourceEvent::Failed(message.into()));
        self.wake();
    }

    fn send(&self, event: SourceEvent) -> bool {
        let sent = self.enqueue(event);
        if sent {
            self.metrics.note_queued(self.sender.len());
            self.wake();
        }
        sent
    }

    /// Activates the operator draining the queue (an error means the dataflow is gone, which the
    /// next send notices too).
    fn wake(&self) {
        if let Some(activator) = self.wake.get() {
            let _ = activator.activate();
        }
    }

    fn enqueue(&self, mut event: SourceEvent) -> bool {
        loop {
            match self.policy {
                QueuePolicy::Block => {
                    match self.sender.send_timeout(event, Duration::from_millis(100)) {
                        Ok(()) => return true,
                        Err(SendTimeoutError::Disconnected(_)) => return false,
                        Err(SendTimeoutError::Timeout(back)) => event = back,
                    }
                }
                QueuePolicy::DropOldest => match self.sender.try_send(event) {
                    Ok(()) => return true,
                    Err(TrySendError::Disconnected(_)) => return false,
                    Err(TrySendError::Full(back)) => {
                        if self.stopping() {
                            return false;
                        }
                        event = back;
                        if let Some(Ok(SourceEvent::Data(dropped))) =
                            self.oldest.as_ref().map(Receiver::try_recv)
                        {
                            self.count_dropped(&dropped);
                        }
                    }
                },
                QueuePolicy::ShedSubjects => match self.sender.send_timeout(event, SHED_AFTER) {
                    Ok(()) => return true,
                    Err(SendTimeoutError::Disconnected(_)) => return false,
                    Err(SendTimeoutError::Timeout(back)) => {
                        if self.stopping() {
                            return false;
                        }
                        let settled = self
                            .last_shed
                            .get()
                            .is_none_or(|at| at.elapsed() >= SHED_SETTLE);
                        if settled {
                            self.shed_some();
                            self.last_shed.set(Some(Instant::now()));
                        }
                        match back {
                            SourceEvent::Data(batch) if self.is_shed(&batch.subject) => {
                                self.count_dropped(&batch);
                                return true;
                            }
                            other => event = other,
                        }
                    }
                },
            }
        }
    }

    /// Counts a batch's samples as dropped because the queue was full.
    fn count_dropped(&self, batch: &Batch) {
        let samples = batch.len() as u64;
        self.metrics.dropped.fetch_add(samples, Ordering::Relaxed);
        if let Some(counters) = self.metrics.output(batch.stream) {
            counters.dropped.fetch_add(samples, Ordering::Relaxed);
        }
    }

    fn is_shed(&self, subject: &str) -> bool {
        self.subjects.borrow().1.contains(subject)
    }

    /// Sheds the subjects with the greatest ids still sent, one in [`SHED_FRACTION`] of them (at
    /// least one, never the last), and says so.
    fn shed_some(&self) {
        let mut subjects = self.subjects.borrow_mut();
        let (sent, shed) = &mut *subjects;
        let served = sent.len() - shed.len();
        let count = (served / SHED_FRACTION)
            .max(1)
            .min(served.saturating_sub(1));
        let chosen: Vec<String> = sent
            .iter()
            .rev()
            .filter(|s| !shed.contains(*s))
            .take(count)
            .cloned()
            .collect();
        let Some(last) = chosen.last() else {
            return;
        };
        let named = match chosen.len() {
            1 => format!("subject {last} is shed"),
            n => format!("{n} subjects ({} to {last}) are shed", chosen[0]),
        };
        shed.extend(chosen.iter().cloned());
        let thread = std::thread::current();
        crate::notice!(
            "heloflow: {}: the queue stayed full for {} ms: {named} ({} of {} now), their later samples are dropped and counted",
            thread.name().unwrap_or("a source"),
            SHED_AFTER.as_millis(),
            shed.len(),
            sent.len()
        );
    }
}

/// A source thread that panics drops its sender while unwinding: the pipeline is told, so the run
/// stops with an error instead of ending as if the source had finished.
impl Drop for SourceSender {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let thread = std::thread::current();
            let name = thread.name().unwrap_or("a source thread");
            let _ = self.sender.send_timeout(
                SourceEvent::Failed(format!("{name} stopped on an internal error")),
                Duration::from_secs(1),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::Values;

    #[test]
    fn a_source_of_many_subjects_queues_a_few_steps_by_default() {
        assert_eq!(QueueConfig::capacity_for_round(0), 1024);
        assert_eq!(QueueConfig::capacity_for_round(2000 * 6), 48_000);
        assert_eq!(
            QueueConfig::capacity_for_round(usize::MAX),
            MAX_QUEUE_CAPACITY
        );
        let queue_of = |queue: &str| {
            let text = format!(
                "[sources.sim]\nkind = \"simulator\"\nsubjects = 2000\nstreams = [\"eeg\", \"eda\"]\n{queue}\n\n[sinks.out]\nkind = \"jsonl\"\ninputs = [\"sim.eeg\", \"sim.eda\"]\npath = \"-\"\n"
            );
            let pipeline = crate::pipeline::parse("queue.toml", &text).unwrap();
            pipeline.sources[0].config.component().queue()
        };
        assert_eq!(queue_of("").capacity, 16_000);
        // Split over 4 workers, each queue holds four steps of its own share.
        assert_eq!(queue_of("").for_shares(4).capacity, 4_000);
        let dropping = queue_of("queue = { policy = \"drop_oldest\" }");
        assert_eq!(dropping.for_shares(2).capacity, 8_000);
        assert_eq!(dropping.policy, QueuePolicy::DropOldest);
        assert_eq!(
            queue_of("queue = { capacity = 8 }").for_shares(4).capacity,
            8
        );
    }

    /// A queue of `capacity` batches under `policy`, counting into `metrics`.
    fn bounded_queue(
        capacity: usize,
        policy: QueuePolicy,
        metrics: Arc<SourceMetrics>,
    ) -> (SourceSender, SourceReceiver) {
        let config = QueueConfig {
            capacity,
            policy,
            sized_for_round: None,
        };
        source_queue(config, metrics, Arc::default(), Arc::default())
    }

    fn batch(n: usize) -> Batch {
        Batch {
            stream: 0,
            subject: "S".into(),
            timestamps: vec![0; n],
            values: Values::Numeric(vec![0.0; n]),
        }
    }

    #[test]
    fn drop_oldest_keeps_memory_bounded_and_counts() {
        let metrics = Arc::new(SourceMetrics::default());
        let (sender, receiver) = bounded_queue(2, QueuePolicy::DropOldest, metrics.clone());
        for n in 1..=5 {
            assert!(sender.data(batch(n)));
        }
        assert_eq!(receiver.events.len(), 2);
        assert_eq!(metrics.dropped.load(Ordering::Relaxed), 1 + 2 + 3);
        let kept: Vec<usize> = receiver
            .events
            .try_iter()
            .map(|e| match e {
                SourceEvent::Data(b) => b.len(),
                _ => 0,
            })
            .collect();
        assert_eq!(kept, vec![4, 5]);
    }

    #[test]
    fn shed_subjects_gives_up_the_greatest_ids_and_keeps_every_batch_of_the_rest() {
        let metrics = Arc::new(SourceMetrics::default());
        let (sender, receiver) = bounded_queue(3, QueuePolicy::ShedSubjects, metrics.clone());
        let of = |subject: &str, n: usize| Batch {
            subject: subject.into(),
            ..batch(n)
        };
        // Three subjects fill the queue; the next batch waits, then P3 is shed.
        for subject in ["P1", "P2", "P3"] {
            assert!(sender.data(of(subject, 1)));
        }
        assert!(sender.data(of("P3", 10)));
        assert_eq!(metrics.dropped.load(Ordering::Relaxed), 10);
        // A shed subject's batches are dropped at once, even with room.
        let drained: Vec<String> = receiver
            .events
            .try_iter()
            .map(|e| match e {
                SourceEvent::Data(b) => b.subject,
                _ => String::new(),
            })
            .collect();
        assert_eq!(drained, ["P1", "P2", "P3"]);
        assert!(sender.data(of("P3", 100)));
        assert_eq!(metrics.dropped.load(Ordering::Relaxed), 110);
        // The served subjects keep every batch while there is room.
        for subject in ["P1", "P2", "P1"] {
            assert!(sender.data(of(subject, 1)));
        }
        assert_eq!(receiver.events.len(), 3);
        // Full again: P2 goes, and P1, the last subject, is never shed.
        assert!(sender.data(of("P2", 1000)));
        assert_eq!(metrics.dropped.load(Ordering::Relaxed), 1110);
        let last = of("P1", 1);
        let waiting = std::thread::spawn(move || sender.data(last));
        std::thread::sleep(SHED_AFTER * 3);
        assert!(!waiting.is_finished(), "the last subject waits for room");
        let _ = receiver.events.try_recv();
        assert!(waiting.join().unwrap());
        assert_eq!(metrics.dropped.load(Ordering::Relaxed), 1110);
    }

    #[test]
    fn shed_subjects_gives_up_one_in_ten_of_the_served_each_time_but_never_the_last() {
        let (sender, _receiver) = bounded_queue(1, QueuePolicy::ShedSubjects, Arc::default());
        let ids = |range: std::ops::Range<usize>| -> BTreeSet<String> {
            range.map(|i| format!("S{i:02}")).collect()
        };
        sender.subjects.borrow_mut().0 = ids(0..40);
        sender.shed_some();
        assert_eq!(sender.subjects.borrow().1, ids(36..40));
        sender.shed_some();
        assert_eq!(sender.subjects.borrow().1, ids(33..40));
        for _ in 0..100 {
            sender.shed_some();
        }
        assert_eq!(sender.subjects.borrow().1, ids(1..40));
    }

    #[test]
    fn samples_drops_and_gaps_are_counted_per_stream() {
        use crate::metrics::StreamCounters;
        let metrics = Arc::new(SourceMetrics {
            outputs: vec![
                StreamCounters {
                    stream: 0,
                    period_ns: Some(10),
                    ..StreamCounters::default()
                },
                StreamCounters {
                    stream: 1,
                    ..StreamCounters::default()
                },
            ],
            ..SourceMetrics::default()
        });
        let (sender, receiver) = bounded_queue(2, QueuePolicy::DropOldest, metrics.clone());
        let timed = |stream: u32, subject: &str, timestamps: Vec<Nanos>| Batch {
            stream,
            subject: subject.into(),
            values: Values::Numeric(vec![0.0; timestamps.len()]),
            timestamps,
        };
        // Regular stream, 10 ns apart: a gap of 50 ns inside a batch, one of 30 ns across two
        // batches of subject A; subject B's first sample is no gap; 20 ns is no gap (2 intervals).
        assert!(sender.data(timed(0, "A", vec![0, 10, 60, 70])));
        assert!(sender.data(timed(0, "B", vec![100])));
        assert!(sender.data(timed(0, "A", vec![100, 120])));
        // Irregular stream: never a gap. This send pushes out the oldest queued batches.
        assert!(sender.data(timed(1, "A", vec![0, 1_000_000])));
        let regular = &metrics.outputs[0];
        assert_eq!(regular.samples.load(Ordering::Relaxed), 7);
        assert_eq!(regular.gaps.load(Ordering::Relaxed), 2);
        assert_eq!(
            regular.gap_ns.load(Ordering::Relaxed),
            (50 - 10) + (30 - 10)
        );
        assert_eq!(regular.dropped.load(Ordering::Relaxed), 4 + 1);
        let irregular = &metrics.outputs[1];
        assert_eq!(irregular.samples.load(Ordering::Relaxed), 2);
        assert_eq!(irregular.gaps.load(Ordering::Relaxed), 0);
        assert_eq!(metrics.queued.load(Ordering::Relaxed), 2);
        assert_eq!(metrics.queue_peak.load(Ordering::Relaxed), 2);
        drop(receiver);
    }

    #[test]
    fn a_panicking_source_thread_fails_the_pipeline() {
        let (sender, receiver) = source_queue(
            QueueConfig::default(),
            Arc::default(),
            Arc::default(),
            Arc::default(),
        );
        let thread = std::thread::Builder::new()
            .name("source broken".to_string())
            .spawn(move || {
                assert!(sender.data(batch(1)));
                panic!("a bug in a source");
            })
            .unwrap();
        assert!(thread.join().is_err());
        let events: Vec<SourceEvent> = receiver.events.try_iter().collect();
        assert!(matches!(events[0], SourceEvent::Data(_)));
        match &events[1] {
            SourceEvent::Failed(message) => {
                assert_eq!(message, "source broken stopped on an internal error")
            }
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    #[test]
    fn senders_notice_a_closed_pipeline() {
        let (sender, receiver) = source_queue(
            QueueConfig::default(),
            Arc::default(),
            Arc::default(),
            Arc::default(),
        );
        drop(receiver);
        assert!(!sender.data(batch(1)));
    }
}
