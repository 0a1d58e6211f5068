//! The `lsl` source thread: resolve matching streams, check them against the declaration, then
//! pull in chunks, send data and watermarks, report gaps, and pick up streams that appear later.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use lsl::{ContinuousResolver, ProcessingOption, StreamInfo, StreamInlet};

use super::link::Link;
use super::metadata::{stream_key, visible_streams_listing, StreamMetadata};
use super::placement::{Notice, Rules};
use super::unit_check::{check_units, UnitCheck, UnitPolicy};
use super::LslSourceConfig;
use crate::origin::StreamOrigin;
use crate::sources::queue::SourceSender;
use crate::sources::selection::{
    readable_predicate, StreamFields, SubjectFrom, MAX_SUBJECTS, TYPE_ANY_CASE,
};
use crate::stream::{secs_to_nanos, Batch, ChannelFormat, Modality, Nanos, Values};

/// Most samples taken from one inlet per step, so one busy stream cannot starve the others.
const MAX_CHUNK: usize = 4096;

/// How often the per-stream figures are copied into the shared metrics.
const STATS_EVERY: Duration = Duration::from_millis(200);

/// How often streams that appear after the start are looked for.
const DISCOVER_EVERY: Duration = Duration::from_secs(1);

/// Runs the source until the pipeline stops; fatal problems are reported through `sender.fail`.
pub fn run(config: &LslSourceConfig, name: &str, stream_ids: &[u32], sender: &SourceSender) {
    let resolver = match ContinuousResolver::new_with_pred(&config.predicate, 5.0) {
        Ok(resolver) => resolver,
        Err(e) => {
            sender.fail(format!(
                "lsl source `{name}`: cannot resolve [{}]: {e:?}",
                readable_predicate(&config.predicate)
            ));
            return;
        }
    };
    let mut source = LslSource {
        config,
        name,
        data_id: stream_ids[0],
        events_id: stream_ids[1],
        sender,
        links: Vec::new(),
        seen: BTreeSet::new(),
        emitted: Nanos::MIN,
    };
    if let Err(message) = source.start(&resolver) {
        sender.fail(message);
        return;
    }
    source.stream(&resolver);
    sender.metrics().note_due(None);
    source.finish();
    source.summarise();
}

struct LslSource<'a> {
    config: &'a LslSourceConfig,
    name: &'a str,
    data_id: u32,
    events_id: u32,
    sender: &'a SourceSender,
    links: Vec<Link>,
    /// Keys (see `stream_key`) of streams already taken or rejected.
    seen: BTreeSet<String>,
    /// The last watermark sent.
    emitted: Nanos,
}

impl LslSource<'_> {
    /// Waits for `min_streams` matching streams; an error lists every visible stream.
    fn start(&mut self, resolver: &ContinuousResolver) -> Result<(), String> {
        let deadline = Instant::now() + self.config.timing().timeout;
        loop {
            if self.sender.stopping() {
                return Ok(());
            }
            for info in resolver.results().unwrap_or_default() {
                self.connect(info)?;
            }
            if self.links.len() >= self.config.min_streams {
                break;
            }
            if Instant::now() >= deadline {
                let list = visible_streams_listing(1.0);
                // `type = ...` matches any case; a type compared inside `predicate` does not.
                let hint = if self
                    .config
                    .predicate
                    .replace(TYPE_ANY_CASE, "")
                    .contains("type")
                {
                    "\n  note: comparisons inside `predicate` are exact (type='EEG' does not match an outlet of type eeg, as MNE-LSL's player publishes); the `type` option matches any case"
                } else {
                    ""
                };
                return Err(format!(
                    "lsl source `{}`: found {} of {} stream(s) matching [{}] within {} s; visible streams:\n{list}{hint}",
                    self.name,
                    self.links.len(),
                    self.config.min_streams,
                    readable_predicate(&self.config.predicate),
                    self.config.timeout_s
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        for link in &self.links {
            crate::notice!(
                "heloflow: lsl source `{}`: subject {} <- {}",
                self.name,
                link.subject,
                link.meta.summary()
            );
        }
        Ok(())
    }

    /// Opens an inlet on a newly seen stream and checks it; `Ok` without a link for streams
    /// already known (a restarted outlet is recovered by its existing inlet).
    fn connect(&mut self, info: StreamInfo) -> Result<(), String> {
        let key = stream_key(&info);
        if self.seen.contains(&key) || crate::sinks::lsl::is_own_outlet(&info.source_id()) {
            return Ok(());
        }
        self.seen.insert(key);
        let summary = super::metadata::short_summary(&info);
        let context =
            |what: String| format!("lsl source `{}`: stream {summary}: {what}", self.name);
        if self.links.len() >= MAX_SUBJECTS {
            return Err(context(format!(
                "the source already takes {MAX_SUBJECTS} subjects, the most a run takes"
            )));
        }
        let inlet = StreamInlet::new(&info, 360, 0, true)
            .map_err(|e| context(format!("cannot open an inlet: {e:?}")))?;
        let mut full = inlet
            .info(5.0)
            .map_err(|e| context(format!("cannot read its metadata: {e:?}")))?;
        let meta = StreamMetadata::read(&mut full);
        let units = self.check(&meta).map_err(context)?;
        let subject = self.subject(&meta, &mut full).map_err(context)?;
        if let Some(other) = self.links.iter().find(|l| l.subject == subject) {
            return Err(context(format!(
                "it maps to subject {subject}, like {}; each subject takes one stream per source (see `subject_from` and `subjects`)",
                other.meta.summary()
            )));
        }
        if self.config.dejitter && meta.nominal_srate > 0.0 {
            inlet
                .set_postprocessing(&[ProcessingOption::Dejitter])
                .map_err(|e| context(format!("cannot enable dejittering: {e:?}")))?;
        }
        inlet
            .open_stream(5.0)
            .map_err(|e| context(format!("cannot open the stream: {e:?}")))?;
        let offset = inlet.time_correction(5.0);
        let origins = self.sender.origins();
        origins.set(
            self.data_id,
            &subject,
            StreamOrigin::new(full.to_xml().unwrap_or_default()),
        );
        if let Ok(offset) = offset {
            origins.add_clock_offset(
                self.data_id,
                &subject,
                lsl::local_clock(),
                offset,
                Nanos::MIN,
            );
        }
        let rules = Rules {
            confirm_s: Rules::default()
                .confirm_s
                .min(self.config.stall_timeout_s / 2.0),
            ..Rules::default()
        };
        for note in &units.notes {
            crate::notice!("heloflow: {}", context(note.clone()));
        }
        if let Some(factors) = &units.factors {
            let shown: Vec<String> = factors.iter().map(|f| format!("{f:e}")).collect();
            crate::notice!(
                "heloflow: {}",
                context(format!(
                    "its values are converted into {} (factors per channel: {})",
                    self.config.unit,
                    shown.join(", ")
                ))
            );
        }
        let mut link = Link::new(
            inlet,
            meta,
            subject,
            offset.unwrap_or(0.0),
            rules,
            self.config.expected_next,
        )
        .with_scale(units.factors);
        link.stats.stream = self.data_id;
        if let Ok(mut inlets) = self.sender.metrics().inlets.lock() {
            inlets.push(link.stats.clone());
        }
        self.links.push(link);
        Ok(())
    }

    /// Checks a stream's real metadata against what the pipeline declared; what its units need.
    fn check(&self, meta: &StreamMetadata) -> Result<UnitCheck, String> {
        let config = self.config;
        let declared = config.channels.len();
        if meta.channel_count != declared {
            return Err(format!(
                "it has {} channel(s), but the pipeline declares {declared}",
                meta.channel_count
            ));
        }
        let markers = config.modality == Modality::Markers;
        let is_string = meta.format == "string";
        if ChannelFormat::from_lsl_name(&meta.format).is_none() {
            return Err(format!("its channel format {} cannot be read", meta.format));
        }
        if markers != is_string {
            return Err(if markers {
                format!(
                    "it carries {} numbers, but the source declares a markers stream (strings)",
                    meta.format
                )
            } else {
                format!(
                    "it carries strings (a marker stream), but the source declares a {} signal; use modality = \"markers\"",
                    config.modality.name()
                )
            });
        }
        if let Some(format) = config.format {
            if format.lsl_name() != meta.format {
                return Err(format!(
                    "its channel format is {}, but the pipeline declares {}",
                    meta.format,
                    format.lsl_name()
                ));
            }
        }
        if let Some(hz) = config.rate.hz() {
            if (meta.nominal_srate - hz).abs() > 1e-6 * hz {
                return Err(format!(
                    "its nominal rate is {} Hz, but the pipeline declares rate = {hz}",
                    meta.nominal_srate
                ));
            }
        }
        if config.labelled && meta.has_labels() {
            let real: Vec<&str> = meta.channels.iter().map(|c| c.label.as_str()).collect();
            let wanted: Vec<&str> = config.channels.iter().map(|c| c.label.as_str()).collect();
            if real != wanted {
                return Err(format!(
                    "its channel labels are [{}], but the pipeline declares [{}]",
                    real.join(", "),
                    wanted.join(", ")
                ));
            }
        }
        if markers {
            return Ok(UnitCheck::default());
        }
        let policy = config.on_unit_mismatch;
        let check = check_units(&config.unit, config.modality, meta, policy)?;
        debug_assert!(check.factors.is_none() || policy == UnitPolicy::Convert);
        Ok(check)
    }

    /// The subject a stream feeds, by the configured rule and table.
    fn subject(&self, meta: &StreamMetadata, full: &mut StreamInfo) -> Result<String, String> {
        let desc = match &self.config.subjects.from {
            SubjectFrom::Desc(path) => StreamMetadata::desc_value(full, path),
            _ => None,
        };
        self.config.subjects.subject(&StreamFields {
            name: &meta.name,
            source_id: &meta.source_id,
            hostname: &meta.hostname,
            desc: &|_| desc.clone(),
        })
    }

    /// The main loop: pull, report gaps, advance event time, discover new streams.
    fn stream(&mut self, resolver: &ContinuousResolver) {
        let timing = self.config.timing();
        let (stall, stall_ns, lateness_ns) = (timing.stall, timing.stall_ns, timing.lateness_ns);
        let mut last_discover = Instant::now();
        let mut last_stats = Instant::now();
        while !self.sender.stopping() {
            let mut received = false;
            for index in 0..self.links.len() {
                let link = &mut self.links[index];
                if let Some(offset) = link.refresh_clock(self.config.clock_refresh_s) {
                    let applies_from = link.last_time().map_or(Nanos::MIN, |t| t + 1);
                    let origins = self.sender.origins();
                    origins.add_clock_offset(
                        self.data_id,
                        &link.subject,
                        lsl::local_clock(),
                        offset,
                        applies_from,
                    );
                    if link.applied_offset_s() != offset {
                        origins.set_applied(
                            self.data_id,
                            &link.subject,
                            applies_from,
                            link.applied_offset_s(),
                        );
                    }
                }
                let pulled = match link.pull(self.emitted, MAX_CHUNK) {
                    Ok(pulled) => pulled,
                    Err(e) => {
                        self.sender.fail(format!(
                            "lsl source `{}`: reading {} failed: {e:?}",
                            self.name,
                            link.meta.summary()
                        ));
                        return;
                    }
                };
                let subject = link.subject.clone();
                let source_id = link.meta.source_id.clone();
                let glitches = link.glitch_report(false);
                if let Some(report) = glitches {
                    crate::notice!(
                        "heloflow: lsl source `{}`: stream of subject {subject} ({source_id}): {report}",
                        self.name
                    );
                }
                for notice in &pulled.notices {
                    if let Notice::Stepped { at: Some(at), .. } = notice {
                        // Recorders recover the sender's own stamps from here on.
                        let applied = self.links[index].applied_offset_s();
                        self.sender
                            .origins()
                            .set_applied(self.data_id, &subject, *at, applied);
                    }
                    if let Some(event) = self.announce_step(notice, &subject, &source_id) {
                        if !self.sender.data(event) {
                            return;
                        }
                    }
                }
                if let (Some(gap), Some(&first)) =
                    (pulled.resumed_after_s, pulled.timestamps.first())
                {
                    crate::notice!(
                        "heloflow: lsl source `{}`: stream of subject {subject} ({source_id}) resumed after a {gap:.3} s gap",
                        self.name
                    );
                    let event =
                        self.event(&subject, first, "resumed", &source_id, format!("{gap:.6}"));
                    if !self.sender.data(event) {
                        return;
                    }
                }
                if let Some(values) = pulled.values {
                    received = true;
                    let batch = Batch {
                        stream: self.data_id,
                        subject,
                        timestamps: pulled.timestamps,
                        values,
                    };
                    if !self.sender.data(batch) {
                        return;
                    }
                }
            }
            let now = secs_to_nanos(lsl::local_clock());
            for index in 0..self.links.len() {
                if self.links[index].check_stall(stall) {
                    let link = &self.links[index];
                    // A stream that never sent anything went silent when it was connected.
                    let at = link
                        .last_time()
                        .map_or(now - stall_ns, |t| t + 1)
                        .max(self.emitted);
                    let (subject, source_id) = (link.subject.clone(), link.meta.source_id.clone());
                    crate::notice!(
                        "heloflow: lsl source `{}`: stream of subject {subject} ({source_id}) silent for {} s: {}",
                        self.name,
                        self.config.stall_timeout_s,
                        match self.config.on_stall {
                            super::StallPolicy::Advance => "event time moves on without it; its windows show the gap in their coverage",
                            super::StallPolicy::Hold => "holding event time until it returns",
                        }
                    );
                    let event = self.event(&subject, at, "lost", &source_id, String::new());
                    if !self.sender.data(event) {
                        return;
                    }
                }
            }
            let watermark = self
                .links
                .iter()
                .map(|l| l.watermark(now, lateness_ns, stall_ns, self.config.on_stall))
                .min();
            if let Some(watermark) = watermark.filter(|w| *w > self.emitted) {
                if !self.sender.watermark(watermark) {
                    return;
                }
                self.emitted = watermark;
            }
            if last_stats.elapsed() >= STATS_EVERY {
                last_stats = Instant::now();
                self.publish_stats();
            }
            if last_discover.elapsed() >= DISCOVER_EVERY {
                last_discover = Instant::now();
                for info in resolver.results().unwrap_or_default() {
                    let before = self.links.len();
                    match self.connect(info) {
                        Err(message) => {
                            crate::notice!(
                                "heloflow: {message} (ignored: it appeared after the start)"
                            )
                        }
                        Ok(()) if self.links.len() > before => {
                            let link = &self.links[before];
                            crate::notice!(
                                "heloflow: lsl source `{}`: subject {} joined <- {}",
                                self.name,
                                link.subject,
                                link.meta.summary()
                            );
                        }
                        Ok(()) => {}
                    }
                }
            }
            if !received {
                std::thread::sleep(Duration::from_micros(500));
            }
        }
    }

    /// Announces a clock step on standard error; returns its `clock_step` event.
    fn announce_step(&self, notice: &Notice, subject: &str, source_id: &str) -> Option<Batch> {
        let Notice::Stepped {
            shift_s,
            at,
            placed,
            late,
        } = *notice
        else {
            return None;
        };
        crate::notice!(
            "heloflow: lsl source `{}`: stream of subject {subject} ({source_id}): the sender's clock stepped {} by {:.3} s and stayed there: its timestamps are shifted by {shift_s:+.3} s from now on, so its data continues on the local clock ({placed} sample(s) held meanwhile placed, {late} late)",
            self.name,
            if shift_s > 0.0 { "back" } else { "forward" },
            shift_s.abs(),
        );
        Some(self.event(
            subject,
            at.unwrap_or(self.emitted),
            "clock_step",
            source_id,
            format!("{shift_s:.6}"),
        ))
    }

    /// Drops what every stream still holds aside and announces the last glitches.
    fn finish(&mut self) {
        for link in &mut self.links {
            link.finish();
            if let Some(report) = link.glitch_report(true) {
                crate::notice!(
                    "heloflow: lsl source `{}`: stream of subject {} ({}): {report}",
                    self.name,
                    link.subject,
                    link.meta.source_id
                );
            }
        }
    }

    /// A one-sample `events` batch.
    fn event(&self, subject: &str, time: Nanos, what: &str, source_id: &str, gap: String) -> Batch {
        Batch {
            stream: self.events_id,
            subject: subject.to_string(),
            timestamps: vec![time.max(self.emitted)],
            values: Values::Text(vec![what.to_string(), source_id.to_string(), gap]),
        }
    }

    fn publish_stats(&self) {
        let lag_s = self
            .links
            .iter()
            .filter_map(Link::lag_s)
            .fold(0.0, f64::max);
        self.sender
            .metrics()
            .note_behind(Duration::from_secs_f64(lag_s.clamp(0.0, 1e6)));
        if let Ok(mut inlets) = self.sender.metrics().inlets.lock() {
            for (slot, link) in inlets.iter_mut().zip(&self.links) {
                slot.clone_from(&link.stats);
            }
        }
    }

    /// One line per stream on standard error: offset, jitter, rate, gaps (a stream still lost at
    /// the end is an open gap), clock steps and the samples dropped for their timestamps.
    fn summarise(&self) {
        self.publish_stats();
        for link in &self.links {
            let s = &link.stats;
            let gaps = match link.open_gap_s() {
                Some(open) => format!(
                    "{} gap(s) ({:.3} s closed, the last still open: lost for the last {open:.3} s)",
                    s.gaps, s.gap_s
                ),
                None => format!("{} gap(s) ({:.3} s)", s.gaps, s.gap_s),
            };
            let steps = if s.clock_steps > 0 {
                format!(
                    ", {} clock step(s) (timestamps shifted by {:+.3} s)",
                    s.clock_steps, s.clock_shift_s
                )
            } else {
                String::new()
            };
            let d = &s.dropped;
            crate::notice!(
                "heloflow: lsl source `{}`: subject {} ({}): {} samples, clock offset {:+.6} s, jitter {:.6} s, effective rate {:.3} Hz, {gaps}{steps}, {} dropped ({} late, {} ahead of the clock, {} behind earlier samples, {} without a valid time)",
                self.name, s.subject, s.source_id, s.samples, s.clock_offset_s, s.jitter_s, s.effective_rate_hz, d.total(), d.late, d.ahead, d.behind, d.invalid
            );
        }
    }
}
