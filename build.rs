//! Vendors the dashboard's chart library at build time: copies uPlot's browser build, stylesheet
//! and licence from `src/server/dashboard/node_modules` (installed by `npm ci` from the pinned
//! `package-lock.json`) into `OUT_DIR`, where `src/server/dashboard.rs` embeds them, so the binary
//! serves the dashboard offline with no CDN.

use std::path::{Path, PathBuf};

/// The files copied, as (path under `node_modules/uplot`, name in `OUT_DIR`).
const FILES: [(&str, &str); 3] = [
    ("dist/uPlot.iife.min.js", "uPlot.iife.min.js"),
    ("dist/uPlot.min.css", "uPlot.min.css"),
    ("LICENSE", "uPlot.LICENSE.txt"),
];

const FIX: &str = "run scripts/setup.sh's ensure_node (./scripts/test and ./scripts/demo do), \
                   or `npm ci --prefix src/server/dashboard`";

fn main() {
    let dashboard = PathBuf::from(env_var("CARGO_MANIFEST_DIR")).join("src/server/dashboard");
    let package = dashboard.join("node_modules/uplot");
    let out = PathBuf::from(env_var("OUT_DIR"));
    println!(
        "cargo:rerun-if-changed={}",
        dashboard.join("package-lock.json").display()
    );
    println!("cargo:rerun-if-changed={}", package.display());
    let wanted = locked_version(&dashboard.join("package-lock.json"));
    let installed = read(&package.join("package.json")).and_then(|text| version_after(&text, 0));
    match installed {
        Some(version) if version == wanted => {}
        Some(version) => fail(&format!(
            "src/server/dashboard/node_modules has uplot {version}, but package-lock.json pins {wanted}"
        )),
        None => fail(&format!(
            "uplot {wanted} is not installed in src/server/dashboard/node_modules"
        )),
    }
    for (from, to) in FILES {
        let source = package.join(from);
        println!("cargo:rerun-if-changed={}", source.display());
        if let Err(e) = std::fs::copy(&source, out.join(to)) {
            fail(&format!("cannot copy {}: {e}", source.display()));
        }
    }
}

/// The uplot version `package-lock.json` pins.
fn locked_version(lock: &Path) -> String {
    let text = read(lock).unwrap_or_else(|| fail(&format!("cannot read {}", lock.display())));
    text.find("\"node_modules/uplot\"")
        .and_then(|at| version_after(&text, at))
        .unwrap_or_else(|| fail(&format!("{} does not pin uplot", lock.display())))
}

/// The value of the first `"version": "..."` at or after byte `from` of a JSON text.
fn version_after(text: &str, from: usize) -> Option<String> {
    let rest = &text[from..];
    let key = rest.find("\"version\"")?;
    let rest = rest[key + "\"version\"".len()..].trim_start();
    let rest = rest.strip_prefix(':')?.trim_start().strip_prefix('"')?;
    Some(rest[..rest.find('"')?].to_string())
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn env_var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| fail(&format!("cargo did not set {name}")))
}

fn fail(message: &str) -> ! {
    eprintln!("error: the dashboard's chart library: {message}\n  fix: {FIX}");
    std::process::exit(1)
}
