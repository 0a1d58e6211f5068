//! Deterministic multi-subject physiological simulator with a hidden emotion ground truth.
//!
//! Each subject has a hidden emotion distribution (drifting, pushed by stimulus clips announced on
//! the marker stream, a clip's target together with its co-occurring partner). Facial action units
//! follow it through a per-label action-unit table; EEG, ECG, PPG, EDA, respiration, temperature
//! and accelerometer through four physiological factors, each with a per-label loading
//! ([`EMOTION_PHYSIOLOGY`]). The two tables are built so that some labels are told apart only by the face,
//! some only by physiology and some only by both together. Relations are shared by all subjects,
//! with subject-specific baselines, gains and noise; the face tracker and the EDA electrodes drop
//! out in episodes ([`FACE_TRACKING_LOSS`], [`EDA_CONTACT_LOSS`]).
//!
//! Output is a pure function of the seed, the subject list, the stream list and the start time:
//! every random process owns a generator seeded from (seed, subject index, process identity) and is
//! generated strictly in time order, so the way [`Simulator::advance`] is stepped never matters, and
//! adding or removing a stream leaves the others unchanged.

mod cardiac;
mod dropout;
mod eda;
mod eeg;
mod emotion;
mod face;
mod misc;
mod noise;
mod physiology;
mod source;
mod subject;
#[cfg(test)]
mod tests;

use crate::stream::{
    sample_time, Batch, Channel, ChannelFormat, Modality, Nanos, Rate, StreamSchema, Values,
    NANOS_PER_SEC,
};

use cardiac::{EcgGen, PpgGen};
pub use dropout::{DropoutSpec, EDA_CONTACT_LOSS, FACE_TRACKING_LOSS};
use eda::EdaGen;
use eeg::{EegGen, EEG_LABELS};
use face::{FaceGen, AU_LABELS};
use misc::{AccelGen, RespGen, TempGen};
use noise::{rng_for, tag};
pub use physiology::Physio;
pub use source::{subject_ids, SimulatorConfig, MAX_DURATION_S};
use subject::SubjectWorld;

/// The ten emotion labels of the hidden state, in output channel order.
pub const EMOTION_LABELS: [&str; 10] = [
    "neutral",
    "amusement",
    "joy",
    "tenderness",
    "inspiration",
    "surprise",
    "sadness",
    "fear",
    "anger",
    "disgust",
];

/// The physiological factors of a subject fully feeling each of [`EMOTION_LABELS`] (before the
/// subject's gains); physiology follows their expectation under the hidden distribution.
pub const EMOTION_PHYSIOLOGY: [Physio; 10] = physiology::LOADINGS;

/// The co-occurring partner of each of [`EMOTION_LABELS`]: a clip aimed at a label also pushes its
/// partner, less.
pub const EMOTION_PARTNERS: [Option<usize>; 10] = emotion::PARTNER;

/// Internal generation is cut into chunks of this length so latent state can be dropped even when
/// one `advance` call covers hours.
const CHUNK_NS: i64 = 10 * NANOS_PER_SEC;

/// The streams the simulator can produce (one stream per subject each).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SimStream {
    /// EEG, 18 channels of the DSI-24 10-20 layout, 300 Hz.
    Eeg,
    /// Single-lead ECG, 700 Hz.
    Ecg,
    /// Wrist skin conductance (Empatica E4-like), 4 Hz.
    Eda,
    /// Chest skin conductance (RespiBAN-like), 700 Hz; same underlying process as `Eda`.
    EdaFast,
    /// Wrist photoplethysmogram (blood volume pulse), 100 Hz.
    Ppg,
    /// Respiration belt, 50 Hz.
    Resp,
    /// Skin temperature, 4 Hz.
    Temp,
    /// Wrist accelerometer, 3 axes, 32 Hz.
    Accel,
    /// OpenFace-style facial action units, 30 Hz.
    Face,
    /// The hidden ground-truth emotion distribution, 10 Hz.
    Emotion,
    /// Stimulus markers (irregular strings).
    Markers,
}

impl SimStream {
    /// Every stream, in a stable order.
    pub const ALL: [SimStream; 11] = [
        SimStream::Eeg,
        SimStream::Ecg,
        SimStream::Eda,
        SimStream::EdaFast,
        SimStream::Ppg,
        SimStream::Resp,
        SimStream::Temp,
        SimStream::Accel,
        SimStream::Face,
        SimStream::Emotion,
        SimStream::Markers,
    ];

    /// Lower-case name used in pipeline files and stream names.
    pub fn name(self) -> &'static str {
        match self {
            SimStream::Eeg => "eeg",
            SimStream::Ecg => "ecg",
            SimStream::Eda => "eda",
            SimStream::EdaFast => "eda_700",
            SimStream::Ppg => "ppg",
            SimStream::Resp => "resp",
            SimStream::Temp => "temp",
            SimStream::Accel => "accel",
            SimStream::Face => "face",
            SimStream::Emotion => "emotion",
            SimStream::Markers => "markers",
        }
    }

    /// Parses a name produced by [`SimStream::name`].
    pub fn from_name(name: &str) -> Option<SimStream> {
        SimStream::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Nominal sampling rate (markers are irregular).
    pub fn rate(self) -> Rate {
        match self {
            SimStream::Eeg => Rate::Regular(300.0),
            SimStream::Ecg => Rate::Regular(700.0),
            SimStream::Eda => Rate::Regular(4.0),
            SimStream::EdaFast => Rate::Regular(700.0),
            SimStream::Ppg => Rate::Regular(100.0),
            SimStream::Resp => Rate::Regular(50.0),
            SimStream::Temp => Rate::Regular(4.0),
            SimStream::Accel => Rate::Regular(32.0),
            SimStream::Face => Rate::Regular(30.0),
            SimStream::Emotion => Rate::Regular(10.0),
            SimStream::Markers => Rate::Irregular,
        }
    }

    /// What the stream measures.
    pub fn modality(self) -> Modality {
        match self {
            SimStream::Eeg => Modality::Eeg,
            SimStream::Ecg => Modality::Ecg,
            SimStream::Eda | SimStream::EdaFast => Modality::Eda,
            SimStream::Ppg => Modality::Ppg,
            SimStream::Resp => Modality::Resp,
            SimStream::Temp => Modality::Temp,
            SimStream::Accel => Modality::Accel,
            SimStream::Face => Modality::Face,
            SimStream::Emotion => Modality::Emotion,
            SimStream::Markers => Modality::Markers,
        }
    }

    /// Channel metadata, in sample order.
    pub fn channels(self) -> Vec<Channel> {
        match self {
            SimStream::Eeg => EEG_LABELS
                .iter()
                .map(|l| Channel::new(*l, "microvolts", "EEG"))
                .collect(),
            SimStream::Ecg => vec![Channel::new("ECG", "millivolts", "ECG")],
            SimStream::Eda | SimStream::EdaFast => vec![Channel::new("EDA", "uS", "GSR")],
            SimStream::Ppg => vec![Channel::new("PPG", "arbitrary", "PPG")],
            SimStream::Resp => vec![Channel::new("RESP", "percent", "RESP")],
            SimStream::Temp => vec![Channel::new("TEMP", "degC", "TEMP")],
            SimStream::Accel => ["ACC_X", "ACC_Y", "ACC_Z"]
                .iter()
                .map(|l| Channel::new(*l, "g", "ACC"))
                .collect(),
            SimStream::Face => {
                let mut channels: Vec<Channel> = AU_LABELS
                    .iter()
                    .map(|l| Channel::new(*l, "intensity", "AU"))
                    .collect();
                channels.push(Channel::new("confidence", "probability", "Face"));
                channels.push(Channel::new("success", "boolean", "Face"));
                channels
            }
            SimStream::Emotion => EMOTION_LABELS
                .iter()
                .map(|l| Channel::new(*l, "probability", "Emotion"))
                .collect(),
            SimStream::Markers => vec![Channel::new("Marker", "", "Markers")],
        }
    }

    /// Schema of this stream; `name` becomes `format!("{source_name}.{}", self.name())`.
    pub fn schema(self, source_name: &str, subjects: &[String]) -> StreamSchema {
        StreamSchema {
            name: format!("{source_name}.{}", self.name()),
            modality: self.modality(),
            channels: self.channels(),
            format: match self {
                SimStream::Markers => ChannelFormat::String,
                _ => ChannelFormat::Float32,
            },
            rate: self.rate(),
            subjects: subjects.to_vec(),
        }
    }

    /// Fixed identity used to seed the stream's generator (independent of its list position).
    fn seed_tag(self) -> u64 {
        let id = match self {
            SimStream::Eeg => 0,
            SimStream::Ecg => 1,
            SimStream::Eda => 2,
            SimStream::EdaFast => 3,
            SimStream::Ppg => 4,
            SimStream::Resp => 5,
            SimStream::Temp => 6,
            SimStream::Accel => 7,
            SimStream::Face => 8,
            SimStream::Emotion => 9,
            SimStream::Markers => 10,
        };
        tag::STREAM_BASE + id
    }
}

/// What to simulate: everything the output depends on.
#[derive(Clone, Debug, PartialEq)]
pub struct SimulatorSettings {
    /// Session seed; the same seed reproduces the same data.
    pub seed: u64,
    /// Subject ids; subjects differ by their index in this list.
    pub subjects: Vec<String>,
    /// Streams to produce; `Batch.stream` is the index into this list.
    pub streams: Vec<SimStream>,
    /// Event time of the first sample of every regular stream.
    pub start: Nanos,
}

/// The per-stream generator behind one (subject, stream).
#[derive(Debug)]
enum Generator {
    Eeg(Box<EegGen>),
    Ecg(EcgGen),
    Eda(EdaGen),
    Ppg(PpgGen),
    Resp(RespGen),
    Temp(TempGen),
    Accel(AccelGen),
    Face(FaceGen),
    Emotion,
    Markers,
}

/// One requested stream of one subject: its generator and the index of its next sample.
#[derive(Debug)]
struct StreamState {
    stream: SimStream,
    next_index: u64,
    generator: Generator,
}

impl StreamState {
    /// Builds the generator of `stream` for subject `index`.
    fn new(stream: SimStream, seed: u64, index: usize, world: &SubjectWorld) -> StreamState {
        let rng = rng_for(seed, index, stream.seed_tag());
        let hz = stream.rate().nominal_srate();
        let p = &world.profile;
        let generator = match stream {
            SimStream::Eeg => {
                Generator::Eeg(Box::new(EegGen::new(rng, hz, p.alpha_freq, p.eeg_gain)))
            }
            SimStream::Ecg => Generator::Ecg(EcgGen::new(rng, hz)),
            SimStream::Eda => Generator::Eda(EdaGen::new(rng, true)),
            SimStream::EdaFast => Generator::Eda(EdaGen::new(rng, false)),
            SimStream::Ppg => Generator::Ppg(PpgGen::new(rng, hz)),
            SimStream::Resp => Generator::Resp(RespGen::new(rng, hz)),
            SimStream::Temp => Generator::Temp(TempGen::new(rng, hz)),
            SimStream::Accel => Generator::Accel(AccelGen::new(rng, hz)),
            SimStream::Face => Generator::Face(FaceGen::new(rng, hz, p.au_noise)),
            SimStream::Emotion => Generator::Emotion,
            SimStream::Markers => Generator::Markers,
        };
        StreamState {
            stream,
            next_index: 0,
            generator,
        }
    }

    /// Appends every sample with `from <= timestamp < until` to `times` and `values`.
    fn generate(
        &mut self,
        world: &mut SubjectWorld,
        start: Nanos,
        from: Nanos,
        until: Nanos,
        times: &mut Vec<Nanos>,
        values: &mut Values,
    ) {
        if let Generator::Markers = self.generator {
            if let Values::Text(text) = values {
                let mut events = Vec::new();
                world.markers(from, until, &mut events);
                for (t, label) in events {
                    times.push(t);
                    text.push(label);
                }
            }
            return;
        }
        let (Some(hz), Values::Numeric(out)) = (self.stream.rate().hz(), values) else {
            return;
        };
        let generated_from = out.len();
        loop {
            let offset = (self.next_index as f64) * (NANOS_PER_SEC as f64) / hz;
            let offset = offset.round();
            if !offset.is_finite() || start.checked_add(offset as Nanos).is_none() {
                break;
            }
            let t = sample_time(start, self.next_index, hz);
            if t >= until {
                break;
            }
            let secs = world.rel_secs(t);
            match &mut self.generator {
                Generator::Eeg(g) => g.sample(world, t, secs, out),
                Generator::Ecg(g) => g.sample(world, secs, out),
                Generator::Eda(g) => g.sample(world, secs, out),
                Generator::Ppg(g) => g.sample(world, secs, out),
                Generator::Resp(g) => g.sample(world, secs, out),
                Generator::Temp(g) => g.sample(world, secs, out),
                Generator::Accel(g) => g.sample(world, secs, out),
                Generator::Face(g) => g.sample(world, t, secs, out),
                Generator::Emotion => out.extend_from_slice(&world.emotion(t).probs),
                Generator::Markers => {}
            }
            times.push(t);
            self.next_index += 1;
        }
        // The streams are float32, as an amplifier or LSL outlet delivers them: values carry
        // exactly what a recording (XDF, CSV, LSL) of the stream holds, so a replay reproduces
        // every feature of the live run.
        for value in &mut out[generated_from..] {
            *value = f64::from(*value as f32);
        }
    }
}

/// One subject: id, shared latent world and the requested streams.
#[derive(Debug)]
struct SubjectSim {
    id: String,
    world: SubjectWorld,
    streams: Vec<StreamState>,
}

/// The simulator: produces every requested stream of every subject, on demand up to a given time.
#[derive(Debug)]
pub struct Simulator {
    start: Nanos,
    produced_until: Nanos,
    subjects: Vec<SubjectSim>,
}

/// A stable number derived from a subject id (FNV-1a), seeding that subject's processes.
fn subject_key(id: &str) -> usize {
    id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    }) as usize
}

impl Simulator {
    /// Builds a simulator; nothing is generated until [`Simulator::advance`] is called.
    pub fn new(settings: SimulatorSettings) -> Simulator {
        let subjects = settings
            .subjects
            .iter()
            .map(|id| {
                // A subject is identified by its id, not its position: the same id is the same
                // simulated person whatever other subjects are simulated beside it.
                let index = subject_key(id);
                let world = SubjectWorld::new(settings.seed, index, settings.start);
                let streams = settings
                    .streams
                    .iter()
                    .map(|&s| StreamState::new(s, settings.seed, index, &world))
                    .collect();
                SubjectSim {
                    id: id.clone(),
                    world,
                    streams,
                }
            })
            .collect();
        Simulator {
            start: settings.start,
            produced_until: settings.start,
            subjects,
        }
    }

    /// Appends every sample with timestamp < `until` not yet produced, for every subject and every
    /// requested stream, as one Batch per (subject, stream) that has new samples. `Batch.stream` is
    /// the index of the stream in `settings.streams` (u32). Order of pushed batches: subject order,
    /// then stream order.
    pub fn advance(&mut self, until: Nanos, out: &mut Vec<Batch>) {
        if until <= self.produced_until {
            return;
        }
        if self.subjects.iter().all(|s| s.streams.is_empty()) {
            self.produced_until = until;
            return;
        }
        let mut pending: Vec<Vec<(Vec<Nanos>, Values)>> = self
            .subjects
            .iter()
            .map(|s| {
                s.streams
                    .iter()
                    .map(|st| {
                        let values = match st.stream {
                            SimStream::Markers => Values::Text(Vec::new()),
                            _ => Values::Numeric(Vec::new()),
                        };
                        (Vec::new(), values)
                    })
                    .collect()
            })
            .collect();
        let mut cursor = self.produced_until;
        while cursor < until {
            let chunk_end = if until.saturating_sub(cursor) > CHUNK_NS {
                cursor + CHUNK_NS
            } else {
                until
            };
            for (subject, buffers) in self.subjects.iter_mut().zip(pending.iter_mut()) {
                for (state, (times, values)) in subject.streams.iter_mut().zip(buffers.iter_mut()) {
                    state.generate(
                        &mut subject.world,
                        self.start,
                        cursor,
                        chunk_end,
                        times,
                        values,
                    );
                }
                subject.world.prune(chunk_end);
            }
            cursor = chunk_end;
        }
        for (subject, buffers) in self.subjects.iter().zip(pending) {
            for (index, (timestamps, values)) in buffers.into_iter().enumerate() {
                if !timestamps.is_empty() {
                    out.push(Batch {
                        stream: index as u32,
                        subject: subject.id.clone(),
                        timestamps,
                        values,
                    });
                }
            }
        }
        self.produced_until = until;
    }

    /// Event time up to which everything has been produced (the last `until`, or `start`).
    pub fn produced_until(&self) -> Nanos {
        self.produced_until
    }
}
