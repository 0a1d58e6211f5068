//! `heloflow tap`: prints a live stream of a running heloflow server on the terminal, one JSON
//! object per row, until the pipeline ends.
//!
//! The target is a stream name (`helo`, `sim.markers`), tapped over Server-Sent Events from
//! `--server`, or a full `http://…/sse` or `ws://…/ws` URL. The token in `HELOFLOW_TOKEN`, when
//! set, is sent as `Authorization: Bearer`.
//!
//! ```no_run
//! use heloflow::server::client::{tap, TapRequest};
//!
//! let request = TapRequest::new("helo", "127.0.0.1:8750");
//! let rows = tap(&request, &mut std::io::stdout()).unwrap();
//! eprintln!("{rows} rows");
//! ```

use std::io::{BufRead, BufReader, Write};

use super::config::TOKEN_ENV;

/// What to tap.
#[derive(Clone, Debug, PartialEq)]
pub struct TapRequest {
    /// A stream name or a full `http://` (SSE) or `ws://` (WebSocket) URL.
    pub target: String,
    /// `host:port` of the server, for stream names.
    pub server: String,
    /// Only this subject's rows.
    pub subject: Option<String>,
    /// Kept rows to receive first: a count or `all`.
    pub history: Option<String>,
}

impl TapRequest {
    /// Taps `target` on `server`, live rows only, every subject.
    pub fn new(target: &str, server: &str) -> Self {
        TapRequest {
            target: target.to_string(),
            server: server.to_string(),
            subject: None,
            history: None,
        }
    }

    /// The URL to open.
    pub fn url(&self) -> String {
        let mut url = if self.target.contains("://") {
            self.target.clone()
        } else {
            format!(
                "http://{}/api/streams/{}/sse",
                self.server,
                encode(&self.target)
            )
        };
        let mut query: Vec<String> = Vec::new();
        if let Some(subject) = &self.subject {
            query.push(format!("subject={}", encode(subject)));
        }
        if let Some(history) = &self.history {
            query.push(format!("history={}", encode(history)));
        }
        if !query.is_empty() {
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str(&query.join("&"));
        }
        url
    }
}

/// Percent-encodes everything but unreserved URL characters.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn token() -> Option<String> {
    std::env::var(TOKEN_ENV).ok().filter(|t| !t.is_empty())
}

/// Prints every row of the tap to `out`, one per line, until the pipeline ends; returns the
/// number of rows. A closed `out` (`| head`) ends the tap quietly.
pub fn tap(request: &TapRequest, out: &mut dyn Write) -> Result<u64, String> {
    let url = request.url();
    if url.starts_with("ws://") {
        websocket(&url, out)
    } else if url.starts_with("http://") {
        events(&url, out)
    } else {
        Err(format!(
            "cannot tap `{}`: give a stream name, an http:// URL (Server-Sent Events) or a ws:// URL",
            crate::display::escaped(&request.target)
        ))
    }
}

/// Writes one row; `false` when `out` was closed.
fn print_row(out: &mut dyn Write, row: &str) -> Result<bool, String> {
    match writeln!(out, "{row}").and_then(|()| out.flush()) {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(error) => Err(format!("cannot write a row: {error}")),
    }
}

fn events(url: &str, out: &mut dyn Write) -> Result<u64, String> {
    let mut request = ureq::get(url)
        .config()
        .http_status_as_error(false)
        .build()
        .header("Accept", "text/event-stream");
    if let Some(token) = token() {
        request = request.header("Authorization", &format!("Bearer {token}"));
    }
    let response = request
        .call()
        .map_err(|e| format!("cannot connect to {url}: {e}"))?;
    let status = response.status().as_u16();
    if status != 200 {
        let body = response.into_body().read_to_string().unwrap_or_default();
        return Err(refusal(status, &body));
    }
    let reader = BufReader::new(response.into_body().into_reader());
    let mut rows = 0;
    let mut event = String::new();
    for line in reader.lines() {
        let line = line.map_err(|e| format!("the tap broke off after {rows} rows: {e}"))?;
        if let Some(name) = line.strip_prefix("event:") {
            event = name.trim().to_string();
        } else if let Some(data) = line.strip_prefix("data:") {
            match event.as_str() {
                "" | "message" => {
                    if !print_row(out, data.strip_prefix(' ').unwrap_or(data))? {
                        return Ok(rows);
                    }
                    rows += 1;
                }
                "end" => return Ok(rows),
                "dropped" => {
                    return Err(format!(
                        "the server disconnected this tap after {rows} rows: it fell too far behind"
                    ))
                }
                _ => {}
            }
        } else if line.is_empty() {
            event.clear();
        }
    }
    Err(format!(
        "the server closed the tap after {rows} rows before the pipeline ended"
    ))
}

fn websocket(url: &str, out: &mut dyn Write) -> Result<u64, String> {
    use tungstenite::client::IntoClientRequest;
    use tungstenite::Message;
    let mut request = url
        .into_client_request()
        .map_err(|e| format!("invalid URL {url}: {e}"))?;
    if let Some(token) = token() {
        let value = format!("Bearer {token}")
            .parse()
            .map_err(|_| format!("{TOKEN_ENV} holds characters a header cannot carry"))?;
        request.headers_mut().insert("Authorization", value);
    }
    let (mut socket, _) = tungstenite::connect(request).map_err(|error| match error {
        tungstenite::Error::Http(response) => refusal(
            response.status().as_u16(),
            &String::from_utf8_lossy(response.body().as_deref().unwrap_or_default()),
        ),
        other => format!("cannot connect to {url}: {other}"),
    })?;
    let mut rows = 0;
    loop {
        match socket.read() {
            Ok(Message::Text(text)) => {
                if !print_row(out, text.as_str())? {
                    let _ = socket.close(None);
                    return Ok(rows);
                }
                rows += 1;
            }
            Ok(Message::Close(frame)) => {
                let _ = socket.flush();
                return match frame {
                    Some(frame) if u16::from(frame.code) != 1000 => Err(format!(
                        "the server closed the tap after {rows} rows: {}",
                        frame.reason
                    )),
                    _ => Ok(rows),
                };
            }
            Ok(_) => {}
            Err(tungstenite::Error::ConnectionClosed) => return Ok(rows),
            Err(error) => return Err(format!("the tap broke off after {rows} rows: {error}")),
        }
    }
}

/// The message for a refused tap.
fn refusal(status: u16, body: &str) -> String {
    let detail = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_string))
        .unwrap_or_else(|| body.trim().to_string());
    match status {
        401 => format!("the server wants a token: set {TOKEN_ENV} ({detail})"),
        _ => format!("the server refused the tap ({status}): {detail}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names_become_event_stream_urls() {
        let mut request = TapRequest::new("sim.markers", "127.0.0.1:8750");
        assert_eq!(
            request.url(),
            "http://127.0.0.1:8750/api/streams/sim.markers/sse"
        );
        request.subject = Some("S 01".into());
        request.history = Some("all".into());
        assert_eq!(
            request.url(),
            "http://127.0.0.1:8750/api/streams/sim.markers/sse?subject=S%2001&history=all"
        );
        let mut ws = TapRequest::new("ws://127.0.0.1:1/api/streams/helo/ws?x=1", "");
        ws.history = Some("5".into());
        assert_eq!(
            ws.url(),
            "ws://127.0.0.1:1/api/streams/helo/ws?x=1&history=5"
        );
    }

    #[test]
    fn refusals_say_what_to_do() {
        assert!(refusal(401, "a token is required").contains(TOKEN_ENV));
        assert_eq!(
            refusal(404, "{\"error\":\"no stream `x`; streams: helo\"}"),
            "the server refused the tap (404): no stream `x`; streams: helo"
        );
    }
}
