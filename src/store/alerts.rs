//! The alert table, shared by the daemon (which records the tracker's decisions), every TUI and
//! the CLI (which list alerts, and acknowledge or resolve them).
//!
//! Why the rules below: the daemon's tracker and an operator in another process both change
//! alerts, and neither may undo the other.
//! - One row per occurrence; at most one row per key that is not resolved (a partial unique
//!   index), so two processes can never both hold an "open" alert for the same problem.
//! - The daemon's updates (repeat, escalate) only touch a row that is not resolved: an alert an
//!   operator resolved here stays resolved even if the daemon's tracker has not heard of it yet.
//!   When the condition clears and returns, the tracker opens a new occurrence: a new row.
//! - Operator actions are also appended to `operator_actions` with an increasing sequence number.
//!   The daemon polls it with a cursor and applies each action to its tracker exactly once
//!   (wall-clock times would not do: two actions can share a millisecond, and clocks step).

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, Row, Transaction, TransactionBehavior, params};
use serde::{Deserialize, Serialize};

use super::{Context, Store, StoreError};
use crate::model::{
    Alert, AlertDetails, AlertKey, AlertKind, AlertState, Event, Metric, PersistentEpisode,
    ResolvedBy, Severity, Timestamp,
};

/// An alert as stored, with who handled it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredAlert {
    pub id: i64,
    pub alert: Alert,
    pub acknowledged_at: Option<Timestamp>,
    pub acknowledged_by: Option<String>,
    /// `operator:NAME` (resolved with [`Store::resolve`]), `operator` (resolved through a tracker
    /// that had no name for it), `recovered` (the condition cleared), or `superseded` (the tracker
    /// opened a new occurrence while this row was still open, e.g. after it lost its state).
    pub resolved_by: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionKind {
    Ack,
    Resolve,
}

impl ActionKind {
    fn as_str(self) -> &'static str {
        match self {
            ActionKind::Ack => "ack",
            ActionKind::Resolve => "resolve",
        }
    }
}

/// An acknowledgement or resolution by an operator, for the daemon to apply to its tracker
/// (`tracker.acknowledge(&key)` / `tracker.resolve(&key)`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperatorAction {
    /// Its position in the sequence; the cursor after it.
    pub seq: i64,
    pub alert_id: i64,
    pub key: AlertKey,
    pub action: ActionKind,
    pub at: Timestamp,
    pub by: String,
}

const ALERT_COLUMNS: &str = "id, kind, subject, metric, severity, status, opened_at, updated_at, \
    last_notified_at, resolved_at, acknowledged_at, acknowledged_by, resolved_by, value, \
    threshold, peak, message, details";

impl Store {
    /// Alerts, newest first: open and acknowledged ones, or all with `include_resolved`.
    pub fn alerts(
        &self,
        include_resolved: bool,
        limit: usize,
    ) -> Result<Vec<StoredAlert>, StoreError> {
        let filter = if include_resolved {
            ""
        } else {
            "WHERE status != 'resolved'"
        };
        let sql = format!(
            "SELECT {ALERT_COLUMNS} FROM alerts {filter} ORDER BY opened_at DESC, id DESC LIMIT ?1"
        );
        query_alerts(&self.conn, &sql, params![super::to_i64(limit as u64)])
    }

    pub fn alert(&self, id: i64) -> Result<Option<StoredAlert>, StoreError> {
        let sql = format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = ?1");
        Ok(query_alerts(&self.conn, &sql, params![id])?
            .into_iter()
            .next())
    }

    /// Acknowledges an open alert, as `operator:BY`: no more repeats until its severity rises.
    /// False when the alert does not exist or is not open (already acknowledged, or resolved).
    pub fn acknowledge(&mut self, id: i64, at: Timestamp, by: &str) -> Result<bool, StoreError> {
        self.operator_action(
            id,
            ActionKind::Ack,
            at,
            by,
            "UPDATE alerts SET status = 'acknowledged', acknowledged_at = ?2, \
             acknowledged_by = 'operator:' || ?3, updated_at = MAX(updated_at, ?2) \
             WHERE id = ?1 AND status = 'open' RETURNING kind, subject, metric",
        )
    }

    /// Resolves an alert that is open or acknowledged, as `operator:BY`. False when it does not
    /// exist or is already resolved. The daemon will not re-open it: it opens a new occurrence
    /// only once the condition has cleared and returned.
    pub fn resolve(&mut self, id: i64, at: Timestamp, by: &str) -> Result<bool, StoreError> {
        self.operator_action(
            id,
            ActionKind::Resolve,
            at,
            by,
            "UPDATE alerts SET status = 'resolved', resolved_at = ?2, \
             resolved_by = 'operator:' || ?3, updated_at = MAX(updated_at, ?2) \
             WHERE id = ?1 AND status != 'resolved' RETURNING kind, subject, metric",
        )
    }

    fn operator_action(
        &mut self,
        id: i64,
        action: ActionKind,
        at: Timestamp,
        by: &str,
        update: &str,
    ) -> Result<bool, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .ctx("starting an operator action")?;
        let key: Option<(String, String, String)> = tx
            .query_row(update, params![id, at.0, by], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()
            .ctx("updating the alert")?;
        let Some((kind, subject, metric)) = key else {
            return Ok(false);
        };
        tx.execute(
            "INSERT INTO operator_actions (alert_id, kind, subject, metric, action, at, by) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![id, kind, subject, metric, action.as_str(), at.0, by],
        )
        .ctx("recording the operator action")?;
        tx.commit().ctx("committing the operator action")?;
        Ok(true)
    }

    /// Operator actions after `cursor`, oldest first, and the cursor to pass next time (the
    /// same cursor when there are none). Start from [`Store::resume_cursor`].
    pub fn operator_actions_since(
        &self,
        cursor: i64,
    ) -> Result<(Vec<OperatorAction>, i64), StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT seq, alert_id, kind, subject, metric, action, at, by \
                 FROM operator_actions WHERE seq > ?1 ORDER BY seq",
            )
            .ctx("preparing the operator actions query")?;
        type Raw = (i64, i64, String, String, String, String, i64, String);
        let rows: Vec<Raw> = super::rows(&mut stmt, [cursor], "reading operator actions")?;
        let mut out = Vec::with_capacity(rows.len());
        for (seq, alert_id, kind, subject, metric, action, at, by) in rows {
            let action = match action.as_str() {
                "ack" => ActionKind::Ack,
                "resolve" => ActionKind::Resolve,
                _ => return Err(corrupt("operator action", action)),
            };
            out.push(OperatorAction {
                seq,
                alert_id,
                key: AlertKey::new(parse_kind(&kind)?, subject, parse_metric(&metric)?),
                action,
                at: Timestamp(at),
                by,
            });
        }
        let next = out.last().map_or(cursor, |a| a.seq);
        self.handed_out_cursor
            .set(self.handed_out_cursor.get().max(next));
        Ok((out, next))
    }

    /// The sequence number of the latest operator action ever recorded (0 if none). Unlike
    /// `MAX(seq)` it does not go down when retention deletes old actions.
    pub(super) fn latest_operator_seq(&self) -> Result<i64, StoreError> {
        self.conn
            .query_row(
                "SELECT seq FROM sqlite_sequence WHERE name = 'operator_actions'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .optional()
            .ctx("reading the operator action sequence")
            .map(|s| s.unwrap_or(0))
    }
}

/// Applies the tracker's events to the alert and episode tables; returns the alerts opened.
pub(super) fn apply_events(
    tx: &Transaction<'_>,
    events: &[Event],
    at: Timestamp,
) -> Result<BTreeMap<AlertKey, i64>, StoreError> {
    let mut opened = BTreeMap::new();
    for event in events {
        match event {
            Event::AlertOpened(a) => {
                let id = open_alert(tx, a, at)?;
                opened.insert(a.key.clone(), id);
            }
            Event::AlertRepeated(a) => update_open(tx, a, false)?,
            Event::AlertEscalated { alert, .. } => update_open(tx, alert, true)?,
            Event::AlertAcknowledged(a) => {
                tx.execute(
                    "UPDATE alerts SET status = 'acknowledged', acknowledged_at = ?4, \
                     acknowledged_by = 'operator', updated_at = MAX(updated_at, ?4) \
                     WHERE kind = ?1 AND subject = ?2 AND metric = ?3 AND status = 'open'",
                    params![
                        a.key.kind.as_str(),
                        a.key.subject,
                        a.key.metric.as_str(),
                        a.updated_at.0
                    ],
                )
                .ctx("acknowledging an alert")?;
            }
            Event::AlertResolved { alert, by } => {
                let by = match by {
                    ResolvedBy::Recovered => "recovered",
                    ResolvedBy::Operator => "operator",
                };
                let resolved_at = alert.resolved_at.unwrap_or(at);
                tx.execute(
                    "UPDATE alerts SET status = 'resolved', resolved_at = ?4, resolved_by = ?5, \
                     updated_at = MAX(updated_at, ?4) \
                     WHERE kind = ?1 AND subject = ?2 AND metric = ?3 AND status != 'resolved'",
                    params![
                        alert.key.kind.as_str(),
                        alert.key.subject,
                        alert.key.metric.as_str(),
                        resolved_at.0,
                        by
                    ],
                )
                .ctx("resolving an alert")?;
            }
            Event::PersistentStarted(ep) | Event::PersistentEnded(ep) => save_episode(tx, ep)?,
            Event::Recovery(_) | Event::StatusChanged { .. } => {}
        }
    }
    Ok(opened)
}

/// Inserts a new occurrence. A row still open for the key (the tracker lost track of it, e.g.
/// its saved state could not be read) is closed as `superseded` first.
fn open_alert(tx: &Transaction<'_>, a: &Alert, at: Timestamp) -> Result<i64, StoreError> {
    tx.execute(
        "UPDATE alerts SET status = 'resolved', resolved_at = ?4, resolved_by = 'superseded', \
         updated_at = MAX(updated_at, ?4) \
         WHERE kind = ?1 AND subject = ?2 AND metric = ?3 AND status != 'resolved'",
        params![
            a.key.kind.as_str(),
            a.key.subject,
            a.key.metric.as_str(),
            at.0
        ],
    )
    .ctx("closing a stale open alert")?;
    insert_alert(tx, a)
}

fn insert_alert(tx: &Transaction<'_>, a: &Alert) -> Result<i64, StoreError> {
    let details = serde_json::to_string(&a.details).ctx("encoding alert details")?;
    tx.prepare_cached(
        "INSERT INTO alerts (kind, subject, metric, severity, status, opened_at, updated_at, \
         last_notified_at, resolved_at, value, threshold, peak, message, details) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )
    .ctx("preparing an alert insert")?
    .execute(params![
        a.key.kind.as_str(),
        a.key.subject,
        a.key.metric.as_str(),
        a.severity.as_str(),
        state_str(a.state),
        a.opened_at.0,
        a.updated_at.0,
        a.last_notified_at.0,
        a.resolved_at.map(|t| t.0),
        a.value,
        a.threshold,
        a.peak,
        a.message,
        details,
    ])
    .ctx("inserting an alert")?;
    Ok(tx.last_insert_rowid())
}

/// A repeat or an escalation of the key's unresolved row. Nothing happens when that row was
/// resolved meanwhile (by an operator, in another process); a row is inserted only when the
/// key has no row at all (a tracker restored over a new file).
fn update_open(tx: &Transaction<'_>, a: &Alert, escalated: bool) -> Result<(), StoreError> {
    let details = serde_json::to_string(&a.details).ctx("encoding alert details")?;
    let changed = tx
        .prepare_cached(
            "UPDATE alerts SET severity = ?4, value = ?5, threshold = ?6, peak = MAX(peak, ?7), \
             message = ?8, details = ?9, updated_at = MAX(updated_at, ?10), \
             last_notified_at = MAX(last_notified_at, ?11), \
             status = CASE WHEN ?12 THEN 'open' ELSE status END \
             WHERE kind = ?1 AND subject = ?2 AND metric = ?3 AND status != 'resolved'",
        )
        .ctx("preparing an alert update")?
        .execute(params![
            a.key.kind.as_str(),
            a.key.subject,
            a.key.metric.as_str(),
            a.severity.as_str(),
            a.value,
            a.threshold,
            a.peak,
            a.message,
            details,
            a.updated_at.0,
            a.last_notified_at.0,
            escalated,
        ])
        .ctx("updating an alert")?;
    if changed == 0 && row_for_key(tx, &a.key)?.is_none() {
        insert_alert(tx, a)?;
    }
    Ok(())
}

/// The key's unresolved row, or else its latest.
pub(super) fn row_for_key(conn: &Connection, key: &AlertKey) -> Result<Option<i64>, StoreError> {
    conn.prepare_cached(
        "SELECT id FROM alerts WHERE kind = ?1 AND subject = ?2 AND metric = ?3 \
         ORDER BY status = 'resolved', id DESC LIMIT 1",
    )
    .ctx("preparing an alert look-up")?
    .query_row(
        params![key.kind.as_str(), key.subject, key.metric.as_str()],
        |r| r.get(0),
    )
    .optional()
    .ctx("looking up an alert by key")
}

fn save_episode(tx: &Transaction<'_>, ep: &PersistentEpisode) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO episodes (user, metric, threshold, started_at, ended_at, duration_secs, \
         peak, average, samples) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
         ON CONFLICT (user, metric, started_at) DO UPDATE SET threshold = excluded.threshold, \
         ended_at = excluded.ended_at, duration_secs = excluded.duration_secs, \
         peak = excluded.peak, average = excluded.average, samples = excluded.samples",
    )
    .ctx("preparing an episode write")?
    .execute(params![
        ep.user,
        ep.metric.as_str(),
        ep.threshold,
        ep.started_at.0,
        ep.ended_at.map(|t| t.0),
        super::to_i64(ep.duration_secs),
        ep.peak,
        ep.average,
        super::to_i64(ep.samples),
    ])
    .ctx("saving a persistent-user episode")?;
    Ok(())
}

/// An alert row's columns before their text is parsed.
struct AlertRow {
    id: i64,
    kind: String,
    subject: String,
    metric: String,
    severity: String,
    status: String,
    opened_at: i64,
    updated_at: i64,
    last_notified_at: i64,
    resolved_at: Option<i64>,
    acknowledged_at: Option<i64>,
    acknowledged_by: Option<String>,
    resolved_by: Option<String>,
    value: f64,
    threshold: f64,
    peak: f64,
    message: String,
    details: String,
}

impl AlertRow {
    fn read(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(AlertRow {
            id: r.get(0)?,
            kind: r.get(1)?,
            subject: r.get(2)?,
            metric: r.get(3)?,
            severity: r.get(4)?,
            status: r.get(5)?,
            opened_at: r.get(6)?,
            updated_at: r.get(7)?,
            last_notified_at: r.get(8)?,
            resolved_at: r.get(9)?,
            acknowledged_at: r.get(10)?,
            acknowledged_by: r.get(11)?,
            resolved_by: r.get(12)?,
            value: r.get(13)?,
            threshold: r.get(14)?,
            peak: r.get(15)?,
            message: r.get(16)?,
            details: r.get(17)?,
        })
    }

    fn parse(self) -> Result<StoredAlert, StoreError> {
        let details: AlertDetails =
            serde_json::from_str(&self.details).ctx("reading an alert's details")?;
        Ok(StoredAlert {
            id: self.id,
            alert: Alert {
                key: AlertKey::new(
                    parse_kind(&self.kind)?,
                    self.subject,
                    parse_metric(&self.metric)?,
                ),
                severity: parse_severity(&self.severity)?,
                state: parse_state(&self.status)?,
                opened_at: Timestamp(self.opened_at),
                last_notified_at: Timestamp(self.last_notified_at),
                updated_at: Timestamp(self.updated_at),
                resolved_at: self.resolved_at.map(Timestamp),
                value: self.value,
                threshold: self.threshold,
                peak: self.peak,
                message: self.message,
                details,
            },
            acknowledged_at: self.acknowledged_at.map(Timestamp),
            acknowledged_by: self.acknowledged_by,
            resolved_by: self.resolved_by,
        })
    }
}

/// Runs a query selecting [`ALERT_COLUMNS`].
pub(super) fn query_alerts(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<StoredAlert>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).ctx("preparing an alert query")?;
    let rows = stmt
        .query_map(params, AlertRow::read)
        .ctx("reading alerts")?
        .collect::<Result<Vec<_>, _>>()
        .ctx("reading alerts")?;
    rows.into_iter().map(AlertRow::parse).collect()
}

pub(super) fn alert_columns() -> &'static str {
    ALERT_COLUMNS
}

fn state_str(s: AlertState) -> &'static str {
    match s {
        AlertState::Open => "open",
        AlertState::Acknowledged => "acknowledged",
        AlertState::Resolved => "resolved",
    }
}

fn corrupt(what: &'static str, value: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        what,
        value: value.into(),
    }
}

pub(super) fn parse_kind(s: &str) -> Result<AlertKind, StoreError> {
    AlertKind::ALL
        .into_iter()
        .find(|k| k.as_str() == s)
        .ok_or_else(|| corrupt("alert kind", s))
}

pub(super) fn parse_metric(s: &str) -> Result<Metric, StoreError> {
    Metric::ALL
        .into_iter()
        .find(|m| m.as_str() == s)
        .ok_or_else(|| corrupt("metric", s))
}

pub(super) fn parse_severity(s: &str) -> Result<Severity, StoreError> {
    [
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ]
    .into_iter()
    .find(|v| v.as_str() == s)
    .ok_or_else(|| corrupt("severity", s))
}

fn parse_state(s: &str) -> Result<AlertState, StoreError> {
    [
        AlertState::Open,
        AlertState::Acknowledged,
        AlertState::Resolved,
    ]
    .into_iter()
    .find(|v| state_str(*v) == s)
    .ok_or_else(|| corrupt("alert status", s))
}
