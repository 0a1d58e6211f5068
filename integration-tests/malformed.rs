//! Malformed pipeline files: each gives one clear message with the right file, line and column.
//!
//! Every file in `fixtures/malformed/` starts with `# expect: LINE:COLUMN text | more text`; the
//! test runs `heloflow validate` on it and checks the location and every `|`-separated fragment.

mod common;

use std::fs;

use common::{heloflow, root};

#[test]
fn every_malformed_file_gets_the_right_message_at_the_right_place() {
    let dir = root().join("fixtures/malformed");
    let mut files: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "expected at least ten kinds of mistake");
    let mut failures = Vec::new();
    for file in &files {
        let text = fs::read_to_string(file).unwrap();
        let expectation = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{} has no `# expect:` line", file.display()));
        let (location, fragments) = expectation.split_once(' ').unwrap();
        let output = heloflow(&dir, &["validate", file.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&output.stderr).to_string();
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let mut problems = Vec::new();
        if output.status.success() {
            problems.push("validate succeeded".to_string());
        }
        if stderr.contains("internal error") || stderr.contains("panicked") {
            problems.push("panicked".to_string());
        }
        let wanted_location = format!("--> {}:{location}\n", file.display());
        if !stderr.contains(&wanted_location) {
            problems.push(format!("no `{}`", wanted_location.trim_end()));
        }
        for fragment in fragments.split(" | ") {
            if !stderr.contains(fragment.trim()) {
                problems.push(format!("missing \"{}\"", fragment.trim()));
            }
        }
        let line: usize = location.split(':').next().unwrap().parse().unwrap();
        let quoted = text.lines().nth(line - 1).unwrap_or("");
        if !quoted.is_empty() && !stderr.contains(&format!("{line} | {quoted}")) {
            problems.push(format!("line {line} is not quoted"));
        }
        if !problems.is_empty() {
            failures.push(format!("{name}: {}\n{stderr}", problems.join("; ")));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}

#[test]
fn unreadable_files_are_one_clear_message() {
    let output = heloflow(&root(), &["validate", "no/such/pipeline.toml"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot read pipeline file no/such/pipeline.toml"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"));
}
