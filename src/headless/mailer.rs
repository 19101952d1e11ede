//! The outbox sender's thread.
//!
//! Delivery runs beside the sampling loop with its own database connection, so a slow or dead
//! SMTP server delays mail but never a sample. It wakes when the loop has queued mail, and every
//! few seconds anyway to retry what failed.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use super::counters::Counters;
use super::log::{Level, log};
use crate::config::Config;
use crate::model::Timestamp;
use crate::notify::smtp::read_ca_file;
use crate::notify::{Mailer, SendEvent, Sender as MailSender};
use crate::store::Store;

const RETRY_EVERY: Duration = Duration::from_secs(5);

enum Msg {
    Poke,
    Reconfigure(Box<Config>),
    Stop,
}

pub struct MailWorker {
    tx: Sender<Msg>,
    handle: Option<JoinHandle<()>>,
}

impl MailWorker {
    pub fn start(config: &Config, db: &Path, host: &str, counters: Arc<Counters>) -> MailWorker {
        let (tx, rx) = mpsc::channel();
        let config = config.clone();
        let db = db.to_path_buf();
        let host = host.to_string();
        let handle = std::thread::Builder::new()
            .name("mail".into())
            .spawn(move || worker(config, db, host, rx, &counters))
            .map_err(|e| log(Level::Error, &format!("cannot start the mail thread: {e}")))
            .ok();
        MailWorker { tx, handle }
    }

    pub fn poke(&self) {
        let _ = self.tx.send(Msg::Poke);
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

fn worker(mut config: Config, db: PathBuf, host: String, rx: Receiver<Msg>, counters: &Counters) {
    let mut mailer = build_mailer(&config);
    let mut store: Option<Store> = None;
    let mut sender = MailSender::new(config.email.max_per_hour, host.clone());
    loop {
        match rx.recv_timeout(RETRY_EVERY) {
            Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => return,
            Ok(Msg::Reconfigure(c)) => {
                config = *c;
                mailer = build_mailer(&config);
                sender = MailSender::new(config.email.max_per_hour, host.clone());
            }
            Ok(Msg::Poke) | Err(RecvTimeoutError::Timeout) => {}
        }
        let Some(m) = &mailer else { continue };
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
