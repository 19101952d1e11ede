//! JSON documents that more than one front end serves, so they cannot drift apart: what
//! `sysmon alerts --json` prints is what `GET /api/v1/alerts` answers.

use serde_json::json;

use crate::store::StoredAlert;

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
