//! HeLo batch throughput on ONNX Runtime (a benchmark, not a test).
//!
//! Run: `cargo bench --bench helo_batch` (needs the onnxruntime wheel in .venv, as ./scripts/test
//! installs, or ORT_DYLIB_PATH). Add `-- cuda` to request the CUDA execution provider; the provider
//! that actually ran is printed. Inputs are the shipped fixture's held-out windows, repeated.

use std::path::PathBuf;
use std::time::Instant;

use heloflow::model::manifest::LoadedManifest;
use heloflow::model::onnx::{Fallback, ModelSession, Provider, SessionOptions};

fn main() {
    let cuda = std::env::args().any(|a| a == "cuda");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let manifest_path = root.join(heloflow::operators::DEFAULT_HELO_MANIFEST);
    let manifest = LoadedManifest::read(&manifest_path).expect("shipped manifest");
    let fixture: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(manifest_path.with_file_name("helo-sim.fixture.json"))
            .expect("fixture"),
    )
    .expect("fixture JSON");
    let rows: Vec<Vec<Vec<f32>>> = manifest
        .manifest
        .inputs
        .iter()
        .map(|input| serde_json::from_value(fixture["inputs"][&input.name].clone()).expect("rows"))
        .collect();
    for threads in [1usize, 2] {
        let options = SessionOptions {
            provider: if cuda { Provider::Cuda } else { Provider::Cpu },
            fallback: Fallback::Cpu,
            threads,
            ..SessionOptions::default()
        };
        let mut session = ModelSession::open(&manifest, &options).expect("model opens");
        println!(
            "\nprovider: {}{} | intra-op threads: {threads}",
            session.provider,
            session
                .fallback_reason
                .as_ref()
                .map_or(String::new(), |r| format!(" (CUDA unavailable: {r})"))
        );
        println!("| batch | runs | ms per batch | windows/s |");
        println!("|---|---|---|---|");
        for batch in [1usize, 8, 32, 128, 512] {
            let inputs: Vec<Vec<f32>> = rows
                .iter()
                .map(|input| {
                    (0..batch)
                        .flat_map(|i| input[i % input.len()].clone())
                        .collect()
                })
                .collect();
            session.run(batch, &inputs).expect("warm-up run");
            let runs = (2000 / batch).clamp(5, 200);
            let started = Instant::now();
            for _ in 0..runs {
                session.run(batch, &inputs).expect("run");
            }
            let seconds = started.elapsed().as_secs_f64();
            println!(
                "| {batch} | {runs} | {:.2} | {:.0} |",
                seconds * 1e3 / runs as f64,
                (batch * runs) as f64 / seconds
            );
        }
    }
}
