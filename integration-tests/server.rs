//! The live server end to end: a real `heloflow run --serve` with real clients (WebSocket,
//! Server-Sent Events, `heloflow tap`, Python's standard library), the token on a non-loopback
//! address inside a network namespace, path traversal, connection limits and clients that never
//! read.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::serve;

/// A realtime simulated session: markers, EDA and the hidden emotion, with a windowed operator,
/// written to `rows.jsonl` while the server taps every stream.
const SESSION: &str = r#"
[pipeline]
name = "taps"

[sources.sim]
kind = "simulator"
seed = 11
subjects = 2
streams = ["eda", "emotion", "markers"]
duration_s = DURATION
realtime = true

[operators.truth]
kind = "window_stats"
inputs = ["sim.emotion"]
window_s = 1.0
hop_s = 1.0
stats = ["mean"]

[sinks.out]
kind = "jsonl"
inputs = ["truth", "sim.markers", "sim.eda"]
path = "rows.jsonl"

[server]
history_rows = 100000
"#;

/// One raw HTTP/1.1 request (the target exactly as given, nothing normalised); status and body.
fn raw_get(address: SocketAddr, target: &str, headers: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        stream,
        "GET {target} HTTP/1.1\r\nHost: {address}\r\n{headers}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {response:?}"));
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Every row of an SSE tap until its `end` event (read with ureq, line by line).
fn sse_rows(url: &str) -> Vec<String> {
    let response = ureq::get(url).call().expect("the tap opens");
    let reader = BufReader::new(response.into_body().into_reader());
    let mut rows = Vec::new();
    let mut event = String::new();
    for line in reader.lines() {
        let line = line.expect("the tap reads");
        if let Some(name) = line.strip_prefix("event: ") {
            event = name.to_string();
        } else if let Some(data) = line.strip_prefix("data: ") {
            if event == "end" {
                return rows;
            }
            rows.push(data.to_string());
        } else if line.is_empty() {
            event.clear();
        }
    }
    panic!(
        "the tap closed without its end event after {} rows",
        rows.len()
    );
}

/// Every row of a WebSocket tap until its close frame (tungstenite, a real WebSocket client).
fn websocket_rows(url: &str) -> Vec<String> {
    let (mut socket, _) = tungstenite::connect(url).expect("the WebSocket opens");
    let mut rows = Vec::new();
    loop {
        match socket.read().expect("the WebSocket reads") {
            tungstenite::Message::Text(text) => rows.push(text.to_string()),
            tungstenite::Message::Close(frame) => {
                let frame = frame.expect("a close frame with a code");
                assert_eq!(u16::from(frame.code), 1000, "{}", frame.reason);
                return rows;
            }
            _ => {}
        }
    }
}

/// The jsonl file's lines of one stream (and subject), in file order.
fn jsonl_lines(text: &str, stream: &str, subject: Option<&str>) -> Vec<String> {
    text.lines()
        .filter(|line| line.contains(&format!(",\"stream\":\"{stream}\",")))
        .filter(|line| subject.is_none_or(|s| line.contains(&format!(",\"subject\":\"{s}\","))))
        .map(str::to_string)
        .collect()
}

/// The Python client the README shows: the standard library only.
const PYTHON_TAP: &str = r#"
import json, sys, urllib.request

url = sys.argv[1]
with urllib.request.urlopen(url) as events:
    event = ""
    for raw in events:
        line = raw.decode().rstrip("\n")
        if line.startswith("event: "):
            event = line[len("event: "):]
        elif line.startswith("data: "):
            if event == "end":
                break
            row = json.loads(line[len("data: "):])
            print(json.dumps(row, separators=(",", ":")))
        elif not line:
            event = ""
"#;

#[test]
fn websocket_sse_cli_and_python_taps_deliver_exactly_the_rows_the_jsonl_sink_writes() {
    let dir = tempfile::tempdir().unwrap();
    let served = serve(
        dir.path(),
        &SESSION.replace("DURATION", "6"),
        "127.0.0.1:0",
        &[],
    );
    let base = served.address;
    let (schema_status, schema) = raw_get(base, "/api/schema", "");
    assert_eq!(schema_status, 200, "{schema}");
    let schema: serde_json::Value = serde_json::from_str(&schema).unwrap();
    let names: Vec<&str> = schema["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["sim.eda", "sim.emotion", "sim.markers", "truth"]);
    let truth = &schema["streams"][3];
    assert_eq!(truth["producer"], "operator");
    assert_eq!(truth["kind"], "window_stats");
    assert_eq!(truth["channels"].as_array().unwrap().len(), 10);
    assert_eq!(schema["streams"][0]["rate_hz"], 4.0);
    assert_eq!(schema["streams"][0]["channels"][0]["unit"], "uS");

    let sse = std::thread::spawn(move || {
        sse_rows(&format!("http://{base}/api/streams/truth/sse?history=all"))
    });
    let websocket = std::thread::spawn(move || {
        websocket_rows(&format!("ws://{base}/api/streams/sim.eda/ws?history=all"))
    });
    let cli = Command::new(env!("CARGO_BIN_EXE_heloflow"))
        .args(["tap", "sim.markers", "--history", "all", "--server"])
        .arg(base.to_string())
        .env_remove("HELOFLOW_TOKEN")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let python = Command::new("python3")
        .args(["-c", PYTHON_TAP])
        .arg(format!(
            "http://{base}/api/streams/truth/sse?subject=S02&history=all"
        ))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();

    std::thread::sleep(Duration::from_secs(3));
    let (latest_status, latest) = raw_get(base, "/api/latest/truth", "");
    assert_eq!(latest_status, 200);
    let latest: serde_json::Value = serde_json::from_str(&latest).unwrap();
    assert_eq!(latest["S01"]["stream"], "truth");
    assert_eq!(latest["S02"]["subject"], "S02");
    let (_, schema_live) = raw_get(base, "/api/schema", "");
    let schema_live: serde_json::Value = serde_json::from_str(&schema_live).unwrap();
    assert_eq!(
        schema_live["streams"][3]["subjects"],
        serde_json::json!(["S01", "S02"])
    );

    let stderr = served.finish();
    let written = std::fs::read_to_string(dir.path().join("rows.jsonl")).unwrap();
    let truth_rows = jsonl_lines(&written, "truth", None);
    let eda_rows = jsonl_lines(&written, "sim.eda", None);
    let marker_rows = jsonl_lines(&written, "sim.markers", None);
    assert!(truth_rows.len() >= 10, "{stderr}");
    assert!(eda_rows.len() >= 40);
    assert_eq!(sse.join().unwrap(), truth_rows, "SSE tap of truth");
    assert_eq!(
        websocket.join().unwrap(),
        eda_rows,
        "WebSocket tap of sim.eda"
    );
    let cli = cli.wait_with_output().unwrap();
    assert!(cli.status.success());
    let cli_rows: Vec<String> = String::from_utf8(cli.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(cli_rows, marker_rows, "heloflow tap of sim.markers");
    let python = python.wait_with_output().unwrap();
    assert!(python.status.success());
    let python_rows: Vec<String> = String::from_utf8(python.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let s02 = jsonl_lines(&written, "truth", Some("S02"));
    let reparsed: Vec<serde_json::Value> = s02
        .iter()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let python_parsed: Vec<serde_json::Value> = python_rows
        .iter()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(python_parsed, reparsed, "Python's tap of S02's truth");
}

#[test]
fn unknown_streams_and_bad_queries_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let served = serve(
        dir.path(),
        &SESSION.replace("DURATION", "2"),
        "127.0.0.1:0",
        &[],
    );
    let (status, body) = raw_get(served.address, "/api/streams/nope/sse", "");
    assert_eq!(status, 404);
    assert!(body.contains("no stream `nope`; streams: sim.eda, sim.emotion, sim.markers, truth"));
    let (status, body) = raw_get(served.address, "/api/streams/truth/sse?history=lots", "");
    assert_eq!(status, 400);
    assert!(body.contains("`history` must be a count of rows or `all`"));
    let tap = Command::new(env!("CARGO_BIN_EXE_heloflow"))
        .args(["tap", "nope", "--server"])
        .arg(served.address.to_string())
        .output()
        .unwrap();
    assert!(!tap.status.success());
    assert!(String::from_utf8_lossy(&tap.stderr).contains("no stream `nope`"));
    served.finish();
}

#[test]
fn no_file_system_path_is_reachable_through_the_server() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret.txt"), "SECRET-CONTENT").unwrap();
    let served = serve(
        dir.path(),
        &SESSION.replace("DURATION", "3"),
        "127.0.0.1:0",
        &[],
    );
    for target in [
        "/secret.txt",
        "/p.toml",
        "/assets/../p.toml",
        "/assets/..%2fp.toml",
        "/assets/%2e%2e/%2e%2e/etc/passwd",
        "/assets/..%5c..%5cp.toml",
        "/../../../../etc/passwd",
        "/assets//etc/passwd",
        "/assets/%2Fetc%2Fpasswd",
        "/api/latest/..%2f..%2fetc%2fpasswd",
        "/api/streams/..%2F..%2Fetc%2Fpasswd/sse",
        "/api/streams/%2e%2e/ws",
        "//etc/passwd",
        "/./p.toml",
        "/assets/index.html/../../p.toml",
    ] {
        let (status, body) = raw_get(served.address, target, "");
        assert!(
            status == 404 || status == 400,
            "{target}: status {status}: {body}"
        );
        for leaked in ["SECRET-CONTENT", "root:", "[sources.sim]"] {
            assert!(!body.contains(leaked), "{target} leaked {leaked:?}: {body}");
        }
    }
    served.finish();
}

/// Runs inside the network namespace (see the test below): the server on a non-loopback
/// address needs the token, refuses requests without it, and never prints it.
fn token_scenario() {
    const TOKEN: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.toml"), SESSION.replace("DURATION", "4")).unwrap();

    let refused = Command::new(env!("CARGO_BIN_EXE_heloflow"))
        .args(["run", "p.toml", "--status", "off", "--serve", "10.77.0.1:0"])
        .current_dir(dir.path())
        .env_remove("HELOFLOW_TOKEN")
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(
        message.contains("10.77.0.1:0, which is not a loopback address: set HELOFLOW_TOKEN"),
        "{message}"
    );
    let short = Command::new(env!("CARGO_BIN_EXE_heloflow"))
        .args(["run", "p.toml", "--status", "off", "--serve", "10.77.0.1:0"])
        .current_dir(dir.path())
        .env("HELOFLOW_TOKEN", "short")
        .output()
        .unwrap();
    assert!(!short.status.success());
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 16"));

    let served = serve(
        dir.path(),
        &SESSION.replace("DURATION", "8"),
        "10.77.0.1:0",
        &[("HELOFLOW_TOKEN", TOKEN)],
    );
    assert!(!served.address.ip().is_loopback());
    let address = served.address;
    for (target, headers) in [
        ("/", ""),
        ("/api/schema", ""),
        ("/metrics", ""),
        ("/api/streams/truth/sse", ""),
        (
            "/api/schema",
            "Authorization: Bearer wrong-token-wrong-token\r\n",
        ),
        ("/api/schema?token=0f1e2d3c4b5a69788796a5b4c3d2e1f1", ""),
        (
            "/api/schema",
            "Authorization: 0f1e2d3c4b5a69788796a5b4c3d2e1f0\r\n",
        ),
        ("/assets/../../etc/passwd", ""),
    ] {
        let (status, body) = raw_get(address, target, headers);
        assert_eq!(status, 401, "{target} {headers}: {body}");
    }
    let bearer = format!("Authorization: Bearer {TOKEN}\r\n");
    assert_eq!(raw_get(address, "/api/schema", &bearer).0, 200);
    assert_eq!(
        raw_get(address, &format!("/api/schema?token={TOKEN}"), "").0,
        200
    );
    let without = Command::new(env!("CARGO_BIN_EXE_heloflow"))
        .args(["tap", "truth", "--server"])
        .arg(address.to_string())
        .env_remove("HELOFLOW_TOKEN")
        .output()
        .unwrap();
    assert!(!without.status.success());
    let told = String::from_utf8_lossy(&without.stderr);
    assert!(
        told.contains("the server wants a token: set HELOFLOW_TOKEN"),
        "{told}"
    );
    let tap = Command::new(env!("CARGO_BIN_EXE_heloflow"))
        .args(["tap", "truth", "--history", "all", "--server"])
        .arg(address.to_string())
        .env("HELOFLOW_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert!(
        tap.status.success(),
        "{}",
        String::from_utf8_lossy(&tap.stderr)
    );
    let stderr = served.finish();
    assert!(!stderr.contains(TOKEN), "the token was printed:\n{stderr}");
    let tapped = String::from_utf8(tap.stdout).unwrap();
    assert!(tapped.lines().count() >= 6, "{tapped}");
    assert!(!tapped.contains(TOKEN));
}

#[test]
fn a_non_loopback_address_needs_the_token_and_requests_without_it_get_401() {
    if std::env::var_os("HELOFLOW_IN_NETNS").is_some() {
        token_scenario();
        return;
    }
    // The same test binary, in a network namespace whose loopback interface also carries
    // 10.77.0.1 (not a loopback address): nothing can reach it from outside, nor leave.
    let test_binary = std::env::current_exe().unwrap();
    let output = Command::new("unshare")
        .args([
            "-n",
            "sh",
            "-c",
            "ip link set lo up && ip addr add 10.77.0.1/32 dev lo && exec \"$0\" \"$@\"",
        ])
        .arg(test_binary)
        .args([
            "--exact",
            "a_non_loopback_address_needs_the_token_and_requests_without_it_get_401",
            "--nocapture",
        ])
        .env("HELOFLOW_IN_NETNS", "1")
        .output()
        .expect("unshare runs (root or user namespaces are needed)");
    assert!(
        output.status.success(),
        "in the namespace:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("1 passed"));
}

/// Peak resident memory of a process, kB.
fn peak_memory_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A fast stream (EEG, 32 channels) to a client that never reads: a realtime pipeline of
/// `duration_s` with or without such clients.
fn eeg_session(duration_s: u32) -> String {
    format!(
        r#"
[sources.sim]
kind = "simulator"
seed = 5
subjects = 4
streams = ["eeg", "emotion"]
duration_s = {duration_s}
realtime = true

[operators.truth]
kind = "window_stats"
inputs = ["sim.emotion"]
window_s = 1.0
hop_s = 1.0
stats = ["mean"]

[sinks.out]
kind = "jsonl"
inputs = ["truth", "sim.eeg"]
path = "rows.jsonl"

[server]
client_buffer = 64
client_timeout_s = 2
max_clients = 8
history_rows = 20000
"#
    )
}

/// A connection whose receive buffer holds only a few kilobytes, so the server's writes to it
/// block as soon as it stops reading.
fn tiny_window_connection(address: SocketAddr) -> TcpStream {
    use std::os::fd::FromRawFd;
    let SocketAddr::V4(v4) = address else {
        panic!("IPv4 only")
    };
    // SAFETY: plain socket calls on a descriptor this function owns until it is wrapped.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert!(fd >= 0);
        let size: libc::c_int = 2048;
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            &size as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
        let socket_address = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: v4.port().to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(*v4.ip()).to_be(),
            },
            sin_zero: [0; 8],
        };
        let connected = libc::connect(
            fd,
            &socket_address as *const _ as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        assert_eq!(connected, 0, "{}", std::io::Error::last_os_error());
        TcpStream::from_raw_fd(fd)
    }
}

/// Opens a tap and never reads a byte of it (over a tiny receive window when `tiny`).
fn stalled_client(address: SocketAddr, target: &str, websocket: bool) -> TcpStream {
    stalled_request(
        TcpStream::connect(address).unwrap(),
        address,
        target,
        websocket,
    )
}

fn stalled_request(
    mut stream: TcpStream,
    address: SocketAddr,
    target: &str,
    websocket: bool,
) -> TcpStream {
    let upgrade = if websocket {
        "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    } else {
        ""
    };
    write!(
        stream,
        "GET {target} HTTP/1.1\r\nHost: {address}\r\n{upgrade}\r\n"
    )
    .unwrap();
    stream
}

#[test]
fn clients_that_never_read_are_disconnected_and_the_pipeline_keeps_its_pace_and_memory() {
    const SECONDS: u32 = 8;
    let calm = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut served = serve(calm.path(), &eeg_session(SECONDS), "127.0.0.1:0", &[]);
    let pid = served.run.id();
    let mut calm_peak = 0;
    while served.run.0.try_wait().unwrap().is_none() {
        calm_peak = calm_peak.max(peak_memory_kb(pid));
        std::thread::sleep(Duration::from_millis(100));
    }
    served.finish();
    let calm_elapsed = started.elapsed();

    let stormy = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut served = serve(stormy.path(), &eeg_session(SECONDS), "127.0.0.1:0", &[]);
    let address = served.address;
    let mut stalled: Vec<TcpStream> = (0..3)
        .map(|i| stalled_client(address, "/api/streams/sim.eeg/sse", i % 2 == 0))
        .collect();
    stalled.push(stalled_client(address, "/api/streams/sim.eeg/ws", true));
    // A slow-loris client that never finishes its request.
    let mut loris = TcpStream::connect(address).unwrap();
    write!(loris, "GET /api/schema HTTP/1.1\r\nHost: x\r\n").unwrap();
    let pid = served.run.id();
    let mut stormy_peak = 0;
    let mut status_seen = serde_json::Value::Null;
    while served.run.0.try_wait().unwrap().is_none() {
        stormy_peak = stormy_peak.max(peak_memory_kb(pid));
        if started.elapsed() > Duration::from_secs(2) && stalled.len() == 4 {
            // Hundreds of kept rows to clients whose receive windows are full at once: the
            // server's writes to them block, and they are cut off after `client_timeout_s`.
            for websocket in [false, true] {
                let target = if websocket { "ws" } else { "sse" };
                stalled.push(stalled_request(
                    tiny_window_connection(address),
                    address,
                    &format!("/api/streams/sim.eeg/{target}?history=all"),
                    websocket,
                ));
            }
        }
        if started.elapsed() > Duration::from_secs(SECONDS as u64 - 2) && status_seen.is_null() {
            let (code, body) = raw_get(address, "/api/status", "");
            assert_eq!(code, 200);
            status_seen = serde_json::from_str(&body).unwrap();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    served.finish();
    let stormy_elapsed = started.elapsed();
    drop(stalled);
    drop(loris);

    let calm_rows = std::fs::read_to_string(calm.path().join("rows.jsonl")).unwrap();
    let stormy_rows = std::fs::read_to_string(stormy.path().join("rows.jsonl")).unwrap();
    assert_eq!(
        calm_rows, stormy_rows,
        "stalled clients changed what the pipeline wrote"
    );
    assert!(
        stormy_elapsed < calm_elapsed + Duration::from_secs(3),
        "stalled clients slowed the run: {stormy_elapsed:?} vs {calm_elapsed:?}"
    );
    let server = &status_seen["server"];
    assert!(
        server["slow_disconnects"].as_u64().unwrap() >= 3,
        "{status_seen}"
    );
    assert!(server["stalled"].as_u64().unwrap() >= 1, "{status_seen}");
    assert!(
        stormy_peak < calm_peak + 64 * 1024,
        "memory grew with stalled clients: {stormy_peak} kB vs {calm_peak} kB"
    );
}

#[test]
fn connections_beyond_max_clients_get_503() {
    let dir = tempfile::tempdir().unwrap();
    let served = serve(dir.path(), &eeg_session(4), "127.0.0.1:0", &[]);
    let address = served.address;
    let held: Vec<TcpStream> = (0..8)
        .map(|_| stalled_client(address, "/api/streams/truth/sse", false))
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let (status, body) = raw_get(address, "/api/schema", "");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("too many clients"));
    drop(held);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(raw_get(address, "/api/schema", "").0, 200);
    served.finish();
}

#[test]
fn the_demo_draws_distributions_on_a_terminal_and_keeps_json_lines_for_pipes() {
    let dir = tempfile::tempdir().unwrap();
    let binary = env!("CARGO_BIN_EXE_heloflow");
    // `script` gives the demo a real pseudo-terminal as standard output.
    let typescript = dir.path().join("terminal.txt");
    let terminal = Command::new("script")
        .args(["-q", "-e", "-c"])
        .arg(format!("{binary} demo --fast --duration 8 --subjects 2"))
        .arg(&typescript)
        .current_dir(common::root())
        .stdout(Stdio::null())
        .status()
        .expect("script (util-linux) runs");
    assert!(terminal.success());
    let drawn = std::fs::read_to_string(&typescript).unwrap();
    assert!(drawn.contains("dashboard http://127.0.0.1:"), "{drawn}");
    for needle in ["S01  t = 8.0 s", "S02  t = 8.0 s", "  neutral  ", "│", "█"] {
        assert!(
            drawn.contains(needle),
            "missing {needle:?} in the view:\n{drawn}"
        );
    }
    assert!(!drawn.contains("{\"t\":"), "JSON on the terminal:\n{drawn}");

    let piped = Command::new(binary)
        .args(["demo", "--fast", "--duration", "8", "--subjects", "2"])
        .current_dir(common::root())
        .output()
        .unwrap();
    assert!(piped.status.success());
    let rows = common::parse_jsonl(&String::from_utf8(piped.stdout).unwrap());
    assert!(rows
        .iter()
        .any(|r| r.stream == "helo" && r.subject == "S02"));
    let stderr = String::from_utf8_lossy(&piped.stderr);
    assert!(
        stderr.contains("dashboard at http://127.0.0.1:"),
        "{stderr}"
    );
}
