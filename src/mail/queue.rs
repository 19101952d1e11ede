//! The outbox as the sender sees it. The store implements it on the SQLite table; tests can
//! implement it in memory.

use std::error::Error;
use std::fmt;

use crate::model::{OutboxItem, Timestamp};

/// Why the outbox could not be read or written: the implementation's own error (the store's
/// `StoreError`, with its cause and SQLite code), kept whole rather than flattened to text, so
/// the sender can report it and a caller can still ask what it was.
#[derive(Debug)]
pub struct OutboxError(Box<dyn Error + Send + Sync>);

impl OutboxError {
    pub fn new(e: impl Into<Box<dyn Error + Send + Sync>>) -> OutboxError {
        OutboxError(e.into())
    }

    /// The implementation's error, to downcast.
    pub fn inner(&self) -> &(dyn Error + Send + Sync + 'static) {
        self.0.as_ref()
    }
}

impl fmt::Display for OutboxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Error for OutboxError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.0.source()
    }
}

pub trait Outbox {
    /// Unsent items whose `next_attempt_at` is at or before `now`, oldest first, at most `limit`.
    fn due(&mut self, now: Timestamp, limit: usize) -> Result<Vec<OutboxItem>, OutboxError>;
    /// The server accepted these items: they are never sent again.
    fn mark_sent(&mut self, ids: &[i64], at: Timestamp) -> Result<(), OutboxError>;
    /// A delivery attempt failed; try again at `retry_at`.
    fn mark_failed(
        &mut self,
        id: i64,
        at: Timestamp,
        error: &str,
        retry_at: Timestamp,
    ) -> Result<(), OutboxError>;
    /// How many mails were marked sent at or after `since` (for `email.max_per_hour`).
    fn sent_since(&mut self, since: Timestamp) -> Result<u64, OutboxError>;
    /// Unsent items in the queue, due or not (for `sysmon status`).
    fn backlog(&mut self) -> Result<u64, OutboxError>;
}
