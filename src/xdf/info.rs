//! `heloflow xdf info`: what a recording holds, per stream, and what is damaged, as text for
//! people or JSON for programs (both from one [`Summary`]).
//!
//! Timestamps are read as pyxdf loads them by default, except that they are not dejittered:
//! first/last timestamp, duration and gaps describe the clock-synchronised timestamps as
//! recorded. The effective rate and segment count are pyxdf's defaults (dejittered).
//!
//! A **gap** in a regular stream is an interval between consecutive samples longer than twice the
//! nominal interval; its length is the interval minus one nominal interval (the time in which
//! samples are missing). Intervals that go backwards are counted separately.
//!
//! ```no_run
//! use heloflow::xdf::info::summarize;
//!
//! let summary = summarize("session.xdf".as_ref()).unwrap();
//! print!("{}", summary.to_text());
//! println!("{}", summary.to_json());
//! ```

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use super::error::{Damage, XdfError};
use super::reader::{read, ReadOptions, Samples, Stream};
use super::sync::{self, ClockSyncOptions, JitterOptions};
use crate::stream::ChannelFormat;

/// Distinct marker values listed per string stream.
pub const TOP_MARKERS: usize = 10;

/// A whole file's summary.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    /// The file as given.
    pub file: String,
    /// Its size in bytes.
    pub size_bytes: u64,
    /// The file header's `version`.
    pub version: Option<String>,
    /// The file header's `datetime`.
    pub datetime: Option<String>,
    /// Every stream, in file order.
    pub streams: Vec<StreamSummary>,
    /// Everything damaged, with byte offsets.
    pub damage: Vec<Damage>,
    /// No damage and a footer for every stream (what a cleanly closed recording has).
    pub complete: bool,
}

/// One stream's summary.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StreamSummary {
    /// Stream id.
    pub id: u32,
    /// `name`.
    pub name: String,
    /// `type`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `source_id`.
    pub source_id: String,
    /// `channel_format`.
    pub format: String,
    /// `channel_count`.
    pub channel_count: usize,
    /// Channel labels (empty where the header has none).
    pub channels: Vec<String>,
    /// `nominal_srate` in Hz (0: irregular).
    pub nominal_srate: f64,
    /// Samples read.
    pub sample_count: usize,
    /// First timestamp (clock-synchronised, not dejittered).
    pub first_timestamp: Option<f64>,
    /// Last timestamp (clock-synchronised, not dejittered).
    pub last_timestamp: Option<f64>,
    /// Last minus first timestamp, seconds.
    pub duration_s: Option<f64>,
    /// pyxdf's effective rate with its default options, Hz.
    pub effective_srate: f64,
    /// pyxdf's segments (between breaks) with its default options.
    pub segments: usize,
    /// Clock offsets, when there are any.
    pub clock_offsets: Option<ClockOffsetSummary>,
    /// Gaps, for regular streams with two or more samples.
    pub gaps: Option<GapSummary>,
    /// Marker values, for string streams.
    pub markers: Option<MarkerSummary>,
    /// Whether the file has an intact footer for the stream.
    pub footer: bool,
}

/// A stream's clock offsets.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClockOffsetSummary {
    /// How many.
    pub count: usize,
    /// Collection time of the first, seconds.
    pub first_time: f64,
    /// Collection time of the last, seconds.
    pub last_time: f64,
    /// Mean offset value, seconds.
    pub mean: f64,
    /// Smallest offset value, seconds.
    pub min: f64,
    /// Largest offset value, seconds.
    pub max: f64,
    /// Clock resets pyxdf detects (with its defaults).
    pub resets: usize,
    /// Fitted drift (slope of pyxdf's robust fit) in parts per million, per clock segment with two
    /// or more offsets.
    pub drift_ppm: Vec<f64>,
}

/// Gaps in a regular stream.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GapSummary {
    /// Intervals longer than this many seconds (twice the nominal interval) are gaps.
    pub threshold_s: f64,
    /// How many gaps.
    pub count: usize,
    /// Sum of the gaps' lengths (interval minus one nominal interval), seconds.
    pub total_s: f64,
    /// The longest gap's length, seconds.
    pub longest_s: f64,
    /// Intervals where the timestamps went backwards.
    pub backward_steps: usize,
}

/// The values of a string (marker) stream.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MarkerSummary {
    /// Markers (samples).
    pub count: usize,
    /// Distinct values.
    pub distinct: usize,
    /// The most frequent values with their counts, most frequent first (at most
    /// [`TOP_MARKERS`]); a multi-channel sample counts as its values joined by ` | `.
    pub top: Vec<(String, usize)>,
}

/// Reads `path` and summarises it.
pub fn summarize(path: &Path) -> Result<Summary, XdfError> {
    let size_bytes = std::fs::metadata(path)
        .map_err(|e| XdfError::new(0, format!("cannot read {}: {e}", path.display())))?
        .len();
    let timestamps = read(
        path,
        &ReadOptions {
            decode_values: false,
            dejitter_timestamps: false,
            ..ReadOptions::default()
        },
    )?;
    let string_ids: Vec<u32> = timestamps
        .streams
        .iter()
        .filter(|s| s.info.channel_format == ChannelFormat::String)
        .map(|s| s.id)
        .collect();
    let mut markers: HashMap<u32, Samples> = HashMap::new();
    if !string_ids.is_empty() {
        let values = read(
            path,
            &ReadOptions {
                select: Some(string_ids),
                dejitter_timestamps: false,
                ..ReadOptions::default()
            },
        )?;
        markers = values
            .streams
            .into_iter()
            .map(|s| (s.id, s.samples))
            .collect();
    }
    let streams: Vec<StreamSummary> = timestamps
        .streams
        .iter()
        .map(|s| summarize_stream(s, markers.get(&s.id)))
        .collect();
    let complete = timestamps.damage.is_empty() && streams.iter().all(|s| s.footer);
    let header = timestamps.file_header.as_ref();
    Ok(Summary {
        file: path.display().to_string(),
        size_bytes,
        version: header.and_then(|h| h.version.clone()),
        datetime: header.and_then(|h| h.datetime.clone()),
        streams,
        damage: timestamps.damage,
        complete,
    })
}

fn summarize_stream(stream: &Stream, values: Option<&Samples>) -> StreamSummary {
    let info = &stream.info;
    let stamps = &stream.time_stamps;
    let mut dejittered = stamps.clone();
    let jitter = sync::jitter_removal(
        &mut dejittered,
        info.nominal_srate,
        info.can_drop_samples(),
        &JitterOptions::default(),
    );
    let first = stamps.first().copied();
    let last = stamps.last().copied();
    StreamSummary {
        id: stream.id,
        name: info.name.clone(),
        kind: info.kind.clone(),
        source_id: info.source_id.clone(),
        format: info.channel_format.lsl_name().to_string(),
        channel_count: info.channel_count,
        channels: info.channels.iter().map(|c| c.label.clone()).collect(),
        nominal_srate: info.nominal_srate,
        sample_count: stamps.len(),
        first_timestamp: first,
        last_timestamp: last,
        duration_s: first.zip(last).map(|(a, b)| b - a),
        effective_srate: jitter.effective_srate,
        segments: jitter.segments.len(),
        clock_offsets: clock_offsets(&stream.clock_times, &stream.clock_values),
        gaps: gaps(stamps, info.nominal_srate),
        markers: values.and_then(|v| markers(v, info.channel_count)),
        footer: stream.footer.is_some(),
    }
}

fn clock_offsets(times: &[f64], values: &[f64]) -> Option<ClockOffsetSummary> {
    let count = times.len().min(values.len());
    if count == 0 {
        return None;
    }
    let (times, values) = (&times[..count], &values[..count]);
    let options = ClockSyncOptions::default();
    let ranges = sync::detect_clock_resets(times, values, &options);
    let winsor = options.winsor_threshold;
    let drift_ppm = ranges
        .iter()
        .filter(|(start, end)| end > start)
        .filter_map(|&(start, end)| {
            let x: Vec<f64> = times[start..=end].iter().map(|t| t / winsor).collect();
            let y: Vec<f64> = values[start..=end].iter().map(|v| v / winsor).collect();
            sync::robust_fit(&x, &y).map(|[_, slope]| slope * 1e6)
        })
        .collect();
    Some(ClockOffsetSummary {
        count,
        first_time: times[0],
        last_time: times[count - 1],
        mean: values.iter().sum::<f64>() / count as f64,
        min: values.iter().copied().fold(f64::INFINITY, f64::min),
        max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        resets: ranges.len() - 1,
        drift_ppm,
    })
}

fn gaps(stamps: &[f64], nominal_srate: f64) -> Option<GapSummary> {
    if nominal_srate <= 0.0 || stamps.len() < 2 {
        return None;
    }
    let interval = 1.0 / nominal_srate;
    let threshold_s = 2.0 * interval;
    let mut summary = GapSummary {
        threshold_s,
        count: 0,
        total_s: 0.0,
        longest_s: 0.0,
        backward_steps: 0,
    };
    for pair in stamps.windows(2) {
        let step = pair[1] - pair[0];
        if step < 0.0 {
            summary.backward_steps += 1;
        } else if step > threshold_s {
            let length = step - interval;
            summary.count += 1;
            summary.total_s += length;
            summary.longest_s = summary.longest_s.max(length);
        }
    }
    Some(summary)
}

fn markers(values: &Samples, channels: usize) -> Option<MarkerSummary> {
    let Samples::String(values) = values else {
        return None;
    };
    let channels = channels.max(1);
    let mut counts: HashMap<String, usize> = HashMap::new();
    for sample in values.chunks(channels) {
        *counts.entry(sample.join(" | ")).or_default() += 1;
    }
    let distinct = counts.len();
    let mut top: Vec<(String, usize)> = counts.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    top.truncate(TOP_MARKERS);
    Some(MarkerSummary {
        count: values.len() / channels,
        distinct,
        top,
    })
}

/// A number with thousands separators (`1,234,567`).
fn grouped(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `text` cut to 40 characters (with `...`) for one line of text output.
fn shortened(text: &str) -> String {
    const LIMIT: usize = 40;
    if text.chars().count() <= LIMIT {
        text.to_string()
    } else {
        let mut short: String = text.chars().take(LIMIT).collect();
        short.push_str("...");
        short
    }
}

impl Summary {
    /// The summary as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The summary as text for people.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{}: {} bytes, XDF {}{}, {} stream{}, {}",
            self.file,
            grouped(self.size_bytes),
            self.version.as_deref().unwrap_or("(no version)"),
            self.datetime
                .as_deref()
                .map(|d| format!(", recorded {d}"))
                .unwrap_or_default(),
            self.streams.len(),
            if self.streams.len() == 1 { "" } else { "s" },
            if self.complete {
                "complete"
            } else {
                "INCOMPLETE (see damage and footers below; `heloflow xdf repair` fixes it)"
            }
        );
        for stream in &self.streams {
            stream.write_text(&mut out);
        }
        if self.damage.is_empty() {
            let _ = writeln!(out, "damage: none");
        } else {
            let _ = writeln!(out, "damage ({}):", self.damage.len());
            for damage in &self.damage {
                let _ = writeln!(out, "    {damage}");
            }
        }
        out
    }
}

impl StreamSummary {
    fn write_text(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "stream {} {:?} (type {:?}, source_id {:?}): {} channel{} of {}",
            self.id,
            self.name,
            self.kind,
            self.source_id,
            self.channel_count,
            if self.channel_count == 1 { "" } else { "s" },
            self.format
        );
        let labels: Vec<&str> = self
            .channels
            .iter()
            .map(|l| if l.is_empty() { "?" } else { l.as_str() })
            .collect();
        if !self.channels.iter().all(String::is_empty) {
            let _ = writeln!(out, "    channels: {}", labels.join(", "));
        }
        let rate = if self.nominal_srate > 0.0 {
            format!(
                "nominal {} Hz, effective {:.6} Hz, {} segment{}",
                self.nominal_srate,
                self.effective_srate,
                self.segments,
                if self.segments == 1 { "" } else { "s" }
            )
        } else {
            "irregular".to_string()
        };
        match (self.first_timestamp, self.last_timestamp, self.duration_s) {
            (Some(first), Some(last), Some(duration)) => {
                let _ = writeln!(
                    out,
                    "    samples: {} from {first:.6} to {last:.6} ({duration:.3} s), {rate}",
                    grouped(self.sample_count as u64)
                );
            }
            _ => {
                let _ = writeln!(out, "    samples: none, {rate}");
            }
        }
        match &self.clock_offsets {
            Some(c) => {
                let drift = if c.drift_ppm.is_empty() {
                    String::new()
                } else {
                    let parts: Vec<String> =
                        c.drift_ppm.iter().map(|d| format!("{d:.3}")).collect();
                    format!(", drift {} ppm", parts.join(" / "))
                };
                let _ = writeln!(
                    out,
                    "    clock offsets: {} collected {:.3} to {:.3}, value mean {:.6} s (min {:.6}, max {:.6}){drift}{}",
                    c.count,
                    c.first_time,
                    c.last_time,
                    c.mean,
                    c.min,
                    c.max,
                    match c.resets {
                        0 => String::new(),
                        n => format!(", {n} clock reset{}", if n == 1 { "" } else { "s" }),
                    }
                );
            }
            None => {
                let _ = writeln!(out, "    clock offsets: none");
            }
        }
        if let Some(g) = &self.gaps {
            let _ = writeln!(
                out,
                "    gaps (intervals > {:.6} s): {}, {:.3} s in total, longest {:.3} s{}",
                g.threshold_s,
                g.count,
                g.total_s,
                g.longest_s,
                if g.backward_steps > 0 {
                    format!("; {} backward steps", g.backward_steps)
                } else {
                    String::new()
                }
            );
        }
        if let Some(m) = &self.markers {
            let top: Vec<String> = m
                .top
                .iter()
                .map(|(v, n)| format!("{:?} x{n}", shortened(v)))
                .collect();
            let _ = writeln!(
                out,
                "    markers: {} ({} distinct){}{}",
                grouped(m.count as u64),
                m.distinct,
                if top.is_empty() { "" } else { ": " },
                top.join(", ")
            );
        }
        let _ = writeln!(
            out,
            "    footer: {}",
            if self.footer { "yes" } else { "MISSING" }
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_count_long_intervals_beyond_one_nominal_interval() {
        let stamps = [0.0, 0.1, 0.2, 0.55, 0.65, 0.6, 1.7];
        let g = gaps(&stamps, 10.0).unwrap();
        assert_eq!((g.count, g.backward_steps), (2, 1));
        assert!((g.total_s - (0.25 + 1.0)).abs() < 1e-12, "{g:?}");
        assert!((g.longest_s - 1.0).abs() < 1e-12);
        assert_eq!(gaps(&stamps, 0.0), None);
        assert_eq!(gaps(&[1.0], 10.0), None);
    }

    #[test]
    fn markers_are_counted_most_frequent_first() {
        let values = Samples::String(["b", "a", "b", "c", "a", "b"].map(String::from).to_vec());
        let m = markers(&values, 1).unwrap();
        assert_eq!((m.count, m.distinct), (6, 3));
        assert_eq!(m.top[0], ("b".to_string(), 3));
        assert_eq!(m.top[1], ("a".to_string(), 2));
        let pairs = markers(&values, 2).unwrap();
        assert_eq!(pairs.count, 3);
        assert_eq!(pairs.top[0].0, "a | b");
    }

    #[test]
    fn numbers_are_grouped_by_thousands() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1_181_143), "1,181,143");
    }
}
