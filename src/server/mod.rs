//! The live server: a running pipeline's streams over HTTP, on axum and tokio.
//!
//! Every named stream can be tapped as WebSocket or Server-Sent Events (one JSON object per row,
//! the jsonl sink's text), its latest rows read as JSON, the pipeline's schema read as JSON, and
//! the dashboard page opened in a browser; `/metrics` serves Prometheus text. The server runs
//! on its own threads and reads only the [`TapHub`] and the run's counters, so nothing a client
//! does can slow the pipeline: a client that falls behind is disconnected.
//!
//! ```no_run
//! use std::sync::Arc;
//! use heloflow::server::{self, config::ServerConfig};
//! use heloflow::sinks::tap::TapHub;
//! use heloflow::telemetry::Telemetry;
//!
//! let pipeline = heloflow::pipeline::load(std::path::Path::new("pipelines/demo.toml")).unwrap();
//! let config = ServerConfig::default();
//! let hub = Arc::new(TapHub::new(&pipeline.streams, config.taps));
//! let telemetry = Arc::new(Telemetry::new(&pipeline));
//! // The run fills `telemetry.metrics()` (RunOptions::metrics); the server reads them.
//! let running = server::start(&config, &pipeline, hub, telemetry).unwrap();
//! println!("dashboard at http://{}/", running.address());
//! running.stop();
//! ```

pub mod client;
pub mod config;
mod connection;
pub mod dashboard;
mod routes;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;

use serde_json::{json, Value};
use tokio::sync::watch;

use crate::pipeline::Pipeline;
use crate::sinks::tap::TapHub;
pub use connection::ConnectionStats;

/// The figures `/api/status` and `/metrics` serve, read at request time.
pub trait LiveFigures: Send + Sync {
    /// Session figures for the dashboard, as JSON.
    fn status_json(&self) -> Value;
    /// Prometheus text exposition.
    fn prometheus_text(&self) -> String;
}

/// The pipeline's schema as `/api/schema` serves it (the server fills in subjects seen so far).
pub fn schema_json(pipeline: &Pipeline) -> Value {
    let mut producers: Vec<(&str, &str)> = vec![("source", ""); pipeline.streams.len()];
    for source in &pipeline.sources {
        for &id in &source.outputs {
            producers[id as usize] = ("source", source.config.kind());
        }
    }
    for operator in &pipeline.operators {
        producers[operator.output as usize] = ("operator", operator.config.kind());
    }
    let streams: Vec<Value> = pipeline
        .streams
        .iter()
        .enumerate()
        .map(|(id, schema)| {
            json!({
                "name": schema.name,
                "id": id,
                "producer": producers[id].0,
                "kind": producers[id].1,
                "format": schema.format.lsl_name(),
                "modality": schema.modality.name(),
                "rate_hz": schema.rate.hz(),
                "channels": schema.channels.iter().map(|c| json!({
                    "label": c.label, "unit": c.unit, "type": c.kind,
                })).collect::<Vec<_>>(),
                "subjects": schema.subjects,
            })
        })
        .collect();
    let models: Vec<Value> = pipeline
        .operators
        .iter()
        .filter_map(|node| {
            let model = node.config.model()?;
            let manifest = &model.manifest.manifest;
            Some(json!({
                "operator": node.name,
                "name": manifest.name,
                "version": manifest.version,
                "labels": manifest.labels,
                "window_s": manifest.window_s,
                "hop_s": manifest.hop_s,
                "provider": match model.session.provider {
                    crate::model::onnx::Provider::Cpu => "cpu",
                    crate::model::onnx::Provider::Cuda => "cuda",
                },
            }))
        })
        .collect();
    json!({
        "pipeline": pipeline.name,
        "description": pipeline.description,
        "streams": streams,
        "models": models,
    })
}

/// A started server; [`RunningServer::stop`] closes it (open taps get their end first).
pub struct RunningServer {
    address: SocketAddr,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
    /// Connection counters.
    pub connections: Arc<ConnectionStats>,
}

impl RunningServer {
    /// The address it listens on (with the real port when port 0 was asked for).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Stops accepting, lets open responses finish for a moment, and waits for the server.
    pub fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Threads the server's runtime uses: serving is light, and the pipeline needs the cores.
const SERVER_THREADS: usize = 1;

/// Starts the server on `config.listen`, serving `pipeline`'s streams from `hub` and `figures`.
/// Fails when the address cannot be bound or a non-loopback address has no token.
pub fn start(
    config: &config::ServerConfig,
    pipeline: &Pipeline,
    hub: Arc<TapHub>,
    figures: Arc<dyn LiveFigures>,
) -> Result<RunningServer, String> {
    let access = config.access()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(SERVER_THREADS)
        .thread_name("server")
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the server's runtime: {e}"))?;
    let bind = |address: SocketAddr| runtime.block_on(tokio::net::TcpListener::bind(address));
    let listener = match bind(config.listen) {
        Err(error) if error.kind() == std::io::ErrorKind::AddrInUse && config.any_port_if_taken => {
            bind(SocketAddr::new(config.listen.ip(), 0))
        }
        other => other,
    }
    .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let address = listener
        .local_addr()
        .map_err(|e| format!("cannot read the server's address: {e}"))?;
    let connections = Arc::new(ConnectionStats::default());
    let state = routes::AppState {
        hub,
        schema: Arc::new(schema_json(pipeline)),
        figures,
        access: Arc::new(access),
        client_timeout: config.client_timeout,
        connections: connections.clone(),
    };
    let app = routes::router(state);
    let (stop, stopped) = watch::channel(false);
    let stats = connections.clone();
    let (max_clients, timeout) = (config.max_clients, config.client_timeout);
    let thread = std::thread::Builder::new()
        .name("server".into())
        .spawn(move || {
            runtime.block_on(connection::serve(
                listener,
                app,
                max_clients,
                timeout,
                stats,
                stopped,
            ));
            runtime.shutdown_timeout(std::time::Duration::from_secs(1));
        })
        .map_err(|e| format!("cannot start the server thread: {e}"))?;
    Ok(RunningServer {
        address,
        stop,
        thread: Some(thread),
        connections,
    })
}

/// Open connections now, for tests and telemetry.
pub fn open_connections(server: &RunningServer) -> u64 {
    server.connections.open.load(Ordering::Relaxed)
}
