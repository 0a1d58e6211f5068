//! The common workload's data and check values, shared by `benches/common_workload.rs` and the
//! test that runs `pipelines/common-workload.toml` (`integration-tests/pipelines.rs`).

use std::path::Path;

use heloflow::stream::ChannelFormat;
use heloflow::xdf::writer::{ChannelDesc, CreateOptions, StreamHeader, Values, XdfWriter};

/// Samples per channel (120 s at 700 Hz).
pub const SAMPLES: usize = 84_000;
/// Channels.
pub const CHANNELS: usize = 8;
/// Sampling rate, Hz.
pub const RATE: f64 = 700.0;
/// Windows of 10 s every 1 s over 120 s.
pub const WINDOWS: usize = 111;
/// The peers' sum of the last window's 56 features.
pub const LAST_WINDOW_SUM: f64 = 875.855645;
/// The peers' sum of every feature of every window.
pub const ALL_WINDOWS_SUM: f64 = 97097.165559;

/// The raw little-endian float32 file `benches/common_workload/data.py` writes.
pub fn read_f32(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).expect("the data file");
    assert_eq!(bytes.len(), SAMPLES * CHANNELS * 4, "84000 x 8 float32");
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// `samples` (row-major, [`CHANNELS`] wide) as one float32 XDF stream named `common-workload`,
/// stamped `i / 700` s, in 0.1 s chunks.
pub fn write_xdf(samples: &[f32], path: &Path) {
    let options = CreateOptions {
        overwrite: true,
        ..CreateOptions::default()
    };
    let mut writer = XdfWriter::create(path, &options).expect("the XDF file");
    let channels = (0..CHANNELS)
        .map(|c| ChannelDesc::new(format!("ch{c}"), "microvolts", "EEG"))
        .collect();
    let mut header = StreamHeader::new(
        "common-workload",
        "EEG",
        ChannelFormat::Float32,
        RATE,
        channels,
    );
    header.source_id = "common-workload".into();
    let id = writer.add_stream(&header).expect("the stream");
    let stamps: Vec<f64> = (0..samples.len() / CHANNELS)
        .map(|i| i as f64 / RATE)
        .collect();
    for (rows, values) in stamps.chunks(70).zip(samples.chunks(70 * CHANNELS)) {
        writer
            .push_samples(id, rows, Values::Float32(values))
            .expect("samples");
    }
    writer.finish().expect("footers");
}

/// The sums of the last window's features and of every window's, from the sink's rows (the
/// `coverage` channels left out).
pub fn check_values(path: &Path) -> (f64, f64) {
    let text = std::fs::read_to_string(path).expect("the features file");
    let mut windows: std::collections::BTreeMap<i64, (usize, f64)> = Default::default();
    for line in text.lines() {
        let row: serde_json::Value = serde_json::from_str(line).expect("a JSON row");
        let t = row["t_ns"]
            .as_i64()
            .or_else(|| row["t"].as_f64().map(|t| (t * 1e9).round() as i64))
            .expect("a timestamp");
        let entry = windows.entry(t).or_default();
        for (key, value) in row["values"].as_object().expect("values").iter() {
            if key != "coverage" {
                entry.0 += 1;
                entry.1 += value.as_f64().expect("a number");
            }
        }
    }
    assert_eq!(windows.len(), WINDOWS, "111 windows");
    assert!(
        windows.values().all(|(n, _)| *n == 7 * CHANNELS),
        "56 features in every window"
    );
    let last = windows.values().last().map_or(f64::NAN, |w| w.1);
    (last, windows.values().map(|w| w.1).sum())
}
