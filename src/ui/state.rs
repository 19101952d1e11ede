//! The TUI's view model and the one function that changes it.
//!
//! `AppState` holds the latest data from the engine (a [`Feed`]) plus everything the user chose
//! (focus, selection, sort, filter, overlays). [`AppState::apply`] is pure: no terminal, no clock,
//! no /proc. The run loop feeds it engine ticks and actions; the views only read it. Selection is
//! an index clamped against the current data, so a tick that removes rows can never leave the
//! cursor past the end; and since every tick re-sorts the lists, each cursor follows what it is
//! on (a process by pid and start time, a user by uid, an alert by key) across the change, and
//! says so when its process has ended rather than silently landing on another (`k` acts on it).

use std::collections::VecDeque;

use jiff::tz::TimeZone;

use super::action::{Action, SortKey};
use super::alerts::{self, AlertOp, AlertRow, AlertTarget};
use super::history::{self, HistoryData, SessionHistory};
use super::keymap::InputMode;
use super::procs::{self, ProcRow};
use crate::config::Config;
use crate::model::{
    Alert, AlertKey, AlertState, PersistentEpisode, ProcessStats, Snapshot, StatusReport,
    Timestamp, UserStats,
};
use crate::store::StoredAlert;

/// What the cursors are on, by identity.
struct Pins {
    user: Option<u32>,
    alert: Option<AlertKey>,
    /// pid, start time and name of the selected process.
    process: Option<(u32, Timestamp, String)>,
}

/// Samples kept for the CPU sparkline.
pub const SPARK_LEN: usize = 120;

/// Refresh intervals `+` and `-` step through, in seconds.
const REFRESH_STEPS: [f64; 9] = [0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0, 300.0];

/// What one engine tick hands the UI.
#[derive(Debug, Clone)]
pub struct Feed {
    pub snapshot: Snapshot,
    pub status: StatusReport,
    /// This session's tracker's open alerts.
    pub alerts: Vec<Alert>,
    pub persistent: Vec<PersistentEpisode>,
    /// Open alerts from the daemon's database (empty without one).
    pub stored: Vec<StoredAlert>,
}

/// A yes/no question before an action that changes shared state or hits a process.
#[derive(Debug, Clone, PartialEq)]
pub struct Confirm {
    pub title: String,
    pub question: String,
    /// What a yes does.
    pub effect: Effect,
}

/// The signal menu for one process.
#[derive(Debug, Clone, PartialEq)]
pub struct SignalDialog {
    pub pid: u32,
    pub name: String,
    pub user: String,
    /// Identifies the process across pid reuse.
    pub start_time: Timestamp,
    /// Index into [`super::signal::SIGNALS`].
    pub selected: usize,
}

/// Work for the run loop: what `apply` decided but cannot do itself (it does no I/O).
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Alerts(AlertOp, Vec<AlertTarget>),
    /// Show the recorded state at another time.
    Travel(TravelTo),
    /// Send `SIGNALS[signal]` to the process, if it is still the one chosen.
    Signal {
        pid: u32,
        start_time: Timestamp,
        signal: usize,
    },
    /// Load the history charts' data.
    LoadHistory {
        since: Timestamp,
        until: Timestamp,
        user: Option<String>,
    },
}

/// Where time travel goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TravelTo {
    /// The last recorded sample strictly before this time.
    Before(Timestamp),
    /// The first recorded sample strictly after this time.
    After(Timestamp),
    /// The recorded sample at or nearest before this time.
    At(Timestamp),
}

/// The history range [`AppState::range`] starts at: one hour.
pub const DEFAULT_RANGE: usize = 1;

/// A one-line result shown in place of the hint bar until the next key.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub text: String,
    pub error: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    System,
    Users,
    Alerts,
}

impl Pane {
    const ORDER: [Pane; 3] = [Pane::System, Pane::Users, Pane::Alerts];

    fn step(self, by: isize) -> Pane {
        let i = Self::ORDER.iter().position(|p| *p == self).unwrap_or(0) as isize;
        let n = Self::ORDER.len() as isize;
        Self::ORDER[(i + by).rem_euclid(n) as usize]
    }
}

/// A process list: everyone's, or one user's.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessView {
    pub user: Option<String>,
    pub sort: SortKey,
    pub inverted: bool,
    pub tree: bool,
    pub filter: String,
    pub editing: bool,
    pub selected: usize,
}

impl ProcessView {
    pub fn new(user: Option<String>) -> Self {
        ProcessView {
            user,
            sort: SortKey::Cpu,
            inverted: false,
            tree: false,
            filter: String::new(),
            editing: false,
            selected: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum View {
    Main,
    Processes(ProcessView),
    /// One alert's details.
    Alert(AlertKey),
    /// The history charts.
    History(HistoryView),
}

/// The history charts over [`AppState::range`], and optionally one user's series.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryView {
    pub user: Option<String>,
    /// The user picker, when open: the highlighted row of [`AppState::chart_choices`].
    pub picker: Option<usize>,
}

/// Display choices fixed at start-up.
#[derive(Debug, Clone)]
pub struct Options {
    /// ASCII-only borders, bars and sparklines.
    pub ascii: bool,
    /// Colors off (NO_COLOR).
    pub color: bool,
    pub refresh_secs: f64,
    /// This process, to show sysmon's own footprint.
    pub own_pid: u32,
    pub tz: TimeZone,
    /// No acknowledging, resolving or signalling (`--readonly`).
    pub readonly: bool,
}

pub struct AppState {
    pub options: Options,
    pub config: Config,
    pub feed: Option<Feed>,
    /// Machine CPU % of recent ticks, oldest first.
    pub cpu_history: VecDeque<f64>,
    pub view: View,
    pub focus: Pane,
    pub user_selected: usize,
    pub alert_selected: usize,
    pub help: bool,
    pub reasons: bool,
    pub show_system_users: bool,
    pub paused: bool,
    pub refresh_secs: f64,
    pub quit: bool,
    /// Rows a PgUp/PgDn moves; the run loop sets it from the terminal height.
    pub page: usize,
    pub confirm: Option<Confirm>,
    pub effects: Vec<Effect>,
    pub notice: Option<Notice>,
    /// Where the alerts come from, e.g. why there is no database; shown in the alerts pane.
    pub alerts_source: Option<String>,
    /// A recorded moment shown instead of the live data (time travel).
    pub travel: Option<Feed>,
    /// The time being typed after `b`, when the prompt is open.
    pub goto: Option<String>,
    /// The signal menu, when open.
    pub signal: Option<SignalDialog>,
    /// What the history view charts, once loaded.
    pub history: Option<HistoryData>,
    /// This session's own samples, for the history view without a database.
    pub session: SessionHistory,
    /// The selected index into [`history::RANGES`]: the history view's range, and the step `j`
    /// and `J` move by in time travel. One choice for both, so the step is what the charts span.
    pub range: usize,
}

impl AppState {
    pub fn new(config: Config, options: Options) -> Self {
        AppState {
            refresh_secs: options.refresh_secs,
            options,
            config,
            feed: None,
            cpu_history: VecDeque::with_capacity(SPARK_LEN),
            view: View::Main,
            focus: Pane::Users,
            user_selected: 0,
            alert_selected: 0,
            help: false,
            reasons: false,
            show_system_users: false,
            paused: false,
            quit: false,
            page: 10,
            confirm: None,
            effects: Vec::new(),
            notice: None,
            alerts_source: None,
            travel: None,
            history: None,
            session: SessionHistory::default(),
            signal: None,
            goto: None,
            range: DEFAULT_RANGE,
        }
    }

    /// Take a new tick's data.
    pub fn ingest(&mut self, feed: Feed) {
        if self.cpu_history.len() == SPARK_LEN {
            self.cpu_history.pop_front();
        }
        self.cpu_history
            .push_back(feed.snapshot.system.cpu.total.busy);
        self.session.push(&feed.snapshot);
        let pins = self.pins();
        self.feed = Some(feed);
        self.repin(pins, true);
    }

    /// What each cursor is on, to find it again once the rows change.
    fn pins(&self) -> Pins {
        let process = match &self.view {
            View::Processes(pv) => self.process_rows().get(pv.selected).map(|r| {
                (
                    r.process.pid,
                    r.process.start_time,
                    crate::sanitize::clean(&r.process.name),
                )
            }),
            _ => None,
        };
        Pins {
            user: self.visible_users().get(self.user_selected).map(|u| u.uid),
            alert: self
                .alerts()
                .get(self.alert_selected)
                .map(|a| a.alert.key.clone()),
            process,
        }
    }

    /// Put each cursor back on what `pins` says it was on. A process that is gone leaves the
    /// cursor on the row that took its place, and (for live data, `gone_ended`) a notice says so.
    fn repin(&mut self, pins: Pins, gone_ended: bool) {
        if let Some(uid) = pins.user
            && let Some(i) = self.visible_users().iter().position(|u| u.uid == uid)
        {
            self.user_selected = i;
        }
        if let Some(key) = &pins.alert
            && let Some(i) = self.alerts().iter().position(|a| &a.alert.key == key)
        {
            self.alert_selected = i;
        }
        if let Some((pid, start, name)) = pins.process {
            let found = self
                .process_rows()
                .iter()
                .position(|r| r.process.pid == pid && r.process.start_time == start);
            match (found, &mut self.view) {
                (Some(i), View::Processes(pv)) => pv.selected = i,
                (None, View::Processes(_)) if gone_ended => self.notify(
                    format!("process {pid} ({name}) has ended: the cursor is on the next one"),
                    false,
                ),
                _ => {}
            }
        }
        self.clamp();
    }

    /// What the screen shows: the recorded moment while time travelling, else the live data.
    pub fn shown(&self) -> Option<&Feed> {
        self.travel.as_ref().or(self.feed.as_ref())
    }

    /// Show a recorded moment.
    pub fn arrive(&mut self, feed: Feed) {
        let pins = self.pins();
        self.travel = Some(feed);
        self.repin(pins, false);
    }

    /// Back to the live data.
    pub fn go_live(&mut self) {
        let pins = self.pins();
        self.travel = None;
        self.repin(pins, false);
    }

    pub fn input_mode(&self) -> InputMode {
        if self.confirm.is_some() {
            return InputMode::Confirm;
        }
        if self.signal.is_some() {
            return InputMode::Signal;
        }
        if self.goto.is_some() {
            return InputMode::Goto;
        }
        match &self.view {
            View::Processes(p) if p.editing => InputMode::Filter,
            View::Processes(_) => InputMode::Processes,
            View::Main | View::Alert(_) if self.travel.is_some() => InputMode::Travel,
            View::Main | View::Alert(_) => InputMode::Main,
            View::History(hv) if hv.picker.is_some() => InputMode::UserPicker,
            View::History(_) => InputMode::History,
        }
    }

    /// The selected range's label and length in seconds.
    pub fn range(&self) -> (&'static str, i64) {
        history::RANGES[self.range.min(history::RANGES.len() - 1)]
    }

    /// How far `j` and `J` move in time travel: the selected history range.
    pub fn step_secs(&self) -> f64 {
        self.range().1 as f64
    }

    /// What the history view's user picker offers: the machine alone, then every user recorded
    /// in the loaded range.
    pub fn chart_choices(&self) -> Vec<Option<&str>> {
        let users = self.history.as_ref().map(|h| h.users.as_slice());
        std::iter::once(None)
            .chain(users.unwrap_or_default().iter().map(|u| Some(u.as_str())))
            .collect()
    }

    /// The users the users pane lists: system accounts only on request.
    pub fn visible_users(&self) -> Vec<&UserStats> {
        let Some(feed) = self.shown() else {
            return Vec::new();
        };
        feed.snapshot
            .users
            .iter()
            .filter(|u| self.show_system_users || !self.is_system_user(u))
            .collect()
    }

    pub fn is_system_user(&self, u: &UserStats) -> bool {
        u.uid < self.config.filtering.min_uid
            || self
                .config
                .filtering
                .excluded_users
                .iter()
                .any(|x| *x == *u.name)
    }

    /// Open and acknowledged alerts from the database and this session, newest first.
    pub fn alerts(&self) -> Vec<AlertRow<'_>> {
        match self.shown() {
            Some(feed) => alerts::merge(&feed.stored, &feed.alerts),
            None => Vec::new(),
        }
    }

    /// Replace the database's alerts (after an acknowledgement or resolution).
    pub fn set_stored(&mut self, stored: Vec<StoredAlert>) {
        let pins = self.pins();
        if let Some(feed) = &mut self.feed {
            feed.stored = stored;
        }
        self.repin(pins, false);
    }

    /// Show the outcome of an effect.
    pub fn notify(&mut self, text: impl Into<String>, error: bool) {
        self.notice = Some(Notice {
            text: text.into(),
            error,
        });
    }

    /// The effects `apply` queued, for the run loop to carry out.
    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    /// sysmon's own process in the latest snapshot.
    pub fn own_process(&self) -> Option<&ProcessStats> {
        let feed = self.shown()?;
        feed.snapshot
            .processes
            .iter()
            .find(|p| p.pid == self.options.own_pid)
    }

    /// The rows of the current process list, in display order.
    pub fn process_rows(&self) -> Vec<ProcRow<'_>> {
        match (&self.view, self.shown()) {
            (View::Processes(pv), Some(feed)) => procs::rows(&feed.snapshot.processes, pv),
            _ => Vec::new(),
        }
    }

    /// Change the state for `action`.
    pub fn apply(&mut self, action: Action) {
        if action == Action::Quit {
            self.quit = true;
            return;
        }
        self.notice = None;
        if let Some(confirm) = self.confirm.take() {
            // Only an explicit yes acts; any other key is a no.
            if action == Action::Confirm {
                self.effects.push(confirm.effect);
            }
            return;
        }
        if self.signal.is_some() {
            self.signal_action(action);
            return;
        }
        if self.goto.is_some() {
            self.goto_action(action);
            return;
        }
        if matches!(&self.view, View::History(hv) if hv.picker.is_some()) {
            self.picker_action(action);
            return;
        }
        if self.help {
            // Any other key closes the overlay and does nothing else: a stray key while reading
            // the help must not act on a row the user cannot see.
            self.help = false;
            return;
        }
        match action {
            Action::ToggleHelp => self.help = true,
            Action::Back => self.back(),
            Action::TogglePause => self.paused = !self.paused,
            Action::Faster => self.refresh_secs = step_refresh(self.refresh_secs, -1),
            Action::Slower => self.refresh_secs = step_refresh(self.refresh_secs, 1),
            Action::ToggleReasons => self.reasons = !self.reasons,
            Action::ToggleSystemUsers => {
                self.show_system_users = !self.show_system_users;
                self.user_selected = 0;
            }
            Action::NextPane => self.focus = self.focus.step(1),
            Action::PrevPane => self.focus = self.focus.step(-1),
            Action::Up => self.move_by(-1),
            Action::Down => self.move_by(1),
            Action::PageUp => self.move_by(-(self.page.max(1) as isize)),
            Action::PageDown => self.move_by(self.page.max(1) as isize),
            Action::Top => self.move_by(isize::MIN / 2),
            Action::Bottom => self.move_by(isize::MAX / 2),
            Action::Enter => self.enter(),
            Action::AllProcesses => self.view = View::Processes(ProcessView::new(None)),
            Action::Sort(_)
            | Action::InvertSort
            | Action::ToggleTree
            | Action::StartFilter
            | Action::FilterChar(_)
            | Action::FilterBackspace
            | Action::FilterAccept
            | Action::FilterClear => self.process_action(action),
            Action::Acknowledge => self.ask(AlertOp::Acknowledge, false),
            Action::Resolve => self.ask(AlertOp::Resolve, false),
            Action::ResolveAll => self.ask(AlertOp::Resolve, true),
            Action::PrevSample => self.travel_to(TravelTo::Before),
            Action::NextSample => self.travel_forward(TravelTo::After),
            Action::JumpBack => {
                let step = self.step_secs();
                self.travel_to(|t| TravelTo::At(t.plus_secs(-step)));
            }
            Action::JumpForward => {
                let step = self.step_secs();
                self.travel_forward(|t| TravelTo::At(t.plus_secs(step)));
            }
            Action::Live => self.go_live(),
            Action::History => self.open_history(),
            Action::RangeLonger => self.change_range(1),
            Action::RangeShorter => self.change_range(-1),
            Action::PickUser => self.open_picker(),
            Action::Signal => self.open_signal(),
            Action::StartGoto => self.goto = Some(String::new()),
            Action::Quit | Action::Confirm | Action::Cancel => {}
        }
        self.clamp();
    }

    fn back(&mut self) {
        if !matches!(self.view, View::Main) {
            self.view = View::Main;
        } else if self.travel.is_some() {
            self.travel = None;
        } else {
            self.reasons = false;
        }
    }

    fn enter(&mut self) {
        if !matches!(self.view, View::Main) {
            return;
        }
        if self.focus == Pane::Alerts {
            let key = self
                .alerts()
                .get(self.alert_selected)
                .map(|r| r.alert.key.clone());
            if let Some(key) = key {
                self.view = View::Alert(key);
            }
            return;
        }
        if self.focus != Pane::Users {
            return;
        }
        let name = self
            .visible_users()
            .get(self.user_selected)
            .map(|u| u.name.to_string());
        if let Some(name) = name {
            self.view = View::Processes(ProcessView::new(Some(name)));
        }
    }

    /// The alert `a` / `r` act on: the one whose details are open, else the alerts pane's
    /// selection when that pane has the focus.
    pub fn target_alert(&self) -> Option<AlertRow<'_>> {
        let rows = self.alerts();
        match &self.view {
            View::Alert(key) => rows.into_iter().find(|r| r.alert.key == *key),
            View::Main if self.focus == Pane::Alerts => rows.into_iter().nth(self.alert_selected),
            _ => None,
        }
    }

    fn open_history(&mut self) {
        let user = if self.focus == Pane::Users {
            self.visible_users()
                .get(self.user_selected)
                .map(|u| u.name.to_string())
        } else {
            None
        };
        self.view = View::History(HistoryView { user, picker: None });
        self.history = None;
        self.load_history();
    }

    /// A longer or shorter range: the history view's span and the time-travel step.
    fn change_range(&mut self, by: isize) {
        let last = history::RANGES.len() - 1;
        self.range = self.range.saturating_add_signed(by).min(last);
        self.load_history();
    }

    /// Open the history view's user picker on the user charted now.
    fn open_picker(&mut self) {
        if self.history.is_none() {
            self.notify("the history is still loading", true);
            return;
        }
        let View::History(hv) = &self.view else {
            return;
        };
        let current = hv.user.as_deref();
        let at = self
            .chart_choices()
            .iter()
            .position(|c| *c == current)
            .unwrap_or(0);
        if let View::History(hv) = &mut self.view {
            hv.picker = Some(at);
        }
    }

    /// Keys while the user picker is open: choose, chart the chosen one, or cancel.
    fn picker_action(&mut self, action: Action) {
        let last = self.chart_choices().len().saturating_sub(1);
        let chosen = match &self.view {
            View::History(HistoryView {
                picker: Some(at), ..
            }) => self.chart_choices().get(*at).map(|c| c.map(str::to_string)),
            _ => return,
        };
        let View::History(hv) = &mut self.view else {
            return;
        };
        let Some(at) = &mut hv.picker else { return };
        match action {
            Action::Up => *at = at.saturating_sub(1),
            Action::Down => *at = (*at + 1).min(last),
            Action::Enter => {
                hv.picker = None;
                if let Some(user) = chosen {
                    hv.user = user;
                    self.history = None;
                    self.load_history();
                }
            }
            Action::Back => hv.picker = None,
            _ => {}
        }
    }

    /// Ask the run loop for the current history view's data, ending now, or at the recorded
    /// moment on screen while time travelling (the lead-up to what is being looked at).
    pub fn load_history(&mut self) {
        let (View::History(hv), Some(feed)) = (&self.view, self.shown()) else {
            return;
        };
        let until = feed.snapshot.at;
        let span = self.range().1;
        self.effects.push(Effect::LoadHistory {
            since: Timestamp(until.0 - span * 1000),
            until,
            user: hv.user.clone(),
        });
    }

    /// Time travel from the moment on screen (now, when live).
    fn travel_to(&mut self, to: impl Fn(Timestamp) -> TravelTo) {
        if let Some(at) = self.shown().map(|f| f.snapshot.at) {
            self.effects.push(Effect::Travel(to(at)));
        }
    }

    /// Forward in time; only meaningful while travelling.
    fn travel_forward(&mut self, to: impl Fn(Timestamp) -> TravelTo) {
        match &self.travel {
            Some(f) => {
                let at = f.snapshot.at;
                self.effects.push(Effect::Travel(to(at)));
            }
            None => self.notify("already live", true),
        }
    }

    /// Queue a question about acknowledging or resolving alerts.
    fn ask(&mut self, op: AlertOp, all: bool) {
        if self.options.readonly {
            self.notify(
                "read-only session (--readonly): alerts cannot be changed",
                true,
            );
            return;
        }
        if self.travel.is_some() {
            self.notify(
                "this is a recorded moment: L returns to live to act on alerts",
                true,
            );
            return;
        }
        let (targets, question) = if all {
            let rows = self.alerts();
            let targets: Vec<AlertTarget> = rows.iter().map(AlertTarget::of).collect();
            let q = format!("{} all {} open alert(s)?", op.verb(), targets.len());
            (targets, q)
        } else {
            let Some(row) = self.target_alert() else {
                self.notify("select an alert first (Tab to the alerts pane)", true);
                return;
            };
            if op == AlertOp::Acknowledge && row.alert.state == AlertState::Acknowledged {
                self.notify("that alert is already acknowledged", true);
                return;
            }
            let q = format!(
                "{} {} alert: {}?",
                op.verb(),
                row.alert.severity,
                crate::sanitize::clean(&row.alert.message)
            );
            (vec![AlertTarget::of(&row)], q)
        };
        if targets.is_empty() {
            self.notify("no open alerts", true);
            return;
        }
        self.confirm = Some(Confirm {
            title: op.verb().to_string(),
            question,
            effect: Effect::Alerts(op, targets),
        });
    }

    /// Keys while a time is typed: `6h`, `30m` back from now, or `2026-11-22T03:00`.
    fn goto_action(&mut self, action: Action) {
        let Some(text) = &mut self.goto else { return };
        match action {
            Action::FilterChar(c) => text.push(c),
            Action::FilterBackspace => {
                text.pop();
            }
            Action::FilterAccept => {
                let typed = std::mem::take(text);
                self.goto = None;
                let Some(now) = self.feed.as_ref().map(|f| f.snapshot.at) else {
                    return;
                };
                match crate::time::parse_when(&typed, now) {
                    Ok(t) => self.effects.push(Effect::Travel(TravelTo::At(t))),
                    Err(e) => self.notify(e, true),
                }
            }
            Action::FilterClear => self.goto = None,
            _ => {}
        }
    }

    /// Open the signal menu for the selected process.
    fn open_signal(&mut self) {
        if self.options.readonly {
            self.notify("read-only session (--readonly): no signals", true);
            return;
        }
        if self.travel.is_some() {
            self.notify(
                "this is a recorded moment: L returns to live to send signals",
                true,
            );
            return;
        }
        let View::Processes(pv) = &self.view else {
            return;
        };
        let chosen = self.process_rows().get(pv.selected).map(|r| SignalDialog {
            pid: r.process.pid,
            name: crate::sanitize::clean(&r.process.name),
            user: crate::sanitize::clean(&r.process.user),
            start_time: r.process.start_time,
            selected: 0,
        });
        match chosen {
            Some(d) => self.signal = Some(d),
            None => self.notify("no process selected", true),
        }
    }

    /// Keys while the signal menu is open: choose, send (after a confirmation), or cancel.
    fn signal_action(&mut self, action: Action) {
        let Some(d) = &mut self.signal else { return };
        let last = super::signal::SIGNALS.len() - 1;
        match action {
            Action::Up => d.selected = d.selected.saturating_sub(1),
            Action::Down => d.selected = (d.selected + 1).min(last),
            Action::Enter => {
                let sig = &super::signal::SIGNALS[d.selected.min(last)];
                self.confirm = Some(Confirm {
                    title: format!("Send SIG{}", sig.name),
                    question: format!(
                        "Send SIG{} to process {} ({}, user {})?",
                        sig.name, d.pid, d.name, d.user
                    ),
                    effect: Effect::Signal {
                        pid: d.pid,
                        start_time: d.start_time,
                        signal: d.selected,
                    },
                });
                self.signal = None;
            }
            Action::Back => self.signal = None,
            _ => {}
        }
    }

    fn process_action(&mut self, action: Action) {
        let pins = self.pins();
        let View::Processes(pv) = &mut self.view else {
            return;
        };
        match action {
            Action::Sort(key) => {
                pv.sort = key;
                pv.inverted = false;
                self.repin(pins, false);
            }
            Action::InvertSort => {
                pv.inverted = !pv.inverted;
                self.repin(pins, false);
            }
            Action::ToggleTree => {
                pv.tree = !pv.tree;
                self.repin(pins, false);
            }
            Action::StartFilter => pv.editing = true,
            Action::FilterChar(c) => {
                pv.filter.push(c);
                pv.selected = 0;
            }
            Action::FilterBackspace => {
                pv.filter.pop();
                pv.selected = 0;
            }
            Action::FilterAccept => pv.editing = false,
            Action::FilterClear => {
                pv.filter.clear();
                pv.editing = false;
                pv.selected = 0;
            }
            _ => {}
        }
    }

    fn move_by(&mut self, by: isize) {
        let shift = |v: &mut usize| *v = v.saturating_add_signed(by);
        match &mut self.view {
            View::Processes(pv) => shift(&mut pv.selected),
            View::Alert(_) | View::History(_) => {}
            View::Main => match self.focus {
                Pane::Users => shift(&mut self.user_selected),
                Pane::Alerts => shift(&mut self.alert_selected),
                Pane::System => {}
            },
        }
    }

    /// Keep every selection inside its list.
    fn clamp(&mut self) {
        let users = self.visible_users().len();
        let alerts = self.alerts().len();
        let procs = self.process_rows().len();
        self.user_selected = self.user_selected.min(users.saturating_sub(1));
        self.alert_selected = self.alert_selected.min(alerts.saturating_sub(1));
        if let View::Processes(pv) = &mut self.view {
            pv.selected = pv.selected.min(procs.saturating_sub(1));
        }
    }
}

fn step_refresh(current: f64, dir: isize) -> f64 {
    if dir < 0 {
        REFRESH_STEPS
            .iter()
            .rev()
            .find(|s| **s < current - 1e-9)
            .copied()
            .unwrap_or(REFRESH_STEPS[0])
    } else {
        REFRESH_STEPS
            .iter()
            .find(|s| **s > current + 1e-9)
            .copied()
            .unwrap_or(REFRESH_STEPS[REFRESH_STEPS.len() - 1])
    }
}
