//! The TUI's view model and the one function that changes it.
//!
//! `AppState` holds the latest data from the engine (a [`Feed`]) plus everything the user chose
//! (focus, selection, sort, filter, the one open [`Overlay`]). [`AppState::apply`] is pure: no
//! terminal, no clock, no /proc. Its parts live beside this file by concern: `overlay` (dialogs
//! and the keys inside them), `processes` (the process list), `alerts` (acting on alerts) and
//! `travel` (time travel and the history charts).
//!
//! The run loop feeds it engine ticks and actions; the views only read it. Selection is an index
//! clamped against the current data, so a tick that removes rows can never leave the cursor past
//! the end; and since every tick re-sorts the lists, each cursor follows what it is on (a process
//! by pid and start time, a user by uid, an alert by key) across the change, and says so when its
//! process has ended rather than silently landing on another (`k` acts on it).

use std::collections::VecDeque;

use jiff::tz::TimeZone;

mod alerts;
mod overlay;
mod processes;
mod travel;

pub use overlay::{ColumnChooser, Confirm, Overlay, ReniceDialog, SignalDialog};
pub use processes::{DetailsView, Inspected, ProcessView};
pub use travel::HistoryView;

use super::action::Action;
use super::alerts::{AlertOp, AlertTarget};
use super::history::{HistoryData, SessionHistory};
use super::keymap::InputMode;
use crate::config::Config;
use crate::model::{
    Alert, AlertKey, PersistentEpisode, ProcessStats, Snapshot, StatusReport, Timestamp, UserStats,
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

/// Work for the run loop: what `apply` decided but cannot do itself (it does no I/O).
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Alerts(AlertOp, Vec<AlertTarget>),
    /// Show the recorded state at another time.
    Travel(TravelTo),
    /// Send `SIGNALS[signal]` to each process that is still the one chosen (pid and start time).
    Signal {
        targets: Vec<(u32, Timestamp)>,
        signal: usize,
    },
    /// Set the process's nice value, if it is still the one chosen.
    Renice {
        pid: u32,
        start_time: Timestamp,
        nice: i32,
    },
    /// Read one process in depth (the details view, the renice dialog's current value).
    LoadDetails {
        pid: u32,
    },
    /// Write `[ui] columns` to the config file this session was started with.
    SaveColumns(Vec<String>),
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

#[derive(Debug, Clone, PartialEq)]
pub enum View {
    Main,
    Processes(ProcessView),
    /// One alert's details.
    Alert(AlertKey),
    /// The history charts.
    History(HistoryView),
    /// One process in depth, opened from a process list.
    Details(DetailsView),
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
    /// The config file this session read, where the column chooser saves (None: defaults).
    pub config_path: Option<std::path::PathBuf>,
}

pub struct AppState {
    pub options: Options,
    pub config: Config,
    pub feed: Option<Feed>,
    /// Machine CPU % of recent ticks, oldest first.
    pub cpu_history: VecDeque<f64>,
    /// Each core's busy % of recent ticks, oldest first (per-core graphs on large terminals).
    pub core_history: Vec<VecDeque<f64>>,
    pub view: View,
    pub focus: Pane,
    pub user_selected: usize,
    pub alert_selected: usize,
    /// The dialog or help on top of the view, if any; it takes every key.
    pub overlay: Option<Overlay>,
    pub reasons: bool,
    pub show_system_users: bool,
    pub paused: bool,
    pub refresh_secs: f64,
    pub quit: bool,
    /// Rows a PgUp/PgDn moves; the run loop sets it from the terminal height.
    pub page: usize,
    /// The terminal's width and height; the run loop sets it.
    pub screen: (u16, u16),
    pub effects: Vec<Effect>,
    pub notice: Option<Notice>,
    /// Where the alerts come from, e.g. why there is no database; shown in the alerts pane.
    pub alerts_source: Option<String>,
    /// A recorded moment shown instead of the live data (time travel).
    pub travel: Option<Feed>,
    /// The process read in depth last (details view, renice dialog).
    pub details: Option<Inspected>,
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
            core_history: Vec::new(),
            view: View::Main,
            focus: Pane::Users,
            user_selected: 0,
            alert_selected: 0,
            overlay: None,
            details: None,
            reasons: false,
            show_system_users: false,
            paused: false,
            quit: false,
            page: 10,
            screen: (80, 24),
            effects: Vec::new(),
            notice: None,
            alerts_source: None,
            travel: None,
            history: None,
            session: SessionHistory::default(),
            range: DEFAULT_RANGE,
        }
    }

    /// Take a new tick's data.
    pub fn ingest(&mut self, feed: Feed) {
        let cores = &feed.snapshot.system.cpu.cores;
        // A CPU hot-plugged in or out starts the per-core history again.
        if self.core_history.len() != cores.len() {
            self.core_history = vec![VecDeque::with_capacity(SPARK_LEN); cores.len()];
        }
        for (h, c) in self.core_history.iter_mut().zip(cores) {
            if h.len() == SPARK_LEN {
                h.pop_front();
            }
            h.push_back(c.busy);
        }
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

    /// Where keys go: the open overlay, else the view.
    pub fn input_mode(&self) -> InputMode {
        if let Some(o) = &self.overlay {
            return o.mode();
        }
        match &self.view {
            View::Processes(p) if p.editing => InputMode::Filter,
            View::Processes(p) if p.searching => InputMode::Search,
            View::Processes(_) => InputMode::Processes,
            View::Main | View::Alert(_) if self.travel.is_some() => InputMode::Travel,
            View::Main | View::Alert(_) => InputMode::Main,
            View::History(_) => InputMode::History,
            View::Details(_) => InputMode::Details,
        }
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

    /// Change the state for `action`.
    pub fn apply(&mut self, action: Action) {
        if action == Action::Quit {
            self.quit = true;
            return;
        }
        self.notice = None;
        if let Some(overlay) = self.overlay.take() {
            self.overlay_action(overlay, action);
            return;
        }
        match action {
            Action::ToggleHelp => self.overlay = Some(Overlay::Help { scroll: 0 }),
            Action::Back => self.back(),
            Action::TogglePause => self.paused = !self.paused,
            Action::Faster => self.refresh_secs = step_refresh(self.refresh_secs, -1),
            Action::Slower => self.refresh_secs = step_refresh(self.refresh_secs, 1),
            Action::ToggleReasons => self.reasons = !self.reasons,
            Action::ToggleSystemUsers => {
                self.show_system_users = !self.show_system_users;
                self.user_selected = 0;
            }
            Action::Focus(pane) => self.focus = pane,
            Action::Select(i) => self.select(i),
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
            | Action::SortToggle(_)
            | Action::SortColumn(_)
            | Action::ScrollCommand(_)
            | Action::StartSearch
            | Action::SearchNext
            | Action::ToggleFold
            | Action::InvertSort
            | Action::ToggleTree
            | Action::StartFilter
            | Action::FilterChar(_)
            | Action::FilterBackspace
            | Action::FilterAccept
            | Action::FilterClear
            | Action::FilterErase => self.process_action(action),
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
            Action::Renice(by) => self.open_renice(by),
            Action::ChooseColumns => {
                self.overlay = Some(Overlay::Columns(ColumnChooser::new(
                    &self.columns(),
                    self.has_gpus(),
                )));
            }
            Action::ToggleItem | Action::MoveItem(_) => {}
            Action::StartGoto => self.overlay = Some(Overlay::Goto(String::new())),
            Action::Quit | Action::Confirm | Action::Cancel => {}
        }
        self.clamp();
    }

    fn back(&mut self) {
        if let View::Details(dv) = &mut self.view {
            let from = std::mem::replace(&mut dv.from, ProcessView::new(None));
            self.view = View::Processes(from);
        } else if !matches!(self.view, View::Main) {
            self.view = View::Main;
        } else if self.travel.is_some() {
            self.travel = None;
        } else {
            self.reasons = false;
        }
    }

    fn enter(&mut self) {
        if matches!(self.view, View::Processes(_)) {
            self.open_details();
            return;
        }
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

    /// The cursor of the list on screen onto row `i` (clamped afterwards).
    fn select(&mut self, i: usize) {
        match &mut self.view {
            View::Processes(pv) => pv.selected = i,
            View::Main => match self.focus {
                Pane::Users => self.user_selected = i,
                Pane::Alerts => self.alert_selected = i,
                Pane::System => {}
            },
            View::Alert(_) | View::History(_) | View::Details(_) => {}
        }
    }

    fn move_by(&mut self, by: isize) {
        let shift = |v: &mut usize| *v = v.saturating_add_signed(by);
        match &mut self.view {
            View::Processes(pv) => shift(&mut pv.selected),
            View::Alert(_) | View::History(_) | View::Details(_) => {}
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
