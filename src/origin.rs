//! Where each stream of each subject came from, learned at run time: the sender's full stream
//! info (an LSL outlet's, or an XDF recording's stream header) and the clock offsets measured for
//! it. Sources write it as they connect; sinks that record streams (XDF) read it, so a recording
//! keeps a device's `source_id`, `desc` and raw timestamps.
//!
//! ```
//! use heloflow::origin::{Origins, StreamOrigin};
//!
//! let origins = Origins::default();
//! origins.set(0, "P01", StreamOrigin::new("<info><name>amp</name></info>"));
//! origins.add_clock_offset(0, "P01", 100.0, -0.25, 1_000);
//! let origin = origins.get(0, "P01").unwrap();
//! assert_eq!(origin.offset_applied_at(5_000), -0.25);
//! assert_eq!(origin.offset_applied_at(500), 0.0);
//! ```

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::stream::Nanos;

/// One clock offset measurement: at `collected` (seconds on the local clock) the sender's clock
/// read `offset` seconds behind ours (local time = sender time + offset).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClockOffset {
    /// When it was measured, seconds on the local clock.
    pub collected: f64,
    /// Seconds to add to the sender's timestamps to put them on the local clock.
    pub offset: f64,
}

/// What the run knows about the sender of one stream of one subject.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StreamOrigin {
    /// The sender's full stream info as XML (`<info>...<desc>...</desc></info>`).
    pub info_xml: String,
    /// Clock offsets measured so far, oldest first (empty when timestamps need no correction).
    pub clock_offsets: Vec<ClockOffset>,
    /// The offset the source added to event times from each event time on, oldest first, so the
    /// sender's own timestamps can be recovered (to the nanosecond while the clocks read under
    /// 2^22 s, within one beyond).
    pub applied: Vec<(Nanos, f64)>,
}

impl StreamOrigin {
    /// An origin from the sender's stream info XML, without clock offsets.
    pub fn new(info_xml: impl Into<String>) -> Self {
        StreamOrigin {
            info_xml: info_xml.into(),
            ..StreamOrigin::default()
        }
    }

    /// The offset added to a sample at event time `time` (0 before any was applied).
    pub fn offset_applied_at(&self, time: Nanos) -> f64 {
        offset_applied_at(&self.applied, time)
    }
}

/// The offset in effect at `time` in a list of (from event time, offset) steps (0 before any).
pub fn offset_applied_at(applied: &[(Nanos, f64)], time: Nanos) -> f64 {
    let index = applied.partition_point(|(from, _)| *from <= time);
    index.checked_sub(1).map_or(0.0, |i| applied[i].1)
}

/// A stream's clock news for a recorder that already has the first `from` measurements: the
/// measurements after them and every applied step (what writing timestamps needs, without the
/// sender's stream info).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClockSince {
    /// Measurements `from..`.
    pub offsets: Vec<ClockOffset>,
    /// Measurements in all, so the next call can start after them.
    pub total: usize,
    /// The offset the source applied from each event time on.
    pub applied: Vec<(Nanos, f64)>,
}

/// The origins of every (stream, subject) of a run, shared by sources and sinks.
#[derive(Debug, Default)]
pub struct Origins {
    by_stream: Mutex<BTreeMap<(u32, String), StreamOrigin>>,
}

impl Origins {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<(u32, String), StreamOrigin>> {
        self.by_stream.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records where `stream` of `subject` comes from (replacing what was known).
    pub fn set(&self, stream: u32, subject: &str, origin: StreamOrigin) {
        self.lock().insert((stream, subject.to_string()), origin);
    }

    /// Adds a clock offset measured at `collected`, applied to event times from `applies_from` on.
    pub fn add_clock_offset(
        &self,
        stream: u32,
        subject: &str,
        collected: f64,
        offset: f64,
        applies_from: Nanos,
    ) {
        let mut map = self.lock();
        let origin = map.entry((stream, subject.to_string())).or_default();
        origin.clock_offsets.push(ClockOffset { collected, offset });
        if origin
            .applied
            .last()
            .is_none_or(|(_, last)| *last != offset)
        {
            origin.applied.push((applies_from, offset));
        }
    }

    /// Records that from event time `from` on the source adds `applied` seconds to the sender's
    /// timestamps (a clock offset plus a clock-step shift), so recorders can recover the sender's
    /// own timestamps; no measurement is added.
    pub fn set_applied(&self, stream: u32, subject: &str, from: Nanos, applied: f64) {
        let mut map = self.lock();
        let origin = map.entry((stream, subject.to_string())).or_default();
        if origin
            .applied
            .last()
            .is_none_or(|(_, last)| *last != applied)
        {
            origin.applied.push((from, applied));
        }
    }

    /// The clock measurements of `stream` of `subject` after the first `from`, and its applied
    /// offsets; `None` if its source said nothing.
    pub fn clock_since(&self, stream: u32, subject: &str, from: usize) -> Option<ClockSince> {
        let map = self.lock();
        let origin = map.get(&(stream, subject.to_string()))?;
        Some(ClockSince {
            offsets: origin.clock_offsets[from.min(origin.clock_offsets.len())..].to_vec(),
            total: origin.clock_offsets.len(),
            applied: origin.applied.clone(),
        })
    }

    /// What is known about `stream` of `subject`, if its source said anything.
    pub fn get(&self, stream: u32, subject: &str) -> Option<StreamOrigin> {
        self.lock().get(&(stream, subject.to_string())).cloned()
    }
}
