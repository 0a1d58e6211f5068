//! HeLo batch throughput on ONNX Runtime (a benchmark, not a test).
//!
//! Run: `cargo bench --bench helo_batch` (needs the onnxruntime wheel in .venv, as ./scripts/test
//! installs, or ORT_DYLIB_PATH). Add `-- cuda` to request the CUDA execution provider; the provider
//! that actually ran is printed, with the largest difference of its outputs from a CPU session's on
//! the same batch. Inputs are the shipped fixture's held-out windows, repeated.

#[path = "common/helo_fixture.rs"]
mod helo_fixture;

use std::time::Instant;

use heloflow::model::onnx::{Fallback, ModelSession, Provider, SessionOptions};

fn main() {
    let cuda = std::env::args().any(|a| a == "cuda");
    let (manifest, rows) = helo_fixture::shipped_model_and_windows();
    let mut cpu =
        ModelSession::open(&manifest, &SessionOptions::default()).expect("model opens on CPU");
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
        println!("| batch | runs | ms per batch | windows/s | max abs difference from CPU |");
        println!("|---|---|---|---|---|");
        for batch in [1usize, 8, 32, 128, 512] {
            let inputs: Vec<Vec<f32>> = rows
                .iter()
                .map(|input| {
                    (0..batch)
                        .flat_map(|i| input[i % input.len()].clone())
                        .collect()
                })
                .collect();
            let output = session.run(batch, &inputs).expect("warm-up run");
            let reference = cpu.run(batch, &inputs).expect("CPU run");
            let difference = output
                .iter()
                .zip(&reference)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            let runs = (2000 / batch).clamp(5, 200);
            let started = Instant::now();
            for _ in 0..runs {
                session.run(batch, &inputs).expect("run");
            }
            let seconds = started.elapsed().as_secs_f64();
            println!(
                "| {batch} | {runs} | {:.2} | {:.0} | {difference:.1e} |",
                seconds * 1e3 / runs as f64,
                (batch * runs) as f64 / seconds
            );
        }
    }
}
