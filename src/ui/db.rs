//! The daemon's database as the TUI uses it: read the open alerts, write acknowledgements and
//! resolutions.
//!
//! The database is optional. Without one (no daemon has run with this configuration, or this
//! user cannot open it) the TUI still works from its own tracker and says so in the alerts
//! pane. While a daemon runs on it, the database is the one source of alerts and persistence:
//! every TUI shows what `sysmon alerts` and `sysmon status` show, and a TUI's own tracker (which
//! started when the TUI did, and knows nothing of what was resolved before) shows nothing of its
//! own. A TUI never creates the database: that is the daemon's job, and a stray empty file in
//! /var/lib would hide the daemon's real one from nobody but confuse everyone.

use crate::config::Config;
use crate::model::{PersistentEpisode, Timestamp};
use crate::store::{RecordedState, Store, StoredAlert};
use crate::track::Tracker;

use super::alerts::{AlertOp, AlertTarget};
use super::state::TravelTo;

/// How many open alerts are read per tick; more than any screen shows.
const ALERT_LIMIT: usize = 500;

/// Points asked for per chart: wider than any terminal; the view thins them to its width.
const MAX_CHART_POINTS: usize = 400;

pub struct AlertDb {
    store: Option<Store>,
    /// Where the database is expected, to open it once a daemon has created it.
    path: std::path::PathBuf,
    failed: bool,
    /// Why alerts come from this session only, or the last read error.
    pub note: Option<String>,
}

impl AlertDb {
    pub fn open(config: &Config) -> AlertDb {
        let mut db = AlertDb {
            store: None,
            path: config.storage.resolved_path(),
            failed: false,
            note: None,
        };
        db.try_open();
        db
    }

    /// Open the database if it exists and is not open yet (a daemon may start after the TUI).
    fn try_open(&mut self) {
        // An open that failed (permissions, corruption) is not retried every tick.
        if self.store.is_some() || self.failed {
            return;
        }
        // A file this user may not read is "permission denied" with what to do about it, not
        // "no database".
        let reach = self
            .path
            .try_exists()
            .and_then(|exists| std::fs::File::open(&self.path).map(|_| exists));
        match reach {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.note = Some("no database: this session's alerts only".into());
                return;
            }
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                // The pane's title already says the alerts are this session's.
                self.note = Some(format!(
                    "{}: permission denied (join its group: README, Sharing the database)",
                    self.path.display()
                ));
                return;
            }
            Err(e) => {
                self.note = Some(format!(
                    "database out of reach ({e}): this session's alerts only"
                ));
                return;
            }
        }
        match Store::open(&self.path) {
            Ok(store) => {
                self.store = Some(store);
                self.note = None;
            }
            Err(e) => {
                self.note = Some(format!(
                    "database unreadable ({e}): this session's alerts only"
                ));
            }
        }
    }

    /// Whether a daemon is recording to the database this session reads, so that its alerts
    /// and episodes are the ones to show.
    pub fn daemon_running(&self) -> bool {
        self.store.is_some() && crate::lock::running_daemon(&self.path).is_some()
    }

    /// Persistent-user episodes under way at `at`, from the database.
    pub fn episodes_now(&mut self, at: Timestamp) -> Option<Vec<PersistentEpisode>> {
        match self.store.as_ref()?.episodes(at, at) {
            Ok(eps) => Some(eps),
            Err(e) => {
                self.note = Some(format!("cannot read episodes: {e}"));
                None
            }
        }
    }

    /// Open and acknowledged alerts from the database; empty without one.
    pub fn open_alerts(&mut self) -> Vec<StoredAlert> {
        self.try_open();
        let Some(store) = &self.store else {
            return Vec::new();
        };
        match store.alerts(false, ALERT_LIMIT) {
            Ok(rows) => {
                self.note = None;
                rows
            }
            Err(e) => {
                self.note = Some(format!("cannot read alerts: {e}"));
                Vec::new()
            }
        }
    }

    /// Acknowledge or resolve `targets` in the database and in this session's tracker (so it
    /// does not show them again or reopen them). Returns the message for the screen and whether
    /// it reports an error.
    pub fn apply(
        &mut self,
        tracker: &mut Tracker,
        op: AlertOp,
        targets: &[AlertTarget],
        at: Timestamp,
        by: &str,
    ) -> (String, bool) {
        let mut done = 0usize;
        let mut errors = Vec::new();
        for t in targets {
            let local = match op {
                AlertOp::Acknowledge => tracker.acknowledge(&t.key, at),
                AlertOp::Resolve => tracker.resolve(&t.key, at),
            };
            let recorded = match (t.id, &mut self.store) {
                (Some(id), Some(store)) => {
                    let r = match op {
                        AlertOp::Acknowledge => store.acknowledge(id, at, by),
                        AlertOp::Resolve => store.resolve(id, at, by),
                    };
                    match r {
                        Ok(changed) => changed,
                        Err(e) => {
                            errors.push(format!("alert {id}: {e}"));
                            continue;
                        }
                    }
                }
                _ => false,
            };
            if recorded || local.is_some() {
                done += 1;
            }
        }
        if let Some(first) = errors.first() {
            return (
                format!("{} of {} {}; {first}", done, targets.len(), op.past()),
                true,
            );
        }
        if done == 0 {
            return (format!("nothing {}: already closed", op.past()), true);
        }
        (format!("{done} alert(s) {}", op.past()), false)
    }

    /// The recorded moment `to` asks for; Ok(None) when there is none (before the first or
    /// after the last sample kept).
    pub fn recorded(&self, to: TravelTo) -> Result<Option<RecordedState>, String> {
        let Some(store) = &self.store else {
            return Err(match &self.note {
                Some(why) => format!("nothing recorded to travel to: {why}"),
                None => "no database: nothing recorded to travel to".into(),
            });
        };
        let err = |e: crate::store::StoreError| e.to_string();
        let at = match to {
            TravelTo::Before(t) => store.prev_sample_time(t).map_err(err)?,
            TravelTo::After(t) => store.next_sample_time(t).map_err(err)?,
            TravelTo::At(t) => Some(t),
        };
        let Some(at) = at else { return Ok(None) };
        match store.state_at(at).map_err(err)? {
            Some(rec) => Ok(Some(rec)),
            // Before the first sample kept: the earliest one is the nearest.
            None => match store.next_sample_time(at).map_err(err)? {
                Some(first) => store.state_at(first).map_err(err),
                None => Ok(None),
            },
        }
    }

    /// The history charts' data and the users recorded in the range: from the database when
    /// there is one.
    pub fn history(
        &self,
        since: Timestamp,
        until: Timestamp,
        user: Option<&str>,
    ) -> Option<Result<super::history::HistoryData, String>> {
        let store = self.store.as_ref()?;
        let q = crate::store::HistoryQuery {
            since,
            until,
            user: user.map(str::to_string),
            max_points: Some(MAX_CHART_POINTS),
        };
        let read = || -> Result<super::history::HistoryData, crate::store::StoreError> {
            let h = store.history(&q)?;
            let users = store.users_between(since, until)?;
            Ok(super::history::from_store(&h, since, until, user, users))
        };
        Some(read().map_err(|e| e.to_string()))
    }
}
