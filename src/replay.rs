//! `heloflow replay FILE`: republishes a recording's streams as live LSL outlets with their full
//! metadata, paced in real time or at a speed factor, optionally looped, so any LSL pipeline and
//! tools like LabRecorder or MNE-LSL can be tested with real recordings (the role of MNE-LSL's
//! `PlayerLSL` and LabRecorder's XDFStreamer).
//!
//! Each stream keeps its header (name, type, channels, units, `desc`, `source_id`), so a pipeline
//! that matches the original devices matches their replay. Timestamps are the recording's
//! (clock-synchronised like pyxdf by default) moved to now: a sample recorded `d` seconds after
//! the recording's first sample is pushed `d / speed` seconds after the replay starts, stamped with
//! that moment on the local LSL clock. With `--loop` the recording starts over after its end.
//!
//! ```no_run
//! use heloflow::replay::{replay, ReplayOptions};
//!
//! let options = ReplayOptions { speed: 2.0, ..ReplayOptions::default() };
//! let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
//! replay("session.xdf".as_ref(), &options, &stop).unwrap();
//! ```

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use lsl::{ExPushable, StreamInfo, StreamOutlet};

use crate::sources::lsl::metadata::full_info_xml;
use crate::sources::selection::{SelectArgs, Selection};
use crate::xdf::reader::{read, read_headers, ReadOptions, Samples, Stream};

/// The command line of `heloflow replay`.
#[derive(clap::Args, Clone, Debug)]
pub struct ReplayArgs {
    /// The XDF recording.
    pub file: PathBuf,
    /// Playback speed: 1 is real time, 10 ten times faster.
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// Start over at the end, until Ctrl-C.
    #[arg(long = "loop")]
    pub looped: bool,
    /// Which streams to replay (all when none is given).
    #[command(flatten)]
    pub select: SelectArgs,
    /// Keep the timestamps as recorded, without pyxdf's clock synchronisation.
    #[arg(long)]
    pub no_sync: bool,
    /// Dejitter regular streams' timestamps as pyxdf does by default.
    #[arg(long)]
    pub dejitter: bool,
    /// Appended to every source_id, to replay beside the devices that were recorded.
    #[arg(long, default_value = "")]
    pub source_id_suffix: String,
    /// Wait up to this many seconds for every outlet to have a consumer before starting.
    #[arg(long, default_value_t = 0.0)]
    pub wait_for_consumers: f64,
}

/// `heloflow replay`: replays as the arguments say until the end or `stop`, then prints what was
/// published.
pub fn main(args: &ReplayArgs, stop: &AtomicBool) -> Result<(), String> {
    let options = ReplayOptions {
        speed: args.speed,
        looped: args.looped,
        selection: args.select.selection()?,
        synchronize_clocks: !args.no_sync,
        dejitter: args.dejitter,
        source_id_suffix: args.source_id_suffix.clone(),
        wait_for_consumers_s: args.wait_for_consumers,
    };
    let report = replay(&args.file, &options, stop)
        .map_err(|e| format!("heloflow replay: {}: {e}", args.file.display()))?;
    for (label, pushed) in &report.streams {
        crate::notice!("heloflow replay: {label}: {pushed} samples published");
    }
    crate::notice!(
        "heloflow replay: {} pass(es) of {}",
        report.passes,
        args.file.display()
    );
    Ok(())
}

/// How to replay a recording.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplayOptions {
    /// Playback speed: 1 is real time, 2 twice as fast.
    pub speed: f64,
    /// Start over after the end, until stopped.
    pub looped: bool,
    /// Which streams (an XPath predicate over their headers, as the `lsl` source takes); all when
    /// empty.
    pub selection: Selection,
    /// Clock-synchronise the recording's timestamps (pyxdf's default).
    pub synchronize_clocks: bool,
    /// Dejitter regular streams' timestamps (pyxdf's default is on; replay keeps them as recorded).
    pub dejitter: bool,
    /// Appended to every `source_id`, so a replay can run beside the devices it recorded.
    pub source_id_suffix: String,
    /// Seconds to wait for every outlet to have a consumer before starting.
    pub wait_for_consumers_s: f64,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            speed: 1.0,
            looped: false,
            selection: Selection::default(),
            synchronize_clocks: true,
            dejitter: false,
            source_id_suffix: String::new(),
            wait_for_consumers_s: 0.0,
        }
    }
}

/// What a replay published.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplayReport {
    /// One line per stream: name, type, source_id, samples pushed.
    pub streams: Vec<(String, u64)>,
    /// Times the recording was played from the start.
    pub passes: u64,
}

/// One recorded stream ready to push: its outlet, and its samples on the recording's clock.
struct Player {
    outlet: StreamOutlet,
    label: String,
    stream: Stream,
    /// Samples to play, in order: those with a finite timestamp at or after the previous one.
    playable: Vec<usize>,
    /// Samples left out (timestamps not finite, or going back after synchronisation).
    dropped: u64,
    next: usize,
    pushed: u64,
}

impl Player {
    fn new(outlet: StreamOutlet, label: String, stream: Stream) -> Player {
        let mut playable = Vec::with_capacity(stream.time_stamps.len());
        let mut last = f64::NEG_INFINITY;
        for (index, &t) in stream.time_stamps.iter().enumerate() {
            if t.is_finite() && t >= last {
                playable.push(index);
                last = t;
            }
        }
        let dropped = (stream.time_stamps.len() - playable.len()) as u64;
        Player {
            outlet,
            label,
            stream,
            playable,
            dropped,
            next: 0,
            pushed: 0,
        }
    }

    /// Timestamps of the first and last playable samples.
    fn span(&self) -> Option<(f64, f64)> {
        let first = self.stream.time_stamps[*self.playable.first()?];
        let last = self.stream.time_stamps[*self.playable.last()?];
        Some((first, last))
    }

    /// Pushes the sample at `index` stamped `stamp` (local LSL clock).
    fn push(&mut self, index: usize, stamp: f64) -> Result<(), String> {
        let width = self.stream.info.channel_count;
        let range = index * width..(index + 1) * width;
        let pushed = match &self.stream.samples {
            Samples::Int8(v) => self.outlet.push_sample_ex(&v[range].to_vec(), stamp, true),
            Samples::Int16(v) => self.outlet.push_sample_ex(&v[range].to_vec(), stamp, true),
            Samples::Int32(v) => self.outlet.push_sample_ex(&v[range].to_vec(), stamp, true),
            Samples::Int64(v) => self.outlet.push_sample_ex(&v[range].to_vec(), stamp, true),
            Samples::Float32(v) => self.outlet.push_sample_ex(&v[range].to_vec(), stamp, true),
            Samples::Double64(v) => self.outlet.push_sample_ex(&v[range].to_vec(), stamp, true),
            Samples::String(v) => self.outlet.push_sample_ex(&v[range].to_vec(), stamp, true),
        };
        pushed.map_err(|e| format!("cannot push to the outlet of {}: {e:?}", self.label))?;
        self.pushed += 1;
        Ok(())
    }
}

/// Replays `path` until its end (or forever with `looped`) or until `stop` is set.
pub fn replay(
    path: &Path,
    options: &ReplayOptions,
    stop: &AtomicBool,
) -> Result<ReplayReport, String> {
    if !(options.speed.is_finite() && options.speed > 0.0 && options.speed <= 1e6) {
        return Err(format!(
            "--speed must be above 0 and at most 1e6, found {}",
            options.speed
        ));
    }
    if !(options.wait_for_consumers_s.is_finite()
        && (0.0..=3600.0).contains(&options.wait_for_consumers_s))
    {
        return Err(format!(
            "--wait-for-consumers must be between 0 and 3600 s, found {}",
            options.wait_for_consumers_s
        ));
    }
    let headers = read_headers(path).map_err(|e| e.to_string())?;
    let selected: Vec<u32> = headers
        .iter()
        .filter(|(_, info)| options.selection.matches_xml(&full_info_xml(info)))
        .map(|(id, _)| *id)
        .collect();
    if selected.is_empty() {
        return Err(format!(
            "no stream of {} matches [{}]",
            path.display(),
            crate::sources::selection::readable_predicate(&options.selection.predicate)
        ));
    }
    let read_options = ReadOptions {
        select: Some(selected),
        synchronize_clocks: options.synchronize_clocks,
        dejitter_timestamps: options.dejitter,
        ..ReadOptions::default()
    };
    let recording = read(path, &read_options).map_err(|e| e.to_string())?;
    for damage in &recording.damage {
        crate::notice!("heloflow replay: {}: {damage}", path.display());
    }
    let network = crate::lsl_network::LslNetwork::load();
    if let Some(warning) = network.shortage(recording.streams.len(), 0, network.free_udp_ports()) {
        crate::notice!("heloflow replay: warning: {warning}");
    }
    let mut players = Vec::new();
    for stream in recording.streams {
        let mut header = stream.info.clone();
        header.source_id.push_str(&options.source_id_suffix);
        let info = StreamInfo::from_xml(&full_info_xml(&header)).map_err(|e| {
            format!(
                "stream {} \"{}\": liblsl refuses its header: {e:?}",
                stream.id, stream.info.name
            )
        })?;
        let outlet = StreamOutlet::new(&info, 0, 360).map_err(|e| {
            format!(
                "cannot create an outlet for \"{}\": {e:?}",
                stream.info.name
            )
        })?;
        // Names from the recording are shown escaped (see `crate::display`).
        let label = crate::display::escaped(&format!(
            "\"{}\" type={} source_id={}",
            stream.info.name,
            stream.info.kind,
            info.source_id()
        ))
        .into_owned();
        crate::notice!(
            "heloflow replay: {label}: {} ch {} at {} Hz, {} samples",
            stream.info.channel_count,
            stream.info.channel_format.lsl_name(),
            stream.info.nominal_srate,
            stream.time_stamps.len()
        );
        let player = Player::new(outlet, label, stream);
        if player.dropped > 0 {
            crate::notice!(
                "heloflow replay: {}: {} sample(s) left out: their timestamps are not finite or go back in time",
                player.label, player.dropped
            );
        }
        players.push(player);
    }
    if options.wait_for_consumers_s > 0.0 {
        let deadline = Instant::now() + Duration::from_secs_f64(options.wait_for_consumers_s);
        while Instant::now() < deadline
            && !stop.load(Ordering::Relaxed)
            && !players.iter().all(|p| p.outlet.have_consumers())
        {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let spans: Vec<(f64, f64)> = players.iter().filter_map(Player::span).collect();
    let first = spans.iter().map(|s| s.0).fold(f64::INFINITY, f64::min);
    let last = spans.iter().map(|s| s.1).fold(f64::NEG_INFINITY, f64::max);
    if spans.is_empty() {
        return Err(format!("{} holds no samples to replay", path.display()));
    }
    // One pass lasts the recording plus the longest nominal interval, so a loop does not push two
    // samples at one instant.
    let interval = players
        .iter()
        .map(|p| p.stream.info.sample_interval())
        .fold(0.0, f64::max);
    let pass_length = (last - first) + interval.max(1e-3);
    let started_clock = lsl::local_clock();
    let started = Instant::now();
    let mut passes = 0;
    loop {
        let pass_offset = passes as f64 * pass_length;
        for player in &mut players {
            player.next = 0;
        }
        loop {
            if stop.load(Ordering::Relaxed) {
                return Ok(report(&players, passes + 1));
            }
            let now = started.elapsed().as_secs_f64() * options.speed;
            let mut pending = false;
            for player in &mut players {
                while let Some(&index) = player.playable.get(player.next) {
                    let at = player.stream.time_stamps[index] - first + pass_offset;
                    if at > now {
                        pending = true;
                        break;
                    }
                    player.next += 1;
                    player.push(index, started_clock + at / options.speed)?;
                }
            }
            if !pending {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        passes += 1;
        if !options.looped {
            // Give connected consumers a moment to take the last samples before the outlets close.
            let linger = Instant::now() + Duration::from_secs(1);
            while Instant::now() < linger
                && !stop.load(Ordering::Relaxed)
                && players.iter().any(|p| p.outlet.have_consumers())
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            return Ok(report(&players, passes));
        }
    }
}

fn report(players: &[Player], passes: u64) -> ReplayReport {
    ReplayReport {
        streams: players
            .iter()
            .map(|p| (p.label.clone(), p.pushed))
            .collect(),
        passes,
    }
}
