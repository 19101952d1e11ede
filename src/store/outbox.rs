//! The outbox table as the mail sender sees it ([`crate::mail::queue::Outbox`]).
//!
//! Why a table and not a channel: a mail is queued in the same transaction as the alert it is
//! about (`record.rs`) and leaves the queue only when the server has accepted it, so an SMTP
//! outage or a restart delays mail but loses none. Sent rows stay until retention so that
//! `max_per_hour` can count them.

use rusqlite::{TransactionBehavior, params};

use super::alerts::parse_severity;
use super::{Context, Store, StoreError};
use crate::mail::queue::{Outbox, OutboxError};
use crate::model::{Mail, OutboxItem, Timestamp};

impl Store {
    fn due_items(&self, now: Timestamp, limit: usize) -> Result<Vec<OutboxItem>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, created_at, alert_id, severity, subject, body, attempts, \
                 next_attempt_at, last_error FROM outbox \
                 WHERE sent_at IS NULL AND next_attempt_at <= ?1 \
                 ORDER BY created_at, id LIMIT ?2",
            )
            .ctx("preparing the outbox query")?;
        type Raw = (
            i64,
            i64,
            Option<i64>,
            String,
            String,
            String,
            i64,
            i64,
            Option<String>,
        );
        let rows: Vec<Raw> = super::rows(
            &mut stmt,
            params![now.0, super::to_i64(limit as u64)],
            "reading the outbox",
        )?;
        rows.into_iter()
            .map(
                |(id, created, alert_id, severity, subject, body, attempts, next, error)| {
                    Ok(OutboxItem {
                        id,
                        created_at: Timestamp(created),
                        mail: Mail {
                            severity: parse_severity(&severity)?,
                            subject,
                            body,
                            alert_id,
                        },
                        attempts: u32::try_from(attempts.max(0)).unwrap_or(u32::MAX),
                        next_attempt_at: Timestamp(next),
                        last_error: error,
                    })
                },
            )
            .collect()
    }

    fn mark_items_sent(&mut self, ids: &[i64], at: Timestamp) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .ctx("starting to mark mail sent")?;
        {
            let mut stmt = tx
                .prepare_cached("UPDATE outbox SET sent_at = ?2 WHERE id = ?1 AND sent_at IS NULL")
                .ctx("preparing to mark mail sent")?;
            for id in ids {
                stmt.execute(params![id, at.0]).ctx("marking mail sent")?;
            }
        }
        tx.commit().ctx("committing sent mail")
    }

    fn mark_item_failed(
        &mut self,
        id: i64,
        at: Timestamp,
        error: &str,
        retry_at: Timestamp,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?2, next_attempt_at = ?3, \
                 last_attempt_at = ?4 WHERE id = ?1 AND sent_at IS NULL",
                params![id, error, retry_at.0, at.0],
            )
            .ctx("recording a failed delivery")?;
        Ok(())
    }

    fn count(&self, sql: &str, arg: Option<i64>) -> Result<u64, StoreError> {
        let n: i64 = match arg {
            Some(a) => self.conn.query_row(sql, [a], |r| r.get(0)),
            None => self.conn.query_row(sql, [], |r| r.get(0)),
        }
        .ctx("counting outbox rows")?;
        Ok(n.max(0) as u64)
    }
}

impl Outbox for Store {
    fn due(&mut self, now: Timestamp, limit: usize) -> Result<Vec<OutboxItem>, OutboxError> {
        self.due_items(now, limit).map_err(OutboxError::new)
    }

    fn mark_sent(&mut self, ids: &[i64], at: Timestamp) -> Result<(), OutboxError> {
        self.mark_items_sent(ids, at).map_err(OutboxError::new)
    }

    fn mark_failed(
        &mut self,
        id: i64,
        at: Timestamp,
        error: &str,
        retry_at: Timestamp,
    ) -> Result<(), OutboxError> {
        self.mark_item_failed(id, at, error, retry_at)
            .map_err(OutboxError::new)
    }

    fn sent_since(&mut self, since: Timestamp) -> Result<u64, OutboxError> {
        self.count(
            "SELECT COUNT(*) FROM outbox WHERE sent_at IS NOT NULL AND sent_at >= ?1",
            Some(since.0),
        )
        .map_err(OutboxError::new)
    }

    fn backlog(&mut self) -> Result<u64, OutboxError> {
        self.count("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL", None)
            .map_err(OutboxError::new)
    }
}
