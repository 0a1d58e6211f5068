//! XDF reading, summaries and repair against the real pyxdf.

mod common;
#[path = "xdf/pyxdf.rs"]
mod pyxdf;
#[path = "xdf/synthetic.rs"]
mod synthetic;

use std::path::{Path, PathBuf};

use heloflow::xdf::reader::{read, ReadOptions};
use serde_json::Value;

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/xdf")
        .join(name)
}

const EXAMPLES: [&str; 3] = ["minimal.xdf", "clock_resets.xdf", "empty_streams.xdf"];

/// The option sets the examples are compared under: pyxdf's defaults, everything off, and each
/// half alone.
fn option_sets() -> Vec<(ReadOptions, Vec<&'static str>)> {
    let with = |sync: bool, dejitter: bool| ReadOptions {
        synchronize_clocks: sync,
        dejitter_timestamps: dejitter,
        ..ReadOptions::default()
    };
    let flag = |b: bool| if b { "true" } else { "false" };
    [(true, true), (false, false), (true, false), (false, true)]
        .into_iter()
        .map(|(sync, dejitter)| {
            (
                with(sync, dejitter),
                vec![
                    "--synchronize-clocks",
                    flag(sync),
                    "--dejitter-timestamps",
                    flag(dejitter),
                ],
            )
        })
        .collect()
}

#[test]
fn example_files_read_as_pyxdf_loads_them() {
    let mut worst: f64 = 0.0;
    for name in EXAMPLES {
        for (options, args) in option_sets() {
            let ours = read(&example(name), &options).expect("the example reads");
            assert!(ours.damage.is_empty(), "{name}: {:?}", ours.damage);
            let theirs = pyxdf::load(&example(name), &args);
            let difference = pyxdf::compare(&ours, &theirs, 1e-9, &format!("{name} {args:?}"));
            eprintln!("{name} {args:?}: largest timestamp difference {difference:e} s");
            worst = worst.max(difference);
        }
    }
    eprintln!("example files: largest timestamp difference to pyxdf {worst:e} s");
}

#[test]
fn synthetic_recording_reads_as_pyxdf_loads_it() {
    let file = synthetic::build(&synthetic::default_streams(1), 120.0, 7);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("synthetic.xdf");
    std::fs::write(&path, &file.bytes).unwrap();
    let mut worst: f64 = 0.0;
    for (options, args) in option_sets() {
        let ours = read(&path, &options).expect("the synthetic file reads");
        assert!(ours.damage.is_empty(), "{:?}", ours.damage);
        assert_eq!(ours.streams.len(), file.streams.len());
        let theirs = pyxdf::load(&path, &args);
        let difference = pyxdf::compare(&ours, &theirs, 1e-9, &format!("synthetic {args:?}"));
        eprintln!("synthetic {args:?}: largest timestamp difference {difference:e} s");
        worst = worst.max(difference);
        if options.synchronize_clocks {
            // The file exercises what it is meant to: a clock reset and a break.
            let reset = ours.stream(2).unwrap();
            assert_eq!(reset.clock_segments.len(), 2, "{:?}", reset.clock_segments);
        }
        if options.dejitter_timestamps {
            assert_eq!(ours.stream(1).unwrap().segments.len(), 2);
            assert!(ours.stream(5).unwrap().effective_srate < 60.0 * 0.9);
        }
    }
    eprintln!("synthetic file: largest timestamp difference to pyxdf {worst:e} s");
}

#[test]
fn long_clock_offset_series_read_as_pyxdf_loads_them() {
    // 25 minutes: 300 clock offsets per stream, more than the 256 that numpy sums in one block.
    let streams: Vec<synthetic::StreamSpec> = synthetic::default_streams(1)
        .into_iter()
        .filter(|s| s.srate <= 10.0)
        .collect();
    let file = synthetic::build(&streams, 1500.0, 11);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("long.xdf");
    std::fs::write(&path, &file.bytes).unwrap();
    let ours = read(&path, &ReadOptions::default()).unwrap();
    assert!(ours.stream(3).unwrap().clock_times.len() >= 300);
    let theirs = pyxdf::load(&path, &[]);
    let difference = pyxdf::compare(&ours, &theirs, 1e-9, "long synthetic");
    eprintln!("long synthetic: largest timestamp difference to pyxdf {difference:e} s");
}

/// Counts of each sample's values joined by ` | `, as `xdf info` counts markers.
fn marker_counts(series: &Value) -> std::collections::HashMap<String, u64> {
    let mut counts = std::collections::HashMap::new();
    for sample in series.as_array().unwrap() {
        let values: Vec<&str> = sample
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        *counts.entry(values.join(" | ")).or_insert(0) += 1;
    }
    counts
}

fn close(a: f64, b: f64, tolerance: f64) -> bool {
    (a - b).abs() <= tolerance * b.abs().max(1.0)
}

#[test]
fn info_json_agrees_with_pyxdf() {
    let synthetic_dir = tempfile::tempdir().unwrap();
    let synthetic_path = synthetic_dir.path().join("synthetic.xdf");
    std::fs::write(
        &synthetic_path,
        synthetic::build(&synthetic::default_streams(1), 60.0, 3).bytes,
    )
    .unwrap();
    let mut files: Vec<PathBuf> = EXAMPLES.iter().map(|n| example(n)).collect();
    files.push(synthetic_path);
    for path in &files {
        let shown = path.display().to_string();
        let output = common::heloflow_ok(synthetic_dir.path(), &["xdf", "info", &shown, "--json"]);
        let summary: Value = serde_json::from_slice(&output.stdout).expect("info --json is JSON");
        let defaults = pyxdf::load(path, &[]);
        let recorded = pyxdf::load(path, &["--dejitter-timestamps", "false"]);
        assert_eq!(summary["complete"], true, "{shown}");
        assert_eq!(summary["damage"], serde_json::json!([]), "{shown}");
        let streams = summary["streams"].as_array().unwrap();
        assert_eq!(streams.len(), pyxdf::streams(&defaults).len(), "{shown}");
        for ours in streams {
            let id = ours["id"].as_u64().unwrap() as u32;
            let what = format!("{shown} stream {id}");
            let theirs = pyxdf::stream(&defaults, id);
            let raw = pyxdf::stream(&recorded, id);
            let stamps = theirs["time_stamps"].as_array().unwrap();
            assert_eq!(
                ours["sample_count"].as_u64().unwrap() as usize,
                stamps.len(),
                "{what}"
            );
            let rate = pyxdf::number(&theirs["effective_srate"]);
            assert!(
                close(ours["effective_srate"].as_f64().unwrap(), rate, 1e-9),
                "{what}: effective rate {} vs pyxdf {rate}",
                ours["effective_srate"]
            );
            assert_eq!(
                ours["segments"].as_u64().unwrap() as usize,
                theirs["segments"].as_array().unwrap().len(),
                "{what}"
            );
            let nominal: f64 = theirs["info"]["nominal_srate"]
                .as_str()
                .unwrap()
                .trim()
                .parse()
                .unwrap();
            assert_eq!(ours["nominal_srate"].as_f64().unwrap(), nominal, "{what}");
            let channels: usize = theirs["info"]["channel_count"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(
                ours["channel_count"].as_u64().unwrap() as usize,
                channels,
                "{what}"
            );
            let raw_stamps = raw["time_stamps"].as_array().unwrap();
            match (raw_stamps.first(), raw_stamps.last()) {
                (Some(first), Some(last)) => {
                    let (first, last) = (pyxdf::number(first), pyxdf::number(last));
                    assert!(
                        close(ours["first_timestamp"].as_f64().unwrap(), first, 1e-15),
                        "{what}"
                    );
                    assert!(
                        close(ours["last_timestamp"].as_f64().unwrap(), last, 1e-15),
                        "{what}"
                    );
                }
                _ => assert!(ours["first_timestamp"].is_null(), "{what}"),
            }
            let offsets = theirs["clock_times"].as_array().unwrap().len();
            if offsets == 0 {
                assert!(ours["clock_offsets"].is_null(), "{what}");
            } else {
                assert_eq!(
                    ours["clock_offsets"]["count"].as_u64().unwrap() as usize,
                    offsets,
                    "{what}"
                );
            }
            assert_eq!(
                ours["footer"].as_bool().unwrap(),
                !theirs["footer"].is_null(),
                "{what}"
            );
            if theirs["info"]["channel_format"] == "string" {
                let counts = marker_counts(&theirs["time_series"]);
                let markers = &ours["markers"];
                assert_eq!(
                    markers["count"].as_u64().unwrap() as usize,
                    stamps.len(),
                    "{what}"
                );
                assert_eq!(
                    markers["distinct"].as_u64().unwrap() as usize,
                    counts.len(),
                    "{what}"
                );
                for entry in markers["top"].as_array().unwrap() {
                    let value = entry[0].as_str().unwrap();
                    assert_eq!(
                        entry[1].as_u64(),
                        counts.get(value).copied(),
                        "{what}: {value:?}"
                    );
                }
                let most = counts.values().max().copied();
                assert_eq!(markers["top"][0][1].as_u64(), most, "{what}");
            } else {
                assert!(ours["markers"].is_null(), "{what}");
            }
        }
    }
}
