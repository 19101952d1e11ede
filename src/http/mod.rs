//! The HTTP server of `sysmon --headless` (`[http] enabled = true`): health, Prometheus metrics,
//! a small JSON API and a WebSocket stream, so that fleets of servers are watched by the tools
//! admins already run (Prometheus, Grafana, Alertmanager) instead of a fleet server of our own.
//!
//! Why it is built this way:
//! - The sampling loop must never wait for a client. It hands each sample to a [`Hub`]: the
//!   latest sample goes into a `tokio::sync::watch` slot (replaced, never queued) and each sample
//!   and alert event into a bounded `broadcast` channel. Neither can block the sender; a reader
//!   that falls behind loses messages and is disconnected (see [`ws`]).
//! - The server runs on its own thread with a current-thread tokio runtime: one core's worth of
//!   work at most, and a handler that panics takes down only its own connection task, never the
//!   sampling loop (which does not share a thread, a lock or a runtime with it).
//! - Database work (alerts, history, acknowledgements) runs on tokio's blocking pool with its own
//!   `Store` connection per request, exactly like the `sysmon alerts` / `history` commands, so an
//!   acknowledgement through the API reaches the daemon's tracker the way any operator's does.
//! - Binding happens before the thread starts, so a port in use or a bad address is a startup
//!   error (exit 1) and not a log line nobody reads.
//! - Connections are served by hyper directly rather than `axum::serve`, for three limits a
//!   client must not be able to lift: a request head must arrive within [`HEADER_TIMEOUT`] of
//!   the connection opening or of the previous answer (so idle keep-alive connections and
//!   clients that send their headers a byte at a time are closed), a request must be answered
//!   within [`REQUEST_TIMEOUT`] (a body trickled in is cut off), and at most
//!   [`MAX_CONNECTIONS`] are open at once; more wait in the kernel's listen queue. Each
//!   connection is a descriptor from the same limit the collector budgets for `/proc`.

mod api;
pub mod auth;
pub mod health;
pub mod metrics;
mod ws;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast, watch};
use tokio::task::JoinSet;

use crate::config::Config;
use crate::counters::Counters;
use crate::log::{Level, log};
use crate::model::{Event, Metric, Severity, Snapshot, StatusReport};

/// Messages a WebSocket client may fall behind by before it is dropped.
pub const STREAM_CAPACITY: usize = 64;
/// A request's head must be complete this long after the connection opened or its previous
/// answer was sent; otherwise the connection is closed.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// A request, its body included, must be answered within this long (408 otherwise).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections served at once. A WebSocket stream leaves the count once upgraded; it has its
/// own, smaller limit.
pub const MAX_CONNECTIONS: usize = 128;

/// The latest sample as the server shows it.
#[derive(Debug)]
pub struct Latest {
    /// The snapshot without its per-process list (the metrics need system and user figures).
    pub snapshot: Snapshot,
    pub status: StatusReport,
    /// `json::snapshot` of the full snapshot: the `sysmon --once --json` document.
    pub status_json: Arc<str>,
    /// Open (and acknowledged) alerts by severity, lowest first.
    pub open_by_severity: [u64; 4],
    /// Users currently over a limit for their `persistent_minutes`, with the metric.
    pub persistent: Vec<(String, Metric)>,
    /// When it was published (monotonic, for the health check).
    pub sampled: Instant,
}

/// Where the sampling loop publishes and the server reads.
pub struct Hub {
    latest: watch::Sender<Option<Arc<Latest>>>,
    stream: broadcast::Sender<Arc<str>>,
    pub counters: Arc<Counters>,
    started: Instant,
    interval_secs: AtomicU64,
}

impl Hub {
    pub fn new(counters: Arc<Counters>, interval: Duration) -> Hub {
        let (latest, _) = watch::channel(None);
        let (stream, _) = broadcast::channel(STREAM_CAPACITY);
        Hub {
            latest,
            stream,
            counters,
            started: Instant::now(),
            interval_secs: AtomicU64::new(interval.as_secs().max(1)),
        }
    }

    /// Called by the sampling loop after every sample; never blocks.
    pub fn publish(
        &self,
        snapshot: &Snapshot,
        status: &StatusReport,
        open_severities: impl IntoIterator<Item = Severity>,
        persistent: Vec<(String, Metric)>,
        events: &[Event],
        interval: Duration,
    ) {
        self.interval_secs
            .store(interval.as_secs().max(1), Ordering::Relaxed);
        let status_json: Arc<str> = crate::json::snapshot(snapshot, status).into();
        let mut open_by_severity = [0u64; 4];
        for s in open_severities {
            open_by_severity[s as usize] += 1;
        }
        let mut slim = Snapshot {
            at: snapshot.at,
            interval_secs: snapshot.interval_secs,
            host: snapshot.host.clone(),
            system: snapshot.system.clone(),
            users: snapshot.users.clone(),
            accounting: snapshot.accounting,
            processes: Vec::new(),
            gpu: snapshot.gpu.clone(),
        };
        for u in &mut slim.users {
            u.pids = Vec::new();
        }
        let latest = Arc::new(Latest {
            snapshot: slim,
            status: status.clone(),
            status_json: status_json.clone(),
            open_by_severity,
            persistent,
            sampled: Instant::now(),
        });
        self.latest.send_replace(Some(latest));
        // No receivers is not an error: nobody is streaming.
        let _ = self.stream.send(ws::message("sample", &status_json));
        for e in events {
            if let Ok(doc) = serde_json::to_string(e) {
                let _ = self.stream.send(ws::message("event", &doc));
            }
        }
    }

    pub fn latest(&self) -> Option<Arc<Latest>> {
        self.latest.borrow().clone()
    }

    pub fn interval(&self) -> Duration {
        Duration::from_secs(self.interval_secs.load(Ordering::Relaxed))
    }

    pub fn started(&self) -> Instant {
        self.started
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<str>> {
        self.stream.subscribe()
    }
}

/// What every handler sees.
#[derive(Clone)]
struct AppState {
    hub: Arc<Hub>,
    db: Arc<PathBuf>,
    token: Option<Arc<auth::Token>>,
    shutdown: watch::Receiver<bool>,
    /// WebSocket clients connected now.
    streams: Arc<std::sync::atomic::AtomicUsize>,
}

/// Resolves once the server is told to stop (or its sender is gone).
async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await.map(|_| ());
}

/// The running server; [`Server::stop`] ends it.
pub struct Server {
    shutdown: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
    pub addr: SocketAddr,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("http.listen {0:?} is not an address:port")]
    Address(String),
    #[error("http token: {0}")]
    Token(String),
    #[error(
        "refusing to serve HTTP on {0} without a token: it is reachable from other hosts; set \
         http.token or http.token_file"
    )]
    Exposed(SocketAddr),
    #[error("cannot listen on {addr} for HTTP: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot start the HTTP runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot start the HTTP thread: {0}")]
    Thread(std::io::Error),
}

impl StartError {
    /// A configuration mistake rather than the machine's state: restarting will not help.
    pub fn is_config(&self) -> bool {
        matches!(
            self,
            StartError::Address(_) | StartError::Token(_) | StartError::Exposed(_)
        )
    }
}

/// Bind `[http] listen` and serve on a thread of its own. Errors are startup errors.
pub fn start(config: &Config, db: &Path, hub: Arc<Hub>) -> Result<Server, StartError> {
    let addr: SocketAddr = config
        .http
        .listen
        .parse()
        .map_err(|_| StartError::Address(config.http.listen.clone()))?;
    let token = config
        .http_token()
        .map_err(StartError::Token)?
        .map(|t| Arc::new(auth::Token::new(&t)));
    if token.is_none() && !addr.ip().is_loopback() {
        return Err(StartError::Exposed(addr));
    }
    let listen = |source| StartError::Listen { addr, source };
    let listener = std::net::TcpListener::bind(addr).map_err(listen)?;
    listener.set_nonblocking(true).map_err(listen)?;
    let bound = listener.local_addr().unwrap_or(addr);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(StartError::Runtime)?;
    let (shutdown, shutdown_rx) = watch::channel(false);
    let state = AppState {
        hub,
        db: Arc::new(db.to_path_buf()),
        token,
        shutdown: shutdown_rx.clone(),
        streams: Arc::default(),
    };
    let router = api::router(state);
    let thread = std::thread::Builder::new()
        .name("http".into())
        .spawn(move || {
            runtime.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => l,
                    Err(e) => {
                        log(Level::Error, &format!("HTTP server stopped: {e}"));
                        return;
                    }
                };
                serve(listener, router, shutdown_rx).await;
            });
        })
        .map_err(StartError::Thread)?;
    log(Level::Notice, &format!("HTTP: listening on {bound}"));
    Ok(Server {
        shutdown,
        thread: Some(thread),
        addr: bound,
    })
}

/// Accept connections while a slot is free, until told to stop; then let the open ones finish
/// what they are answering.
async fn serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut connections = JoinSet::new();
    let mut accept_failing = false;
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            () = stopped(&mut stop) => break,
        };
        let tcp = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stopped(&mut stop) => break,
        };
        match tcp {
            Ok((tcp, _)) => {
                accept_failing = false;
                connections.spawn(connection(tcp, router.clone(), stop.clone(), slot));
            }
            Err(e) => {
                // Out of descriptors, most likely: wait for some to be freed.
                if !accept_failing {
                    log(
                        Level::Warning,
                        &format!("HTTP: cannot accept a connection: {e}"),
                    );
                    accept_failing = true;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

/// One connection, holding its slot until it closes.
async fn connection(
    tcp: tokio::net::TcpStream,
    router: axum::Router,
    mut stop: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
) {
    use hyper::service::Service as _;
    let router = hyper_util::service::TowerToHyperService::new(router);
    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let answer = router.call(req.map(axum::body::Body::new));
        async move {
            match tokio::time::timeout(REQUEST_TIMEOUT, answer).await {
                Ok(answer) => answer,
                Err(_) => Ok(api::request_timed_out()),
            }
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    let conn = builder
        .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
        .with_upgrades();
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        () = stopped(&mut stop) => conn.as_mut().graceful_shutdown(),
    }
    let _ = conn.await;
}

impl Server {
    /// Ask the server to stop and wait up to two seconds for it; a connection that does not
    /// close in time is abandoned with the process.
    pub fn stop(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(t) = self.thread.take() {
            let deadline = Instant::now() + Duration::from_secs(2);
            while !t.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if t.is_finished() {
                let _ = t.join();
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::broadcast::error::TryRecvError;

    #[test]
    fn publishing_never_waits_for_a_reader_that_does_not_read() {
        let hub = Hub::new(Arc::new(Counters::default()), Duration::from_secs(1));
        let mut idle = hub.subscribe();
        let status = StatusReport::default();
        let started = Instant::now();
        for _ in 0..(STREAM_CAPACITY * 4) {
            hub.publish(
                &Snapshot::default(),
                &status,
                [Severity::High, Severity::High, Severity::Low],
                vec![("alice".into(), Metric::Cpu)],
                &[],
                Duration::from_secs(1),
            );
        }
        assert!(started.elapsed() < Duration::from_secs(5));
        // The idle reader lost the oldest messages instead of holding the publisher up.
        assert!(matches!(idle.try_recv(), Err(TryRecvError::Lagged(_))));
        let latest = hub.latest().expect("latest");
        assert_eq!(latest.open_by_severity, [1, 0, 2, 0]);
        assert!(latest.status_json.starts_with("{\"schema\":2"));
    }

    #[test]
    fn stream_messages_wrap_the_document_with_its_type() {
        let m = ws::message("sample", "{\"a\":1}");
        let v: serde_json::Value = serde_json::from_str(&m).expect("json");
        assert_eq!(v["type"], "sample");
        assert_eq!(v["data"]["a"], 1);
    }
}
