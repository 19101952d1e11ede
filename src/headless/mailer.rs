//! The outbox sender's thread.
//!
//! Delivery runs beside the sampling loop with its own database connection, so a slow or dead
//! SMTP server delays mail but never a sample. It wakes when the loop has queued mail, and every
//! few seconds anyway to retry what failed.
//!
//! While the database cannot be written (disk full, read-only) the loop cannot queue mail in the
//! outbox, so it hands each new mail to this thread to deliver from memory. The [`Ledger`] is
//! how the two agree on each such mail afterwards: once the sample that raised it is written,
//! its outbox row is recorded as sent if this thread delivered it, or queued as usual if not (the
//! loop takes it back), and never while a delivery is under way, so no mail goes out twice.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::config::Config;
use crate::counters::Counters;
use crate::log::{Level, log};
use crate::mail::sender::retry_delay_secs;
use crate::mail::smtp::read_ca_file;
use crate::mail::{Mailer, SendEvent, Sender as MailSender, Transport};
use crate::model::{Mail, Timestamp};
use crate::store::Store;

const RETRY_EVERY: Duration = Duration::from_secs(5);

enum Msg {
    Poke,
    Reconfigure(Box<Config>),
    /// A mail to deliver from memory; its key is in the ledger.
    Direct(u64, Box<Mail>),
    Stop,
}

/// Where a mail handed over from memory stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handed {
    /// Waiting in the mail thread.
    Queued,
    /// The mail thread is talking to the server about it.
    Sending,
    /// The server accepted it at this time.
    Delivered(Timestamp),
}

/// Mail handed from the sampling loop to the mail thread, by key. An entry is removed by the
/// loop once the mail's outbox row is written; a queued mail whose entry is gone has been taken
/// back into the outbox, and the mail thread drops it.
#[derive(Debug, Default)]
pub struct Ledger(HashMap<u64, Handed>);

impl Ledger {
    pub fn get(&self, key: u64) -> Option<Handed> {
        self.0.get(&key).copied()
    }

    pub fn remove(&mut self, key: u64) {
        self.0.remove(&key);
    }
}

pub struct MailWorker {
    tx: Sender<Msg>,
    handle: Option<JoinHandle<()>>,
    ledger: Arc<Mutex<Ledger>>,
    next_key: u64,
}

impl MailWorker {
    pub fn start(config: &Config, db: &Path, host: &str, counters: Arc<Counters>) -> MailWorker {
        let (tx, rx) = mpsc::channel();
        let config = config.clone();
        let db = db.to_path_buf();
        let host = host.to_string();
        let ledger = Arc::new(Mutex::new(Ledger::default()));
        let shared = ledger.clone();
        let handle = std::thread::Builder::new()
            .name("mail".into())
            .spawn(move || worker(config, db, host, rx, &counters, &shared))
            .map_err(|e| log(Level::Error, &format!("cannot start the mail thread: {e}")))
            .ok();
        MailWorker {
            tx,
            handle,
            ledger,
            next_key: 0,
        }
    }

    pub fn poke(&self) {
        let _ = self.tx.send(Msg::Poke);
    }

    /// Hand a mail that cannot be queued in the database to the mail thread; the key finds it
    /// in the ledger.
    pub fn deliver_from_memory(&mut self, mail: Mail) -> u64 {
        self.next_key += 1;
        let key = self.next_key;
        lock(&self.ledger).0.insert(key, Handed::Queued);
        let _ = self.tx.send(Msg::Direct(key, Box::new(mail)));
        key
    }

    pub fn ledger(&self) -> MutexGuard<'_, Ledger> {
        lock(&self.ledger)
    }

    pub fn reconfigure(&self, config: &Config) {
        let _ = self.tx.send(Msg::Reconfigure(Box::new(config.clone())));
    }

    pub fn stop(&mut self) {
        let _ = self.tx.send(Msg::Stop);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn build_mailer(config: &Config) -> Option<Mailer> {
    if !config.email.enabled {
        return None;
    }
    let password = match config.email_password() {
        Ok(p) => p,
        Err(e) => {
            log(Level::Error, &format!("email disabled: {e}"));
            return None;
        }
    };
    let ca = match config
        .email
        .ca_file
        .as_deref()
        .map(read_ca_file)
        .transpose()
    {
        Ok(ca) => ca,
        Err(e) => {
            log(Level::Error, &format!("email disabled: {e}"));
            return None;
        }
    };
    match Mailer::new(&config.email, password, ca) {
        Ok(m) => Some(m),
        Err(e) => {
            log(Level::Error, &format!("email disabled: {e}"));
            None
        }
    }
}

fn lock(ledger: &Mutex<Ledger>) -> MutexGuard<'_, Ledger> {
    ledger.lock().unwrap_or_else(|e| e.into_inner())
}

/// A mail handed over from memory, with its own backoff.
struct Direct {
    key: u64,
    mail: Mail,
    attempts: u32,
    next_attempt: Timestamp,
}

fn worker(
    mut config: Config,
    db: PathBuf,
    host: String,
    rx: Receiver<Msg>,
    counters: &Counters,
    ledger: &Mutex<Ledger>,
) {
    let mut mailer = build_mailer(&config);
    let mut store: Option<Store> = None;
    let mut sender = MailSender::new(config.email.max_per_hour, host.clone());
    let mut direct: Vec<Direct> = Vec::new();
    loop {
        match rx.recv_timeout(RETRY_EVERY) {
            Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => return,
            Ok(Msg::Reconfigure(c)) => {
                config = *c;
                mailer = build_mailer(&config);
                sender = MailSender::new(config.email.max_per_hour, host.clone());
            }
            Ok(Msg::Direct(key, mail)) => direct.push(Direct {
                key,
                mail: *mail,
                attempts: 0,
                next_attempt: Timestamp(0),
            }),
            Ok(Msg::Poke) | Err(RecvTimeoutError::Timeout) => {}
        }
        let Some(m) = &mailer else { continue };
        deliver_direct(&mut direct, ledger, m, &mut sender, counters);
        if counters.store_damaged.load(Ordering::Relaxed) {
            // The sampling loop found the file damaged: leave it alone; mail comes from memory.
            store = None;
            continue;
        }
        if store.is_none() {
            store = Store::open(&db)
                .map_err(|e| {
                    log(
                        Level::Warning,
                        &format!("mail: cannot open the database: {e}"),
                    )
                })
                .ok();
        }
        let Some(s) = store.as_mut() else { continue };
        let report = sender.run_once(s, m, Timestamp::now());
        for e in &report.events {
            let level = match e {
                SendEvent::Failed { .. } => {
                    Counters::add(&counters.emails_failed, 1);
                    Level::Warning
                }
                SendEvent::OutboxError(_) => Level::Warning,
                SendEvent::Holding { .. } => Level::Notice,
                SendEvent::Sent { .. } | SendEvent::DigestSent { .. } => {
                    Counters::add(&counters.emails_sent, 1);
                    Level::Info
                }
            };
            log(level, &format!("mail: {e}"));
        }
    }
}

/// Deliver the mail handed over from memory that is due, oldest first. Each is marked as being
/// sent in the ledger for the length of its delivery, so that the sampling loop neither records
/// it as unsent nor takes it back meanwhile.
fn deliver_direct(
    direct: &mut Vec<Direct>,
    ledger: &Mutex<Ledger>,
    mailer: &dyn Transport,
    sender: &mut MailSender,
    counters: &Counters,
) {
    let mut i = 0;
    while i < direct.len() {
        let now = Timestamp::now();
        let item = &mut direct[i];
        {
            let mut l = lock(ledger);
            match l.get(item.key) {
                Some(Handed::Queued) if item.next_attempt <= now && sender.has_room(now) => {
                    l.0.insert(item.key, Handed::Sending);
                }
                Some(Handed::Queued) => {
                    i += 1;
                    continue;
                }
                // Taken back into the outbox, or already delivered.
                _ => {
                    direct.remove(i);
                    continue;
                }
            }
        }
        let key = format!("memory.{}.{}", item.key, std::process::id());
        let sent = mailer.send_keyed(&item.mail, &key, &mut || {
            lock(ledger)
                .0
                .insert(item.key, Handed::Delivered(Timestamp::now()));
        });
        match sent {
            Ok(()) => {
                sender.count_delivery(now);
                Counters::add(&counters.emails_sent, 1);
                log(
                    Level::Info,
                    &format!(
                        "mail: sent from memory (the database cannot be written; it is recorded \
                         as sent once it can be): {}",
                        item.mail.subject
                    ),
                );
                direct.remove(i);
            }
            Err(e) => {
                lock(ledger).0.insert(item.key, Handed::Queued);
                item.attempts += 1;
                let wait = retry_delay_secs(item.attempts, e.is_permanent());
                item.next_attempt = now.plus_secs(wait as f64);
                Counters::add(&counters.emails_failed, 1);
                log(
                    Level::Warning,
                    &format!(
                        "mail: not delivered from memory (attempt {}): {e}; next try in {wait} s \
                         ({})",
                        item.attempts, item.mail.subject
                    ),
                );
                if e.is_server_wide() {
                    return;
                }
                i += 1;
            }
        }
    }
}
