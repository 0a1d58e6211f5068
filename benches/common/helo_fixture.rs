//! The shipped HeLo model with its fixture's held-out windows, for the benchmarks that time its
//! inference (`helo_batch`, `live_latency`).

use heloflow::model::manifest::LoadedManifest;

/// The shipped manifest and, per model input in manifest order, the fixture's rows.
pub fn shipped_model_and_windows() -> (LoadedManifest, Vec<Vec<Vec<f32>>>) {
    let manifest_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(heloflow::operators::DEFAULT_HELO_MANIFEST);
    let manifest = LoadedManifest::read(&manifest_path).expect("shipped manifest");
    let fixture: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(manifest_path.with_file_name("helo-sim.fixture.json"))
            .expect("fixture"),
    )
    .expect("fixture JSON");
    let rows = manifest
        .manifest
        .inputs
        .iter()
        .map(|input| serde_json::from_value(fixture["inputs"][&input.name].clone()).expect("rows"))
        .collect();
    (manifest, rows)
}

/// A batch of `batch` windows per model input, the fixture's rows repeated.
pub fn batch_of(rows: &[Vec<Vec<f32>>], batch: usize) -> Vec<Vec<f32>> {
    rows.iter()
        .map(|input| {
            (0..batch)
                .flat_map(|i| input[i % input.len()].clone())
                .collect()
        })
        .collect()
}

/// The largest absolute difference between two outputs.
pub fn max_difference(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max)
}
