//! Sinks never clobber each other or the pipeline file, and a closed standard output is never
//! counted as written: destinations are compared as files (normalised, symlinks resolved, device
//! and inode), an empty `path` is refused where it is written, and a run whose reader goes away
//! (`| head`) or whose standard output is closed (`>&-`) says which sink lost how many rows.

mod common;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

use common::{heloflow, heloflow_ok};

/// A pipeline of simulated EEG and EDA, each written by its own sink to `first` and `second`.
fn two_sinks(first: &str, second: &str) -> String {
    format!(
        "[pipeline]\nname = \"two\"\n\n[sources.sim]\nkind = \"simulator\"\nsubjects = 1\nstreams = [\"eeg\", \"eda\"]\nduration_s = 2\n\n[sinks.first]\nkind = \"jsonl\"\ninputs = [\"sim.eeg\"]\npath = {first:?}\n\n[sinks.second]\nkind = \"jsonl\"\ninputs = [\"sim.eda\"]\npath = {second:?}\n"
    )
}

/// Writes `text` as `dir/pipeline.toml` and validates it; the error output when it is refused.
fn refused(dir: &Path, text: &str) -> String {
    fs::write(dir.join("pipeline.toml"), text).unwrap();
    let output = heloflow(dir, &["validate", "pipeline.toml"]);
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(!output.status.success(), "accepted: {text}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

/// The line of `pipeline.toml` in `dir` holding the second sink's `path` (1-based).
fn second_path_line(dir: &Path) -> usize {
    let text = fs::read_to_string(dir.join("pipeline.toml")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    lines
        .iter()
        .rposition(|l| l.starts_with("path = "))
        .unwrap()
        + 1
}

#[test]
fn one_file_spelled_two_ways_is_refused_at_the_second_path() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("out")).unwrap();
    symlink(dir.path().join("out"), dir.path().join("alias")).unwrap();
    fs::write(dir.path().join("out/existing.jsonl"), "").unwrap();
    symlink(
        dir.path().join("out/existing.jsonl"),
        dir.path().join("link.jsonl"),
    )
    .unwrap();
    fs::hard_link(
        dir.path().join("out/existing.jsonl"),
        dir.path().join("hard.jsonl"),
    )
    .unwrap();
    for (first, second) in [
        ("out/x.jsonl", "./out/../out/x.jsonl"),
        ("out/x.jsonl", "alias/x.jsonl"),
        ("out/x.jsonl", "out//x.jsonl"),
        ("out/existing.jsonl", "link.jsonl"),
        ("out/existing.jsonl", "hard.jsonl"),
    ] {
        let stderr = refused(dir.path(), &two_sinks(first, second));
        assert!(
            stderr.contains("`sinks.second` writes to")
                && stderr.contains("which `sinks.first` already writes to"),
            "{first} vs {second}: {stderr}"
        );
        let at = format!("pipeline.toml:{}:", second_path_line(dir.path()));
        assert!(stderr.contains(&at), "{first} vs {second}: {stderr}");
    }
    for second in ["/dev/stdout", "/proc/self/fd/1", "/dev/fd/1"] {
        let stderr = refused(dir.path(), &two_sinks("-", second));
        assert!(
            stderr.contains(
                "`sinks.second` writes to standard output, which `sinks.first` already writes to"
            ),
            "{second}: {stderr}"
        );
    }
    // Different files are fine.
    fs::write(
        dir.path().join("pipeline.toml"),
        two_sinks("out/a.jsonl", "alias/b.jsonl"),
    )
    .unwrap();
    heloflow_ok(dir.path(), &["run", "pipeline.toml", "--status", "off"]);
    assert!(dir.path().join("out/a.jsonl").is_file() && dir.path().join("out/b.jsonl").is_file());
}

#[test]
fn an_empty_path_is_refused_where_it_is_written() {
    let dir = tempfile::tempdir().unwrap();
    for kind in ["jsonl", "csv", "xdf"] {
        let text = two_sinks("out/a.jsonl", "").replace(
            "[sinks.second]\nkind = \"jsonl\"\ninputs = [\"sim.eda\"]",
            &format!("[sinks.second]\nkind = \"{kind}\"\ninputs = [\"sim.eda\"]"),
        );
        let stderr = refused(dir.path(), &text);
        assert!(stderr.contains("`path` is empty"), "{kind}: {stderr}");
        let at = format!("pipeline.toml:{}:8", second_path_line(dir.path()));
        assert!(stderr.contains(&at), "{kind}: {stderr}");
    }
    // Nor can a directory or a name with a NUL be written.
    fs::create_dir(dir.path().join("out")).unwrap();
    let stderr = refused(dir.path(), &two_sinks("out/a.jsonl", "out"));
    assert!(
        stderr.contains("`path` names the directory out"),
        "{stderr}"
    );
    let stderr = refused(
        dir.path(),
        &two_sinks("out/a.jsonl", "x").replace("path = \"x\"", "path = \"a\\u0000b\""),
    );
    assert!(
        stderr.contains("`path` contains a NUL character"),
        "{stderr}"
    );
}

#[test]
fn a_sink_may_not_overwrite_the_pipeline_file() {
    let dir = tempfile::tempdir().unwrap();
    symlink(dir.path().join("pipeline.toml"), dir.path().join("p.link")).unwrap();
    for path in ["pipeline.toml", "./pipeline.toml", "p.link"] {
        let text = two_sinks("out/a.jsonl", path);
        let stderr = refused(dir.path(), &text);
        assert!(
            stderr.contains("`sinks.second` would overwrite the pipeline file itself"),
            "{path}: {stderr}"
        );
        let output = heloflow(dir.path(), &["run", "pipeline.toml", "--status", "off"]);
        assert!(!output.status.success());
        assert_eq!(
            fs::read_to_string(dir.path().join("pipeline.toml")).unwrap(),
            text,
            "the pipeline file was changed"
        );
    }
}

/// Runs `script` (a shell command line, `$HELOFLOW` being the binary) in `dir`.
fn shell(dir: &Path, script: &str) -> std::process::Output {
    Command::new("sh")
        .args(["-c", script])
        .env("HELOFLOW", env!("CARGO_BIN_EXE_heloflow"))
        .current_dir(dir)
        .output()
        .unwrap()
}

/// The "N rows written" figure of a run's summary.
fn rows_written(stderr: &str) -> u64 {
    let before = stderr.split(" rows written").next().unwrap();
    before.rsplit(' ').next().unwrap().parse().unwrap()
}

#[test]
fn a_reader_that_goes_away_is_reported_not_counted() {
    let dir = tempfile::tempdir().unwrap();
    let text = two_sinks("-", "out/eda.jsonl").replace("duration_s = 2", "duration_s = 30");
    fs::write(dir.path().join("pipeline.toml"), text).unwrap();
    let output = shell(
        dir.path(),
        "{ \"$HELOFLOW\" run pipeline.toml --status plain 2>err.txt; echo $? >status.txt; } | head -1",
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout).lines().count(), 1);
    let stderr = fs::read_to_string(dir.path().join("err.txt")).unwrap();
    let status = fs::read_to_string(dir.path().join("status.txt")).unwrap();
    assert!(
        stderr.contains("WARNING: sink `first`: standard output was closed by its reader"),
        "{stderr}"
    );
    let unwritten: u64 = stderr
        .split(" rows not written")
        .next()
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(unwritten > 0, "{stderr}");
    // What the summary claims is no more than what reached the files: the EDA file's rows plus
    // the rows confirmed written to the pipe.
    let eda_rows = fs::read_to_string(dir.path().join("out/eda.jsonl"))
        .unwrap()
        .lines()
        .count() as u64;
    let confirmed: u64 = stderr
        .split(" rows confirmed written")
        .next()
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(rows_written(&stderr), eda_rows + confirmed, "{stderr}");
    // The run stops once its reader is gone; every sample it took in (one row each) is either
    // written or counted as not written.
    let samples_in: u64 = stderr
        .split(" samples in ")
        .next()
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(rows_written(&stderr) + unwritten, samples_in, "{stderr}");
    assert_eq!(
        status.trim(),
        "0",
        "a closed reader is a warning, not a failure"
    );
}

#[test]
fn a_closed_standard_output_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("pipeline.toml"),
        two_sinks("out/eeg.jsonl", "-"),
    )
    .unwrap();
    let output = shell(dir.path(), "exec \"$HELOFLOW\" run pipeline.toml >&-");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("sink `second` writes to standard output, which is closed"),
        "{stderr}"
    );
    assert!(!stderr.contains("rows written"), "{stderr}");
    assert!(!dir.path().join("out/eeg.jsonl").exists());
    // Pipelines that do not write to standard output still run with it closed.
    fs::write(
        dir.path().join("pipeline.toml"),
        two_sinks("out/eeg.jsonl", "out/eda.jsonl"),
    )
    .unwrap();
    let output = shell(
        dir.path(),
        "exec \"$HELOFLOW\" run pipeline.toml --status off >&-",
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn standard_output_redirected_onto_a_sink_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("out")).unwrap();
    fs::write(
        dir.path().join("pipeline.toml"),
        two_sinks("-", "out/eda.jsonl"),
    )
    .unwrap();
    let output = shell(
        dir.path(),
        "exec \"$HELOFLOW\" run pipeline.toml >> out/eda.jsonl",
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains(
            "`sinks.second` writes to out/eda.jsonl, which `sinks.first` already writes to (as \"-\")"
        ),
        "{stderr}"
    );
}
