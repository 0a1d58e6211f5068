//! Playing recorded samples into the dataflow: the part every file source (XDF, CSV) shares.
//!
//! Each recorded stream of each subject is a [`Track`] of samples in timestamp order. [`play`]
//! walks event time in fixed steps from the earliest sample: at each step it sends every track's
//! samples before the step's end (tracks in a fixed order), then a watermark at the step's end.
//! What is sent depends only on the data and the step, never on timing, so a recording replays
//! byte for byte the same on every run. Steps with no sample are skipped, so a long pause in a
//! recording costs nothing. With a `speed`, each step waits for its moment on the wall clock
//! (`speed = 1.0` is real time), for testing live setups with recorded data.
//!
//! ```
//! use heloflow::sources::playback::{steps, Track};
//! use heloflow::stream::Values;
//!
//! let tracks = vec![
//!     Track { stream: 0, subject: "P01".into(), times: vec![0, 10, 20, 30], values: Values::Numeric(vec![1.0, 2.0, 3.0, 4.0]) },
//!     Track { stream: 1, subject: "P01".into(), times: vec![25], values: Values::Text(vec!["go".into()]) },
//! ];
//! let mut sent = Vec::new();
//! for step in steps(&tracks, 15) {
//!     sent.push((step.end, step.batches.iter().map(|b| (b.stream, b.len())).collect::<Vec<_>>()));
//! }
//! assert_eq!(sent, vec![(15, vec![(0, 2)]), (30, vec![(0, 1), (1, 1)]), (45, vec![(0, 1)])]);
//! ```

use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::config::options::Options;
use crate::sources::queue::SourceSender;
use crate::stream::{secs_to_nanos, Batch, Nanos, Values};

/// Largest timestamp a file source plays, seconds (about 285 years: within the range of event
/// time, i64 nanoseconds); samples beyond are dropped and counted.
pub const MAX_TIME_S: f64 = 9.0e9;

/// How a file source plays its recording: event time per step, and wall-clock pacing.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Playback {
    /// Event time per step, seconds.
    pub chunk_s: f64,
    /// Wall-clock pacing factor (`None`: as fast as possible; 1 is real time).
    pub speed: Option<f64>,
}

impl Playback {
    /// Reads `chunk_s` (0.001 to 3600 s, default 0.1) and `speed` (0.001 to 1e6).
    pub fn parse(options: &mut Options) -> Self {
        Playback {
            chunk_s: options.number_in("chunk_s", 0.1, 1e-3..=3600.0),
            speed: options
                .number("speed")
                .is_some()
                .then(|| options.number_in("speed", 1.0, 1e-3..=1e6)),
        }
    }

    /// Whether the recording is paced by the wall clock (then it counts as a live source).
    pub fn is_live(&self) -> bool {
        self.speed.is_some()
    }

    /// Starts the source thread: `load` reads the recording into tracks (reporting what it
    /// dropped through [`report_dropped`]), then they are played; a load error fails the run.
    pub fn spawn(
        self,
        source: String,
        sender: SourceSender,
        load: impl FnOnce(&SourceSender) -> Result<Vec<Track>, String> + Send + 'static,
    ) -> std::io::Result<JoinHandle<()>> {
        self.spawn_share(
            format!("source {source}"),
            sender,
            SharedStart::new(1),
            load,
        )
    }

    /// Starts the thread of one share of a split recording: like [`Playback::spawn`], but every
    /// share given the same `start` plays from the earliest sample of all of them, so the shares
    /// together send what one thread would (the same steps, watermarks at the same ends).
    pub fn spawn_share(
        self,
        thread: String,
        sender: SourceSender,
        start: Arc<SharedStart>,
        load: impl FnOnce(&SourceSender) -> Result<Vec<Track>, String> + Send + 'static,
    ) -> std::io::Result<JoinHandle<()>> {
        std::thread::Builder::new().name(thread).spawn(move || {
            let mut arrival = start.arrival();
            match load(&sender) {
                Ok(tracks) => {
                    let earliest = tracks.iter().filter_map(|t| t.times.first()).min();
                    let start = arrival.agree(earliest.copied(), &sender);
                    let step = secs_to_nanos(self.chunk_s);
                    play(&tracks, start, step, self.speed, &sender);
                }
                Err(message) => {
                    drop(arrival);
                    sender.fail(message)
                }
            }
        })
    }
}

/// Where the shares of one split recording agree on their first step: each offers its earliest
/// sample once loaded and plays from the earliest of all, once every share has offered one.
#[derive(Debug)]
pub struct SharedStart {
    shares: usize,
    /// How many shares have offered, and the earliest sample offered so far.
    offered: Mutex<(usize, Option<Nanos>)>,
    all_offered: Condvar,
}

impl SharedStart {
    /// The agreement of `shares` threads.
    pub fn new(shares: usize) -> Arc<SharedStart> {
        Arc::new(SharedStart {
            shares,
            offered: Mutex::new((0, None)),
            all_offered: Condvar::new(),
        })
    }

    fn arrival(self: &Arc<Self>) -> Arrival {
        Arrival {
            start: Some(self.clone()),
        }
    }

    fn offer(&self, earliest: Option<Nanos>) {
        let mut offered = self.offered.lock().unwrap_or_else(|e| e.into_inner());
        offered.0 += 1;
        offered.1 = match (offered.1, earliest) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.all_offered.notify_all();
    }
}

/// One share's place in a [`SharedStart`]: offers once, and offers nothing when dropped first
/// (a failed load, a panic), so no other share waits for it forever.
struct Arrival {
    start: Option<Arc<SharedStart>>,
}

impl Arrival {
    /// Offers this share's earliest sample and waits for every share's; the start of all, or
    /// `None` when the pipeline stops first or no share has a sample (then nothing is played).
    fn agree(&mut self, earliest: Option<Nanos>, sender: &SourceSender) -> Option<Nanos> {
        let start = self.start.take()?;
        start.offer(earliest);
        let mut offered = start.offered.lock().unwrap_or_else(|e| e.into_inner());
        while offered.0 < start.shares {
            if sender.stopping() {
                return None;
            }
            offered = start
                .all_offered
                .wait_timeout(offered, Duration::from_millis(50))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        offered.1
    }
}

impl Drop for Arrival {
    fn drop(&mut self) {
        if let Some(start) = self.start.take() {
            start.offer(None);
        }
    }
}

/// Counts samples a file source could not play (and says why on standard error), so the run's
/// summary includes them.
pub fn report_dropped(sender: &SourceSender, source: &str, dropped: u64, why: &str) {
    if dropped > 0 {
        sender
            .metrics()
            .unplayable
            .fetch_add(dropped, Ordering::Relaxed);
        crate::notice!("heloflow: {source}: dropped {dropped} sample(s) {why}");
    }
}

/// One recorded stream of one subject: timestamps (non-decreasing) and row-major values.
#[derive(Clone, Debug, PartialEq)]
pub struct Track {
    /// Pipeline id of the stream the samples belong to.
    pub stream: u32,
    /// Subject the samples belong to.
    pub subject: String,
    /// Event time of each sample, non-decreasing.
    pub times: Vec<Nanos>,
    /// Values, `times.len() * channels` of them.
    pub values: Values,
}

impl Track {
    fn width(&self) -> usize {
        if self.times.is_empty() {
            0
        } else {
            self.values.len() / self.times.len()
        }
    }

    fn batch(&self, from: usize, to: usize) -> Batch {
        let width = self.width();
        let values = match &self.values {
            Values::Numeric(v) => Values::Numeric(v[from * width..to * width].to_vec()),
            Values::Text(v) => Values::Text(v[from * width..to * width].to_vec()),
        };
        Batch {
            stream: self.stream,
            subject: self.subject.clone(),
            timestamps: self.times[from..to].to_vec(),
            values,
        }
    }
}

/// Drops samples whose timestamp goes back in time (a recording's clock stepping backwards after
/// synchronisation), so a track is in order; returns how many were dropped.
pub fn drop_backward_samples(times: &mut Vec<Nanos>, values: &mut Values) -> u64 {
    if times.is_sorted() {
        return 0;
    }
    let width = values.len() / times.len().max(1);
    let mut keep = Vec::with_capacity(times.len());
    let mut last = Nanos::MIN;
    for (index, &time) in times.iter().enumerate() {
        if time >= last {
            keep.push(index);
            last = time;
        }
    }
    let dropped = (times.len() - keep.len()) as u64;
    *times = keep.iter().map(|&i| times[i]).collect();
    match values {
        Values::Numeric(v) => {
            *v = keep
                .iter()
                .flat_map(|&i| v[i * width..(i + 1) * width].iter().copied())
                .collect()
        }
        Values::Text(v) => {
            *v = keep
                .iter()
                .flat_map(|&i| v[i * width..(i + 1) * width].iter().cloned())
                .collect()
        }
    }
    dropped
}

/// What one step sends: every track's samples before `end`, then a watermark at `end`.
#[derive(Debug)]
pub struct Step {
    /// The step's end: every later sample has a timestamp at or above it.
    pub end: Nanos,
    /// Time since the first sample, for pacing.
    pub elapsed: Nanos,
    /// The samples, one batch per track that has any.
    pub batches: Vec<Batch>,
}

/// The steps that play `tracks` in event-time order, `step` nanoseconds of event time each.
pub fn steps(tracks: &[Track], step: Nanos) -> impl Iterator<Item = Step> + '_ {
    let start = tracks.iter().filter_map(|t| t.times.first()).min().copied();
    steps_from(tracks, start, step)
}

/// The steps that play `tracks` from `start` (at or before their earliest sample): the steps of
/// a recording that these tracks are part of, so the parts of a recording played apart end their
/// steps at the same event times.
pub fn steps_from(
    tracks: &[Track],
    start: Option<Nanos>,
    step: Nanos,
) -> impl Iterator<Item = Step> + '_ {
    let step = step.max(1);
    let mut cursors = vec![0usize; tracks.len()];
    let mut index: i64 = 0;
    std::iter::from_fn(move || {
        let start = start?;
        let next = tracks
            .iter()
            .zip(&cursors)
            .filter_map(|(track, &cursor)| track.times.get(cursor))
            .min()
            .copied()?;
        // Skip steps that would hold no sample.
        let first_useful = (next.saturating_sub(start)) / step;
        index = index.max(first_useful);
        let end = start.saturating_add((index + 1).saturating_mul(step));
        index += 1;
        let mut batches = Vec::new();
        for (track, cursor) in tracks.iter().zip(cursors.iter_mut()) {
            // The last step (event time saturated) takes everything left.
            let to = if end == Nanos::MAX {
                track.times.len()
            } else {
                *cursor + track.times[*cursor..].partition_point(|&t| t < end)
            };
            if to > *cursor {
                batches.push(track.batch(*cursor, to));
                *cursor = to;
            }
        }
        Some(Step {
            end,
            elapsed: end - start,
            batches,
        })
    })
}

/// Sends `tracks` through `sender` step by step from `start` (see [`steps_from`]; `None`: no
/// sample to play); with `speed`, paced by the wall clock. Returns when everything is sent or
/// the pipeline stops.
pub fn play(
    tracks: &[Track],
    start: Option<Nanos>,
    step: Nanos,
    speed: Option<f64>,
    sender: &SourceSender,
) {
    if let Some(start) = start {
        send_paced(tracks, start, step, speed, sender);
    }
    sender.metrics().note_due(None);
}

fn send_paced(
    tracks: &[Track],
    start: Nanos,
    step: Nanos,
    speed: Option<f64>,
    sender: &SourceSender,
) {
    let started = Instant::now();
    for step in steps_from(tracks, Some(start), step) {
        if let Some(speed) = speed {
            let due = Duration::from_secs_f64(step.elapsed as f64 / 1e9 / speed);
            while started.elapsed() < due {
                if sender.stopping() {
                    return;
                }
                let left = due.saturating_sub(started.elapsed());
                std::thread::sleep(left.min(Duration::from_millis(50)));
            }
            sender.metrics().note_due(Some(started + due));
        }
        for batch in step.batches {
            if !sender.data(batch) {
                return;
            }
        }
        if !sender.watermark(step.end) || sender.stopping() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track(stream: u32, times: Vec<Nanos>) -> Track {
        let values = Values::Numeric(times.iter().map(|&t| t as f64).collect());
        Track {
            stream,
            subject: "S".into(),
            times,
            values,
        }
    }

    #[test]
    fn long_pauses_are_skipped_and_every_sample_is_sent_once() {
        let tracks = vec![
            track(0, vec![0, 5, 1_000_000_000_000, 1_000_000_000_001]),
            track(1, vec![7]),
        ];
        let all: Vec<Step> = steps(&tracks, 10).collect();
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].end, 1_000_000_000_010);
        let sent: usize = all.iter().flat_map(|s| &s.batches).map(|b| b.len()).sum();
        assert_eq!(sent, 5);
        for step in &all {
            for batch in &step.batches {
                assert!(batch.timestamps.iter().all(|&t| t < step.end));
            }
        }
    }

    #[test]
    fn shares_played_from_the_earliest_sample_of_all_send_what_one_player_sends() {
        let tracks = vec![
            track(0, vec![3, 12, 25, 26, 90]),
            track(1, vec![17, 31, 44]),
            track(2, vec![5, 200]),
        ];
        let sent = |steps: &mut dyn Iterator<Item = Step>| {
            let mut sent = Vec::new();
            for step in steps {
                for batch in step.batches {
                    sent.push((step.end, batch.stream, batch.timestamps));
                }
            }
            sent
        };
        let mut whole = sent(&mut steps(&tracks, 10));
        let mut shares = Vec::new();
        for share in [
            vec![tracks[0].clone(), tracks[2].clone()],
            vec![tracks[1].clone()],
        ] {
            shares.extend(sent(&mut steps_from(&share, Some(3), 10)));
        }
        whole.sort();
        shares.sort();
        assert_eq!(shares, whole);
        // Played alone, the second share would end its steps elsewhere.
        let alone = sent(&mut steps(&tracks[1..2], 10));
        assert_ne!(alone[0].0, whole.iter().find(|s| s.1 == 1).unwrap().0);
    }

    #[test]
    fn samples_at_the_end_of_event_time_are_played() {
        let tracks = vec![track(0, vec![0, Nanos::MAX - 1, Nanos::MAX])];
        let all: Vec<Step> = steps(&tracks, 1 << 60).collect();
        let sent: usize = all.iter().flat_map(|s| &s.batches).map(|b| b.len()).sum();
        assert_eq!(sent, 3);
        assert_eq!(all.last().unwrap().end, Nanos::MAX);
    }

    #[test]
    fn backward_samples_are_dropped_and_counted() {
        let mut times = vec![0, 10, 5, 20, 15, 30];
        let mut values = Values::Numeric(vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(drop_backward_samples(&mut times, &mut values), 2);
        assert_eq!(times, vec![0, 10, 20, 30]);
        assert_eq!(values, Values::Numeric(vec![0.0, 1.0, 3.0, 5.0]));
    }

    #[test]
    fn no_tracks_no_steps() {
        assert_eq!(steps(&[], 10).count(), 0);
        assert_eq!(steps(&[track(0, vec![])], 10).count(), 0);
    }
}
