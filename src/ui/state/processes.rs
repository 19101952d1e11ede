//! The process list's part of the state: sort, tree, filter, and the signal menu it opens.

use super::overlay::{Overlay, SignalDialog};
use super::{AppState, View};
use crate::ui::action::{Action, SortKey};
use crate::ui::procs::{self, ProcRow};

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

impl AppState {
    /// The rows of the current process list, in display order.
    pub fn process_rows(&self) -> Vec<ProcRow<'_>> {
        match (&self.view, self.shown()) {
            (View::Processes(pv), Some(feed)) => procs::rows(&feed.snapshot.processes, pv),
            _ => Vec::new(),
        }
    }

    pub(super) fn process_action(&mut self, action: Action) {
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
            Action::FilterErase => {
                pv.filter.clear();
                pv.selected = 0;
            }
            Action::FilterClear => {
                pv.filter.clear();
                pv.editing = false;
                pv.selected = 0;
            }
            _ => {}
        }
    }

    /// Open the signal menu for the selected process.
    pub(super) fn open_signal(&mut self) {
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
            Some(d) => self.overlay = Some(Overlay::Signal(d)),
            None => self.notify("no process selected", true),
        }
    }
}
