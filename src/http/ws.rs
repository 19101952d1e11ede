//! `GET /ws`: the live stream. The client gets `{"type":"snapshot","data":…}` with the current
//! sample at once, then `{"type":"sample","data":…}` for every sample and
//! `{"type":"event","data":…}` for every alert event, `data` being the same documents as
//! `/api/v1/status` and the daemon's events.
//!
//! Clients are fed from a bounded broadcast channel. One that falls [`super::STREAM_CAPACITY`]
//! messages behind, or does not take a message within [`SEND_WAIT`], is disconnected: memory per
//! client stays bounded and the sampling loop, which only ever `send`s to the channel, never
//! notices.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tokio::sync::broadcast::error::RecvError;

use super::AppState;
use crate::log::{Level, log};

/// How long one message may take to be written to a client before it is dropped.
const SEND_WAIT: Duration = Duration::from_secs(10);
/// Clients send nothing we need; a large frame is refused.
const MAX_INCOMING: usize = 4096;
/// WebSocket clients served at once; more get a 503.
pub(super) const MAX_CLIENTS: usize = 32;

/// Counts a client while it is connected.
struct Slot(Arc<AtomicUsize>);

impl Slot {
    fn take(count: &Arc<AtomicUsize>) -> Option<Slot> {
        count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_CLIENTS).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot(count.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The stream's framing: `data` is already JSON.
pub(super) fn message(kind: &str, data: &str) -> Arc<str> {
    format!("{{\"type\":\"{kind}\",\"data\":{data}}}").into()
}

pub(super) async fn upgrade(State(state): State<AppState>, ws: WebSocketUpgrade) -> Response {
    let Some(slot) = Slot::take(&state.streams) else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({ "error": "too many stream clients" })),
        )
            .into_response();
    };
    ws.max_message_size(MAX_INCOMING)
        .max_frame_size(MAX_INCOMING)
        .on_upgrade(move |socket| async move {
            stream(socket, state).await;
            drop(slot);
        })
}

async fn send(socket: &mut WebSocket, text: &str) -> bool {
    matches!(
        tokio::time::timeout(SEND_WAIT, socket.send(Message::Text(text.into()))).await,
        Ok(Ok(()))
    )
}

async fn stream(mut socket: WebSocket, state: AppState) {
    // Subscribe before reading the current sample so that none falls in between.
    let mut rx = state.hub.subscribe();
    let mut shutdown = state.shutdown.clone();
    if let Some(latest) = state.hub.latest()
        && !send(&mut socket, &message("snapshot", &latest.status_json)).await
    {
        return;
    }
    loop {
        tokio::select! {
            msg = rx.recv() => match msg {
                Ok(text) => {
                    if !send(&mut socket, &text).await {
                        log(Level::Info, "HTTP: dropped a WebSocket client that stopped reading");
                        return;
                    }
                }
                Err(RecvError::Lagged(n)) => {
                    log(
                        Level::Info,
                        &format!("HTTP: dropped a WebSocket client {n} messages behind"),
                    );
                    let _ = tokio::time::timeout(
                        Duration::from_secs(1),
                        socket.send(Message::Close(None)),
                    )
                    .await;
                    return;
                }
                Err(RecvError::Closed) => return,
            },
            incoming = socket.recv() => match incoming {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            },
            () = super::stopped(&mut shutdown) => {
                let _ = tokio::time::timeout(
                    Duration::from_secs(1),
                    socket.send(Message::Close(None)),
                )
                .await;
                return;
            }
        }
    }
}
