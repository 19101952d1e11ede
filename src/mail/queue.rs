//! The outbox as the sender sees it. The store implements it on the SQLite table; tests can
//! implement it in memory.

use crate::model::{OutboxItem, Timestamp};

pub trait Outbox {
    /// Unsent items whose `next_attempt_at` is at or before `now`, oldest first, at most `limit`.
    fn due(&mut self, now: Timestamp, limit: usize) -> Result<Vec<OutboxItem>, String>;
    /// The server accepted these items: they are never sent again.
    fn mark_sent(&mut self, ids: &[i64], at: Timestamp) -> Result<(), String>;
    /// A delivery attempt failed; try again at `retry_at`.
    fn mark_failed(
        &mut self,
        id: i64,
        at: Timestamp,
        error: &str,
        retry_at: Timestamp,
    ) -> Result<(), String>;
    /// How many mails were marked sent at or after `since` (for `email.max_per_hour`).
    fn sent_since(&mut self, since: Timestamp) -> Result<u64, String>;
    /// Unsent items in the queue, due or not (for `sysmon status`).
    fn backlog(&mut self) -> Result<u64, String>;
}
