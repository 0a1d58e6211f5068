//! HeLo batch throughput on ONNX Runtime (a benchmark, not a test).
//!
//! Run: `cargo bench --bench helo_batch` (needs the onnxruntime wheel in .venv, as ./scripts/test
//! installs, or ORT_DYLIB_PATH). Add `-- cuda` to request the CUDA execution provider; the provider
//! that actually ran is printed, with the largest difference of its outputs from a CPU session's on
//! the same batch. Inputs are the shipped fixture's held-out windows, repeated.

#[path = "common/helo_fixture.rs"]
mod helo_fixture;

use std::time::Instant;

use heloflow::model::onnx::{Fallback, GraphOptimization, ModelSession, Provider, SessionOptions};

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
            let inputs = helo_fixture::batch_of(&rows, batch);
            let output = session.run(batch, &inputs).expect("warm-up run");
            let reference = cpu.run(batch, &inputs).expect("CPU run");
            let difference = helo_fixture::max_difference(&output, &reference);
            let runs = (2000 / batch).clamp(5, 200);
            let seconds = timed_runs(&mut session, batch, &inputs, runs);
            println!(
                "| {batch} | {runs} | {:.2} | {:.0} | {difference:.1e} |",
                seconds * 1e3 / runs as f64,
                (batch * runs) as f64 / seconds
            );
        }
    }
    graph_optimisation_levels(&manifest, &rows);
}

/// Session opening time and batch-128 throughput at each ONNX Runtime graph optimisation level
/// (one intra-op thread), with the largest difference from the default level's outputs.
fn graph_optimisation_levels(
    manifest: &heloflow::model::manifest::LoadedManifest,
    rows: &[Vec<Vec<f32>>],
) {
    let batch = 128;
    let inputs = helo_fixture::batch_of(rows, batch);
    let mut reference = ModelSession::open(manifest, &SessionOptions::default()).expect("opens");
    let expected = reference.run(batch, &inputs).expect("reference run");
    println!("\nCPU, 1 intra-op thread, batch {batch}: ONNX Runtime graph optimisation levels");
    println!(
        "| level | session open ms | ms per batch | windows/s | max abs difference from All |"
    );
    println!("|---|---|---|---|---|");
    for level in GraphOptimization::LEVELS {
        let options = SessionOptions {
            optimization: level,
            ..SessionOptions::default()
        };
        let opened = Instant::now();
        let mut session = ModelSession::open(manifest, &options).expect("opens");
        let open_ms = opened.elapsed().as_secs_f64() * 1e3;
        let output = session.run(batch, &inputs).expect("warm-up run");
        let difference = helo_fixture::max_difference(&output, &expected);
        let runs = 20;
        let seconds = timed_runs(&mut session, batch, &inputs, runs);
        println!(
            "| {level:?} | {open_ms:.0} | {:.2} | {:.0} | {difference:.1e} |",
            seconds * 1e3 / runs as f64,
            (batch * runs) as f64 / seconds
        );
    }
}

/// Seconds `runs` runs of `batch` windows take.
fn timed_runs(session: &mut ModelSession, batch: usize, inputs: &[Vec<f32>], runs: usize) -> f64 {
    let started = Instant::now();
    for _ in 0..runs {
        session.run(batch, inputs).expect("run");
    }
    started.elapsed().as_secs_f64()
}
