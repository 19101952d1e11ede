//! Shared test data: alerts as the tracker builds them, an in-memory outbox and a scripted
//! transport.

use std::cell::RefCell;
use std::collections::VecDeque;

use crate::config::Alerts;
use crate::mail::queue::{Outbox, OutboxError};
use crate::mail::smtp::{SendError, Transport};
use crate::model::{
    Alert, AlertDetails, AlertKey, AlertState, LoadAverage, Mail, Metric, OutboxItem,
    PersistentEpisode, ProcessSummary, Severity, Status, Timestamp, UserSummary,
};

/// 2024-05-01T10:00:00Z.
pub const T0: Timestamp = Timestamp(1_714_557_600_000);

pub fn alerts_cfg(min: Severity, notify_recovery: bool) -> Alerts {
    Alerts {
        repeat_minutes: 60,
        notify_recovery,
        min_email_severity: min,
    }
}

pub fn process(pid: u32, name: &str, cpu: f64, mem_bytes: u64) -> ProcessSummary {
    ProcessSummary {
        pid,
        name: name.to_string(),
        cpu_percent: cpu,
        memory_bytes: mem_bytes,
        memory_percent: mem_bytes as f64 * 100.0 / 16.0 / 1024.0 / 1024.0 / 1024.0,
    }
}

pub fn user(name: &str, uid: u32, cpu: f64, mem: f64, procs: Vec<ProcessSummary>) -> UserSummary {
    UserSummary {
        name: name.to_string(),
        uid,
        tracked: true,
        cpu_percent: cpu,
        memory_percent: mem,
        processes: procs.len() as u64 + 10,
        top_processes: procs,
        gpu: None,
    }
}

/// `user alice CPU 93%` on web01, HIGH, firing for 61 minutes, with two users and a persistent
/// episode in its details.
pub fn user_cpu_alert() -> Alert {
    let opened = T0.plus_secs(-3660.0);
    let mut bob = user(
        "bob",
        1002,
        4.5,
        30.25,
        vec![process(5151, "java", 4.5, 5 * 1024 * 1024 * 1024)],
    );
    bob.tracked = false;
    Alert {
        key: AlertKey::user("alice", Metric::Cpu),
        severity: Severity::High,
        state: AlertState::Open,
        opened_at: opened,
        last_notified_at: T0,
        updated_at: T0,
        resolved_at: None,
        value: 93.4,
        threshold: 80.0,
        peak: 97.2,
        message: "user alice CPU 93.4% > 80%".to_string(),
        details: AlertDetails {
            host: "web01".to_string(),
            metric: Metric::Cpu,
            value: 93.4,
            threshold: 80.0,
            duration_secs: 3660,
            status: Status::Heavy,
            system_cpu_percent: 97.5,
            system_memory_percent: 61.0,
            top_users: vec![
                user(
                    "alice",
                    1001,
                    93.4,
                    12.5,
                    vec![
                        process(4242, "make", 350.0, 1288490189),
                        process(4243, "cc1plus", 99.5, 512 * 1024 * 1024),
                    ],
                ),
                bob,
            ],
            persistent_users: vec![PersistentEpisode {
                user: "alice".to_string(),
                metric: Metric::Cpu,
                threshold: 80.0,
                started_at: opened,
                ended_at: None,
                duration_secs: 3660,
                peak: 97.2,
                average: 91.3,
                samples: 732,
            }],
            load: LoadAverage {
                one: 7.91,
                five: 6.5,
                fifteen: 4.25,
            },
            uptime_secs: 12.0 * 86_400.0 + 3.0 * 3600.0 + 17.0,
            recommendation: "alice is using 93.4% CPU (limit 80%). If that is not expected, ask \
                             them about their process make (pid 4242)."
                .to_string(),
        },
    }
}

/// `system memory` recovered to 61%.
pub fn memory_recovery() -> Alert {
    let mut a = user_cpu_alert();
    a.key = AlertKey::system(Metric::Memory);
    a.details.metric = Metric::Memory;
    a.severity = Severity::Critical;
    a.state = AlertState::Resolved;
    a.opened_at = T0.plus_secs(-1800.0);
    a.resolved_at = Some(T0);
    a.value = 61.0;
    a.details.value = 61.0;
    a.threshold = 90.0;
    a.details.threshold = 90.0;
    a.message = "system memory recovered: 61.0% (limit 90%)".to_string();
    a.details.recommendation = "No action needed.".to_string();
    a
}

pub fn mail(n: i64) -> Mail {
    Mail {
        severity: Severity::High,
        subject: format!("[sysmon] HIGH web01: mail {n}"),
        body: format!("body of mail {n}\n"),
        alert_id: Some(n),
    }
}

#[derive(Debug, Clone)]
pub struct Row {
    pub item: OutboxItem,
    pub sent_at: Option<Timestamp>,
    /// mark_sent calls that included this row.
    pub marked_sent: u32,
}

/// The outbox contract on a Vec, with switches to make the store fail.
#[derive(Debug, Default)]
pub struct MemOutbox {
    pub rows: Vec<Row>,
    next_id: i64,
    /// Make every call fail (an unwritable database).
    pub broken: bool,
    /// Make only mark_sent fail.
    pub mark_sent_broken: bool,
}

impl MemOutbox {
    pub fn push(&mut self, mail: Mail, at: Timestamp) -> i64 {
        self.next_id += 1;
        self.rows.push(Row {
            item: OutboxItem {
                id: self.next_id,
                created_at: at,
                mail,
                attempts: 0,
                next_attempt_at: at,
                last_error: None,
            },
            sent_at: None,
            marked_sent: 0,
        });
        self.next_id
    }

    pub fn row(&self, id: i64) -> &Row {
        self.rows
            .iter()
            .find(|r| r.item.id == id)
            .expect("row exists")
    }

    /// Rows sent by an earlier process.
    pub fn mark_sent_raw(&mut self, ids: &[i64], at: Timestamp) {
        for r in self.rows.iter_mut().filter(|r| ids.contains(&r.item.id)) {
            r.sent_at = Some(at);
            r.marked_sent += 1;
        }
    }

    pub fn unsent(&self) -> usize {
        self.rows.iter().filter(|r| r.sent_at.is_none()).count()
    }

    fn check(&self) -> Result<(), OutboxError> {
        if self.broken {
            Err(OutboxError::new("database is locked"))
        } else {
            Ok(())
        }
    }
}

impl Outbox for MemOutbox {
    fn due(&mut self, now: Timestamp, limit: usize) -> Result<Vec<OutboxItem>, OutboxError> {
        self.check()?;
        let mut due: Vec<OutboxItem> = self
            .rows
            .iter()
            .filter(|r| r.sent_at.is_none() && r.item.next_attempt_at <= now)
            .map(|r| r.item.clone())
            .collect();
        due.sort_by_key(|i| (i.created_at, i.id));
        due.truncate(limit);
        Ok(due)
    }

    fn mark_sent(&mut self, ids: &[i64], at: Timestamp) -> Result<(), OutboxError> {
        self.check()?;
        if self.mark_sent_broken {
            return Err(OutboxError::new("disk full"));
        }
        for r in self.rows.iter_mut().filter(|r| ids.contains(&r.item.id)) {
            r.sent_at = Some(at);
            r.marked_sent += 1;
        }
        Ok(())
    }

    fn mark_failed(
        &mut self,
        id: i64,
        _at: Timestamp,
        error: &str,
        retry_at: Timestamp,
    ) -> Result<(), OutboxError> {
        self.check()?;
        let r = self
            .rows
            .iter_mut()
            .find(|r| r.item.id == id)
            .ok_or_else(|| OutboxError::new("no such row"))?;
        r.item.attempts += 1;
        r.item.next_attempt_at = retry_at;
        r.item.last_error = Some(error.to_string());
        Ok(())
    }

    fn sent_since(&mut self, since: Timestamp) -> Result<u64, OutboxError> {
        self.check()?;
        Ok(self
            .rows
            .iter()
            .filter(|r| r.sent_at.is_some_and(|t| t >= since))
            .count() as u64)
    }

    fn backlog(&mut self) -> Result<u64, OutboxError> {
        self.check()?;
        Ok(self.unsent() as u64)
    }
}

/// A transport that answers from a script (then accepts), and records what it accepted.
#[derive(Default)]
pub struct FakeTransport {
    pub script: RefCell<VecDeque<Result<(), SendError>>>,
    /// When set, every send fails with this error (a server that is down).
    pub down: RefCell<Option<SendError>>,
    /// Subjects of accepted mails, in order.
    pub accepted: RefCell<Vec<Mail>>,
    /// Every attempt, accepted or not.
    pub attempts: RefCell<u32>,
    pub keys: RefCell<Vec<String>>,
}

impl FakeTransport {
    pub fn failing_with(errors: Vec<SendError>) -> FakeTransport {
        let t = FakeTransport::default();
        t.script.borrow_mut().extend(errors.into_iter().map(Err));
        t
    }

    pub fn subjects(&self) -> Vec<String> {
        self.accepted
            .borrow()
            .iter()
            .map(|m| m.subject.clone())
            .collect()
    }
}

impl Transport for FakeTransport {
    fn send(&self, mail: &Mail) -> Result<(), SendError> {
        *self.attempts.borrow_mut() += 1;
        if let Some(e) = self.down.borrow().clone() {
            return Err(e);
        }
        let next = self.script.borrow_mut().pop_front();
        match next {
            Some(Err(e)) => Err(e),
            Some(Ok(())) | None => {
                self.accepted.borrow_mut().push(mail.clone());
                Ok(())
            }
        }
    }

    fn send_keyed(
        &self,
        mail: &Mail,
        key: &str,
        accepted: &mut dyn FnMut(),
    ) -> Result<(), SendError> {
        self.keys.borrow_mut().push(key.to_string());
        self.send(mail)?;
        accepted();
        Ok(())
    }
}

pub fn refused() -> SendError {
    SendError::Connection {
        server: "127.0.0.1:25 (STARTTLS)".to_string(),
        detail: "Connection error: Connection refused (os error 111)".to_string(),
    }
}

pub fn rejected(code: u16, text: &str) -> SendError {
    SendError::Rejected {
        code,
        text: text.to_string(),
    }
}
