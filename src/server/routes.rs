//! The server's routes: the dashboard's embedded assets, the pipeline's schema, the latest rows,
//! live taps (WebSocket and Server-Sent Events), session figures and Prometheus metrics.
//!
//! Nothing here reads the file system: assets are compiled in and looked up by exact name.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};

use super::config::Access;
use super::{dashboard, LiveFigures};
use crate::sinks::tap::{Subscription, TapHub, TapMessage};

/// Largest WebSocket message a client may send (clients only ever need to close).
const MAX_CLIENT_MESSAGE: usize = 4096;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// Every stream's rows.
    pub hub: Arc<TapHub>,
    /// The pipeline's schema, as `/api/schema` serves it (subjects are added live).
    pub schema: Arc<Value>,
    /// Session figures and metrics.
    pub figures: Arc<dyn LiveFigures>,
    /// Who may connect.
    pub access: Arc<Access>,
    /// How long a client may leave a message unread.
    pub client_timeout: Duration,
    /// Connection counters.
    pub connections: Arc<super::ConnectionStats>,
}

/// The router with every route, behind the access check.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/assets/{name}", get(asset))
        .route("/api/schema", get(schema))
        .route("/api/latest", get(latest_all))
        .route("/api/latest/{stream}", get(latest))
        .route("/api/streams/{stream}/ws", get(tap_websocket))
        .route("/api/streams/{stream}/sse", get(tap_events))
        .route("/api/status", get(status))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), check_access))
        .with_state(state)
}

/// Refuses requests without the token (when one is required) with 401.
async fn check_access(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if let Access::Token(token) = state.access.as_ref() {
        if !request_has_token(request.headers(), request.uri().query(), token) {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "a token is required: send `Authorization: Bearer TOKEN` or add `?token=TOKEN`\n",
            )
                .into_response();
        }
    }
    next.run(request).await
}

/// Whether the request carries `token` in its `Authorization: Bearer` header or `token` query.
fn request_has_token(headers: &HeaderMap, query: Option<&str>, token: &str) -> bool {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|given| same_secret(given.trim(), token));
    let in_query = query.is_some_and(|query| {
        url_pairs(query).any(|(key, value)| key == "token" && same_secret(&value, token))
    });
    bearer || in_query
}

/// Compares secrets in time independent of where they differ.
fn same_secret(given: &str, token: &str) -> bool {
    let (a, b) = (given.as_bytes(), token.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `key=value` pairs of a query string, percent-decoded.
fn url_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(key), percent_decode(value))
    })
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                {
                    Some(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn not_found_response() -> Response {
    error(StatusCode::NOT_FOUND, "no such page".to_string())
}

async fn not_found() -> Response {
    not_found_response()
}

fn error(status: StatusCode, message: String) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

fn unknown_stream(hub: &TapHub, stream: &str) -> Response {
    let names: Vec<&str> = hub.schemas().map(|s| s.name.as_str()).collect();
    error(
        StatusCode::NOT_FOUND,
        format!(
            "no stream `{}`; streams: {}",
            crate::display::escaped(stream),
            names.join(", ")
        ),
    )
}

fn embedded(name: &str) -> Response {
    match dashboard::asset(name) {
        Some((bytes, content_type)) => (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
                (
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                ),
            ],
            bytes,
        )
            .into_response(),
        None => not_found_response(),
    }
}

async fn index() -> Response {
    embedded("index.html")
}

async fn asset(Path(name): Path<String>) -> Response {
    embedded(&name)
}

async fn schema(State(state): State<AppState>) -> Response {
    let mut schema = state.schema.as_ref().clone();
    if let Some(streams) = schema.get_mut("streams").and_then(Value::as_array_mut) {
        for stream in streams {
            let name = stream["name"].as_str().unwrap_or_default().to_string();
            stream["subjects"] = json!(state.hub.subjects(&name));
        }
    }
    axum::Json(schema).into_response()
}

/// A JSON object of kept row texts keyed by subject, assembled without re-encoding the rows.
fn rows_by_subject(rows: &[(String, Bytes)]) -> String {
    let mut out = String::from("{");
    for (index, (subject, line)) in rows.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        out.push_str(&serde_json::to_string(subject).unwrap_or_default());
        out.push(':');
        out.push_str(std::str::from_utf8(line).unwrap_or("null"));
    }
    out.push('}');
    out
}

fn json_text(text: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], text).into_response()
}

async fn latest_all(State(state): State<AppState>) -> Response {
    let mut out = String::from("{");
    let names: Vec<String> = state.hub.schemas().map(|s| s.name.clone()).collect();
    for (index, name) in names.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        out.push_str(&serde_json::to_string(name).unwrap_or_default());
        out.push(':');
        out.push_str(&rows_by_subject(
            &state.hub.latest(name).unwrap_or_default(),
        ));
    }
    out.push('}');
    json_text(out)
}

async fn latest(State(state): State<AppState>, Path(stream): Path<String>) -> Response {
    match state.hub.latest(&stream) {
        Some(rows) => json_text(rows_by_subject(&rows)),
        None => unknown_stream(&state.hub, &stream),
    }
}

async fn status(State(state): State<AppState>) -> Response {
    use std::sync::atomic::Ordering::Relaxed;
    let mut status = state.figures.status_json();
    let connections = &state.connections;
    let taps = &state.hub.stats;
    status["server"] = json!({
        "open_connections": connections.open.load(Relaxed),
        "accepted": connections.accepted.load(Relaxed),
        "refused": connections.refused.load(Relaxed),
        "stalled": connections.stalled.load(Relaxed),
        "tap_clients": state.hub.subscribers(),
        "tap_rows": taps.rows.load(Relaxed),
        "slow_disconnects": taps.slow_disconnects.load(Relaxed),
        "ended": state.hub.has_ended(),
    });
    axum::Json(status).into_response()
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.figures.prometheus_text(),
    )
        .into_response()
}

/// The query of a tap: which subject, how much history.
#[derive(Debug, Default, Deserialize)]
pub struct TapQuery {
    /// Only this subject's rows.
    pub subject: Option<String>,
    /// Kept rows to send first: a count, or `all`.
    pub history: Option<String>,
}

impl TapQuery {
    fn history_rows(&self) -> Result<usize, String> {
        match self.history.as_deref() {
            None => Ok(0),
            Some("all") => Ok(usize::MAX),
            Some(count) => count.parse().map_err(|_| {
                format!(
                    "`history` must be a count of rows or `all`, found `{}`",
                    crate::display::escaped(count)
                )
            }),
        }
    }
}

fn subscribe(
    state: &AppState,
    stream: &str,
    query: TapQuery,
) -> Result<Subscription, Box<Response>> {
    let history = query
        .history_rows()
        .map_err(|message| Box::new(error(StatusCode::BAD_REQUEST, message)))?;
    state
        .hub
        .subscribe(stream, query.subject, history)
        .ok_or_else(|| Box::new(unknown_stream(&state.hub, stream)))
}

async fn tap_websocket(
    State(state): State<AppState>,
    Path(stream): Path<String>,
    Query(query): Query<TapQuery>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let subscription = match subscribe(&state, &stream, query) {
        Ok(subscription) => subscription,
        Err(response) => return *response,
    };
    let timeout = state.client_timeout;
    upgrade
        .max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_MESSAGE)
        .on_upgrade(move |socket| websocket_session(socket, subscription, timeout))
}

/// Sends kept rows, then live rows, until the pipeline ends, the client leaves or falls behind.
async fn websocket_session(mut socket: WebSocket, mut tap: Subscription, timeout: Duration) {
    for line in std::mem::take(&mut tap.history) {
        if send_text(&mut socket, line, timeout).await.is_err() {
            return;
        }
    }
    loop {
        tokio::select! {
            message = tap.receiver.recv() => match message {
                Some(TapMessage::Row(line)) => {
                    if send_text(&mut socket, line, timeout).await.is_err() {
                        return;
                    }
                }
                Some(TapMessage::End) => {
                    close(&mut socket, 1000, "the pipeline ended", timeout).await;
                    return;
                }
                None => {
                    close(&mut socket, 1008, "the client fell too far behind", timeout).await;
                    return;
                }
            },
            incoming = socket.recv() => match incoming {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            },
        }
    }
}

async fn send_text(socket: &mut WebSocket, line: Bytes, timeout: Duration) -> Result<(), ()> {
    let text = Utf8Bytes::try_from(line).map_err(|_| ())?;
    match tokio::time::timeout(timeout, socket.send(Message::Text(text))).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}

async fn close(socket: &mut WebSocket, code: u16, reason: &'static str, timeout: Duration) {
    let frame = CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    };
    let _ = tokio::time::timeout(timeout, socket.send(Message::Close(Some(frame)))).await;
}

async fn tap_events(
    State(state): State<AppState>,
    Path(stream): Path<String>,
    Query(query): Query<TapQuery>,
) -> Response {
    let tap = match subscribe(&state, &stream, query) {
        Ok(subscription) => subscription,
        Err(response) => return *response,
    };
    let history = tap.history.into_iter();
    let events = futures_util::stream::unfold(
        (history, Some(tap.receiver)),
        |(mut history, receiver)| async move {
            let mut receiver = receiver?;
            if let Some(line) = history.next() {
                return Some((row_event(&line), (history, Some(receiver))));
            }
            let event = match receiver.recv().await {
                Some(TapMessage::Row(line)) => {
                    return Some((row_event(&line), (history, Some(receiver))))
                }
                Some(TapMessage::End) => Event::default().event("end").data("{}"),
                None => Event::default()
                    .event("dropped")
                    .data("{\"reason\":\"the client fell too far behind\"}"),
            };
            Some((Ok(event), (history, None)))
        },
    );
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

fn row_event(line: &[u8]) -> Result<Event, Infallible> {
    Ok(Event::default().data(std::str::from_utf8(line).unwrap_or("{}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_found_in_the_header_or_the_query() {
        let token = "0123456789abcdef";
        let mut headers = HeaderMap::new();
        assert!(!request_has_token(&headers, None, token));
        assert!(request_has_token(
            &headers,
            Some("history=all&token=0123456789abcdef"),
            token
        ));
        assert!(!request_has_token(
            &headers,
            Some("token=0123456789abcdeg"),
            token
        ));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer 0123456789abcdef"),
        );
        assert!(request_has_token(&headers, None, token));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer 0123456789abcde"),
        );
        assert!(!request_has_token(&headers, None, token));
    }

    #[test]
    fn queries_are_percent_decoded() {
        let pairs: Vec<_> = url_pairs("subject=S%2001&x=%zz&history=all").collect();
        assert_eq!(pairs[0], ("subject".into(), "S 01".into()));
        assert_eq!(pairs[1], ("x".into(), "%zz".into()));
        assert_eq!(pairs[2], ("history".into(), "all".into()));
    }
}
