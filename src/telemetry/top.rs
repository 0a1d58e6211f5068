//! `heloflow top [ADDR]`: a live terminal view of a running pipeline's `/metrics`.
//!
//! Reads `http://ADDR/metrics` (default [`DEFAULT_ADDR`]) once a second, with `HELOFLOW_TOKEN`
//! as a bearer token when set, and draws the session's figures with ratatui: totals and drops,
//! per stream samples in and out, drops, gaps and late samples, queue depths, LSL inlets' clock
//! offsets and jitter, window close-to-output latencies and the models' inference latency and
//! batch sizes. `q`, Esc or Ctrl-C quit. When standard output is not a terminal (or with
//! `--once`) it prints one plain-text snapshot and exits.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph, Row, Table};
use ratatui::Frame;

use super::exposition::Exposition;
use super::fetch::{self, Target};

/// Where `heloflow top` looks without an address (the server's default listen address).
pub const DEFAULT_ADDR: &str = "127.0.0.1:8750";

/// How often the live view scrapes.
const PERIOD: Duration = Duration::from_secs(1);

/// The figures `top` shows, read from one scrape.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct View {
    /// Pipeline name.
    pub pipeline: String,
    /// Seconds since the run's telemetry was made.
    pub uptime_s: f64,
    /// Event time every source has passed, seconds.
    pub event_time_s: Option<f64>,
    /// Samples in, rows out.
    pub samples_in: f64,
    /// Rows the sinks wrote.
    pub rows_out: f64,
    /// Behind real time now and at most, seconds.
    pub behind_s: (f64, f64),
    /// Drops by reason (only reasons with a count), and their total.
    pub drops: (f64, Vec<(String, f64)>),
    /// Per stream: name, samples in, samples out (all sinks), dropped, gaps, late.
    pub streams: Vec<(String, [f64; 5])>,
    /// Per source queue: source, depth, peak, capacity (batches).
    pub queues: Vec<(String, [f64; 3])>,
    /// Per inlet: "source/stream/subject", clock offset, jitter, effective rate, live.
    pub inlets: Vec<(String, [f64; 4])>,
    /// Per (operator, to): runs, p50, p95 seconds; `to` is a sink or "handed on".
    pub latencies: Vec<(String, String, [Option<f64>; 3])>,
    /// Per model: operator, "model version", provider, runs, inference p50 and p95 seconds,
    /// mean and p95 rows per batch.
    pub models: Vec<(String, String, String, [Option<f64>; 5])>,
}

/// A table to show: title, column headers, rows of cells.
type TableText = (&'static str, Vec<&'static str>, Vec<Vec<String>>);

fn name(base: &str) -> String {
    format!("heloflow_{base}")
}

impl View {
    /// The view of one parsed `/metrics`.
    pub fn from(e: &Exposition) -> View {
        let one = |base: &str| e.value(&name(base), &[]).unwrap_or(0.0);
        let drops: Vec<(String, f64)> = e
            .named(&name("dropped_samples_total"))
            .filter(|s| s.value > 0.0)
            .filter_map(|s| Some((s.label("reason")?.to_string(), s.value)))
            .collect();
        let streams = e
            .label_values(&name("stream_samples_in_total"), "stream")
            .into_iter()
            .map(|stream| {
                let by = [("stream", stream.as_str())];
                let figures = [
                    e.total(&name("stream_samples_in_total"), &by),
                    e.total(&name("stream_samples_out_total"), &by),
                    e.total(&name("stream_dropped_samples_total"), &by),
                    e.total(&name("stream_gaps_total"), &by),
                    e.total(&name("stream_late_samples_total"), &by),
                ];
                (stream, figures)
            })
            .collect();
        let queues = e
            .label_values(&name("queue_depth_batches"), "source")
            .into_iter()
            .map(|source| {
                let by = [("source", source.as_str())];
                let figures = [
                    e.total(&name("queue_depth_batches"), &by),
                    e.total(&name("queue_peak_batches"), &by),
                    e.total(&name("queue_capacity_batches"), &by),
                ];
                (source, figures)
            })
            .collect();
        let inlets = e
            .named(&name("inlet_clock_offset_seconds"))
            .map(|s| {
                let keys: Vec<(&str, &str)> = ["source", "stream", "subject"]
                    .iter()
                    .map(|&k| (k, s.label(k).unwrap_or("")))
                    .collect();
                let get = |base: &str| e.value(&name(base), &keys).unwrap_or(f64::NAN);
                let shown: Vec<&str> = keys.iter().map(|(_, v)| *v).collect();
                (
                    shown.join("/"),
                    [
                        s.value,
                        get("inlet_jitter_seconds"),
                        get("inlet_effective_rate_hertz"),
                        get("inlet_live"),
                    ],
                )
            })
            .collect();
        let mut latencies = Vec::new();
        let summary = |h: Option<super::exposition::ParsedHistogram>| {
            h.map_or([None; 3], |h| {
                [Some(h.count as f64), h.quantile(0.5), h.quantile(0.95)]
            })
        };
        for operator in e.label_values(&name("operator_emit_latency_seconds_count"), "operator") {
            let by = [("operator", operator.as_str())];
            let emitted = e.histogram(&name("operator_emit_latency_seconds"), &by);
            if emitted.as_ref().is_some_and(|h| h.count > 0) {
                latencies.push((operator.clone(), "handed on".to_string(), summary(emitted)));
            }
            for sample in e
                .named(&name("window_output_latency_seconds_count"))
                .filter(|s| s.has(&by))
            {
                let sink = sample.label("sink").unwrap_or("").to_string();
                let h = e.histogram(
                    &name("window_output_latency_seconds"),
                    &[("operator", &operator), ("sink", &sink)],
                );
                latencies.push((operator.clone(), format!("sink {sink}"), summary(h)));
            }
        }
        let models = e
            .named(&name("model_info"))
            .map(|s| {
                let operator = s.label("operator").unwrap_or("").to_string();
                let by = [("operator", operator.as_str())];
                let inference = e.histogram(&name("model_inference_seconds"), &by);
                let batch = e.histogram(&name("model_batch_rows"), &by);
                (
                    operator.clone(),
                    format!(
                        "{} {}",
                        s.label("model").unwrap_or(""),
                        s.label("version").unwrap_or("")
                    ),
                    s.label("provider").unwrap_or("").to_string(),
                    [
                        inference.as_ref().map(|h| h.count as f64),
                        inference.as_ref().and_then(|h| h.quantile(0.5)),
                        inference.as_ref().and_then(|h| h.quantile(0.95)),
                        batch.as_ref().and_then(|h| h.mean()),
                        batch.as_ref().and_then(|h| h.quantile(0.95)),
                    ],
                )
            })
            .collect();
        View {
            pipeline: e
                .named(&name("pipeline_info"))
                .find_map(|s| s.label("pipeline").map(str::to_string))
                .unwrap_or_default(),
            uptime_s: one("uptime_seconds"),
            event_time_s: e.value(&name("event_time_seconds"), &[]),
            samples_in: one("samples_in_total"),
            rows_out: one("rows_out_total"),
            behind_s: (
                one("behind_real_time_seconds"),
                one("behind_real_time_max_seconds"),
            ),
            drops: (drops.iter().map(|(_, n)| n).sum(), drops),
            streams,
            queues,
            inlets,
            latencies,
            models,
        }
    }

    /// The totals line.
    fn headline(&self) -> String {
        let event = self
            .event_time_s
            .map_or("-".to_string(), |t| format!("{t:.3} s"));
        format!(
            "up {:.1} s | event time {event} | {} samples in | {} rows out | {:.2} s behind real time (most {:.2} s)",
            self.uptime_s, self.samples_in, self.rows_out, self.behind_s.0, self.behind_s.1
        )
    }

    /// The drops line.
    fn drops_line(&self) -> String {
        let reasons: Vec<String> = self
            .drops
            .1
            .iter()
            .map(|(why, n)| format!("{n} {why}"))
            .collect();
        if reasons.is_empty() {
            format!("{} samples dropped", self.drops.0)
        } else {
            format!("{} samples dropped ({})", self.drops.0, reasons.join(", "))
        }
    }

    /// The tables: title, header, rows of cells.
    fn tables(&self) -> Vec<TableText> {
        let count = |v: f64| format!("{v}");
        let ms = |v: Option<f64>| v.map_or("-".to_string(), |s| format!("{:.2} ms", s * 1e3));
        let opt =
            |v: Option<f64>, digits: usize| v.map_or("-".to_string(), |v| format!("{v:.digits$}"));
        vec![
            (
                "streams",
                vec!["stream", "in", "out", "dropped", "gaps", "late"],
                self.streams
                    .iter()
                    .map(|(n, f)| {
                        std::iter::once(n.clone())
                            .chain(f.iter().map(|&v| count(v)))
                            .collect()
                    })
                    .collect(),
            ),
            (
                "queues (batches)",
                vec!["source", "depth", "peak", "capacity"],
                self.queues
                    .iter()
                    .map(|(n, f)| {
                        std::iter::once(n.clone())
                            .chain(f.iter().map(|&v| count(v)))
                            .collect()
                    })
                    .collect(),
            ),
            (
                "inlets",
                vec![
                    "source/stream/subject",
                    "clock offset",
                    "jitter",
                    "rate",
                    "live",
                ],
                self.inlets
                    .iter()
                    .map(|(n, f)| {
                        vec![
                            n.clone(),
                            format!("{:+.6} s", f[0]),
                            format!("{:.6} s", f[1]),
                            format!("{:.3} Hz", f[2]),
                            if f[3] > 0.0 { "yes" } else { "no" }.to_string(),
                        ]
                    })
                    .collect(),
            ),
            (
                "window close to output",
                vec!["operator", "to", "windows", "p50", "p95"],
                self.latencies
                    .iter()
                    .map(|(op, to, f)| {
                        vec![op.clone(), to.clone(), opt(f[0], 0), ms(f[1]), ms(f[2])]
                    })
                    .collect(),
            ),
            (
                "models",
                vec![
                    "operator",
                    "model",
                    "provider",
                    "runs",
                    "p50",
                    "p95",
                    "rows/batch",
                    "p95 rows",
                ],
                self.models
                    .iter()
                    .map(|(op, model, provider, f)| {
                        vec![
                            op.clone(),
                            model.clone(),
                            provider.clone(),
                            opt(f[0], 0),
                            ms(f[1]),
                            ms(f[2]),
                            opt(f[3], 1),
                            opt(f[4], 1),
                        ]
                    })
                    .collect(),
            ),
        ]
    }
}

/// One plain-text snapshot of `view` (what `--once` and a pipe get).
pub fn snapshot_text(view: &View, url: &str) -> String {
    let mut out = format!(
        "heloflow top: pipeline {} ({url})\n{}\n{}\n",
        crate::display::escaped(&view.pipeline),
        view.headline(),
        view.drops_line()
    );
    for (title, header, rows) in view.tables() {
        if rows.is_empty() {
            continue;
        }
        let widths: Vec<usize> = (0..header.len())
            .map(|c| {
                rows.iter()
                    .map(|r| r[c].chars().count())
                    .chain([header[c].len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        out.push_str(&format!("\n{title}\n"));
        let line = |cells: Vec<String>| -> String {
            let padded: Vec<String> = cells
                .iter()
                .zip(&widths)
                .map(|(cell, &w)| format!("{cell:<w$}"))
                .collect();
            format!("  {}\n", padded.join("  ").trim_end())
        };
        out.push_str(&line(header.iter().map(|h| h.to_string()).collect()));
        for row in rows {
            out.push_str(&line(row));
        }
    }
    out
}

/// Draws `view` on `frame`, with `status` (the address, or the last error) at the bottom.
pub fn draw(frame: &mut Frame, view: &View, status: &str) {
    let tables: Vec<_> = view
        .tables()
        .into_iter()
        .filter(|(_, _, rows)| !rows.is_empty())
        .collect();
    let mut constraints = vec![Constraint::Length(4)];
    constraints.extend(
        tables
            .iter()
            .map(|(_, _, rows)| Constraint::Max(rows.len() as u16 + 3)),
    );
    constraints.push(Constraint::Min(0));
    constraints.push(Constraint::Length(1));
    let areas = Layout::vertical(constraints).split(frame.area());
    let header = Paragraph::new(vec![
        Line::from(view.headline()),
        Line::from(view.drops_line()),
    ])
    .block(Block::bordered().title(format!(
        " heloflow top: {} ",
        crate::display::escaped(&view.pipeline)
    )));
    frame.render_widget(header, areas[0]);
    for (index, (title, columns, rows)) in tables.iter().enumerate() {
        let widths: Vec<Constraint> = (0..columns.len())
            .map(|c| {
                let widest = rows
                    .iter()
                    .map(|r| r[c].chars().count())
                    .chain([columns[c].len()])
                    .max()
                    .unwrap_or(1);
                Constraint::Length(widest as u16)
            })
            .collect();
        let table = Table::new(rows.iter().map(|r| Row::new(r.clone())), widths)
            .header(Row::new(columns.clone()).style(Style::new().add_modifier(Modifier::BOLD)))
            .block(Block::bordered().title(format!(" {title} ")));
        frame.render_widget(table, areas[index + 1]);
    }
    frame.render_widget(Paragraph::new(status.to_string()), areas[areas.len() - 1]);
}

/// Scrapes `target` once into a view.
pub fn scrape(target: &Target, token: Option<&str>) -> Result<View, String> {
    let text = fetch::get(target, token)?;
    let exposition = Exposition::parse(&text)
        .map_err(|e| format!("{}: not Prometheus text: {e}", target.url()))?;
    Ok(View::from(&exposition))
}

/// Runs `heloflow top`: live until `q`/Ctrl-C on a terminal, one snapshot otherwise (or with
/// `once`).
pub fn run(addr: &str, once: bool) -> Result<(), String> {
    let target = Target::parse(addr, "/metrics")?;
    let token = std::env::var("HELOFLOW_TOKEN")
        .ok()
        .filter(|t| !t.is_empty());
    if once || !std::io::stdout().is_terminal() {
        let view = scrape(&target, token.as_deref())?;
        print!("{}", snapshot_text(&view, &target.url()));
        return Ok(());
    }
    let mut view = scrape(&target, token.as_deref())?;
    let mut terminal = ratatui::init();
    let result = live(&mut terminal, &target, token.as_deref(), &mut view);
    ratatui::restore();
    result
}

fn live(
    terminal: &mut ratatui::DefaultTerminal,
    target: &Target,
    token: Option<&str>,
    view: &mut View,
) -> Result<(), String> {
    let mut status = format!("{} | q quits", target.url());
    let mut last = Instant::now();
    loop {
        terminal
            .draw(|frame| draw(frame, view, &status))
            .map_err(|e| format!("cannot draw on the terminal: {e}"))?;
        let wait = PERIOD.saturating_sub(last.elapsed());
        if event::poll(wait).map_err(|e| format!("cannot read the terminal: {e}"))? {
            if let Event::Key(key) =
                event::read().map_err(|e| format!("cannot read the terminal: {e}"))?
            {
                let ctrl_c =
                    key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL);
                if key.kind == KeyEventKind::Press
                    && (ctrl_c || matches!(key.code, KeyCode::Char('q') | KeyCode::Esc))
                {
                    return Ok(());
                }
            }
        }
        if last.elapsed() >= PERIOD {
            last = Instant::now();
            match scrape(target, token) {
                Ok(fresh) => {
                    *view = fresh;
                    status = format!("{} | q quits", target.url());
                }
                Err(error) => status = format!("{error} (showing the last figures) | q quits"),
            }
        }
    }
}
