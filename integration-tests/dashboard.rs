//! The dashboard in a real browser: a realtime run of the demo pipeline for four simulated subjects
//! serves it on a free loopback port, and Debian's headless `chromium`, driven over the DevTools
//! protocol by `integration-tests/dashboard/drive.mjs` (playwright-core), opens it, clicks every
//! subject card, and checks that the charts receive and draw live data: the page's counters of
//! rows and drawn points grow while the session runs, the chart canvases hold coloured pixels, and
//! when the run ends the page has seen exactly the rows the run's jsonl sink wrote. The screenshot
//! is kept as `target/artifacts/dashboard.png`.
//!
//! Needs chromium and the npm packages that `./scripts/test` installs (`ensure_apt chromium`,
//! `ensure_node src/server/dashboard integration-tests/dashboard`), and ONNX Runtime from `.venv`.

mod common;

use std::fs::{self, File};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{parse_jsonl, root, Running};
use serde_json::Value;

/// The subject whose detail view the screenshot shows.
const SHOWN: &str = "S02";

/// `pipelines/demo.toml` for four subjects over 30 s of real time, writing into the test's folder.
fn pipeline(dir: &Path) -> std::path::PathBuf {
    let manifest = root().join("plugins/helo/model/helo-sim.json");
    let text = fs::read_to_string(root().join("pipelines/demo.toml"))
        .unwrap()
        .replace("subjects = 1", "subjects = 4")
        .replace("duration_s = 20", "duration_s = 30")
        .replace(
            "model = \"plugins/helo/model/helo-sim.json\"",
            &format!("model = {:?}", manifest.display().to_string()),
        )
        .replace("path = \"-\"", "path = \"live.jsonl\"");
    assert!(text.contains("realtime = true") && text.contains("subjects = 4"));
    let file = dir.join("dashboard.toml");
    fs::write(&file, text).unwrap();
    file
}

/// Node 20 or later with playwright-core installed, or a failure that says how to get them.
fn check_node(driver: &Path) {
    let fix = "run ./scripts/test (it installs chromium and runs ensure_node src/server/dashboard integration-tests/dashboard)";
    let version = Command::new("node")
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("node is not on PATH ({e}): {fix}"));
    let text = String::from_utf8_lossy(&version.stdout);
    let major: u32 = text
        .trim()
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    assert!(
        major >= 20,
        "playwright-core needs node 20 or later, found {text:?}: {fix}"
    );
    assert!(
        driver
            .join("node_modules/playwright-core/package.json")
            .exists(),
        "playwright-core is not installed in integration-tests/dashboard: {fix}"
    );
    let chromium = Command::new("chromium").arg("--version").output();
    assert!(
        chromium.as_ref().is_ok_and(|o| o.status.success()),
        "Debian's chromium does not run ({chromium:?}): {fix}"
    );
}

/// The dashboard URL the run prints on standard error once its server listens.
fn dashboard_url(stderr: &Path, run: &mut Running) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = fs::read_to_string(stderr).unwrap_or_default();
        if let Some(at) = text.find("dashboard at http://") {
            let rest = &text[at + "dashboard at ".len()..];
            return rest.split_whitespace().next().unwrap().to_string();
        }
        if let Ok(Some(status)) = run.0.try_wait() {
            panic!("heloflow ended ({status}) without serving the dashboard: {text}");
        }
        assert!(
            Instant::now() < deadline,
            "no dashboard URL in 60 s: {text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn number(value: &Value, path: &str) -> f64 {
    value
        .pointer(path)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("no number at {path} in {value}"))
}

#[test]
fn headless_chromium_sees_the_charts_draw_a_live_session() {
    let driver = root().join("integration-tests/dashboard");
    check_node(&driver);
    let dir = tempfile::tempdir().unwrap();
    let file = pipeline(dir.path());
    let stderr = dir.path().join("run.stderr");
    let mut run = Running(
        Command::new(env!("CARGO_BIN_EXE_heloflow"))
            .args(["run", file.to_str().unwrap(), "--serve", "127.0.0.1:0"])
            .args(["--status", "off"])
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(File::create(&stderr).unwrap())
            .spawn()
            .expect("the heloflow binary starts"),
    );
    let url = dashboard_url(&stderr, &mut run);
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let artifacts = root().join("target/artifacts");
    fs::create_dir_all(&artifacts).unwrap();
    let screenshot = artifacts.join("dashboard.png");
    let _ = fs::remove_file(&screenshot);
    let output = Command::new("node")
        .arg(driver.join("drive.mjs"))
        .args([url.as_str(), screenshot.to_str().unwrap(), SHOWN])
        .output()
        .expect("node runs the driver");
    let text = String::from_utf8_lossy(&output.stdout);
    let log = || {
        format!(
            "driver stderr: {}\nheloflow stderr: {}",
            String::from_utf8_lossy(&output.stderr),
            fs::read_to_string(&stderr).unwrap_or_default()
        )
    };
    assert!(
        output.status.success(),
        "the driver failed: {text}\n{}",
        log()
    );
    let result: Value = serde_json::from_str(text.trim())
        .unwrap_or_else(|e| panic!("the driver printed no JSON ({e}): {text}\n{}", log()));
    assert!(result["error"].is_null(), "{}\n{}", result["error"], log());
    let status = run.0.wait().unwrap();
    assert!(status.success(), "heloflow failed: {}", log());

    // Before the session ended: no script error, no failed request.
    let (first, second, end) = (&result["first"], &result["second"], &result["end"]);
    let errors = result["console"].as_array().unwrap();
    let before_end = result["consoleBeforeEnd"].as_u64().unwrap() as usize;
    assert!(errors[..before_end].is_empty(), "{errors:?}");

    // What the page made of the schema.
    let plan = &first["plan"];
    assert_eq!(plan["model"], "helo", "{plan}");
    assert_eq!(plan["truth"], "truth", "{plan}");
    assert_eq!(
        plan["markers"],
        serde_json::json!(["sim.markers"]),
        "{plan}"
    );
    for stream in ["eeg_de", "gsr_features", "ppg_features", "face_features"] {
        assert!(
            plan["features"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f == stream),
            "{stream} is shown as features: {plan}"
        );
        assert!(
            plan["quality"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f == stream),
            "{stream} is shown with its quality: {plan}"
        );
    }

    // The grid: a card per subject, each opening its detail view; the close button closes it.
    assert_eq!(
        first["subjects"],
        serde_json::json!(["S01", "S02", "S03", "S04"])
    );
    assert_eq!(result["closed"], serde_json::json!([null, true]));
    for pair in result["clicked"].as_array().unwrap() {
        assert_eq!(pair[0], pair[1], "the card opens its subject: {pair}");
    }
    assert_eq!(result["clicked"].as_array().unwrap().len(), 4);
    assert_eq!(second["selected"], SHOWN);
    assert_eq!(second["title"], SHOWN);

    // Live: rows keep arriving and every chart keeps drawing more points.
    for stream in ["helo", "truth", "eeg_de"] {
        let path = format!("/rows/{stream}");
        assert!(
            number(second, &path) > number(first, &path),
            "{stream}: {first} -> {second}"
        );
    }
    for chart in ["history", "truth", "bars", "cards"] {
        let draws = format!("/draws/{chart}");
        let at = format!("/lastDraw/{chart}");
        assert!(number(second, &draws) > number(first, &draws), "{chart}");
        assert!(number(second, &at) > number(first, &at), "{chart}");
    }
    for chart in ["history", "truth"] {
        let points = format!("/points/{chart}");
        assert!(
            number(second, &points) > number(first, &points),
            "{chart} draws more points as the session runs: {first} -> {second}"
        );
    }
    assert_eq!(number(second, "/points/bars"), 10.0, "ten bars");
    assert_eq!(number(second, "/points/cards"), 4.0, "four cards");
    assert!(number(second, "/statusPolls") > number(first, "/statusPolls"));
    assert!(number(second, "/statusText") > 0.0, "session figures shown");
    assert!(number(second, "/qualityCells") > 0.0, "quality shown");
    assert!(number(second, "/featureCells") > 0.0, "features shown");

    // The canvases are not blank: the ten label colours on the history, bars, and every card.
    let pixels = &result["pixels"];
    assert!(number(pixels, "/history/inked") > 2000.0, "{pixels}");
    assert!(number(pixels, "/history/colours") >= 10.0, "{pixels}");
    assert!(number(pixels, "/truth/inked") > 1000.0, "{pixels}");
    assert!(number(pixels, "/bars/inked") > 300.0, "{pixels}");
    let cards = pixels["cards"].as_array().unwrap();
    assert_eq!(cards.len(), 4);
    for card in cards {
        assert!(number(card, "/inked") > 50.0, "{card}");
        assert!(number(card, "/colours") >= 3.0, "{card}");
    }

    // The end: every tap closed, and the page saw exactly the rows the jsonl sink wrote.
    assert_eq!(end["ended"], true, "{end}");
    let rows = parse_jsonl(&fs::read_to_string(dir.path().join("live.jsonl")).unwrap());
    for stream in ["helo", "truth", "sim.markers"] {
        let written = rows.iter().filter(|r| r.stream == stream).count();
        assert!(written > 0, "{stream}");
        assert_eq!(
            number(end, &format!("/rows/{stream}")) as usize,
            written,
            "{stream}: rows the page received against rows the sink wrote"
        );
    }

    let png = fs::read(&screenshot).expect("the screenshot is saved");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 20_000);
}
