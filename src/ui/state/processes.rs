//! The process list's part of the state: sort, tree, filter, the details of one process, and the
//! dialogs that act on processes (signals, renice).

use std::collections::BTreeSet;

use super::overlay::{Overlay, ReniceDialog, SignalDialog};
use super::{AppState, Effect, Pane, View};
use crate::model::{IoCounters, ProcessDetails, Timestamp};
use crate::ui::action::{Action, SortKey};
use crate::ui::columns::{self, Column};
use crate::ui::procs::{self, ProcRow};

/// One process in depth, opened with Enter from a process list (Esc returns to it).
#[derive(Debug, Clone, PartialEq)]
pub struct DetailsView {
    pub pid: u32,
    pub start_time: Timestamp,
    /// The list it was opened from, restored as it was.
    pub from: ProcessView,
}

/// A process read in depth, and its I/O rates since the reading before.
#[derive(Debug, Clone, PartialEq)]
pub struct Inspected {
    pub at: Timestamp,
    pub details: ProcessDetails,
    /// Bytes per second read and written at the storage layer, from two readings.
    pub io_rates: Option<(f64, f64)>,
}

/// What an action on "the selected process" acts on.
struct Chosen {
    pid: u32,
    start_time: Timestamp,
    who: String,
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
    /// What F3 looks for, and whether it is being typed.
    pub search: String,
    pub searching: bool,
    /// Characters of the COMMAND column scrolled off to the left.
    pub hscroll: usize,
    /// Tree view: processes whose children are folded away.
    pub folded: BTreeSet<u32>,
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
            search: String::new(),
            searching: false,
            hscroll: 0,
            folded: BTreeSet::new(),
        }
    }
}

impl AppState {
    /// The rows of the current process list, in display order.
    pub fn process_rows(&self) -> Vec<ProcRow<'_>> {
        match (&self.view, self.shown()) {
            (View::Processes(pv), Some(feed)) => procs::rows(
                &feed.snapshot.processes,
                pv,
                &crate::ui::gpu::by_pid(&feed.snapshot.gpu),
            ),
            _ => Vec::new(),
        }
    }

    /// The process list's columns, in the configured order.
    pub fn columns(&self) -> Vec<Column> {
        columns::from_names(self.config.ui.columns.as_deref(), self.has_gpus())
    }

    /// Whether the machine shown has GPUs (the GPU columns are offered only then).
    pub fn has_gpus(&self) -> bool {
        self.shown()
            .is_some_and(|f| !f.snapshot.gpu.devices.is_empty())
    }

    pub(super) fn process_action(&mut self, action: Action) {
        let pins = self.pins();
        let columns = self.columns();
        let View::Processes(pv) = &mut self.view else {
            return;
        };
        // While a search is typed, text goes to the search, and every change looks again.
        if pv.searching {
            match action {
                Action::FilterChar(c) => pv.search.push(c),
                Action::FilterBackspace => {
                    pv.search.pop();
                }
                Action::FilterErase => pv.search.clear(),
                Action::FilterAccept => pv.searching = false,
                Action::FilterClear => {
                    pv.search.clear();
                    pv.searching = false;
                }
                Action::SearchNext => self.search(true),
                _ => {}
            }
            if matches!(action, Action::FilterChar(_) | Action::FilterBackspace) {
                self.search(false);
            }
            return;
        }
        match action {
            Action::Sort(key) => {
                pv.sort = key;
                pv.inverted = false;
            }
            Action::SortToggle(key) => {
                if pv.sort == key {
                    pv.inverted = !pv.inverted;
                } else {
                    pv.sort = key;
                    pv.inverted = false;
                }
            }
            Action::SortColumn(by) => {
                let keys: Vec<SortKey> =
                    columns
                        .iter()
                        .map(|c| c.sort())
                        .fold(Vec::new(), |mut v, k| {
                            if !v.contains(&k) {
                                v.push(k);
                            }
                            v
                        });
                let n = keys.len().max(1) as i32;
                // From a column not shown, > goes to the first and < to the last.
                let next = match keys.iter().position(|k| *k == pv.sort) {
                    Some(at) => (at as i32 + by).rem_euclid(n),
                    None if by > 0 => 0,
                    None => n - 1,
                };
                if let Some(k) = keys.get(next as usize) {
                    pv.sort = *k;
                    pv.inverted = false;
                }
            }
            Action::InvertSort => pv.inverted = !pv.inverted,
            Action::ToggleTree => pv.tree = !pv.tree,
            Action::ScrollCommand(by) => {
                pv.hscroll = pv.hscroll.saturating_add_signed(by as isize * 8).min(4096);
            }
            Action::ToggleFold => {
                if let (true, Some((pid, _, _))) = (pv.tree, &pins.process)
                    && !pv.folded.remove(pid)
                {
                    pv.folded.insert(*pid);
                }
            }
            Action::StartSearch => {
                pv.searching = true;
                return;
            }
            // F3 opens the search line (with the last text, jumping to its next match).
            Action::SearchNext => {
                pv.searching = true;
                self.search(true);
                return;
            }
            Action::StartFilter => {
                pv.editing = true;
                return;
            }
            Action::FilterChar(c) => pv.filter.push(c),
            Action::FilterBackspace => {
                pv.filter.pop();
            }
            Action::FilterAccept => {
                pv.editing = false;
                return;
            }
            Action::FilterErase => pv.filter.clear(),
            Action::FilterClear => {
                pv.filter.clear();
                pv.editing = false;
            }
            _ => return,
        }
        // The cursor stays on its process when the rows change order or some are hidden; if
        // its process is filtered out, it goes to the top.
        let had = pins.process.clone();
        self.repin(pins, false);
        if let (Some((pid, start, _)), View::Processes(_)) = (had, &self.view)
            && !self
                .process_rows()
                .iter()
                .any(|r| r.process.pid == pid && r.process.start_time == start)
            && let View::Processes(pv) = &mut self.view
        {
            pv.selected = 0;
        }
    }

    /// Move the cursor to the first row matching the search, from the cursor (typing) or after
    /// it (F3), wrapping around; say so when nothing matches.
    fn search(&mut self, after: bool) {
        let View::Processes(pv) = &self.view else {
            return;
        };
        let needle = pv.search.to_lowercase();
        if needle.is_empty() {
            return;
        }
        let rows = self.process_rows();
        let n = rows.len();
        let start = pv.selected + usize::from(after);
        let found = (0..n).map(|i| (start + i) % n.max(1)).find(|&i| {
            let p = rows[i].process;
            p.pid.to_string() == needle
                || p.user.to_lowercase().contains(&needle)
                || procs::shown_command(p).to_lowercase().contains(&needle)
        });
        match found {
            Some(i) => {
                if let View::Processes(pv) = &mut self.view {
                    pv.selected = i;
                }
            }
            None => self.notify(format!("no process matches {:?}", pv.search), true),
        }
    }

    /// The process the process list's cursor or the details view is on.
    fn chosen_process(&self) -> Option<Chosen> {
        let feed = self.shown()?;
        let p = match &self.view {
            View::Processes(pv) => self.process_rows().get(pv.selected)?.process,
            View::Details(dv) => feed
                .snapshot
                .processes
                .iter()
                .find(|p| p.pid == dv.pid && p.start_time == dv.start_time)?,
            _ => return None,
        };
        Some(Chosen {
            pid: p.pid,
            start_time: p.start_time,
            who: format!(
                "process {} ({}, user {})",
                p.pid,
                crate::sanitize::clean(&p.name),
                crate::sanitize::clean(&p.user)
            ),
        })
    }

    /// Why the machine may not be acted on now, if it may not.
    fn refuse_writes(&mut self, what: &str) -> bool {
        if self.options.readonly {
            self.notify(format!("read-only session (--readonly): no {what}"), true);
            return true;
        }
        if self.travel.is_some() {
            self.notify(
                format!("this is a recorded moment: L returns to live for {what}"),
                true,
            );
            return true;
        }
        false
    }

    /// Open the signal menu: for the selected process, or (users pane) for every process of
    /// the selected user.
    pub(super) fn open_signal(&mut self) {
        if self.refuse_writes("signals") {
            return;
        }
        let dialog = if matches!(self.view, View::Main) {
            if self.focus != Pane::Users {
                self.notify(
                    "k signals the selected user's processes (users pane) or a process (p)",
                    true,
                );
                return;
            }
            self.user_targets()
        } else {
            self.chosen_process().map(|c| SignalDialog {
                who: c.who,
                targets: vec![(c.pid, c.start_time)],
                selected: 0,
            })
        };
        match dialog {
            Some(d) => self.overlay = Some(Overlay::Signal(d)),
            None => self.notify("no process selected", true),
        }
    }

    /// Every process of the user under the users pane's cursor.
    fn user_targets(&self) -> Option<SignalDialog> {
        let user = self.visible_users().get(self.user_selected).copied()?;
        let feed = self.shown()?;
        let targets: Vec<(u32, Timestamp)> = feed
            .snapshot
            .processes
            .iter()
            .filter(|p| p.uid == user.uid && p.pid != self.options.own_pid)
            .map(|p| (p.pid, p.start_time))
            .collect();
        if targets.is_empty() {
            return None;
        }
        Some(SignalDialog {
            who: format!(
                "all {} processes of user {}",
                targets.len(),
                crate::sanitize::clean(&user.name)
            ),
            targets,
            selected: 0,
        })
    }

    /// Open the renice dialog for the selected process, `by` away from its current nice value
    /// (read through the run loop, since the sample does not carry it).
    pub(super) fn open_renice(&mut self, by: i32) {
        if self.refuse_writes("renicing") {
            return;
        }
        let Some(c) = self.chosen_process() else {
            self.notify("no process selected", true);
            return;
        };
        let current = self
            .details
            .as_ref()
            .filter(|d| d.details.pid == c.pid)
            .and_then(|d| d.details.nice);
        self.overlay = Some(Overlay::Renice(ReniceDialog {
            who: c.who,
            pid: c.pid,
            start_time: c.start_time,
            current,
            step: by,
        }));
        self.effects.push(Effect::LoadDetails { pid: c.pid });
    }

    /// Enter on a process: its details.
    pub(super) fn open_details(&mut self) {
        if self.travel.is_some() {
            // Details are read from the live process, which may not be the one recorded.
            self.notify(
                "this is a recorded moment: L returns to live to see a process in detail",
                true,
            );
            return;
        }
        let Some(c) = self.chosen_process() else {
            return;
        };
        let View::Processes(pv) = &self.view else {
            return;
        };
        let from = pv.clone();
        self.view = View::Details(DetailsView {
            pid: c.pid,
            start_time: c.start_time,
            from,
        });
        self.details = self.details.take().filter(|d| d.details.pid == c.pid);
        self.effects.push(Effect::LoadDetails { pid: c.pid });
    }

    /// Ask for a fresh reading of the process whose details are on screen (each refresh).
    pub fn load_details(&mut self) {
        if let View::Details(dv) = &self.view {
            self.effects.push(Effect::LoadDetails { pid: dv.pid });
        }
    }

    /// A reading of one process, taken at `at`. I/O rates come from the previous reading of
    /// the same process; the renice dialog learns the current nice value from it.
    pub fn set_details(&mut self, at: Timestamp, details: ProcessDetails) {
        let rate = |prev: &Inspected, now: &IoCounters| {
            let before = prev.details.io?;
            let secs = at.secs_since(prev.at);
            (secs > 0.0).then(|| {
                (
                    now.read_bytes.saturating_sub(before.read_bytes) as f64 / secs,
                    now.write_bytes.saturating_sub(before.write_bytes) as f64 / secs,
                )
            })
        };
        let io_rates = match (&self.details, &details.io) {
            (Some(prev), Some(now)) if prev.details.pid == details.pid => {
                rate(prev, now).or(prev.io_rates)
            }
            _ => None,
        };
        if let Some(Overlay::Renice(d)) = &mut self.overlay
            && d.pid == details.pid
            && d.current.is_none()
        {
            d.current = details.nice;
        }
        self.details = Some(Inspected {
            at,
            details,
            io_rates,
        });
    }
}
