//! `sysmon --headless`: the engine run unattended, recording history and sending mail.
//!
//! One thread samples, tracks and records; a second delivers the email outbox, so a slow SMTP
//! server never delays a sample. Control (stop, reload) arrives as messages on one channel from
//! the signal thread and the config-file watcher, which is what lets the loop sleep until the
//! next tick and still stop within a fraction of a second.
//!
//! Nothing recorded is lost to a failing database: records that cannot be written (disk full,
//! read-only file, a long lock) queue in memory, up to `MAX_BUFFERED`, and are written in order
//! once the database accepts writes again. Monitoring, alerting and mail go on meanwhile: the
//! mails of a record that cannot be written are handed to the mail thread to deliver from
//! memory, and recorded as sent when the record is written (see `mailer`).
//!
//! With `[http] enabled`, an HTTP server (`crate::http`) runs on a third thread; the loop only
//! publishes each sample to it through non-blocking channels, so no client can slow sampling.

mod events;
mod mailer;
mod reload;

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use crate::collect::Collector;
use crate::config::{Config, ConfigSource};
use crate::engine::Engine;
use crate::mail::render;
use crate::model::{Event, Snapshot, Timestamp};
use crate::store::{ActionKind, PendingMail, Record, Store};
use crate::track::{Tracker, TrackerState};

use crate::counters::Counters;
use crate::lock::{self, InstanceLock, LockError};
use crate::log::{Level, log};

/// Records kept in memory while the database cannot be written.
pub const MAX_BUFFERED: usize = 10_000;
/// How long a write waits for another process's lock before the sample is buffered instead:
/// short, so that a reader holding the database never delays sampling.
const WRITE_WAIT: Duration = Duration::from_millis(250);
/// How often retention and rollups run.
const RETENTION_EVERY: Duration = Duration::from_secs(3600);

/// Why the daemon could not run.
#[derive(Debug)]
pub enum DaemonError {
    /// Another daemon owns the database (exit status 2).
    AlreadyRunning { pid: Option<u32>, lock: String },
    /// A condition restarting cannot fix, such as a database from a newer sysmon or one this
    /// user cannot read (exit status 2).
    Unusable(String),
    /// Anything else that prevents starting (exit status 1).
    Startup(String),
}

impl std::fmt::Display for DaemonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DaemonError::AlreadyRunning {
                pid: Some(pid),
                lock,
            } => write!(
                f,
                "another sysmon --headless (pid {pid}) is already using this database ({lock})"
            ),
            DaemonError::AlreadyRunning { pid: None, lock } => write!(
                f,
                "another sysmon --headless is already using this database ({lock})"
            ),
            DaemonError::Unusable(m) | DaemonError::Startup(m) => f.write_str(m),
        }
    }
}

/// Messages to the sampling loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Control {
    Stop,
    Reload,
}

/// A sample waiting to be written: the snapshot without its per-process list (the store keeps
/// only users and their top processes), its events and mails.
struct Pending {
    snapshot: Snapshot,
    events: Vec<Event>,
    mails: Vec<PendingMail>,
    /// The mail thread's keys of `mails`, once they were handed to it to deliver from memory.
    handed: Vec<u64>,
}

struct Daemon {
    source: ConfigSource,
    engine: Engine,
    store: Store,
    cursor: i64,
    pending: VecDeque<Pending>,
    dropped: u64,
    store_failing: bool,
    /// The database turned out damaged while running: what SQLite found. Nothing is written to
    /// it from then on; samples stay in memory and mail goes out from memory.
    damaged: Option<String>,
    mail: mailer::MailWorker,
    last_retention: Option<Instant>,
    watchdog: Option<Duration>,
    ready: bool,
    counters: Arc<Counters>,
    hub: Option<Arc<crate::http::Hub>>,
    http: Option<crate::http::Server>,
}

pub fn run(source: ConfigSource, config: Config) -> Result<(), DaemonError> {
    let db_path = config.storage.resolved_path();
    let lock = InstanceLock::acquire(&db_path).map_err(|e| match e {
        LockError::Held(pid) => DaemonError::AlreadyRunning {
            pid,
            lock: lock::lock_path(&db_path).display().to_string(),
        },
        LockError::Io(e) => DaemonError::Startup(format!(
            "cannot lock {}: {e}",
            lock::lock_path(&db_path).display()
        )),
    })?;
    let store = Store::open(&db_path).map_err(|e| {
        if e.is_corrupt() {
            return DaemonError::Unusable(damaged_at_start(&db_path, &e.to_string()));
        }
        let text = e.to_string();
        let msg = if text.contains(&*db_path.to_string_lossy()) {
            text
        } else {
            format!("cannot open {}: {text}", db_path.display())
        };
        if e.is_permanent() {
            DaemonError::Unusable(msg)
        } else {
            DaemonError::Startup(msg)
        }
    })?;
    match store.quick_check() {
        Ok(None) => {}
        Ok(Some(problems)) => {
            return Err(DaemonError::Unusable(damaged_at_start(&db_path, &problems)));
        }
        Err(e) => {
            return Err(DaemonError::Startup(format!(
                "cannot check {}: {e}",
                db_path.display()
            )));
        }
    }
    store
        .set_busy_timeout(WRITE_WAIT)
        .map_err(|e| DaemonError::Startup(format!("{}: {e}", db_path.display())))?;
    let tracker = restore_tracker(&store, &config);
    let collector = Collector::live(config.monitoring.disks.clone())
        .map_err(|e| DaemonError::Startup(format!("cannot read /proc: {e}")))?;
    let (tx, rx) = mpsc::channel();
    let _signals = spawn_signal_thread(tx.clone())?;
    let _watcher = source
        .path()
        .and_then(|p| reload::watch(p, tx.clone()).ok());
    let counters = Arc::new(Counters::default());
    let (hub, http) = if config.http.enabled {
        let hub = Arc::new(crate::http::Hub::new(
            counters.clone(),
            Duration::from_secs(config.monitoring.interval_secs),
        ));
        let server = crate::http::start(&config, &db_path, hub.clone()).map_err(|e| {
            if e.is_config() {
                DaemonError::Unusable(e.to_string())
            } else {
                DaemonError::Startup(e.to_string())
            }
        })?;
        (Some(hub), Some(server))
    } else {
        (None, None)
    };
    let mail = mailer::MailWorker::start(&config, &db_path, collector.host(), counters.clone());
    log(
        Level::Notice,
        &format!(
            "started: pid {}, config {}, database {}, interval {} s",
            std::process::id(),
            source.describe(),
            db_path.display(),
            config.monitoring.interval_secs
        ),
    );
    let cursor = store
        .resume_cursor()
        .map_err(|e| DaemonError::Startup(format!("cannot read {}: {e}", db_path.display())))?;
    let mut daemon = Daemon {
        source,
        engine: Engine::with_tracker(config, collector, tracker),
        store,
        cursor,
        pending: VecDeque::new(),
        dropped: 0,
        store_failing: false,
        damaged: None,
        mail,
        last_retention: None,
        watchdog: sd_notify::watchdog_enabled(),
        ready: false,
        counters,
        hub,
        http,
    };
    daemon.run_loop(&rx);
    daemon.shut_down();
    drop(lock);
    Ok(())
}

/// Why a damaged database stops the daemon from starting, and what to do. The file is never
/// changed: it may hold what an admin wants to recover, and moving it aside while a TUI still
/// has it open could have that TUI delete the new file's write-ahead log when it closes.
fn damaged_at_start(path: &std::path::Path, problems: &str) -> String {
    let p = path.display();
    format!(
        "the database {p} is damaged ({problems}); sysmon leaves it as it is. To start afresh, \
         stop every sysmon using it and move it aside with its -wal and -shm files (mv {p} \
         {p}.damaged); `sqlite3 {p}.damaged .recover | sqlite3 {p}` recovers what can be read"
    )
}

/// Continue from the state the previous run stored; the tracker itself decides whether the gap
/// since then breaks continuity.
fn restore_tracker(store: &Store, config: &Config) -> Tracker {
    match store.load_tracker_state() {
        Ok(Some(state)) => {
            let last = state.last_sample().unwrap_or_default();
            Tracker::restore(config, state, last)
        }
        Ok(None) => Tracker::new(config),
        Err(e) => {
            log(
                Level::Warning,
                &format!("cannot read the stored tracker state, starting afresh: {e}"),
            );
            Tracker::new(config)
        }
    }
}

fn spawn_signal_thread(tx: Sender<Control>) -> Result<std::thread::JoinHandle<()>, DaemonError> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP])
        .map_err(|e| DaemonError::Startup(format!("cannot install signal handlers: {e}")))?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                let msg = if sig == SIGHUP {
                    Control::Reload
                } else {
                    Control::Stop
                };
                if tx.send(msg).is_err() || msg == Control::Stop {
                    break;
                }
            }
        })
        .map_err(|e| DaemonError::Startup(format!("cannot start the signal thread: {e}")))
}

impl Daemon {
    fn interval(&self) -> Duration {
        Duration::from_secs(self.engine.config().monitoring.interval_secs)
    }

    fn run_loop(&mut self, rx: &Receiver<Control>) {
        // The first tick only primes the counters, so take it at once and the real one a second
        // later: the first figures are then ready without waiting a whole interval.
        self.tick();
        let mut next = Instant::now() + Duration::from_secs(1);
        loop {
            match rx.recv_timeout(next.saturating_duration_since(Instant::now())) {
                Ok(Control::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                Ok(Control::Reload) => self.reload(),
                Err(RecvTimeoutError::Timeout) => {
                    self.tick();
                    next += self.interval();
                    let now = Instant::now();
                    if next < now {
                        next = now + self.interval(); // fell behind (suspend, stall): no burst
                    }
                }
            }
        }
    }

    fn tick(&mut self) {
        self.apply_operator_actions();
        let at = Timestamp::now();
        let began = Instant::now();
        let result = self.engine.tick(at);
        let micros = u64::try_from(began.elapsed().as_micros()).unwrap_or(u64::MAX);
        let tick = match result {
            Ok(Some(t)) => t,
            Ok(None) => return,
            Err(e) => {
                Counters::add(&self.counters.sample_errors, 1);
                log(Level::Error, &format!("sampling failed: {e}"));
                return;
            }
        };
        Counters::add(&self.counters.samples, 1);
        Counters::add(&self.counters.collection_micros, micros);
        self.counters
            .last_collection_micros
            .store(micros, Ordering::Relaxed);
        self.publish(&tick);
        for e in &tick.events {
            let (level, line) = events::describe(e);
            log(level, &line);
        }
        let mails = self.mails_for(&tick.events);
        let mut snapshot = tick.snapshot;
        snapshot.processes = Vec::new();
        for u in &mut snapshot.users {
            u.pids = Vec::new();
        }
        self.pending.push_back(Pending {
            snapshot,
            events: tick.events,
            mails,
            handed: Vec::new(),
        });
        if self.pending.len() > MAX_BUFFERED
            && let Some(old) = self.pending.pop_front()
        {
            let mut ledger = self.mail.ledger();
            for key in old.handed {
                // A mail still to be sent stays with the mail thread.
                if matches!(ledger.get(key), Some(mailer::Handed::Delivered(_))) {
                    ledger.remove(key);
                }
            }
            self.dropped += 1;
        }
        self.flush();
        self.counters
            .buffered
            .store(self.pending.len() as u64, Ordering::Relaxed);
        if self.engine.config().email.enabled {
            self.mail.poke();
        }
        self.maybe_run_retention(at);
        self.notify_systemd();
    }

    /// Hand the sample to the HTTP server, if there is one: never blocks.
    fn publish(&self, tick: &crate::engine::Tick) {
        let Some(hub) = &self.hub else { return };
        let tracker = self.engine.tracker();
        let persistent = tracker
            .persistent_users()
            .into_iter()
            .map(|p| (p.user, p.metric))
            .collect();
        hub.publish(
            &tick.snapshot,
            self.engine.status(),
            tracker.open_alerts().iter().map(|a| a.severity),
            persistent,
            &tick.events,
            self.interval(),
        );
    }

    fn mails_for(&self, events: &[Event]) -> Vec<PendingMail> {
        let config = self.engine.config();
        if !config.email.enabled {
            return Vec::new();
        }
        events
            .iter()
            .filter_map(|e| {
                render::mail_for(e, &config.alerts).map(|mail| PendingMail {
                    mail,
                    alert_key: e.alert().map(|a| a.key.clone()),
                    sent_at: None,
                })
            })
            .collect()
    }

    /// Write buffered records oldest first; stop at the first failure and try again next tick.
    fn flush(&mut self) {
        if self.damaged.is_some() {
            self.hand_over_mail();
            return;
        }
        let state: TrackerState = self.engine.tracker().snapshot_state();
        let mut written = 0usize;
        while let Some(p) = self.pending.front_mut() {
            // Mails handed to the mail thread are recorded as sent if it delivered them, or taken
            // back into the outbox if not; the ledger stays locked until the row is written, and
            // a record waits for the next tick while one of its mails is being delivered.
            let mut ledger = (!p.handed.is_empty()).then(|| self.mail.ledger());
            if let Some(l) = &ledger {
                if p.handed
                    .iter()
                    .any(|k| l.get(*k) == Some(mailer::Handed::Sending))
                {
                    return;
                }
                for (m, key) in p.mails.iter_mut().zip(&p.handed) {
                    m.sent_at = match l.get(*key) {
                        Some(mailer::Handed::Delivered(at)) => Some(at),
                        _ => None,
                    };
                }
            }
            let rec = Record {
                snapshot: &p.snapshot,
                events: &p.events,
                mails: &p.mails,
                tracker: &state,
            };
            match self.store.record(&rec) {
                Ok(_) => {
                    if let Some(l) = ledger.as_mut() {
                        for key in &p.handed {
                            l.remove(*key);
                        }
                    }
                    drop(ledger);
                    self.pending.pop_front();
                    written += 1;
                }
                Err(e) => {
                    drop(ledger);
                    if e.is_corrupt() {
                        self.found_damage(&e);
                    }
                    self.hand_over_mail();
                    Counters::add(&self.counters.store_errors, 1);
                    self.counters.store_failing.store(true, Ordering::Relaxed);
                    if !self.store_failing {
                        log(
                            Level::Error,
                            &format!(
                                "cannot write to {}: {e}; keeping up to {MAX_BUFFERED} samples in \
                                 memory until it can be written",
                                self.store.path().display()
                            ),
                        );
                        self.store_failing = true;
                    }
                    return;
                }
            }
        }
        if self.store_failing {
            self.store_failing = false;
            self.counters.store_failing.store(false, Ordering::Relaxed);
            let lost = std::mem::take(&mut self.dropped);
            log(
                Level::Notice,
                &format!(
                    "database writable again: wrote {written} buffered samples{}",
                    if lost > 0 {
                        format!(", {lost} older samples were dropped (buffer full)")
                    } else {
                        String::new()
                    }
                ),
            );
        }
    }

    /// The first "malformed" error: check the whole file, say so as loudly as the daemon can
    /// (the log, `/health`, systemd's status line; `sysmon status` checks for itself), and stop
    /// writing to it. Monitoring and mail go on from memory.
    fn found_damage(&mut self, e: &crate::store::StoreError) {
        if self.damaged.is_some() {
            return;
        }
        let problems = match self.store.quick_check() {
            Ok(Some(p)) => p,
            Ok(None) | Err(_) => e.to_string(),
        };
        log(
            Level::Error,
            &format!(
                "DATABASE DAMAGED: {} ({problems}). Nothing more is written to it and it is \
                 left as it is; monitoring and alert mail go on, samples are kept in memory (up \
                 to {MAX_BUFFERED}). Stop sysmon, move the file aside with its -wal and -shm \
                 files, and start it again; a restart on the damaged file exits 2",
                self.store.path().display()
            ),
        );
        self.counters.store_damaged.store(true, Ordering::Relaxed);
        self.damaged = Some(problems);
    }

    /// Give the mails of records that cannot be written to the mail thread, so an alert raised
    /// while the database is unwritable is mailed now rather than when it can be written.
    fn hand_over_mail(&mut self) {
        if !self.engine.config().email.enabled {
            return;
        }
        let mut handed = 0;
        for p in self
            .pending
            .iter_mut()
            .filter(|p| p.handed.is_empty() && !p.mails.is_empty())
        {
            p.handed = p
                .mails
                .iter()
                .map(|m| self.mail.deliver_from_memory(m.mail.clone()))
                .collect();
            handed += p.handed.len();
        }
        if handed > 0 {
            self.mail.poke();
        }
    }

    /// Apply acknowledgements and resolutions other processes (a TUI, `sysmon alerts`) wrote to
    /// the database, each exactly once, so the tracker never re-opens what an operator closed.
    fn apply_operator_actions(&mut self) {
        let (actions, cursor) = match self.store.operator_actions_since(self.cursor) {
            Ok(r) => r,
            Err(e) => {
                if e.is_corrupt() {
                    self.found_damage(&e);
                }
                Counters::add(&self.counters.store_errors, 1);
                if !self.store_failing {
                    log(
                        Level::Warning,
                        &format!("cannot read operator actions: {e}"),
                    );
                }
                return;
            }
        };
        self.cursor = cursor;
        for a in actions {
            let at = a.at;
            let applied = match a.action {
                ActionKind::Ack => self.engine.tracker_mut().acknowledge(&a.key, at),
                ActionKind::Resolve => self.engine.tracker_mut().resolve(&a.key, at),
            };
            if applied.is_some() {
                log(
                    Level::Notice,
                    &format!(
                        "alert {} {} by {}",
                        a.alert_id,
                        match a.action {
                            ActionKind::Ack => "acknowledged",
                            ActionKind::Resolve => "resolved",
                        },
                        a.by
                    ),
                );
            }
        }
    }

    fn reload(&mut self) {
        match reload::load(&self.source, self.engine.config()) {
            Ok((config, changes)) => {
                if changes.is_empty() {
                    log(Level::Info, "configuration reloaded: no changes");
                    return;
                }
                log(
                    Level::Notice,
                    &format!("configuration reloaded: {}", changes.join("; ")),
                );
                self.mail.reconfigure(&config);
                self.engine.set_config(config);
            }
            Err(e) => log(
                Level::Error,
                &format!("configuration reload failed, keeping the running one: {e}"),
            ),
        }
    }

    fn maybe_run_retention(&mut self, at: Timestamp) {
        if self
            .last_retention
            .is_some_and(|t| t.elapsed() < RETENTION_EVERY)
            || self.store_failing
            || self.damaged.is_some()
        {
            return;
        }
        self.last_retention = Some(Instant::now());
        let days = self.engine.config().storage.retention_days;
        match self.store.run_retention(at, days) {
            Ok(r) => log(
                Level::Info,
                &format!(
                    "retention: {} samples rolled into minutes, {} minutes into hours, {} samples \
                     and {} old rollups deleted",
                    r.minutes_rolled_up,
                    r.hours_rolled_up,
                    r.samples_deleted,
                    r.minute_rows_deleted + r.hour_rows_deleted
                ),
            ),
            Err(e) => log(Level::Warning, &format!("retention failed: {e}")),
        }
    }

    fn notify_systemd(&mut self) {
        use sd_notify::NotifyState;
        let status = format!(
            "{}{}; {} open alerts; {} samples buffered",
            if self.damaged.is_some() {
                "DATABASE DAMAGED, see the log; "
            } else {
                ""
            },
            self.engine.status().status,
            self.engine.tracker().open_alerts().len(),
            self.pending.len()
        );
        let mut states = vec![NotifyState::Status(&status)];
        if !self.ready {
            states.push(NotifyState::Ready);
            self.ready = true;
        }
        if self.watchdog.is_some() {
            states.push(NotifyState::Watchdog);
        }
        let _ = sd_notify::notify(&states);
    }

    fn shut_down(&mut self) {
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
        if let Some(mut server) = self.http.take() {
            server.stop();
        }
        self.flush();
        self.mail.stop();
        let left = self.pending.len();
        log(
            Level::Notice,
            &if left == 0 {
                "stopped: everything recorded".to_string()
            } else {
                format!("stopped: {left} samples could not be written")
            },
        );
    }
}
