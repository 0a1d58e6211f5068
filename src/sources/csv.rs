//! The `csv` source: a recording kept as comma-separated values, for data that is not XDF.
//!
//! ```toml
//! [sources.trial]
//! kind = "csv"
//! path = "data/P01.csv"        # first row: column names
//! modality = "eda"             # what the channels measure
//! unit = "uS"
//! time_column = "timestamp"    # seconds (default "timestamp"); scaled by time_scale (1)
//! channels = ["EDA"]           # default: every other column
//! rate = 4                     # Hz; default: from the time column; 0 = irregular
//! subject = "P01"              # or subject_column = "id"; default: a `subject` column if the
//!                              # file has one, else the file's stem
//! markers = "event"            # a text column: each non-empty cell is a marker at that time
//! speed = 1.0                  # pace by the wall clock (default: as fast as possible)
//! ```
//!
//! Outputs `<source>.<modality>` and, with `markers`, `<source>.markers`. The header is read when
//! the pipeline is validated, so channels are known and checked before anything runs. Without a
//! time column (none named `time_column` in the file) the rate must be given and sample `i` is at
//! `start_s + i / rate`. The csv sink's files (`timestamp,subject,<channels>`) read back as they
//! were written. Empty cells are missing values (NaN); a cell that is not a number is an error
//! naming its line and column. Rows whose time goes back are dropped, counted and reported.

use std::collections::BTreeMap;
use std::path::Path;
use std::thread::JoinHandle;

use crate::config::options::Options;
use crate::sources::playback::{
    drop_backward_samples, report_dropped, Playback, Track, MAX_TIME_S,
};
use crate::sources::queue::{QueueConfig, SourceSender};
use crate::sources::selection::{modality_names, RATE_RANGE_HZ};
use crate::sources::Source;
use crate::stream::{
    secs_to_nanos, Channel, ChannelFormat, Modality, Nanos, Rate, StreamSchema, Values,
};

/// Where a row's subject comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum CsvSubject {
    /// Every row belongs to this subject.
    Fixed(String),
    /// A column names each row's subject.
    Column(String),
}

/// Options of a `csv` source.
#[derive(Clone, Debug, PartialEq)]
pub struct CsvSourceConfig {
    /// The file.
    pub path: String,
    /// Field separator.
    pub delimiter: u8,
    /// What the channels measure.
    pub modality: Modality,
    /// Columns read as channels, in output order, with their unit.
    pub channels: Vec<Channel>,
    /// The time column, when the file has one.
    pub time_column: Option<String>,
    /// Seconds per unit of the time column.
    pub time_scale: f64,
    /// Event time of the first sample when the file has no time column, seconds.
    pub start_s: f64,
    /// Nominal rate, declared or measured from the time column.
    pub rate: Rate,
    /// Where subjects come from.
    pub subject: CsvSubject,
    /// A text column of markers.
    pub markers: Option<String>,
    /// Step and pacing.
    pub playback: Playback,
    /// Queue to the dataflow.
    pub queue: QueueConfig,
}

/// Rows read to measure the rate from the time column at validation.
const RATE_PROBE_ROWS: usize = 2000;

impl Source for CsvSourceConfig {
    fn parse(options: &mut Options) -> Self {
        let path = match options.string("path") {
            Some(path) => path.into_inner(),
            None => {
                options.error_at(
                    "path",
                    "a `csv` source needs `path`, the file to read",
                    "add path = \"data/recording.csv\"",
                );
                String::new()
            }
        };
        let delimiter = match options.string("delimiter") {
            None => b',',
            Some(text) if text.get_ref().len() == 1 && text.get_ref().is_ascii() => {
                text.get_ref().as_bytes()[0]
            }
            Some(text) => {
                options.error_at(
                    "delimiter",
                    format!(
                        "`delimiter` must be one ASCII character, found \"{}\"",
                        text.get_ref()
                    ),
                    "for example delimiter = \";\" or delimiter = \"\\t\"",
                );
                b','
            }
        };
        let modality = match options.string("modality") {
            Some(name) => Modality::from_name(name.get_ref()).unwrap_or_else(|| {
                options.error_at(
                    "modality",
                    format!("unknown modality \"{}\"", name.get_ref()),
                    format!("valid: {}", modality_names()),
                );
                Modality::Features
            }),
            None => {
                options.error_at(
                    "modality",
                    "a `csv` source must say what its channels measure",
                    format!("add modality = \"eda\" (valid: {})", modality_names()),
                );
                Modality::Features
            }
        };
        if modality == Modality::Markers {
            options.error_at(
                "modality",
                "a `csv` source's channels are numbers; markers come from a text column",
                "name the column with markers = \"event\", and set modality to what the channels measure",
            );
        }
        let unit = options
            .string("unit")
            .map(|u| u.into_inner())
            .unwrap_or_default();
        let time_name = options
            .string("time_column")
            .map_or_else(|| "timestamp".to_string(), |t| t.into_inner());
        let time_scale = options.number_in("time_scale", 1.0, 1e-9..=1e6);
        let start_s = options.number_in("start_s", 0.0, -MAX_TIME_S..=MAX_TIME_S);
        let declared_rate = match options.number("rate") {
            None => None,
            Some(0.0) => Some(Rate::Irregular),
            Some(hz) if RATE_RANGE_HZ.contains(&hz) => Some(Rate::Regular(hz)),
            Some(hz) => {
                options.error_at(
                    "rate",
                    format!(
                        "`rate` must be 0 (irregular) or {} to {} Hz, found {hz}",
                        RATE_RANGE_HZ.start(),
                        RATE_RANGE_HZ.end()
                    ),
                    "for example rate = 256",
                );
                Some(Rate::Irregular)
            }
        };
        let subject_column = options.string("subject_column").map(|s| s.into_inner());
        let fixed_subject = options.string("subject").map(|s| s.into_inner());
        let markers = options.string("markers").map(|m| m.into_inner());
        let chosen = options.string_list("channels");
        let playback = Playback::parse(options);
        let queue = QueueConfig::parse(options);

        let subject_given = subject_column.is_some() || fixed_subject.is_some();
        let mut config = CsvSourceConfig {
            subject: match (subject_column, fixed_subject) {
                (Some(column), None) => CsvSubject::Column(column),
                (column, fixed) => {
                    if column.is_some() {
                        options.error_at(
                            "subject",
                            "give either `subject` or `subject_column`, not both",
                            "remove one of them",
                        );
                    }
                    CsvSubject::Fixed(fixed.unwrap_or_else(|| {
                        Path::new(&path)
                            .file_stem()
                            .map_or("S01".to_string(), |s| s.to_string_lossy().into_owned())
                    }))
                }
            },
            path,
            delimiter,
            modality,
            channels: Vec::new(),
            time_column: None,
            time_scale,
            start_s,
            rate: declared_rate.unwrap_or(Rate::Irregular),
            markers,
            playback,
            queue,
        };
        if config.path.is_empty() {
            return config;
        }
        let header = match read_header(&config) {
            Ok(header) => header,
            Err(message) => {
                options.error_at("path", message, "check the path (relative to the working directory) and that the file's first row names its columns");
                return config;
            }
        };
        let has = |name: &str| header.iter().any(|h| h == name);
        if !subject_given && has("subject") {
            config.subject = CsvSubject::Column("subject".to_string());
        }
        config.time_column = has(&time_name).then(|| time_name.clone());
        if config.time_column.is_none() && declared_rate.is_none_or(|r| r == Rate::Irregular) {
            options.error_at(
                "time_column",
                format!(
                    "{} has no time column \"{time_name}\" (its columns: {})",
                    config.path,
                    header.join(", ")
                ),
                "set time_column to the column holding seconds, or declare rate = <Hz> so sample i is at start_s + i / rate",
            );
        }
        for (key, column) in [
            (
                "subject_column",
                match &config.subject {
                    CsvSubject::Column(c) => Some(c.clone()),
                    CsvSubject::Fixed(_) => None,
                },
            ),
            ("markers", config.markers.clone()),
        ] {
            if let Some(column) = column.filter(|c| !has(c)) {
                options.error_at(
                    key,
                    format!("{} has no column \"{column}\"", config.path),
                    format!("its columns are: {}", header.join(", ")),
                );
            }
        }
        let reserved: Vec<&str> = [
            config.time_column.as_deref(),
            match &config.subject {
                CsvSubject::Column(c) => Some(c.as_str()),
                CsvSubject::Fixed(_) => None,
            },
            config.markers.as_deref(),
        ]
        .into_iter()
        .flatten()
        .collect();
        let kind = modality.lsl_type();
        let labels: Vec<String> = match chosen {
            Some(list) => {
                for (index, label) in list.iter().enumerate() {
                    if list[..index].iter().any(|l| l.get_ref() == label.get_ref()) {
                        options.error_at_span(
                            label.span(),
                            format!(
                                "column \"{}\" is listed twice in `channels`",
                                label.get_ref()
                            ),
                            "list each channel once",
                        );
                    } else if !has(label.get_ref()) {
                        options.error_at_span(
                            label.span(),
                            format!("{} has no column \"{}\"", config.path, label.get_ref()),
                            format!("its columns are: {}", header.join(", ")),
                        );
                    }
                }
                list.into_iter().map(|l| l.into_inner()).collect()
            }
            None => header
                .iter()
                .filter(|h| !reserved.contains(&h.as_str()))
                .cloned()
                .collect(),
        };
        if labels.is_empty() && modality != Modality::Markers {
            options.error_at(
                "channels",
                format!(
                    "{} has no channel columns besides time, subject and markers",
                    config.path
                ),
                "add a column per channel",
            );
        }
        config.channels = labels
            .into_iter()
            .map(|label| Channel::new(label, unit.clone(), kind))
            .collect();
        if declared_rate.is_none() && config.time_column.is_some() {
            match measure_rate(&config) {
                Ok(rate) => config.rate = rate,
                Err(message) => {
                    options.error_at("path", message, "fix the file, or declare rate = <Hz>")
                }
            }
        }
        config
    }

    fn outputs(&self, source_name: &str) -> Vec<StreamSchema> {
        let subjects = match &self.subject {
            CsvSubject::Fixed(id) => vec![id.clone()],
            CsvSubject::Column(_) => Vec::new(),
        };
        let mut outputs = vec![StreamSchema {
            name: format!("{source_name}.{}", self.modality.name()),
            modality: self.modality,
            channels: self.channels.clone(),
            format: ChannelFormat::Double64,
            rate: self.rate,
            subjects: subjects.clone(),
        }];
        if self.markers.is_some() {
            outputs.push(StreamSchema {
                name: format!("{source_name}.markers"),
                modality: Modality::Markers,
                channels: vec![Channel::new("Marker", "", "Markers")],
                format: ChannelFormat::String,
                rate: Rate::Irregular,
                subjects,
            });
        }
        outputs
    }

    fn is_live(&self) -> bool {
        self.playback.is_live()
    }

    fn queue(&self) -> QueueConfig {
        self.queue
    }

    fn spawn(
        &self,
        source_name: &str,
        stream_ids: Vec<u32>,
        sender: SourceSender,
    ) -> std::io::Result<JoinHandle<()>> {
        let config = self.clone();
        let source = format!("csv source `{source_name}`");
        self.playback.spawn(source.clone(), sender, move |sender| {
            let (tracks, dropped) = config
                .load(&stream_ids)
                .map_err(|e| format!("{source}: {e}"))?;
            let why = format!("of {} whose time goes back", config.path);
            report_dropped(sender, &source, dropped, &why);
            Ok(tracks)
        })
    }
}

/// Largest rate a file source accepts, Hz.
const MAX_RATE_HZ: f64 = *RATE_RANGE_HZ.end();

impl CsvSourceConfig {
    fn reader(&self) -> Result<csv::Reader<std::fs::File>, String> {
        let file = std::fs::File::open(&self.path)
            .map_err(|e| format!("cannot read {}: {e}", self.path))?;
        Ok(csv::ReaderBuilder::new()
            .delimiter(self.delimiter)
            .flexible(false)
            .from_reader(file))
    }

    fn column(header: &csv::StringRecord, name: &str) -> Option<usize> {
        header.iter().position(|h| h == name)
    }

    /// Reads every row into one track per subject (and a marker track per subject).
    fn load(&self, stream_ids: &[u32]) -> Result<(Vec<Track>, u64), String> {
        let mut reader = self.reader()?;
        let header = reader
            .headers()
            .map_err(|e| format!("{}: {e}", self.path))?
            .clone();
        let channel_columns: Vec<usize> = self
            .channels
            .iter()
            .map(|c| {
                Self::column(&header, &c.label).ok_or_else(|| {
                    format!("{} no longer has the column \"{}\"", self.path, c.label)
                })
            })
            .collect::<Result<_, _>>()?;
        let time_column = self
            .time_column
            .as_deref()
            .and_then(|c| Self::column(&header, c));
        let subject_column = match &self.subject {
            CsvSubject::Column(c) => Self::column(&header, c),
            CsvSubject::Fixed(_) => None,
        };
        let marker_column = self
            .markers
            .as_deref()
            .and_then(|c| Self::column(&header, c));
        let width = channel_columns.len();
        let mut signals: BTreeMap<String, (Vec<Nanos>, Vec<f64>)> = BTreeMap::new();
        let mut markers: BTreeMap<String, (Vec<Nanos>, Vec<String>)> = BTreeMap::new();
        let mut record = csv::StringRecord::new();
        let mut rows_of: BTreeMap<String, u64> = BTreeMap::new();
        loop {
            let more = reader
                .read_record(&mut record)
                .map_err(|e| format!("{}: {e}", self.path))?;
            if !more {
                break;
            }
            let line = record.position().map_or(0, |p| p.line());
            let subject = match subject_column {
                Some(column) => record.get(column).unwrap_or("").to_string(),
                None => match &self.subject {
                    CsvSubject::Fixed(id) => id.clone(),
                    CsvSubject::Column(_) => String::new(),
                },
            };
            if subject.is_empty() {
                return Err(format!("{}:{line}: the subject cell is empty", self.path));
            }
            let time = match time_column {
                Some(column) => {
                    let text = record.get(column).unwrap_or("").trim();
                    let seconds: f64 = text.parse().map_err(|_| {
                        format!("{}:{line}: the time \"{text}\" is not a number", self.path)
                    })?;
                    let seconds = seconds * self.time_scale;
                    if !seconds.is_finite() || seconds.abs() > MAX_TIME_S {
                        return Err(format!(
                            "{}:{line}: the time {seconds} s is outside ±{MAX_TIME_S} s",
                            self.path
                        ));
                    }
                    secs_to_nanos(seconds)
                }
                None => {
                    // Without a time column each subject's rows are its samples, one per 1 / rate.
                    let index = rows_of.entry(subject.clone()).or_insert(0u64);
                    let hz = self.rate.hz().unwrap_or(1.0);
                    let seconds = self.start_s + *index as f64 / hz;
                    if seconds.abs() > MAX_TIME_S {
                        return Err(format!(
                            "{}:{line}: sample {index} at {hz} Hz from start_s = {} is at {seconds} s, outside ±{MAX_TIME_S} s",
                            self.path, self.start_s
                        ));
                    }
                    *index += 1;
                    secs_to_nanos(seconds)
                }
            };
            if let Some(column) = marker_column {
                let text = record.get(column).unwrap_or("").trim();
                if !text.is_empty() {
                    let entry = markers.entry(subject.clone()).or_default();
                    entry.0.push(time);
                    entry.1.push(text.to_string());
                }
            }
            if width > 0 {
                let entry = signals.entry(subject).or_default();
                entry.0.push(time);
                for (&column, channel) in channel_columns.iter().zip(&self.channels) {
                    let text = record.get(column).unwrap_or("").trim();
                    let value = if text.is_empty() {
                        f64::NAN
                    } else {
                        text.parse().map_err(|_| {
                            format!(
                                "{}:{line}: column `{}`: \"{text}\" is not a number",
                                self.path, channel.label
                            )
                        })?
                    };
                    entry.1.push(value);
                }
            }
        }
        let mut tracks = Vec::new();
        let mut dropped = 0;
        for (subject, (mut times, values)) in signals {
            let mut values = Values::Numeric(values);
            dropped += drop_backward_samples(&mut times, &mut values);
            tracks.push(Track {
                stream: stream_ids[0],
                subject,
                times,
                values,
            });
        }
        for (subject, (mut times, values)) in markers {
            let mut values = Values::Text(values);
            dropped += drop_backward_samples(&mut times, &mut values);
            tracks.push(Track {
                stream: stream_ids[1],
                subject,
                times,
                values,
            });
        }
        Ok((tracks, dropped))
    }
}

/// The column names of the file's first row.
fn read_header(config: &CsvSourceConfig) -> Result<Vec<String>, String> {
    let mut reader = config.reader()?;
    let header = reader
        .headers()
        .map_err(|e| format!("cannot read the header row of {}: {e}", config.path))?;
    if header.is_empty() || header.iter().all(str::is_empty) {
        return Err(format!("{} has no header row", config.path));
    }
    Ok(header.iter().map(str::to_string).collect())
}

/// The rate from the median interval of the first subject's first rows, snapped to a whole
/// number of Hz when within 0.1% of one (times written with few decimals).
fn measure_rate(config: &CsvSourceConfig) -> Result<Rate, String> {
    let mut reader = config.reader()?;
    let header = reader.headers().map_err(|e| e.to_string())?.clone();
    let time_column = config
        .time_column
        .as_deref()
        .and_then(|c| CsvSourceConfig::column(&header, c))
        .ok_or("no time column")?;
    let subject_column = match &config.subject {
        CsvSubject::Column(c) => CsvSourceConfig::column(&header, c),
        CsvSubject::Fixed(_) => None,
    };
    let mut first_subject: Option<String> = None;
    let mut times = Vec::new();
    for record in reader.records().take(RATE_PROBE_ROWS * 8) {
        let record = record.map_err(|e| format!("{}: {e}", config.path))?;
        if let Some(column) = subject_column {
            let subject = record.get(column).unwrap_or("");
            if first_subject.get_or_insert_with(|| subject.to_string()) != subject {
                continue;
            }
        }
        let text = record.get(time_column).unwrap_or("").trim();
        let line = record.position().map_or(0, |p| p.line());
        let time: f64 = text.parse().map_err(|_| {
            format!(
                "{}:{line}: the time \"{text}\" is not a number",
                config.path
            )
        })?;
        times.push(time * config.time_scale);
        if times.len() >= RATE_PROBE_ROWS {
            break;
        }
    }
    let mut intervals: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    intervals.retain(|d| d.is_finite() && *d > 0.0);
    if intervals.is_empty() {
        return Err(format!(
            "cannot measure a rate from the time column of {}: fewer than two increasing times",
            config.path
        ));
    }
    intervals.sort_by(f64::total_cmp);
    let median = intervals[intervals.len() / 2];
    let hz = 1.0 / median;
    if !(hz.is_finite() && hz <= MAX_RATE_HZ) {
        return Err(format!(
            "the time column of {} gives a rate of {hz} Hz",
            config.path
        ));
    }
    let whole = hz.round();
    Ok(Rate::Regular(
        if whole >= 1.0 && (hz - whole).abs() <= 1e-3 * whole {
            whole
        } else {
            hz
        },
    ))
}

#[cfg(test)]
mod tests {
    use crate::pipeline;
    use crate::sources::SourceConfig;
    use crate::stream::Rate;

    fn parse(dir: &std::path::Path, csv: &str, source: &str) -> Result<pipeline::Pipeline, String> {
        let path = dir.join("data.csv");
        std::fs::write(&path, csv).unwrap();
        let text = format!(
            "[sources.rec]\nkind = \"csv\"\npath = {:?}\n{source}\n[sinks.out]\nkind = \"jsonl\"\ninputs = [\"rec.eda\"]\n",
            path.display().to_string()
        );
        pipeline::parse("t.toml", &text).map_err(|e| e.to_string())
    }

    #[test]
    fn header_and_rate_are_read_at_validation() {
        let dir = tempfile::tempdir().unwrap();
        let pipeline = parse(
            dir.path(),
            "timestamp,subject,EDA,TEMP\n0.0,P01,1,30\n0.25,P01,2,30\n0.5,P01,3,30\n",
            "modality = \"eda\"\nunit = \"uS\"\nchannels = [\"EDA\"]\nsubject_column = \"subject\"\n",
        )
        .expect("valid");
        assert_eq!(pipeline.streams[0].labels(), ["EDA"]);
        assert_eq!(pipeline.streams[0].rate, Rate::Regular(4.0));
        let SourceConfig::Csv(config) = &pipeline.sources[0].config else {
            panic!("a csv source")
        };
        assert_eq!(config.time_column.as_deref(), Some("timestamp"));
    }

    #[test]
    fn without_a_time_column_each_subject_counts_its_own_samples() {
        let dir = tempfile::tempdir().unwrap();
        let pipeline = parse(
            dir.path(),
            "subject,EDA\nP01,1\nP02,5\nP01,2\nP02,6\n",
            "modality = \"eda\"\nrate = 4\nstart_s = 10\n",
        )
        .expect("valid");
        let SourceConfig::Csv(config) = &pipeline.sources[0].config else {
            panic!("a csv source")
        };
        let (tracks, dropped) = config.load(&[0, 1]).expect("loads");
        assert_eq!(dropped, 0);
        for track in &tracks {
            assert_eq!(
                track.times,
                [10_000_000_000, 10_250_000_000],
                "{}",
                track.subject
            );
        }
        let markers =
            parse(dir.path(), "t,EDA\n", "modality = \"markers\"\nrate = 4\n").unwrap_err();
        assert!(
            markers.contains("markers come from a text column"),
            "{markers}"
        );
    }

    #[test]
    fn problems_name_the_column() {
        let dir = tempfile::tempdir().unwrap();
        let error = parse(
            dir.path(),
            "t,EDA\n0,1\n",
            "modality = \"eda\"\nchannels = [\"GSR\"]\n",
        )
        .unwrap_err();
        assert!(error.contains("no time column \"timestamp\""), "{error}");
        assert!(error.contains("has no column \"GSR\""), "{error}");
        let missing = parse(dir.path(), "t,EDA\n", "modality = \"eda\"\npath2 = 1\n").unwrap_err();
        assert!(missing.contains("unknown option `path2`"), "{missing}");
        let rate = parse(dir.path(), "EDA\n1\n", "modality = \"eda\"\nrate = -4\n").unwrap_err();
        assert!(rate.contains("`rate` must be 0 (irregular) or"), "{rate}");
    }
}
