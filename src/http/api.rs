//! The routes and the JSON API handlers.
//!
//! Every answer reuses what the command line prints (`json::snapshot`, `json::alerts_json`,
//! `store::history_query` and the store's `History`), so the API and `sysmon … --json` cannot
//! drift apart. Bad input is a 400 with a one-line JSON `error`; database trouble a 500 whose
//! detail goes to the log, not to the client.

use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

use super::{AppState, auth, health, metrics, ws};
use crate::counters::Counters;
use crate::log::{Level, log};
use crate::model::Timestamp;
use crate::store::Store;

/// Who the store records for acknowledgements and resolutions made through the API.
const API_OPERATOR: &str = "api";
/// How long a request waits for the daemon's database lock.
const DB_WAIT: std::time::Duration = std::time::Duration::from_secs(2);
/// Longest user name accepted in a query.
const MAX_USER_LEN: usize = 256;
/// Most alerts one request returns.
const MAX_ALERTS: usize = 10_000;

pub(super) fn router(state: AppState) -> Router {
    // Without a token (loopback only) /metrics stays open, like most exporters, but the API and
    // the stream are refused: on a shared server every local user reaches loopback, and they
    // show every user's command lines and can close alerts.
    let metrics = Router::new()
        .route("/metrics", get(metrics_handler))
        .route_layer(middleware::from_fn_with_state(state.clone(), auth::require));
    let protected = Router::new()
        .route("/api/v1/status", get(status))
        .route("/api/v1/alerts", get(alerts))
        .route("/api/v1/alerts/{id}/ack", post(ack))
        .route("/api/v1/alerts/{id}/resolve", post(resolve))
        .route("/api/v1/history", get(history))
        .route("/ws", get(ws::upgrade))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_configured,
        ));
    Router::new()
        .route("/health", get(health_handler))
        .merge(metrics)
        .merge(protected)
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such endpoint").into_response() })
        .with_state(state)
}

/// A refusal or failure: the status and a one-line message for the client.
pub(super) struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, axum::Json(json!({ "error": self.1 }))).into_response()
    }
}

/// The answer to a request that took longer than [`super::REQUEST_TIMEOUT`].
pub(super) fn request_timed_out() -> Response {
    error(StatusCode::REQUEST_TIMEOUT, "the request took too long").into_response()
}

fn error(code: StatusCode, message: &str) -> ApiError {
    ApiError(code, message.to_string())
}

type Answer = Result<Response, ApiError>;

fn json_text(code: StatusCode, body: String) -> Response {
    (code, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Run store work on the blocking pool with its own connection; errors are logged and become a
/// bare 500.
async fn with_store<T: Send + 'static>(
    state: &AppState,
    what: &'static str,
    work: impl FnOnce(&mut Store) -> Result<T, crate::store::StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    let db = state.db.clone();
    let joined = tokio::task::spawn_blocking(move || {
        let mut store = Store::open(&db)?;
        store.set_busy_timeout(DB_WAIT)?;
        work(&mut store)
    })
    .await;
    match joined {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => {
            log(Level::Warning, &format!("HTTP: {what}: {e}"));
            Err(error(StatusCode::INTERNAL_SERVER_ERROR, "database error"))
        }
        Err(e) => {
            log(Level::Error, &format!("HTTP: {what} failed: {e}"));
            Err(error(StatusCode::INTERNAL_SERVER_ERROR, "internal error"))
        }
    }
}

async fn health_handler(State(state): State<AppState>) -> Response {
    let hub = &state.hub;
    let latest = hub.latest();
    let v = health::verdict(
        Instant::now(),
        hub.started(),
        latest.as_ref().map(|l| l.sampled),
        hub.interval(),
    );
    let backlog = with_store(&state, "health", |s| s.stats().map(|st| st.outbox_backlog))
        .await
        .ok();
    let c = &hub.counters;
    let failing = c.store_failing.load(std::sync::atomic::Ordering::Relaxed);
    let damaged = c.store_damaged.load(std::sync::atomic::Ordering::Relaxed);
    let doc = json!({
        "status": match (v.healthy, damaged) {
            (false, _) => "stale",
            (true, true) => "degraded",
            (true, false) => "ok",
        },
        "engine": {
            "status": latest.as_ref().map(|l| l.status.status),
            "samples": Counters::get(&c.samples),
            "last_sample": latest.as_ref().map(|l| l.snapshot.at),
            "last_sample_age_secs": v.last_sample_age_secs,
            "interval_secs": hub.interval().as_secs(),
        },
        "database": {
            "state": match (damaged, failing) {
                (true, _) => "damaged",
                (false, true) => "failing",
                (false, false) => "ok",
            },
            "buffered_samples": Counters::get(&c.buffered),
            "errors": Counters::get(&c.store_errors),
        },
        "outbox": {
            "backlog": backlog,
            "sent": Counters::get(&c.emails_sent),
            "failed": Counters::get(&c.emails_failed),
        },
    });
    let code = if v.healthy && !damaged {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, axum::Json(doc)).into_response()
}

async fn metrics_handler(State(state): State<AppState>) -> Response {
    let latest = state.hub.latest();
    let text = metrics::render(latest.as_deref(), &state.hub.counters, Instant::now());
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response()
}

async fn status(State(state): State<AppState>) -> Answer {
    match state.hub.latest() {
        Some(l) => Ok(json_text(StatusCode::OK, l.status_json.to_string())),
        None => Err(error(StatusCode::SERVICE_UNAVAILABLE, "no sample yet")),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertsParams {
    /// Include resolved alerts.
    #[serde(default)]
    all: bool,
}

/// Query parameters, with a 400 that names the problem instead of axum's default text.
fn params<T: serde::de::DeserializeOwned>(
    q: Result<Query<T>, axum::extract::rejection::QueryRejection>,
) -> Result<T, ApiError> {
    q.map(|Query(p)| p).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            &crate::sanitize::clean(&e.body_text()),
        )
    })
}

async fn alerts(
    State(state): State<AppState>,
    q: Result<Query<AlertsParams>, axum::extract::rejection::QueryRejection>,
) -> Answer {
    let p = params(q)?;
    let rows = with_store(&state, "alerts", move |s| s.alerts(p.all, MAX_ALERTS)).await?;
    Ok((StatusCode::OK, axum::Json(crate::json::alerts_json(&rows))).into_response())
}

/// An alert id from the path: a positive integer.
pub(super) fn parse_id(raw: &str) -> Result<i64, String> {
    match raw.parse::<i64>() {
        Ok(id) if id > 0 => Ok(id),
        _ => Err(format!(
            "alert id must be a positive integer, not {:?}",
            crate::sanitize::clean(&raw.chars().take(40).collect::<String>())
        )),
    }
}

#[derive(Clone, Copy)]
enum Action {
    Ack,
    Resolve,
}

/// The body of an acknowledgement or resolution: nothing, or the empty JSON object. Anything
/// else is a client that believes it is passing an option, and is refused rather than ignored.
pub(super) fn check_action_body(body: &[u8]) -> Result<(), String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(m)) if m.is_empty() => Ok(()),
        Ok(serde_json::Value::Object(m)) => Err(format!(
            "the body takes no fields (got {:?}); send nothing or {{}}",
            crate::sanitize::clean(&m.keys().next().cloned().unwrap_or_default())
        )),
        Ok(_) => Err("the body must be empty or the JSON object {}".into()),
        Err(e) => Err(format!(
            "the body is not JSON ({}); send nothing or {{}}",
            crate::sanitize::clean(&e.to_string())
        )),
    }
}

async fn act(state: AppState, raw: String, body: &[u8], action: Action) -> Answer {
    let id = parse_id(&raw).map_err(|m| error(StatusCode::BAD_REQUEST, &m))?;
    check_action_body(body).map_err(|m| error(StatusCode::BAD_REQUEST, &m))?;
    let done = with_store(&state, "alert action", move |s| {
        let now = Timestamp::now();
        match action {
            Action::Ack => s.acknowledge(id, now, API_OPERATOR),
            Action::Resolve => s.resolve(id, now, API_OPERATOR),
        }
    })
    .await?;
    let (word, state_name) = match action {
        Action::Ack => ("acknowledged", "acknowledged"),
        Action::Resolve => ("resolved", "resolved"),
    };
    if !done {
        return Err(error(
            StatusCode::NOT_FOUND,
            &format!("no open alert with id {id}"),
        ));
    }
    log(
        Level::Notice,
        &format!("HTTP: alert {id} {word} via the API"),
    );
    Ok((
        StatusCode::OK,
        axum::Json(json!({ "id": id, "state": state_name })),
    )
        .into_response())
}

async fn ack(State(state): State<AppState>, Path(id): Path<String>, body: Bytes) -> Answer {
    act(state, id, &body, Action::Ack).await
}

async fn resolve(State(state): State<AppState>, Path(id): Path<String>, body: Bytes) -> Answer {
    act(state, id, &body, Action::Resolve).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HistoryParams {
    since: Option<String>,
    until: Option<String>,
    user: Option<String>,
}

/// The store query for `/api/v1/history`, as `sysmon history` builds it (`since` defaults to 6h).
pub(super) fn history_query(
    p: HistoryParams,
    now: Timestamp,
) -> Result<crate::store::HistoryQuery, String> {
    if let Some(u) = &p.user
        && (u.is_empty() || u.len() > MAX_USER_LEN || !crate::sanitize::is_clean(u))
    {
        return Err("user must be a user name".into());
    }
    let q = crate::store::history_query(
        p.since.as_deref().unwrap_or("6h"),
        p.until.as_deref(),
        p.user,
        now,
    );
    q.map_err(|e| crate::sanitize::clean(&e))
}

async fn history(
    State(state): State<AppState>,
    q: Result<Query<HistoryParams>, axum::extract::rejection::QueryRejection>,
) -> Answer {
    let query = history_query(params(q)?, Timestamp::now())
        .map_err(|m| error(StatusCode::BAD_REQUEST, &m))?;
    let h = with_store(&state, "history", move |s| s.history(&query)).await?;
    match serde_json::to_string(&h) {
        Ok(body) => Ok(json_text(StatusCode::OK, body)),
        Err(e) => {
            log(Level::Error, &format!("HTTP: history: {e}"));
            Err(error(StatusCode::INTERNAL_SERVER_ERROR, "internal error"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_ids_must_be_positive_integers() {
        assert_eq!(parse_id("42"), Ok(42));
        assert!(parse_id("0").is_err());
        assert!(parse_id("-1").is_err());
        assert!(parse_id("4x").is_err());
        assert!(parse_id("99999999999999999999").is_err());
        let m = parse_id("\x1b[2J").unwrap_err();
        assert!(!m.contains('\x1b'), "{m}");
    }

    #[test]
    fn an_action_body_is_empty_or_the_empty_object() {
        for ok in ["", "  \n", "{}", " { } "] {
            assert_eq!(check_action_body(ok.as_bytes()), Ok(()), "{ok:?}");
        }
        for bad in ["{", "[]", "null", "\"x\"", "{\"by\": \"me\"}", "\x1b[2J"] {
            let e = check_action_body(bad.as_bytes()).expect_err(bad);
            assert!(!e.contains('\x1b'), "{e}");
        }
    }

    #[test]
    fn history_queries_are_parsed_like_the_command_line() {
        let now = Timestamp(1_800_000_000_000);
        let q = history_query(HistoryParams::default(), now).expect("defaults");
        assert_eq!((q.since.0, q.until.0), (now.0 - 6 * 3_600_000, now.0));
        let q = history_query(
            HistoryParams {
                since: Some("2h".into()),
                until: Some("1h".into()),
                user: Some("alice".into()),
            },
            now,
        )
        .expect("explicit");
        assert_eq!(q.since.0, now.0 - 2 * 3_600_000);
        assert_eq!(q.until.0, now.0 - 3_600_000);
        assert_eq!(q.user.as_deref(), Some("alice"));
        let bad = |p: HistoryParams| history_query(p, now).is_err();
        assert!(bad(HistoryParams {
            since: Some("yesterday-ish".into()),
            ..Default::default()
        }));
        assert!(bad(HistoryParams {
            since: Some("1h".into()),
            until: Some("2h".into()),
            ..Default::default()
        }));
        assert!(bad(HistoryParams {
            user: Some("a\nb".into()),
            ..Default::default()
        }));
        assert!(bad(HistoryParams {
            user: Some(String::new()),
            ..Default::default()
        }));
    }
}
