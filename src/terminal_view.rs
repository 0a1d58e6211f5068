//! The demo's live terminal view: each subject's latest emotion distribution as bars, the model's
//! beside the hidden truth, redrawn in place, instead of scrolling JSON (which stays for pipes).
//!
//! It reads the latest rows from the run's [`TapHub`], so it shows exactly what the taps serve.
//!
//! ```
//! use heloflow::terminal_view::{render, Distribution};
//!
//! let model = Distribution::new(&["joy", "fear"], &[0.75, 0.25]);
//! let frame = render("demo", 12.0, &[("S01".to_string(), Some(model), None)], 60);
//! assert!(frame.contains("S01"));
//! assert!(frame.contains("joy"));
//! ```

use std::io::Write;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::metrics::PipelineMetrics;
use crate::sinks::tap::TapHub;

/// One emotion distribution: labels with probabilities.
#[derive(Clone, Debug, PartialEq)]
pub struct Distribution {
    /// Label and value pairs, in the stream's channel order.
    pub values: Vec<(String, f64)>,
    /// Event time of the row, seconds.
    pub time_s: f64,
}

impl Distribution {
    /// A distribution of `labels` with `values` (at time 0).
    pub fn new(labels: &[&str], values: &[f64]) -> Self {
        Distribution {
            values: labels
                .iter()
                .zip(values)
                .map(|(l, v)| (l.to_string(), *v))
                .collect(),
            time_s: 0.0,
        }
    }

    /// Reads a tapped row (`{"t":…,"values":{"joy":0.3,…}}`), its values in the order of
    /// `labels` (the stream's channels); `None` when it is not one.
    pub fn from_row(row: &[u8], labels: &[String]) -> Option<Self> {
        let value: serde_json::Value = serde_json::from_slice(row).ok()?;
        let object = value["values"].as_object()?;
        let values = labels
            .iter()
            .map(|label| {
                let v = object.get(label).and_then(|v| v.as_f64());
                (label.clone(), v.unwrap_or(f64::NAN))
            })
            .collect();
        Some(Distribution {
            values,
            time_s: value["t"].as_f64().unwrap_or(f64::NAN),
        })
    }

    fn value(&self, label: &str) -> Option<f64> {
        self.values
            .iter()
            .find(|(l, _)| l == label)
            .map(|(_, v)| *v)
    }
}

/// Eighth blocks for bars with sub-character resolution.
const BLOCKS: [&str; 9] = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉", "█"];

/// A bar of `value` (0 to 1) `width` characters wide at most.
fn bar(value: f64, width: usize) -> String {
    if !value.is_finite() {
        return String::new();
    }
    let eighths = (value.clamp(0.0, 1.0) * width as f64 * 8.0).round() as usize;
    let mut text = "█".repeat(eighths / 8);
    text.push_str(BLOCKS[eighths % 8]);
    text
}

/// One subject's row of the view: its id, the model's latest distribution and the truth's.
pub type SubjectView = (String, Option<Distribution>, Option<Distribution>);

/// Draws one frame: per subject, every label's bar for the model and the truth, `width`
/// characters wide in all. Many subjects get one line each with their top emotion.
pub fn render(title: &str, event_time_s: f64, subjects: &[SubjectView], width: usize) -> String {
    let mut frame = format!("{title}  event time {event_time_s:.1} s  (model │ hidden truth)\n");
    if subjects.is_empty() {
        frame.push_str("waiting for the first window…\n");
        return frame;
    }
    let bar_width = width.saturating_sub(34).clamp(6, 40) / 2;
    if subjects.len() > 4 {
        for (subject, model, truth) in subjects {
            let top = |d: &Option<Distribution>| {
                d.as_ref()
                    .and_then(|d| {
                        d.values
                            .iter()
                            .filter(|(_, v)| v.is_finite())
                            .max_by(|a, b| a.1.total_cmp(&b.1))
                            .map(|(l, v)| format!("{l:<12} {v:.2}"))
                    })
                    .unwrap_or_else(|| "-".to_string())
            };
            frame.push_str(&format!(
                "{subject:<8} {:<20} │ {}\n",
                top(model),
                top(truth)
            ));
        }
        return frame;
    }
    for (subject, model, truth) in subjects {
        match model.as_ref().or(truth.as_ref()) {
            Some(latest) => frame.push_str(&format!("\n{subject}  t = {:.1} s\n", latest.time_s)),
            None => frame.push_str(&format!("\n{subject}\n")),
        }
        let labels: Vec<String> = model
            .as_ref()
            .or(truth.as_ref())
            .map(|d| d.values.iter().map(|(l, _)| l.clone()).collect())
            .unwrap_or_default();
        for label in labels {
            let predicted = model.as_ref().and_then(|d| d.value(&label));
            let actual = truth.as_ref().and_then(|d| d.value(&label));
            let cell = |v: Option<f64>| match v {
                Some(v) if v.is_finite() => format!("{:<bar_width$} {v:.2}", bar(v, bar_width)),
                _ => format!("{:<bar_width$}    -", ""),
            };
            frame.push_str(&format!(
                "  {label:<12} {} │ {}\n",
                cell(predicted),
                cell(actual)
            ));
        }
    }
    frame
}

/// Draws the view on standard output every quarter second until the taps end.
pub struct TerminalView {
    thread: Option<JoinHandle<()>>,
}

impl TerminalView {
    /// Starts drawing `model` (the model's output stream) beside `truth` (if the pipeline has
    /// one) from `hub`.
    pub fn start(
        title: String,
        hub: Arc<TapHub>,
        metrics: Arc<PipelineMetrics>,
        model: String,
        truth: Option<String>,
    ) -> Self {
        let thread = std::thread::Builder::new()
            .name("terminal view".into())
            .spawn(move || loop {
                let ended = hub.has_ended();
                let frame = frame(&title, &hub, &metrics, &model, truth.as_deref());
                let mut out = std::io::stdout().lock();
                let drawn = write!(out, "\x1b[H\x1b[J{}", frame.replace('\n', "\x1b[K\n"))
                    .and_then(|()| out.flush());
                if drawn.is_err() || ended {
                    return;
                }
                drop(out);
                std::thread::sleep(Duration::from_millis(250));
            })
            .ok();
        TerminalView { thread }
    }

    /// Waits for the last frame (drawn once the taps ended).
    pub fn finish(mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn frame(
    title: &str,
    hub: &TapHub,
    metrics: &PipelineMetrics,
    model: &str,
    truth: Option<&str>,
) -> String {
    let latest = |stream: &str| -> Vec<(String, Distribution)> {
        let labels = hub
            .schemas()
            .find(|s| s.name == stream)
            .map(|s| s.labels())
            .unwrap_or_default();
        hub.latest(stream)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(subject, row)| Some((subject, Distribution::from_row(&row, &labels)?)))
            .collect()
    };
    let predicted = latest(model);
    let actual = truth.map(latest).unwrap_or_default();
    let mut subjects: Vec<String> = predicted
        .iter()
        .chain(&actual)
        .map(|(s, _)| s.clone())
        .collect();
    subjects.sort();
    subjects.dedup();
    let find = |rows: &[(String, Distribution)], subject: &str| {
        rows.iter()
            .find(|(s, _)| s == subject)
            .map(|(_, d)| d.clone())
    };
    let views: Vec<SubjectView> = subjects
        .iter()
        .map(|s| (s.clone(), find(&predicted, s), find(&actual, s)))
        .collect();
    let event_time = metrics.event_time().map_or(0.0, |t| t as f64 / 1e9);
    let mut text = render(title, event_time, &views, terminal_width());
    text.push_str(&format!(
        "\n{} samples in, {}\n",
        metrics.samples_in(),
        metrics.drops()
    ));
    text
}

/// The terminal's width in columns (80 when it cannot be read).
fn terminal_width() -> usize {
    // SAFETY: TIOCGWINSZ fills the winsize struct it is given.
    unsafe {
        let mut size: libc::winsize = std::mem::zeroed();
        if libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) == 0 && size.ws_col > 0 {
            size.ws_col as usize
        } else {
            80
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_have_eighth_resolution_and_stay_in_their_width() {
        assert_eq!(bar(0.0, 10), "");
        assert_eq!(bar(1.0, 10), "█".repeat(10));
        assert_eq!(bar(0.5625, 2), "█▏");
        assert_eq!(bar(7.0, 3), "███");
        assert_eq!(bar(f64::NAN, 3), "");
    }

    #[test]
    fn rows_read_back_and_frames_show_every_label() {
        let row = br#"{"t":3.000000000,"stream":"helo","subject":"S01","values":{"joy":0.75,"fear":null}}"#;
        let model = Distribution::from_row(row, &["joy".into(), "fear".into()]).unwrap();
        assert_eq!(model.values[0].0, "joy");
        assert_eq!(model.time_s, 3.0);
        assert_eq!(model.value("joy"), Some(0.75));
        assert!(model.value("fear").unwrap().is_nan());
        let truth = Distribution::new(&["joy", "fear"], &[0.5, 0.5]);
        let frame = render("demo", 3.0, &[("S01".into(), Some(model), Some(truth))], 80);
        assert!(frame.contains("  joy"), "{frame}");
        assert!(frame.contains("0.75"));
        assert!(frame.contains("0.50"));
        let many: Vec<SubjectView> = (0..6).map(|i| (format!("S0{i}"), None, None)).collect();
        assert_eq!(render("demo", 0.0, &many, 80).lines().count(), 7);
    }
}
