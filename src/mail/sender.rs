//! The outbox worker: delivers queued mail with retries, backoff and a rate cap.
//!
//! The rules exist so that an administrator can trust the mailbox during a bad night:
//! - Mail goes out oldest first and is marked sent the moment the server accepts it (its reply
//!   to the end of DATA, before QUIT), so an SMTP outage delays mail but loses none, and a
//!   server that stalls after accepting cannot widen the window in which a crash resends. If the store cannot record a delivery, the sender
//!   remembers it and records it later rather than sending it again.
//! - A failed mail is retried with exponential backoff (30 s, 1 m, 2 m, … capped at 30 min). A
//!   permanent (5xx) refusal is retried too, but slower (5 m doubling to 2 h): it is usually
//!   fixed by a person (a recipient typo, a full mailbox), and dropping an alert silently is
//!   worse than retrying it. While the server itself is unreachable the sender pauses as a whole,
//!   so an outage costs one attempt per backoff step, not one per queued mail.
//! - `email.max_per_hour` caps what reaches the inbox in any rolling hour. What the cap holds back
//!   is not dropped: when capacity returns it goes out as one digest, so a storm of alerts costs
//!   the administrator one extra mail, not a flooded inbox or a gap.
//!
//! The sender is a plain struct that the daemon drives from its own thread, one [`run_once`]
//! per tick; it reads the clock only through the `now` it is given, so tests drive hours of
//! outages and storms in microseconds.
//!
//! [`run_once`]: Sender::run_once

use std::collections::VecDeque;
use std::fmt;

use super::queue::{Outbox, OutboxError};
use super::render::{self, utc};
use super::smtp::{SendError, Transport};
use crate::model::{OutboxItem, Timestamp};

const HOUR_MS: i64 = 3_600_000;
/// Most items fetched and put into one digest; more wait for the next one.
const DIGEST_LIMIT: usize = 200;
/// Per-message refusals in one run after which the sender pauses instead of trying every
/// queued mail against a server that refuses them all.
const MAX_FAILURES_PER_RUN: usize = 3;

/// Seconds to wait before the next attempt after `failed_attempts` failures in a row
/// (1 for the first failure).
pub fn retry_delay_secs(failed_attempts: u32, permanent: bool) -> u64 {
    let (base, cap) = if permanent {
        (300u64, 7_200u64)
    } else {
        (30, 1_800)
    };
    let doublings = failed_attempts.saturating_sub(1).min(20);
    base.saturating_mul(1u64 << doublings).min(cap)
}

/// What one [`Sender::run_once`] did, event by event, for the daemon's log.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SendReport {
    /// In the order they happened; each displays as one log line.
    pub events: Vec<SendEvent>,
    /// Mails waiting because of `email.max_per_hour` (0 when the cap is not holding anything
    /// back).
    pub held: u64,
    /// The sender is pausing after a failure and will not try before this time.
    pub paused_until: Option<Timestamp>,
}

impl SendReport {
    /// Outbox ids delivered in this run, one entry per mail (a digest lists all it covered).
    pub fn sent_ids(&self) -> Vec<i64> {
        self.events
            .iter()
            .flat_map(|e| match e {
                SendEvent::Sent { id, .. } => vec![*id],
                SendEvent::DigestSent { ids, .. } => ids.clone(),
                _ => Vec::new(),
            })
            .collect()
    }

    pub fn failures(&self) -> impl Iterator<Item = &SendEvent> {
        self.events
            .iter()
            .filter(|e| matches!(e, SendEvent::Failed { .. }))
    }

    /// Nothing happened worth logging.
    pub fn is_quiet(&self) -> bool {
        self.events.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum SendEvent {
    /// The server accepted one outbox item.
    Sent { id: i64, subject: String },
    /// The server accepted a digest standing for these items.
    DigestSent { ids: Vec<i64>, subject: String },
    /// A delivery failed; the items will be tried again at `retry_at`.
    Failed {
        ids: Vec<i64>,
        subject: String,
        error: SendError,
        /// Failed attempts so far, this one included.
        attempt: u32,
        retry_at: Timestamp,
    },
    /// The cap was reached and mail is being held back for a digest. Reported once, when
    /// holding starts.
    Holding { held: u64, max_per_hour: u32 },
    /// The outbox (the store) failed; nothing was lost, the run stopped or the item will be
    /// retried.
    OutboxError(String),
}

impl fmt::Display for SendEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendEvent::Sent { id, subject } => write!(f, "mail {id} sent: {subject}"),
            SendEvent::DigestSent { ids, subject } => write!(
                f,
                "digest sent for {} held-back mails ({}): {subject}",
                ids.len(),
                id_list(ids)
            ),
            SendEvent::Failed {
                ids,
                subject,
                error,
                attempt,
                retry_at,
            } => {
                let what = if ids.len() == 1 {
                    format!("mail {}", id_list(ids))
                } else {
                    format!("digest for mails {}", id_list(ids))
                };
                let kind = if error.is_permanent() {
                    "refused permanently, check the address and the server's logs"
                } else {
                    "not delivered"
                };
                write!(
                    f,
                    "{what} {kind} (attempt {attempt}): {error}; next try at {} ({subject})",
                    utc(*retry_at)
                )
            }
            SendEvent::Holding { held, max_per_hour } => write!(
                f,
                "email.max_per_hour ({max_per_hour}) reached: holding back {held} mail(s), \
                 to be sent as one digest when the hour allows"
            ),
            SendEvent::OutboxError(e) => write!(f, "mail outbox: {e}"),
        }
    }
}

fn id_list(ids: &[i64]) -> String {
    ids.iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The outbox worker. Keep one for the life of the daemon: it remembers what it sent in the
/// last hour, whether it is holding mail back, and its backoff.
#[derive(Debug, Clone)]
pub struct Sender {
    max_per_hour: u32,
    host: String,
    /// The first `now` seen: sends before it were made by an earlier process.
    started_at: Option<Timestamp>,
    /// When this sender's mails (individual or digest) were accepted, within the last hour.
    deliveries: VecDeque<Timestamp>,
    /// The cap held mail back and a digest is owed.
    holding: bool,
    /// Runs that ended in a failure, in a row.
    failed_runs: u32,
    paused_until: Option<Timestamp>,
    /// Accepted by the server but not yet recorded by the store.
    unrecorded: Vec<(Vec<i64>, Timestamp)>,
    /// The last store error reported, so that an unwritable database is logged once, not on
    /// every tick.
    last_outbox_error: Option<String>,
    outbox_failed: bool,
}

impl Sender {
    /// `host` names the machine in digests.
    pub fn new(max_per_hour: u32, host: impl Into<String>) -> Self {
        Sender {
            max_per_hour,
            host: host.into(),
            started_at: None,
            deliveries: VecDeque::new(),
            holding: false,
            failed_runs: 0,
            paused_until: None,
            unrecorded: Vec::new(),
            last_outbox_error: None,
            outbox_failed: false,
        }
    }

    /// Apply a reloaded `email.max_per_hour`.
    pub fn set_max_per_hour(&mut self, max_per_hour: u32) {
        self.max_per_hour = max_per_hour;
    }

    /// Whether `email.max_per_hour` leaves room for one more mail by this sender's own count.
    /// For mail delivered from memory while the outbox cannot be written, when the store cannot
    /// say what an earlier process sent.
    pub fn has_room(&mut self, now: Timestamp) -> bool {
        let hour_ago = Timestamp(now.0.saturating_sub(HOUR_MS));
        self.deliveries.retain(|t| *t >= hour_ago);
        (self.deliveries.len() as u64) < u64::from(self.max_per_hour)
    }

    /// Count a mail delivered outside the outbox against `email.max_per_hour`.
    pub fn count_delivery(&mut self, now: Timestamp) {
        self.deliveries.push_back(now);
    }

    /// Deliver what is due at `now`. Blocks for as long as the deliveries take (each bounded
    /// by the mailer's timeouts), so drive it from a thread that can wait.
    pub fn run_once(
        &mut self,
        outbox: &mut dyn Outbox,
        mailer: &dyn Transport,
        now: Timestamp,
    ) -> SendReport {
        let mut report = SendReport::default();
        self.outbox_failed = false;
        self.run(outbox, mailer, now, &mut report);
        if !self.outbox_failed {
            self.last_outbox_error = None;
        }
        report
    }

    fn run(
        &mut self,
        outbox: &mut dyn Outbox,
        mailer: &dyn Transport,
        now: Timestamp,
        report: &mut SendReport,
    ) {
        self.started_at.get_or_insert(now);
        if !self.record_unrecorded(outbox, report) {
            // Sending more now would only grow what the store cannot record.
            return;
        }
        if let Some(until) = self.paused_until {
            if now < until {
                report.paused_until = Some(until);
                return;
            }
            self.paused_until = None;
        }
        let used = match self.used(outbox, now) {
            Ok(n) => n,
            Err(e) => {
                self.outbox_error(report, e.to_string());
                return;
            }
        };
        let capacity = u64::from(self.max_per_hour).saturating_sub(used);

        if capacity == 0 {
            self.hold(outbox, now, report);
            return;
        }
        let limit = if self.holding {
            DIGEST_LIMIT
        } else {
            usize::try_from(capacity)
                .unwrap_or(usize::MAX)
                .saturating_add(1)
                .min(DIGEST_LIMIT)
        };
        let due = match outbox.due(now, limit) {
            Ok(items) => items,
            Err(e) => {
                self.outbox_error(report, e.to_string());
                return;
            }
        };
        let due: Vec<OutboxItem> = due
            .into_iter()
            .filter(|i| !self.is_unrecorded(i.id))
            .collect();
        if due.is_empty() {
            self.holding = false;
            return;
        }
        if self.holding && due.len() > 1 {
            self.send_digest(outbox, mailer, now, due, limit, report);
        } else {
            self.holding = false;
            self.send_each(outbox, mailer, now, due, capacity, report);
        }
    }

    /// Mails delivered in the rolling hour before `now`: this sender's own, counted as mails
    /// (a digest is one), plus what an earlier process marked sent before this one started.
    fn used(&mut self, outbox: &mut dyn Outbox, now: Timestamp) -> Result<u64, OutboxError> {
        let hour_ago = Timestamp(now.0.saturating_sub(HOUR_MS));
        self.deliveries.retain(|t| *t >= hour_ago);
        let own = self.deliveries.len() as u64;
        let start = self.started_at.unwrap_or(now);
        let before_start = if start > hour_ago {
            // Items the store marked sent within the hour but before this sender existed. A
            // digest sent by an earlier process counts once per item here: that errs on the
            // side of fewer mails, for at most an hour after a restart.
            let since_hour = outbox.sent_since(hour_ago)?;
            let since_start = outbox.sent_since(start)?;
            since_hour.saturating_sub(since_start)
        } else {
            0
        };
        Ok(own + before_start)
    }

    /// No capacity: start holding if anything is due, and say how much waits.
    fn hold(&mut self, outbox: &mut dyn Outbox, now: Timestamp, report: &mut SendReport) {
        if !self.holding {
            match outbox.due(now, 1) {
                Ok(items) if items.iter().any(|i| !self.is_unrecorded(i.id)) => {}
                Ok(_) => return,
                Err(e) => {
                    self.outbox_error(report, e.to_string());
                    return;
                }
            }
        }
        let held = match outbox.backlog() {
            Ok(n) => n,
            Err(e) => {
                self.outbox_error(report, e.to_string());
                return;
            }
        };
        if !self.holding {
            self.holding = true;
            report.events.push(SendEvent::Holding {
                held,
                max_per_hour: self.max_per_hour,
            });
        }
        report.held = held;
    }

    fn send_each(
        &mut self,
        outbox: &mut dyn Outbox,
        mailer: &dyn Transport,
        now: Timestamp,
        due: Vec<OutboxItem>,
        mut capacity: u64,
        report: &mut SendReport,
    ) {
        let mut failures = 0;
        let total = due.len();
        for (n, item) in due.into_iter().enumerate() {
            if capacity == 0 {
                // What is left waits for a digest.
                self.holding = true;
                let held = outbox.backlog().unwrap_or((total - n) as u64);
                report.held = held;
                report.events.push(SendEvent::Holding {
                    held,
                    max_per_hour: self.max_per_hour,
                });
                return;
            }
            let sent = mailer.send_keyed(&item.mail, &outbox_key(&item), &mut || {
                self.delivered(outbox, vec![item.id], now, report);
            });
            match sent {
                Ok(()) => {
                    capacity -= 1;
                    report.events.push(SendEvent::Sent {
                        id: item.id,
                        subject: item.mail.subject,
                    });
                }
                Err(error) => {
                    failures += 1;
                    let server_wide = error.is_server_wide();
                    self.failed(
                        outbox,
                        std::slice::from_ref(&item),
                        &item.mail.subject,
                        error,
                        now,
                        report,
                    );
                    if server_wide || failures >= MAX_FAILURES_PER_RUN {
                        self.pause(now, report);
                        return;
                    }
                }
            }
        }
        if failures == 0 {
            self.failed_runs = 0;
        }
    }

    fn send_digest(
        &mut self,
        outbox: &mut dyn Outbox,
        mailer: &dyn Transport,
        now: Timestamp,
        items: Vec<OutboxItem>,
        limit: usize,
        report: &mut SendReport,
    ) {
        let mail = render::digest(&items, &self.host);
        let ids: Vec<i64> = items.iter().map(|i| i.id).collect();
        let key = format!(
            "digest.{}.{}.{}",
            ids.first().copied().unwrap_or(0),
            ids.last().copied().unwrap_or(0),
            ids.len()
        );
        let sent = mailer.send_keyed(&mail, &key, &mut || {
            self.delivered(outbox, ids.clone(), now, report);
        });
        match sent {
            Ok(()) => {
                // More than one digest's worth may be waiting; the rest go in the next one.
                self.holding = items.len() >= limit;
                self.failed_runs = 0;
                report.events.push(SendEvent::DigestSent {
                    ids,
                    subject: mail.subject,
                });
            }
            Err(error) => {
                self.failed(outbox, &items, &mail.subject, error, now, report);
                self.pause(now, report);
            }
        }
    }

    /// The server accepted a mail standing for `ids`: count it and record it.
    fn delivered(
        &mut self,
        outbox: &mut dyn Outbox,
        ids: Vec<i64>,
        now: Timestamp,
        report: &mut SendReport,
    ) {
        self.deliveries.push_back(now);
        if let Err(e) = outbox.mark_sent(&ids, now) {
            self.outbox_error(
                report,
                format!(
                    "mail {} was delivered but cannot be recorded as sent ({e}); it will not be \
                 sent again",
                    id_list(&ids)
                ),
            );
            self.unrecorded.push((ids, now));
        }
    }

    /// Record a failed attempt on each item, with each item's own backoff.
    fn failed(
        &mut self,
        outbox: &mut dyn Outbox,
        items: &[OutboxItem],
        subject: &str,
        error: SendError,
        now: Timestamp,
        report: &mut SendReport,
    ) {
        let permanent = error.is_permanent();
        let text = error.to_string();
        let mut attempt = 0;
        let mut retry_at = now;
        for item in items {
            let a = item.attempts.saturating_add(1);
            let at = now.plus_secs(retry_delay_secs(a, permanent) as f64);
            attempt = attempt.max(a);
            retry_at = retry_at.max(at);
            if let Err(e) = outbox.mark_failed(item.id, now, &text, at) {
                self.outbox_error(
                    report,
                    format!("cannot record the failed attempt on mail {}: {e}", item.id),
                );
            }
        }
        report.events.push(SendEvent::Failed {
            ids: items.iter().map(|i| i.id).collect(),
            subject: subject.to_string(),
            error,
            attempt,
            retry_at,
        });
    }

    /// Stop trying for a while; each failed run in a row doubles the wait.
    fn pause(&mut self, now: Timestamp, report: &mut SendReport) {
        self.failed_runs = self.failed_runs.saturating_add(1);
        let until = now.plus_secs(retry_delay_secs(self.failed_runs, false) as f64);
        self.paused_until = Some(until);
        report.paused_until = Some(until);
    }

    /// Try again to record deliveries the store could not record; false while it still can't.
    fn record_unrecorded(&mut self, outbox: &mut dyn Outbox, report: &mut SendReport) -> bool {
        while let Some((ids, at)) = self.unrecorded.first() {
            if let Err(e) = outbox.mark_sent(ids, *at) {
                let msg = format!(
                    "still cannot record delivered mail {} as sent: {e}",
                    id_list(ids)
                );
                self.outbox_error(report, msg);
                return false;
            }
            self.unrecorded.remove(0);
        }
        true
    }

    /// Report a store error, unless it is the one reported last (an unwritable database fails
    /// the same way on every tick).
    fn outbox_error(&mut self, report: &mut SendReport, error: String) {
        self.outbox_failed = true;
        if self.last_outbox_error.as_deref() != Some(error.as_str()) {
            report.events.push(SendEvent::OutboxError(error.clone()));
            self.last_outbox_error = Some(error);
        }
    }

    fn is_unrecorded(&self, id: i64) -> bool {
        self.unrecorded.iter().any(|(ids, _)| ids.contains(&id))
    }
}

/// A Message-ID key unique to one outbox entry, stable across restarts.
fn outbox_key(item: &OutboxItem) -> String {
    format!("outbox.{}.{}", item.id, item.created_at.0)
}
