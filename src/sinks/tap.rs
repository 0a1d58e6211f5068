//! Taps: every named stream of a running pipeline, published to live subscribers (the HTTP
//! server's WebSocket and SSE taps, `/api/latest`, the demo's terminal view).
//!
//! Not a kind written in pipeline files: the runtime adds one tap sink over every stream when a
//! server or a live view asks for it (`[server]`, `heloflow run --serve`). Each row becomes the
//! exact text the `jsonl` sink writes for it, so a tap and a jsonl file carry the same rows byte
//! for byte.
//!
//! ```
//! use heloflow::sinks::tap::{TapHub, TapLimits, TapMessage};
//! use heloflow::stream::{ChannelFormat, Modality, Rate, StreamSchema};
//!
//! let schema = StreamSchema {
//!     name: "helo".into(),
//!     modality: Modality::Emotion,
//!     channels: vec![],
//!     format: ChannelFormat::Float32,
//!     rate: Rate::Irregular,
//!     subjects: vec![],
//! };
//! let hub = TapHub::new(&[schema], TapLimits::default());
//! let mut tap = hub.subscribe("helo", None, 0).unwrap();
//! hub.publish("helo", "S01", r#"{"t":1.000000000,"stream":"helo","subject":"S01","values":{}}"#);
//! hub.end();
//! assert!(matches!(tap.receiver.try_recv(), Ok(TapMessage::Row(_))));
//! assert!(matches!(tap.receiver.try_recv(), Ok(TapMessage::End)));
//! ```
//!
//! Publishing never blocks: each subscriber has a bounded queue, and one whose queue is full (a
//! client that does not read) is disconnected and counted, so a slow client can neither stall the
//! pipeline nor grow memory.

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::mpsc;

use super::jsonl::format_line;
use super::{Row, RowOrder, SinkWriter};
use crate::stream::{Nanos, StreamSchema};

/// How much a hub keeps and queues.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TapLimits {
    /// Rows kept per stream for subscribers that ask for history.
    pub history_rows: usize,
    /// Rows queued per subscriber before it counts as too slow and is disconnected.
    pub client_buffer: usize,
}

impl Default for TapLimits {
    fn default() -> Self {
        TapLimits {
            history_rows: 600,
            client_buffer: 1024,
        }
    }
}

/// What a subscriber receives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TapMessage {
    /// One row, as the jsonl sink writes it (without the newline).
    Row(Bytes),
    /// The pipeline ended: nothing more will come.
    End,
}

/// A live subscription to one stream.
pub struct Subscription {
    /// Kept rows the subscriber asked for (oldest first), to send before the live ones.
    pub history: Vec<Bytes>,
    /// Live rows, then [`TapMessage::End`]. Closed without `End` when the subscriber fell too far
    /// behind and was disconnected.
    pub receiver: mpsc::Receiver<TapMessage>,
}

/// Counters of a hub, for telemetry.
#[derive(Debug, Default)]
pub struct TapStats {
    /// Rows published, over all streams.
    pub rows: AtomicU64,
    /// Subscribers disconnected because their queue was full.
    pub slow_disconnects: AtomicU64,
    /// Subscriptions opened.
    pub subscriptions: AtomicU64,
}

/// Every stream's kept rows, latest row per subject and subscribers.
pub struct TapHub {
    streams: Vec<StreamTap>,
    by_name: BTreeMap<String, usize>,
    limits: TapLimits,
    ended: AtomicBool,
    /// Live counters.
    pub stats: TapStats,
}

impl std::fmt::Debug for TapHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TapHub")
            .field("streams", &self.by_name.keys().collect::<Vec<_>>())
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

struct StreamTap {
    schema: StreamSchema,
    state: Mutex<TapState>,
}

#[derive(Default)]
struct TapState {
    /// Kept rows with their subject, oldest first.
    history: VecDeque<(Arc<str>, Bytes)>,
    /// The latest row of every subject seen, by subject.
    latest: BTreeMap<Arc<str>, Bytes>,
    subscribers: Vec<Subscriber>,
    ended: bool,
}

struct Subscriber {
    subject: Option<String>,
    sender: mpsc::Sender<TapMessage>,
}

impl TapHub {
    /// A hub for these streams (a pipeline's `streams`, in id order).
    pub fn new(streams: &[StreamSchema], limits: TapLimits) -> Self {
        TapHub {
            by_name: streams
                .iter()
                .enumerate()
                .map(|(index, schema)| (schema.name.clone(), index))
                .collect(),
            streams: streams
                .iter()
                .map(|schema| StreamTap {
                    schema: schema.clone(),
                    state: Mutex::default(),
                })
                .collect(),
            limits,
            ended: AtomicBool::new(false),
            stats: TapStats::default(),
        }
    }

    /// The streams it serves, in pipeline order.
    pub fn schemas(&self) -> impl Iterator<Item = &StreamSchema> {
        self.streams.iter().map(|s| &s.schema)
    }

    /// Whether it serves a stream of this name.
    pub fn has_stream(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    /// Its limits.
    pub fn limits(&self) -> TapLimits {
        self.limits
    }

    fn state(&self, name: &str) -> Option<MutexGuard<'_, TapState>> {
        let index = *self.by_name.get(name)?;
        Some(
            self.streams[index]
                .state
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        )
    }

    /// Subscribes to `stream` (only `subject`'s rows when given), first receiving up to `history`
    /// kept rows; `None` when no such stream exists.
    pub fn subscribe(
        &self,
        stream: &str,
        subject: Option<String>,
        history: usize,
    ) -> Option<Subscription> {
        let mut state = self.state(stream)?;
        let (sender, receiver) = mpsc::channel(self.limits.client_buffer.max(1));
        let kept: Vec<Bytes> = state
            .history
            .iter()
            .filter(|(of, _)| subject.as_deref().is_none_or(|s| **of == *s))
            .map(|(_, line)| line.clone())
            .collect();
        let history = kept[kept.len().saturating_sub(history)..].to_vec();
        if state.ended {
            // Capacity is at least one, so the end always fits.
            let _ = sender.try_send(TapMessage::End);
        } else {
            state.subscribers.push(Subscriber { subject, sender });
        }
        self.stats.subscriptions.fetch_add(1, Ordering::Relaxed);
        Some(Subscription { history, receiver })
    }

    /// Publishes one row of `stream` for `subject` (`line`: the row as the jsonl sink writes it).
    pub fn publish(&self, stream: &str, subject: &str, line: impl Into<Bytes>) {
        let Some(mut state) = self.state(stream) else {
            return;
        };
        let line: Bytes = line.into();
        self.stats.rows.fetch_add(1, Ordering::Relaxed);
        let key: Arc<str> = match state.latest.get_key_value(subject) {
            Some((key, _)) => key.clone(),
            None => Arc::from(subject),
        };
        state.latest.insert(key.clone(), line.clone());
        if self.limits.history_rows > 0 {
            if state.history.len() == self.limits.history_rows {
                state.history.pop_front();
            }
            state.history.push_back((key, line.clone()));
        }
        let mut slow = 0;
        state.subscribers.retain(|subscriber| {
            if subscriber.subject.as_deref().is_some_and(|s| s != subject) {
                return !subscriber.sender.is_closed();
            }
            match subscriber.sender.try_send(TapMessage::Row(line.clone())) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    slow += 1;
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
        if slow > 0 {
            self.stats
                .slow_disconnects
                .fetch_add(slow, Ordering::Relaxed);
        }
    }

    /// The latest row of every subject of `stream`, by subject; `None` when no such stream exists.
    pub fn latest(&self, stream: &str) -> Option<Vec<(String, Bytes)>> {
        let state = self.state(stream)?;
        Some(
            state
                .latest
                .iter()
                .map(|(subject, line)| (subject.to_string(), line.clone()))
                .collect(),
        )
    }

    /// Subjects seen so far on `stream`, sorted.
    pub fn subjects(&self, stream: &str) -> Vec<String> {
        self.state(stream)
            .map(|state| state.latest.keys().map(|s| s.to_string()).collect())
            .unwrap_or_default()
    }

    /// Subscribers currently connected, over all streams.
    pub fn subscribers(&self) -> usize {
        self.streams
            .iter()
            .map(|s| {
                let mut state = s.state.lock().unwrap_or_else(|e| e.into_inner());
                state.subscribers.retain(|sub| !sub.sender.is_closed());
                state.subscribers.len()
            })
            .sum()
    }

    /// Ends every stream: subscribers receive [`TapMessage::End`] (those whose queue is full are
    /// disconnected instead) and later subscribers get the end at once.
    pub fn end(&self) {
        if self.ended.swap(true, Ordering::SeqCst) {
            return;
        }
        for stream in &self.streams {
            let mut state = stream.state.lock().unwrap_or_else(|e| e.into_inner());
            state.ended = true;
            for subscriber in state.subscribers.drain(..) {
                let _ = subscriber.sender.try_send(TapMessage::End);
            }
        }
    }

    /// Whether the pipeline ended.
    pub fn has_ended(&self) -> bool {
        self.ended.load(Ordering::SeqCst)
    }
}

/// The tap sink's writer: formats every row once and publishes it to the hub.
pub struct TapWriter {
    hub: Arc<TapHub>,
    line: String,
}

impl TapWriter {
    /// A writer publishing to `hub`.
    pub fn new(hub: Arc<TapHub>) -> Self {
        TapWriter {
            hub,
            line: String::new(),
        }
    }
}

impl SinkWriter for TapWriter {
    /// Each stream on its own: a tap of one stream never waits for another.
    fn order(&self) -> RowOrder {
        RowOrder::PerInput
    }

    fn write_row(&mut self, row: &Row<'_>) -> io::Result<()> {
        self.line.clear();
        format_line(row, true, &mut self.line);
        self.hub
            .publish(&row.schema.name, row.subject, self.line.clone());
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn advance(&mut self, frontier: Nanos) -> io::Result<()> {
        if frontier == Nanos::MAX {
            self.hub.end();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::{Channel, ChannelFormat, Modality, Rate};

    fn hub(limits: TapLimits) -> TapHub {
        let schema = StreamSchema {
            name: "helo".into(),
            modality: Modality::Emotion,
            channels: vec![Channel::new("joy", "", "Emotion")],
            format: ChannelFormat::Float32,
            rate: Rate::Irregular,
            subjects: vec![],
        };
        TapHub::new(&[schema], limits)
    }

    fn line(t: u32, subject: &str) -> String {
        format!("{{\"t\":{t}.000000000,\"stream\":\"helo\",\"subject\":\"{subject}\",\"values\":{{\"joy\":0.5}}}}")
    }

    #[test]
    fn a_subscriber_gets_history_then_live_rows_then_the_end() {
        let hub = hub(TapLimits {
            history_rows: 3,
            client_buffer: 8,
        });
        for t in 0..5 {
            hub.publish("helo", "S01", line(t, "S01"));
        }
        let mut tap = hub.subscribe("helo", None, usize::MAX).unwrap();
        assert_eq!(
            tap.history,
            (2..5)
                .map(|t| Bytes::from(line(t, "S01")))
                .collect::<Vec<_>>()
        );
        hub.publish("helo", "S02", line(5, "S02"));
        hub.end();
        assert_eq!(
            tap.receiver.try_recv().unwrap(),
            TapMessage::Row(line(5, "S02").into())
        );
        assert_eq!(tap.receiver.try_recv().unwrap(), TapMessage::End);
        assert_eq!(hub.subjects("helo"), ["S01", "S02"]);
        let late = hub.subscribe("helo", None, 0).unwrap();
        assert!(late.history.is_empty());
        let mut late = late.receiver;
        assert_eq!(late.try_recv().unwrap(), TapMessage::End);
    }

    #[test]
    fn a_subject_filter_keeps_only_that_subjects_rows() {
        let hub = hub(TapLimits::default());
        hub.publish("helo", "S01", line(0, "S01"));
        hub.publish("helo", "S02", line(0, "S02"));
        let mut tap = hub.subscribe("helo", Some("S02".into()), 10).unwrap();
        assert_eq!(tap.history, [Bytes::from(line(0, "S02"))]);
        hub.publish("helo", "S01", line(1, "S01"));
        hub.publish("helo", "S02", line(1, "S02"));
        assert_eq!(
            tap.receiver.try_recv().unwrap(),
            TapMessage::Row(line(1, "S02").into())
        );
        assert!(tap.receiver.try_recv().is_err());
        let latest = hub.latest("helo").unwrap();
        assert_eq!(latest.len(), 2);
        assert_eq!(latest[1], ("S02".to_string(), Bytes::from(line(1, "S02"))));
    }

    #[test]
    fn a_subscriber_that_never_reads_is_disconnected_and_counted() {
        let hub = hub(TapLimits {
            history_rows: 0,
            client_buffer: 4,
        });
        let mut stalled = hub.subscribe("helo", None, 0).unwrap();
        for t in 0..100 {
            hub.publish("helo", "S01", line(t, "S01"));
        }
        assert_eq!(hub.stats.slow_disconnects.load(Ordering::Relaxed), 1);
        assert_eq!(hub.subscribers(), 0);
        let mut received = 0;
        while let Ok(TapMessage::Row(_)) = stalled.receiver.try_recv() {
            received += 1;
        }
        assert_eq!(received, 4);
        assert!(stalled.receiver.try_recv().is_err());
        assert!(hub.subscribe("nope", None, 0).is_none());
    }
}
