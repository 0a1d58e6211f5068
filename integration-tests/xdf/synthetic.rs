//! A synthetic XDF recording built with `heloflow::xdf::format`, with every value format, several
//! rates, omitted and explicit timestamps, clock offsets with drift and jitter (and a clock reset
//! in one stream), a break, a stream that drops frames (`can_drop_samples`), an empty stream,
//! boundary chunks every 10 s and footers. It also records where each chunk lies, so tests know
//! which samples a cut or a corruption may cost.

#![allow(dead_code)]

use heloflow::stream::ChannelFormat;
use heloflow::xdf::format::{
    boundary_chunk, clock_offset_content, encode_chunk, write_varlen, xml_escape, Footer, Tag,
    MAGIC,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// One stream of the synthetic recording.
#[derive(Clone, Debug)]
pub struct StreamSpec {
    pub id: u32,
    pub name: &'static str,
    pub kind: &'static str,
    pub format: ChannelFormat,
    pub channels: usize,
    /// Nominal rate; 0 for irregular streams.
    pub srate: f64,
    /// Whether the stream writes clock offsets.
    pub offsets: bool,
    /// Whether the stream's computer restarts halfway through: after a pause of
    /// [`RESET_PAUSE_S`] without samples or clock offsets, its timestamps and the collection times
    /// of its clock offsets are 1000 s lower (as in the example file clock_resets.xdf).
    pub reset: bool,
    /// Whether the header says `can_drop_samples` and every 7th frame is dropped.
    pub drops_frames: bool,
    /// Whether the stream has no samples at all.
    pub empty: bool,
    /// A break of this many seconds halfway through.
    pub break_s: f64,
}

/// Seconds a reset stream pauses before its clock jumps.
pub const RESET_PAUSE_S: f64 = 15.0;

/// What the file holds, chunk by chunk.
#[derive(Clone, Debug)]
pub struct ChunkInfo {
    pub offset: usize,
    pub end: usize,
    pub tag: Tag,
    pub stream_id: Option<u32>,
    /// Samples in it (Samples chunks).
    pub samples: usize,
}

/// A built file and its layout.
pub struct Synthetic {
    pub bytes: Vec<u8>,
    pub chunks: Vec<ChunkInfo>,
    pub streams: Vec<StreamSpec>,
}

/// The default mix of streams: every value format.
pub fn default_streams(channel_scale: usize) -> Vec<StreamSpec> {
    let spec = |id, name, kind, format, channels, srate| StreamSpec {
        id,
        name,
        kind,
        format,
        channels,
        srate,
        offsets: true,
        reset: false,
        drops_frames: false,
        empty: false,
        break_s: 0.0,
    };
    vec![
        StreamSpec {
            break_s: 3.0,
            ..spec(
                1,
                "amp",
                "EEG",
                ChannelFormat::Float32,
                8 * channel_scale,
                250.0,
            )
        },
        StreamSpec {
            reset: true,
            ..spec(2, "belt", "RESP", ChannelFormat::Int16, 3, 100.0)
        },
        spec(3, "counter", "Misc", ChannelFormat::Int64, 2, 10.0),
        spec(4, "markers", "Markers", ChannelFormat::String, 1, 0.0),
        StreamSpec {
            drops_frames: true,
            ..spec(5, "camera", "Video", ChannelFormat::Double64, 1, 60.0)
        },
        spec(6, "ppg", "PPG", ChannelFormat::Int8, 4, 50.0),
        StreamSpec {
            offsets: false,
            ..spec(7, "slow", "Misc", ChannelFormat::Int32, 1, 1.0)
        },
        StreamSpec {
            empty: true,
            ..spec(8, "idle", "EDA", ChannelFormat::Float32, 2, 4.0)
        },
        spec(9, "labels", "Markers", ChannelFormat::String, 2, 5.0),
    ]
}

fn header_xml(spec: &StreamSpec) -> String {
    let mut channels = String::new();
    for c in 0..spec.channels {
        channels.push_str(&format!(
            "<channel><label>{}{c}</label><unit>uV</unit><type>{}</type></channel>",
            spec.name, spec.kind
        ));
    }
    let sync = if spec.drops_frames {
        "<synchronization><can_drop_samples>true</can_drop_samples></synchronization>"
    } else {
        ""
    };
    format!(
        "<?xml version=\"1.0\"?>\n<info>\n\t<name>{}</name>\n\t<type>{}</type>\n\t<channel_count>{}</channel_count>\n\t<nominal_srate>{}</nominal_srate>\n\t<channel_format>{}</channel_format>\n\t<source_id>synthetic-{}</source_id>\n\t<created_at>50000.5</created_at>\n\t<uid>uid-{}</uid>\n\t<session_id>default</session_id>\n\t<hostname>lab</hostname>\n\t<desc><channels>{channels}</channels>{sync}<acquisition><subject>{}</subject></acquisition></desc>\n</info>\n",
        xml_escape(spec.name),
        spec.kind,
        spec.channels,
        spec.srate,
        spec.format.lsl_name(),
        spec.id,
        spec.id,
        xml_escape("P<01>")
    )
}

/// Per-stream generator state.
struct StreamState {
    spec: StreamSpec,
    next_index: u64,
    last_written: Option<f64>,
    count: u64,
    first: Option<f64>,
    last: f64,
    offsets: Vec<(f64, f64)>,
    next_marker: f64,
}

/// The stream's clock offset at recorder time `t` (recorder = stream + offset).
fn offset_at(spec: &StreamSpec, t: f64, start: f64) -> f64 {
    -0.25 + 0.01 * f64::from(spec.id) + 3e-6 * (t - start)
}

/// How far a reset stream's clocks are set back at recorder time `t`.
fn reset_shift(spec: &StreamSpec, t: f64, start: f64, duration: f64) -> f64 {
    if spec.reset && t - start > duration / 2.0 {
        1000.0
    } else {
        0.0
    }
}

fn push_value(content: &mut Vec<u8>, format: ChannelFormat, rng: &mut ChaCha8Rng, index: u64) {
    match format {
        ChannelFormat::Int8 => content.push(rng.random::<u8>()),
        ChannelFormat::Int16 => content.extend_from_slice(&rng.random::<i16>().to_le_bytes()),
        ChannelFormat::Int32 => content.extend_from_slice(&(index as i32).to_le_bytes()),
        ChannelFormat::Int64 => content.extend_from_slice(&(i64::MAX - index as i64).to_le_bytes()),
        ChannelFormat::Float32 => {
            content.extend_from_slice(&(rng.random::<f32>() * 200.0 - 100.0).to_le_bytes())
        }
        ChannelFormat::Double64 => {
            content.extend_from_slice(&(rng.random::<f64>() * 1e6).to_le_bytes())
        }
        ChannelFormat::String => {
            let choices: [&[u8]; 5] = [
                b"start",
                b"stop",
                "r\u{e9}ponse \u{2713}".as_bytes(),
                b"",
                b"bad \xff\xfe utf8",
            ];
            let text = choices[rng.random_range(0..choices.len())];
            write_varlen(content, text.len() as u64);
            content.extend_from_slice(text);
        }
    }
}

/// Builds a recording of `duration` seconds of the given streams.
pub fn build(streams: &[StreamSpec], duration: f64, seed: u64) -> Synthetic {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut bytes = MAGIC.to_vec();
    let mut chunks = Vec::new();
    let mut push = |bytes: &mut Vec<u8>, chunk: Vec<u8>, tag, stream_id, samples| {
        let offset = bytes.len();
        bytes.extend_from_slice(&chunk);
        chunks.push(ChunkInfo {
            offset,
            end: bytes.len(),
            tag,
            stream_id,
            samples,
        });
    };
    push(
        &mut bytes,
        encode_chunk(
            Tag::FileHeader,
            None,
            b"<?xml version=\"1.0\"?><info><version>1.0</version><datetime>2026-12-01T10:00:00+0000</datetime><recorder>synthetic</recorder></info>",
        ),
        Tag::FileHeader,
        None,
        0,
    );
    for spec in streams {
        push(
            &mut bytes,
            encode_chunk(
                Tag::StreamHeader,
                Some(spec.id),
                header_xml(spec).as_bytes(),
            ),
            Tag::StreamHeader,
            Some(spec.id),
            0,
        );
    }
    let start = 50_000.0;
    let mut states: Vec<StreamState> = streams
        .iter()
        .map(|spec| StreamState {
            spec: spec.clone(),
            next_index: 0,
            last_written: None,
            count: 0,
            first: None,
            last: 0.0,
            offsets: Vec::new(),
            next_marker: start + 0.3,
        })
        .collect();
    let step = 0.5;
    let mut t = start;
    let mut next_offset = start + 2.5;
    let mut next_boundary = start + 10.0;
    while t < start + duration {
        let window_end = t + step;
        for state in &mut states {
            let spec = state.spec.clone();
            if spec.empty {
                continue;
            }
            // Sample times of this window on the recorder's clock.
            let mut times = Vec::new();
            if spec.srate > 0.0 {
                loop {
                    let k = state.next_index;
                    let mut nominal = start + k as f64 / spec.srate;
                    if nominal - start > duration / 2.0 {
                        nominal += if spec.reset {
                            RESET_PAUSE_S
                        } else {
                            spec.break_s
                        };
                    }
                    if nominal >= window_end {
                        break;
                    }
                    state.next_index += 1;
                    if spec.drops_frames && k % 7 == 3 {
                        continue;
                    }
                    times.push((k, nominal));
                }
            } else {
                while state.next_marker < window_end {
                    times.push((state.next_index, state.next_marker));
                    state.next_index += 1;
                    state.next_marker += rng.random_range(0.05..1.5);
                }
            }
            if times.is_empty() {
                continue;
            }
            let mut content = Vec::new();
            write_varlen(&mut content, times.len() as u64);
            for (i, (k, recorder_time)) in times.iter().enumerate() {
                let jitter = if spec.srate > 0.0 {
                    rng.random_range(-0.5..0.5) * 0.02 / spec.srate
                } else {
                    0.0
                };
                let stamp = recorder_time
                    - offset_at(&spec, *recorder_time, start)
                    - reset_shift(&spec, *recorder_time, start, duration)
                    + jitter;
                // Like LabRecorder: the first stamp of a chunk always, later ones only when
                // they are not the previous plus the nominal interval.
                let deduced = state.last_written.map(|last| last + 1.0 / spec.srate);
                let stored = if i > 0 && spec.srate > 0.0 && (k % 3 == 1) {
                    content.push(0);
                    deduced.unwrap_or(0.0)
                } else {
                    content.push(8);
                    content.extend_from_slice(&stamp.to_le_bytes());
                    stamp
                };
                state.last_written = Some(stored);
                state.first.get_or_insert(stored);
                state.last = stored;
                state.count += 1;
                for _ in 0..spec.channels {
                    push_value(&mut content, spec.format, &mut rng, *k);
                }
            }
            push(
                &mut bytes,
                encode_chunk(Tag::Samples, Some(spec.id), &content),
                Tag::Samples,
                Some(spec.id),
                times.len(),
            );
        }
        if window_end >= next_offset {
            for state in &mut states {
                let collected = next_offset + rng.random_range(0.0..0.01);
                let mid = start + duration / 2.0;
                let paused = state.spec.reset && collected > mid && collected < mid + RESET_PAUSE_S;
                if !state.spec.offsets || paused {
                    continue;
                }
                let value =
                    offset_at(&state.spec, collected, start) + rng.random_range(-1.0..1.0) * 2e-5;
                let collected = collected - reset_shift(&state.spec, collected, start, duration);
                state.offsets.push((collected, value));
                push(
                    &mut bytes,
                    encode_chunk(
                        Tag::ClockOffset,
                        Some(state.spec.id),
                        &clock_offset_content(collected, value),
                    ),
                    Tag::ClockOffset,
                    Some(state.spec.id),
                    0,
                );
            }
            next_offset += 5.0;
        }
        if window_end >= next_boundary {
            push(&mut bytes, boundary_chunk(), Tag::Boundary, None, 0);
            next_boundary += 10.0;
        }
        t = window_end;
    }
    for state in &states {
        let footer = Footer {
            writer: "synthetic".into(),
            first_timestamp: state.first.unwrap_or(0.0),
            last_timestamp: state.last,
            sample_count: state.count,
            clock_offsets: state.offsets.clone(),
        };
        push(
            &mut bytes,
            encode_chunk(
                Tag::StreamFooter,
                Some(state.spec.id),
                footer.to_xml().as_bytes(),
            ),
            Tag::StreamFooter,
            Some(state.spec.id),
            0,
        );
    }
    Synthetic {
        bytes,
        chunks,
        streams: streams.to_vec(),
    }
}

impl Synthetic {
    /// Samples of stream `id` in Samples chunks that end at or before byte `cut`.
    pub fn samples_before(&self, id: u32, cut: usize) -> usize {
        self.chunks
            .iter()
            .filter(|c| c.tag == Tag::Samples && c.stream_id == Some(id) && c.end <= cut)
            .map(|c| c.samples)
            .sum()
    }

    /// The chunk holding byte `position`.
    pub fn chunk_at(&self, position: usize) -> Option<&ChunkInfo> {
        self.chunks
            .iter()
            .find(|c| c.offset <= position && position < c.end)
    }
}
