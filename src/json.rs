//! JSON documents that more than one front end serves, so they cannot drift apart: what
//! `sysmon --once --json` and `sysmon alerts --json` print is what the HTTP API answers.
//!
//! The snapshot document is a contract (README, "JSON output"): its top-level keys are `schema`,
//! `host`, `at`, `time`, `interval_secs`, `system`, `users`, `accounting`, `processes` and
//! `status`, and new fields may be added but none removed, renamed or given a new meaning
//! without bumping `schema` (2: a user's `memory_bytes` counts a shared page once).

use serde::Serialize;
use serde_json::json;

use crate::model::{Snapshot, StatusReport, Timestamp};
use crate::store::StoredAlert;
use crate::time::rfc3339;

/// The JSON of `sysmon alerts --json` and `GET /api/v1/alerts`: one object per alert.
pub fn alerts_json(rows: &[StoredAlert]) -> serde_json::Value {
    rows.iter()
        .map(|r| {
            let a = &r.alert;
            json!({
                "id": r.id,
                "severity": a.severity,
                "state": a.state,
                "kind": a.key.kind,
                "subject": a.key.subject,
                "metric": a.key.metric,
                "message": a.message,
                "value": a.value,
                "threshold": a.threshold,
                "opened_at": a.opened_at,
                "updated_at": a.updated_at,
                "resolved_at": a.resolved_at,
                "acknowledged_by": r.acknowledged_by,
                "resolved_by": r.resolved_by,
                "details": a.details,
            })
        })
        .collect()
}

pub const JSON_SCHEMA_VERSION: u32 = 2;

#[derive(Serialize)]
struct JsonReport<'a> {
    schema: u32,
    host: &'a str,
    /// Milliseconds since the Unix epoch.
    at: Timestamp,
    /// The same instant as RFC 3339 in UTC.
    time: String,
    interval_secs: f64,
    system: &'a crate::model::SystemStats,
    users: &'a [crate::model::UserStats],
    accounting: &'a crate::model::CpuAccounting,
    processes: &'a [crate::model::ProcessStats],
    /// Absent on a machine without GPUs.
    #[serde(skip_serializing_if = "crate::model::GpuStats::is_empty")]
    gpu: &'a crate::model::GpuStats,
    status: &'a StatusReport,
}

/// The `sysmon --once --json` document, also `GET /api/v1/status` and every `/ws` sample.
pub fn snapshot(snap: &Snapshot, status: &StatusReport) -> String {
    let doc = JsonReport {
        schema: JSON_SCHEMA_VERSION,
        host: &snap.host,
        at: snap.at,
        time: rfc3339(snap.at),
        interval_secs: snap.interval_secs,
        system: &snap.system,
        users: &snap.users,
        accounting: &snap.accounting,
        processes: &snap.processes,
        gpu: &snap.gpu,
        status,
    };
    serde_json::to_string(&doc).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}
