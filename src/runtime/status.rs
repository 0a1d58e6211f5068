//! Progress reporting: a live status line on a terminal, plain periodic log lines when piped.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::metrics::PipelineMetrics;
use crate::pipeline::Pipeline;
use crate::sinks::{format_time, Destination};

/// How progress is shown (always on standard error).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusMode {
    /// A live line on a terminal, plain log lines otherwise.
    Auto,
    /// Plain log lines every few seconds.
    Plain,
    /// Nothing.
    Off,
}

/// The background thread that prints progress.
pub struct StatusReporter {
    done: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl StatusReporter {
    /// Starts reporting. A live line is used only when standard error is a terminal and no sink
    /// writes to a terminal on standard output (the two would garble each other).
    pub fn start(mode: StatusMode, pipeline: &Pipeline, metrics: Arc<PipelineMetrics>) -> Self {
        let done = Arc::new(AtomicBool::new(false));
        let stdout_shared = pipeline
            .sinks
            .iter()
            .filter_map(|s| s.config.component().destination())
            .any(|d| Destination::parse(d).is_stdout())
            && std::io::stdout().is_terminal();
        let live = mode == StatusMode::Auto && std::io::stderr().is_terminal() && !stdout_shared;
        let plain =
            mode == StatusMode::Plain || (mode == StatusMode::Auto && !live && !stdout_shared);
        if !live && !plain {
            return StatusReporter { done, thread: None };
        }
        let flag = done.clone();
        let name = crate::display::escaped(&pipeline.name).into_owned();
        let thread = std::thread::Builder::new()
            .name("status".into())
            .spawn(move || report(&name, &metrics, &flag, live))
            .ok();
        StatusReporter { done, thread }
    }

    /// Stops reporting and clears the live line; `false` when the reporter thread panicked.
    pub fn finish(mut self) -> bool {
        self.done.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .is_none_or(|thread| thread.join().is_ok())
    }
}

/// A realtime source this far behind the wall clock (seconds) is reported as behind.
pub const BEHIND_NOTICE_S: f64 = 0.5;

fn line(name: &str, metrics: &PipelineMetrics, started: Instant) -> String {
    let elapsed = started.elapsed().as_secs_f64().max(1e-9);
    let samples = metrics.samples_in();
    let event_time = metrics.event_time().map_or("-".to_string(), |t| {
        format!("{}s", &format_time(t)[..format_time(t).len() - 6])
    });
    let (behind_s, _) = metrics.behind_real_time_s();
    let behind = if behind_s >= BEHIND_NOTICE_S {
        format!(" | {behind_s:.1} s behind real time")
    } else {
        String::new()
    };
    format!(
        "{name}: event time {event_time} | {samples} samples in ({:.0}/s) | {} rows out | {}{behind}",
        samples as f64 / elapsed,
        metrics.rows_out(),
        metrics.drops()
    )
}

fn report(name: &str, metrics: &PipelineMetrics, done: &AtomicBool, live: bool) {
    let started = Instant::now();
    let period = if live {
        Duration::from_millis(250)
    } else {
        Duration::from_secs(5)
    };
    let mut last = Instant::now();
    while !done.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
        if last.elapsed() < period {
            continue;
        }
        last = Instant::now();
        let mut err = std::io::stderr().lock();
        if live {
            let _ = write!(err, "\r\x1b[2K{}", line(name, metrics, started));
        } else {
            let _ = writeln!(err, "{}", line(name, metrics, started));
        }
        let _ = err.flush();
    }
    if live {
        let _ = write!(std::io::stderr(), "\r\x1b[2K");
    }
}
