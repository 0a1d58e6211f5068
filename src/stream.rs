//! Streams: the schema every stream carries and the batches of samples that flow through the dataflow.
//!
//! Event time is the sample timestamp on the LSL clock, stored as signed integer **nanoseconds**
//! ([`Nanos`]). Sinks and LSL outlets convert back to seconds (`f64`) at the edge.

use serde::{Deserialize, Serialize};

/// Event time: nanoseconds on the LSL clock (seconds since an arbitrary, machine-local epoch).
pub type Nanos = i64;

/// Nanoseconds in one second.
pub const NANOS_PER_SEC: i64 = 1_000_000_000;

/// Converts seconds on the LSL clock to event-time nanoseconds, rounding to the nearest nanosecond.
pub fn secs_to_nanos(seconds: f64) -> Nanos {
    (seconds * NANOS_PER_SEC as f64).round() as Nanos
}

/// Converts event-time nanoseconds to seconds on the LSL clock.
pub fn nanos_to_secs(nanos: Nanos) -> f64 {
    nanos as f64 / NANOS_PER_SEC as f64
}

/// Timestamp of sample `index` of a regular stream that starts at `start` with `rate` Hz.
///
/// Computed from the index (never accumulated) so that long streams do not drift.
pub fn sample_time(start: Nanos, index: u64, rate: f64) -> Nanos {
    start + ((index as f64) * (NANOS_PER_SEC as f64) / rate).round() as Nanos
}

/// What a stream measures: the LSL/XDF content type used for discovery and type checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
pub enum Modality {
    /// Electroencephalography.
    Eeg,
    /// Electrocardiography.
    Ecg,
    /// Electrodermal activity (galvanic skin response).
    Eda,
    /// Photoplethysmography (blood volume pulse).
    Ppg,
    /// Respiration (belt or thermistor).
    Resp,
    /// Skin temperature.
    Temp,
    /// Accelerometer.
    Accel,
    /// Electromyography.
    Emg,
    /// Facial behaviour features from video (action units, embeddings).
    Face,
    /// String event markers.
    Markers,
    /// An emotion probability distribution (ground truth or model output).
    Emotion,
    /// Derived features computed by an operator.
    Features,
}

impl Modality {
    /// Every modality, in a stable order (used for messages listing what is valid).
    pub const ALL: [Modality; 12] = [
        Modality::Eeg,
        Modality::Ecg,
        Modality::Eda,
        Modality::Ppg,
        Modality::Resp,
        Modality::Temp,
        Modality::Accel,
        Modality::Emg,
        Modality::Face,
        Modality::Markers,
        Modality::Emotion,
        Modality::Features,
    ];

    /// The LSL/XDF stream `type` string for this modality (see the shared ecosystem notes).
    pub fn lsl_type(self) -> &'static str {
        match self {
            Modality::Eeg => "EEG",
            Modality::Ecg => "ECG",
            Modality::Eda => "GSR",
            Modality::Ppg => "PPG",
            Modality::Resp => "RESP",
            Modality::Temp => "TEMP",
            Modality::Accel => "ACC",
            Modality::Emg => "EMG",
            Modality::Face => "FaceAU",
            Modality::Markers => "Markers",
            Modality::Emotion => "EmotionDistribution",
            Modality::Features => "Features",
        }
    }

    /// MNE's channel type for this modality's signal channels, where MNE has one (`eeg`, `ecg`,
    /// `gsr`, `resp`, `temperature`, `emg`, `stim` for markers). PPG, accelerometers, face
    /// features, emotion distributions and derived features have none: MNE reads them as `misc`.
    pub fn mne_type(self) -> Option<&'static str> {
        match self {
            Modality::Eeg => Some("eeg"),
            Modality::Ecg => Some("ecg"),
            Modality::Eda => Some("gsr"),
            Modality::Resp => Some("resp"),
            Modality::Temp => Some("temperature"),
            Modality::Emg => Some("emg"),
            Modality::Markers => Some("stim"),
            Modality::Ppg
            | Modality::Accel
            | Modality::Face
            | Modality::Emotion
            | Modality::Features => None,
        }
    }

    /// Lower-case name used in pipeline files and outputs.
    pub fn name(self) -> &'static str {
        match self {
            Modality::Eeg => "eeg",
            Modality::Ecg => "ecg",
            Modality::Eda => "eda",
            Modality::Ppg => "ppg",
            Modality::Resp => "resp",
            Modality::Temp => "temp",
            Modality::Accel => "accel",
            Modality::Emg => "emg",
            Modality::Face => "face",
            Modality::Markers => "markers",
            Modality::Emotion => "emotion",
            Modality::Features => "features",
        }
    }

    /// Parses the lower-case name used in pipeline files.
    pub fn from_name(name: &str) -> Option<Modality> {
        Modality::ALL.into_iter().find(|m| m.name() == name)
    }

    /// The modality an LSL/XDF content type names (case-insensitive, XDF content types and
    /// common synonyms), or `None` for types heloflow does not know.
    pub fn from_content_type(kind: &str) -> Option<Modality> {
        Some(match kind.to_ascii_lowercase().as_str() {
            "eeg" => Modality::Eeg,
            "ecg" | "ekg" => Modality::Ecg,
            "gsr" | "eda" => Modality::Eda,
            "ppg" | "bvp" => Modality::Ppg,
            "resp" | "respiration" => Modality::Resp,
            "temp" | "temperature" => Modality::Temp,
            "acc" | "accel" | "accelerometer" => Modality::Accel,
            "emg" => Modality::Emg,
            "faceau" | "face" | "openface" | "facialfeatures" | "videofeatures"
            | "faceembedding" => Modality::Face,
            "markers" => Modality::Markers,
            "emotiondistribution" | "emotion" => Modality::Emotion,
            "features" => Modality::Features,
            _ => return None,
        })
    }
}

/// The channel type of a value an operator derived (a feature, not a signal): MNE reads it as
/// `misc`, whatever signal it came from.
pub const FEATURE_KIND: &str = "Feature";

/// The channel type of a signal-quality value (`coverage`, `nonfinite`, `flat`, `clipped`).
pub const QUALITY_KIND: &str = "Quality";

/// How each value is stored, mirroring LSL channel formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ChannelFormat {
    /// 32-bit float.
    Float32,
    /// 64-bit float.
    Double64,
    /// 8-bit integer.
    Int8,
    /// 16-bit integer.
    Int16,
    /// 32-bit integer.
    Int32,
    /// 64-bit integer (carried as `f64` inside the dataflow: exact up to 2^53).
    Int64,
    /// UTF-8 string (markers).
    String,
}

impl ChannelFormat {
    /// The LSL/XDF name of the format.
    pub fn lsl_name(self) -> &'static str {
        match self {
            ChannelFormat::Float32 => "float32",
            ChannelFormat::Double64 => "double64",
            ChannelFormat::Int8 => "int8",
            ChannelFormat::Int16 => "int16",
            ChannelFormat::Int32 => "int32",
            ChannelFormat::Int64 => "int64",
            ChannelFormat::String => "string",
        }
    }

    /// Every format, in LSL's order of names.
    pub const ALL: [ChannelFormat; 7] = [
        ChannelFormat::Int8,
        ChannelFormat::Int16,
        ChannelFormat::Int32,
        ChannelFormat::Int64,
        ChannelFormat::Float32,
        ChannelFormat::Double64,
        ChannelFormat::String,
    ];

    /// Parses an LSL/XDF `channel_format` name.
    pub fn from_lsl_name(name: &str) -> Option<ChannelFormat> {
        ChannelFormat::ALL
            .into_iter()
            .find(|f| f.lsl_name() == name)
    }

    /// Bytes per value as LSL and XDF store it, or `None` for strings (variable length).
    pub fn size(self) -> Option<usize> {
        match self {
            ChannelFormat::Int8 => Some(1),
            ChannelFormat::Int16 => Some(2),
            ChannelFormat::Int32 | ChannelFormat::Float32 => Some(4),
            ChannelFormat::Int64 | ChannelFormat::Double64 => Some(8),
            ChannelFormat::String => None,
        }
    }

    /// Whether values are numbers (signal processing applies) rather than strings.
    pub fn is_numeric(self) -> bool {
        !matches!(self, ChannelFormat::String)
    }
}

/// Nominal sampling rate: regular at a fixed rate, or irregular (events, markers, dropped frames).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Rate {
    /// Regular sampling at this many samples per second.
    Regular(f64),
    /// No nominal rate (LSL `nominal_srate = 0`).
    Irregular,
}

impl Rate {
    /// The rate in Hz, or `None` for irregular streams.
    pub fn hz(self) -> Option<f64> {
        match self {
            Rate::Regular(hz) => Some(hz),
            Rate::Irregular => None,
        }
    }

    /// LSL's `nominal_srate`: 0 for irregular streams.
    pub fn nominal_srate(self) -> f64 {
        self.hz().unwrap_or(0.0)
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rate::Regular(hz) => write!(f, "{hz} Hz"),
            Rate::Irregular => write!(f, "irregular"),
        }
    }
}

/// One channel's metadata, as in the XDF `desc/channels/channel` convention.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Channel {
    /// Channel label (`Fp1`, `ECG`, `AU12_r`, `happiness`...).
    pub label: String,
    /// Unit string (`microvolts`, `uS`, `degC`, `probability`...).
    pub unit: String,
    /// Channel type (`EEG`, `ECG`, `GSR`...).
    pub kind: String,
}

impl Channel {
    /// Builds a channel from its label, unit and type.
    pub fn new(label: impl Into<String>, unit: impl Into<String>, kind: impl Into<String>) -> Self {
        Channel {
            label: label.into(),
            unit: unit.into(),
            kind: kind.into(),
        }
    }
}

/// The schema every stream carries: what it measures, its channels, its format and its rate.
///
/// The subjects a stream carries are listed too: a source may produce one stream per subject, all
/// sharing one schema, and every [`Batch`] names its subject.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StreamSchema {
    /// Stream name as it appears in outputs (`sim.ecg`, `hr_features`).
    pub name: String,
    /// What the stream measures.
    pub modality: Modality,
    /// Channel metadata, in sample order.
    pub channels: Vec<Channel>,
    /// Value format.
    pub format: ChannelFormat,
    /// Nominal rate.
    pub rate: Rate,
    /// Subject ids this stream carries data for (empty when unknown until run time, as for LSL).
    pub subjects: Vec<String>,
}

impl StreamSchema {
    /// Number of channels (values per sample).
    pub fn channel_count(&self) -> usize {
        self.channels.len()
    }

    /// Channel labels in order.
    pub fn labels(&self) -> Vec<String> {
        self.channels.iter().map(|c| c.label.clone()).collect()
    }
}

/// The values of a batch, row-major (`sample * channel_count + channel`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Values {
    /// Numeric samples (all numeric formats are carried as `f64` inside the dataflow).
    Numeric(Vec<f64>),
    /// String samples (markers).
    Text(Vec<String>),
}

impl Values {
    /// Total number of values.
    pub fn len(&self) -> usize {
        match self {
            Values::Numeric(v) => v.len(),
            Values::Text(v) => v.len(),
        }
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A stable hash of a subject id (FNV-1a), so every worker and every process routes a subject to
/// the same worker: timely's exchange sends a batch to worker `subject_route(subject) % workers`.
pub fn subject_route(subject: &str) -> u64 {
    subject
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        })
}

/// The subjects one worker owns out of all workers of a run: those the dataflow routes to it, so
/// a source producing only them (one thread per worker) hands every batch to its own worker.
///
/// ```
/// use heloflow::stream::SubjectShare;
///
/// let shares: Vec<SubjectShare> = (0..3).map(|index| SubjectShare { index, count: 3 }).collect();
/// for subject in ["S01", "S02", "P17"] {
///     assert_eq!(shares.iter().filter(|share| share.owns(subject)).count(), 1);
/// }
/// assert!(SubjectShare::ALL.owns("S01"));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubjectShare {
    /// The owning worker's index, `0..count`.
    pub index: usize,
    /// How many workers the subjects are spread over.
    pub count: usize,
}

impl SubjectShare {
    /// Every subject: a source that is not split.
    pub const ALL: SubjectShare = SubjectShare { index: 0, count: 1 };

    /// Whether `subject` belongs to this share.
    pub fn owns(&self, subject: &str) -> bool {
        self.count <= 1 || subject_route(subject) % self.count as u64 == self.index as u64
    }
}

/// A run of consecutive samples of one stream of one subject: the unit of data in the dataflow.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    /// Index of the stream in the pipeline's stream table (its schema is looked up there).
    pub stream: u32,
    /// Subject the samples belong to.
    pub subject: String,
    /// Event time of each sample, nanoseconds, non-decreasing.
    pub timestamps: Vec<Nanos>,
    /// Sample values, row-major, `timestamps.len() * channel_count` of them.
    pub values: Values,
}

impl Batch {
    /// Number of samples in the batch.
    pub fn len(&self) -> usize {
        self.timestamps.len()
    }

    /// Whether the batch holds no samples.
    pub fn is_empty(&self) -> bool {
        self.timestamps.is_empty()
    }

    /// Number of channels per sample.
    pub fn channel_count(&self) -> usize {
        if self.timestamps.is_empty() {
            0
        } else {
            self.values.len() / self.timestamps.len()
        }
    }

    /// A batch of the same subject and timestamps carrying `values` on stream `stream`: the output
    /// of a sample-by-sample operator.
    pub fn with_values(&self, stream: u32, values: Values) -> Batch {
        Batch {
            stream,
            subject: self.subject.clone(),
            timestamps: self.timestamps.clone(),
            values,
        }
    }

    /// The numeric values of sample `index`, or `None` for string batches.
    pub fn numeric_row(&self, index: usize) -> Option<&[f64]> {
        let width = self.channel_count();
        match &self.values {
            Values::Numeric(v) => Some(&v[index * width..(index + 1) * width]),
            Values::Text(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_times_do_not_drift() {
        let t = sample_time(0, 300 * 3600, 300.0);
        assert_eq!(t, 3600 * NANOS_PER_SEC);
        assert_eq!(sample_time(5, 1, 3.0), 5 + 333_333_333);
    }

    #[test]
    fn seconds_round_trip() {
        assert_eq!(secs_to_nanos(nanos_to_secs(1_234_567_891)), 1_234_567_891);
    }

    #[test]
    fn content_types_map_to_modalities() {
        assert_eq!(Modality::from_content_type("EEG"), Some(Modality::Eeg));
        assert_eq!(Modality::from_content_type("GSR"), Some(Modality::Eda));
        assert_eq!(Modality::from_content_type("EDA"), Some(Modality::Eda));
        assert_eq!(Modality::from_content_type("FaceAU"), Some(Modality::Face));
        assert_eq!(
            Modality::from_content_type("OpenFace"),
            Some(Modality::Face)
        );
        assert_eq!(
            Modality::from_content_type("Markers"),
            Some(Modality::Markers)
        );
        assert_eq!(Modality::from_content_type("Gaze"), None);
        for modality in Modality::ALL {
            if let Some(mne) = modality
                .mne_type()
                .filter(|_| modality != Modality::Markers)
            {
                assert_eq!(Modality::from_content_type(mne), Some(modality), "{mne}");
            }
        }
        for modality in Modality::ALL {
            assert_eq!(
                Modality::from_content_type(modality.lsl_type()),
                Some(modality)
            );
        }
    }

    #[test]
    fn formats_round_trip_by_name() {
        for format in ChannelFormat::ALL {
            assert_eq!(
                ChannelFormat::from_lsl_name(format.lsl_name()),
                Some(format)
            );
        }
        assert_eq!(ChannelFormat::from_lsl_name("float"), None);
    }

    #[test]
    fn modality_names_round_trip() {
        for m in Modality::ALL {
            assert_eq!(Modality::from_name(m.name()), Some(m));
        }
    }
}
