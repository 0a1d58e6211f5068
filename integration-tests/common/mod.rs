//! Helpers shared by the end-to-end tests: run the real `heloflow` binary and read what it wrote.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The loopback-only liblsl configuration every LSL test uses (no traffic leaves the machine).
pub fn lsl_config() -> PathBuf {
    root().join("fixtures/lsl/lsl_api.cfg")
}

/// A child process killed when dropped, so a failing test leaves no outlet or run behind.
pub struct Running(pub Child);

impl Running {
    /// The process id, for signals.
    pub fn id(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The repository root (where `pipelines/` and `fixtures/` live).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A shipped pipeline file by name.
pub fn pipeline(name: &str) -> PathBuf {
    root().join("pipelines").join(name)
}

/// Runs `heloflow` with `args` in `dir`, with progress output off unless asked for.
pub fn heloflow(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_heloflow"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the heloflow binary runs")
}

/// Runs `heloflow` and fails the test with its stderr unless it succeeded.
pub fn heloflow_ok(dir: &Path, args: &[&str]) -> Output {
    let output = heloflow(dir, args);
    assert!(
        output.status.success(),
        "heloflow {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// `python3` (./scripts/test puts the project's `.venv` first on PATH) with `LSLAPICFG` set to
/// `lsl_config`; fails the test with instructions when `modules` (comma-separated) do not import.
pub fn python(modules: &str, lsl_config: &Path) -> Command {
    let check = Command::new("python3")
        .args(["-c", &format!("import {modules}")])
        .env("LSLAPICFG", lsl_config)
        .output()
        .expect("python3 is on PATH (./scripts/test puts .venv/bin first)");
    assert!(
        check.status.success(),
        "{modules} must be importable by python3: run ./scripts/test, which installs requirements-dev.txt into .venv ({})",
        String::from_utf8_lossy(&check.stderr)
    );
    let mut command = Command::new("python3");
    command.env("LSLAPICFG", lsl_config);
    command
}

/// One parsed JSON Lines row.
pub struct JsonRow {
    pub time: f64,
    pub stream: String,
    pub subject: String,
    pub values: serde_json::Value,
}

/// Parses JSON Lines output, checking every line is a complete object with the expected fields.
pub fn parse_jsonl(text: &str) -> Vec<JsonRow> {
    text.lines()
        .map(|line| {
            let value: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("bad line {line:?}: {e}"));
            JsonRow {
                time: value["t"].as_f64().expect("t is a number"),
                stream: value["stream"].as_str().expect("stream").to_string(),
                subject: value["subject"].as_str().expect("subject").to_string(),
                values: value["values"].clone(),
            }
        })
        .collect()
}

/// How a private network namespace's only interface, loopback, is set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loopback {
    /// As on this machine: loopback without multicast, so LSL finds streams by unicast only.
    Unicast,
    /// With multicast (and broadcast) routed over it, as on a lab's LAN: liblsl's defaults work.
    Multicast,
}

/// `program args...` inside a new network namespace (`unshare -n`, which needs root or user
/// namespaces) whose only interface is loopback: nothing it sends can leave the machine, and
/// no other test's LSL streams can be seen from it, or it from them.
pub fn in_network_namespace(loopback: Loopback, program: &Path, args: &[&str]) -> Command {
    let mut setup = String::from("ip link set lo up");
    if loopback == Loopback::Multicast {
        setup.push_str(
            " && ip link set lo multicast on && ip route add 224.0.0.0/4 dev lo && ip route add 255.255.255.255/32 dev lo",
        );
    }
    let mut command = Command::new("unshare");
    command
        .args(["-n", "sh", "-c", &format!("{setup} && exec \"$0\" \"$@\"")])
        .arg(program)
        .args(args);
    command
}

/// A started `heloflow run … --serve`, with the address it printed and its stderr so far.
pub struct Served {
    pub run: Running,
    pub address: SocketAddr,
    pub stderr: mpsc::Receiver<String>,
}

impl Served {
    /// Waits for the run to end successfully; its whole stderr.
    pub fn finish(mut self) -> String {
        let status = self.run.0.wait().expect("the run ends");
        let stderr: Vec<String> = self.stderr.try_iter().collect();
        assert!(status.success(), "the run failed:\n{}", stderr.join("\n"));
        stderr.join("\n")
    }
}

/// Writes `pipeline` to `dir/p.toml` and starts `heloflow run p.toml --serve LISTEN`; returns
/// once the server printed its address.
pub fn serve(dir: &Path, pipeline: &str, listen: &str, envs: &[(&str, &str)]) -> Served {
    std::fs::write(dir.join("p.toml"), pipeline).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_heloflow"));
    command
        .args(["run", "p.toml", "--status", "off", "--serve", listen])
        .current_dir(dir)
        .env_remove("HELOFLOW_TOKEN")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (key, value) in envs {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("heloflow starts");
    let stderr = child.stderr.take().unwrap();
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let run = Running(child);
    let mut seen = Vec::new();
    loop {
        let line = received
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("no server address printed; stderr:\n{}", seen.join("\n")));
        if let Some(rest) = line.split("dashboard at http://").nth(1) {
            let address = rest.split('/').next().unwrap().parse().unwrap();
            return Served {
                run,
                address,
                stderr: received,
            };
        }
        seen.push(line);
    }
}
