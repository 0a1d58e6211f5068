//! Accepting connections within limits: at most `max_clients` open at once (more get 503), a
//! request's headers must arrive within the client timeout, and a client that leaves written
//! bytes unread that long is disconnected, so no client can hold the server or the pipeline.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::time::Sleep;

/// Largest request head a client may send, bytes.
pub const MAX_REQUEST_HEAD: usize = 16 * 1024;

/// Kernel send buffer per connection, bytes: bounds what one client can hold in the kernel (the
/// default grows to megabytes), and lets a client that stops reading be noticed.
pub const SEND_BUFFER: usize = 256 * 1024;

/// How long a stopping server waits for open responses to finish.
const DRAIN: Duration = Duration::from_secs(2);

/// Connection counters, for telemetry and tests.
#[derive(Debug, Default)]
pub struct ConnectionStats {
    /// Connections accepted and served.
    pub accepted: AtomicU64,
    /// Connections refused because `max_clients` were open.
    pub refused: AtomicU64,
    /// Connections closed because the client left written bytes unread too long.
    pub stalled: AtomicU64,
    /// Connections open now.
    pub open: AtomicU64,
}

/// Serves `app` on `listener` until `stop` turns true, then lets open responses finish for a
/// moment.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    max_clients: usize,
    client_timeout: Duration,
    stats: Arc<ConnectionStats>,
    mut stop: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(max_clients));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|stopped| *stopped) => break,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(_) => {
                // Out of file descriptors or similar: wait instead of spinning.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        limit_send_buffer(&stream);
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            stats.refused.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(refuse(stream));
            continue;
        };
        stats.accepted.fetch_add(1, Ordering::Relaxed);
        stats.open.fetch_add(1, Ordering::Relaxed);
        let io = TokioIo::new(Deadline::new(stream, client_timeout, stats.clone()));
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(client_timeout)
            .max_buf_size(MAX_REQUEST_HEAD.max(8192))
            .serve_connection(io, TowerToHyperService::new(app.clone()))
            .with_upgrades();
        let stats = stats.clone();
        let mut stopping = stop.clone();
        tokio::spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let stopped = tokio::select! {
                _ = connection.as_mut() => false,
                _ = stopping.wait_for(|stopped| *stopped) => true,
            };
            if stopped {
                connection.as_mut().graceful_shutdown();
                let _ = tokio::time::timeout(DRAIN, connection).await;
            }
            stats.open.fetch_sub(1, Ordering::Relaxed);
            drop(permit);
        });
    }
    drop(listener);
    let drained = tokio::time::Instant::now() + DRAIN;
    while stats.open.load(Ordering::Relaxed) > 0 && tokio::time::Instant::now() < drained {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Caps the kernel's send buffer of a connection at [`SEND_BUFFER`].
fn limit_send_buffer(stream: &TcpStream) {
    use std::os::fd::AsRawFd;
    let size = SEND_BUFFER as libc::c_int;
    // SAFETY: a valid socket descriptor and a pointer to a c_int of the size passed.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            &size as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// Answers a connection over the limit with 503 and closes it: after the reply it reads and
/// discards what the client sent (a lingering close, for at most a second and [`MAX_REQUEST_HEAD`]
/// bytes), because closing with its request unread would reset the connection and could destroy
/// the reply before the client reads it.
async fn refuse(mut stream: TcpStream) {
    use tokio::io::AsyncReadExt;
    let reply = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: 35\r\nconnection: close\r\n\r\ntoo many clients are connected now\n";
    let linger = async {
        stream.write_all(reply).await?;
        stream.shutdown().await?;
        let mut discarded = [0u8; 1024];
        let mut total = 0;
        while total < MAX_REQUEST_HEAD {
            match stream.read(&mut discarded).await? {
                0 => break,
                read => total += read,
            }
        }
        Ok::<(), std::io::Error>(())
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), linger).await;
}

/// A client connection whose writes fail once they have waited `timeout` for the client to read.
struct Deadline {
    inner: TcpStream,
    timeout: Duration,
    stalled_since: Option<Pin<Box<Sleep>>>,
    stats: Arc<ConnectionStats>,
}

impl Deadline {
    fn new(inner: TcpStream, timeout: Duration, stats: Arc<ConnectionStats>) -> Self {
        Deadline {
            inner,
            timeout,
            stalled_since: None,
            stats,
        }
    }

    /// `Pending` from the socket: starts (or checks) the stall timer.
    fn stalled<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        let timeout = self.timeout;
        let timer = self
            .stalled_since
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        if timer.as_mut().poll(cx).is_ready() {
            self.stats.stalled.fetch_add(1, Ordering::Relaxed);
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client stopped reading",
            )));
        }
        Poll::Pending
    }
}

impl AsyncRead for Deadline {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Deadline {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Ready(result) => {
                self.stalled_since = None;
                Poll::Ready(result)
            }
            Poll::Pending => self.stalled(cx),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.inner).poll_flush(cx) {
            Poll::Ready(result) => {
                self.stalled_since = None;
                Poll::Ready(result)
            }
            Poll::Pending => self.stalled(cx),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
