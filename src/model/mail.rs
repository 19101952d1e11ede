//! Email as data: what the tracker's events become before they are queued and sent.

use serde::{Deserialize, Serialize};

use super::{Severity, Timestamp};

/// A rendered notification, ready for the outbox. Subject and body are plain text that has
/// already been sanitised (no control characters, so no header injection).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mail {
    pub severity: Severity,
    pub subject: String,
    pub body: String,
    /// The store's id of the alert this mail is about, when there is one.
    pub alert_id: Option<i64>,
}

/// A mail waiting in the outbox table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxItem {
    pub id: i64,
    pub created_at: Timestamp,
    pub mail: Mail,
    pub attempts: u32,
    /// Not to be tried before this time (backoff after a failure).
    pub next_attempt_at: Timestamp,
    pub last_error: Option<String>,
}
