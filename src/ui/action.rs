//! Everything a user can ask the TUI to do, as plain data.
//!
//! Keys become `Action`s (see `keymap`), and `AppState::apply` turns an action into a new state
//! without touching the terminal, the engine or the clock. That split is what lets key handling be
//! tested exhaustively without rendering anything.

/// What the process list is ordered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Pid,
    User,
    State,
    Cpu,
    Memory,
    Threads,
    Time,
    /// The command shown.
    Name,
    /// Device memory held on GPUs.
    GpuMemory,
    /// Busy share of GPUs.
    Gpu,
}

impl SortKey {
    /// How the title says the order: names read A to Z, figures heaviest first.
    pub fn direction(self, inverted: bool) -> &'static str {
        match (self, inverted) {
            (SortKey::Name | SortKey::User | SortKey::State, false) => "A-Z",
            (SortKey::Name | SortKey::User | SortKey::State, true) => "Z-A",
            (SortKey::Pid, false) => "low first",
            (SortKey::Pid, true) => "high first",
            (_, false) => "high first",
            (_, true) => "low first",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            SortKey::Pid => "PID",
            SortKey::User => "USER",
            SortKey::State => "STATE",
            SortKey::Threads => "THREADS",
            SortKey::Cpu => "CPU",
            SortKey::Memory => "MEM",
            SortKey::Name => "COMMAND",
            SortKey::Time => "TIME",
            SortKey::GpuMemory => "GPU MEM",
            SortKey::Gpu => "GPU%",
        }
    }
}

impl Action {
    /// Whether the action changes the machine or shared state (refused, and not offered in the
    /// hint bar, in a `--readonly` session).
    pub fn writes(self) -> bool {
        matches!(
            self,
            Action::Acknowledge
                | Action::Resolve
                | Action::ResolveAll
                | Action::Signal
                | Action::Renice(_)
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Quit,
    NextPane,
    PrevPane,
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    /// Give a pane the focus (a click on it).
    Focus(crate::ui::state::Pane),
    /// Put the cursor on this row of the list on screen (a click on it).
    Select(usize),
    /// Drill into the selected row (a user's processes).
    Enter,
    /// Leave the current view or overlay.
    Back,
    /// The process list of every user.
    AllProcesses,
    ToggleHelp,
    /// Show or hide the reasons behind the Light / Medium / Heavy status.
    ToggleReasons,
    /// Show or hide accounts below `filtering.min_uid` in the users pane.
    ToggleSystemUsers,
    TogglePause,
    /// Shorter refresh interval.
    Faster,
    /// Longer refresh interval.
    Slower,
    Sort(SortKey),
    InvertSort,
    ToggleTree,
    /// Sort by the column left (-1) or right (+1) of the one sorted by now (htop's `<` `>`).
    SortColumn(i32),
    /// Sort by this column; the one already sorted by reverses (a click on its header).
    SortToggle(SortKey),
    /// Scroll the COMMAND column left (-1) or right (+1).
    ScrollCommand(i32),
    /// Start typing a search (htop F3): the cursor jumps to the next match.
    StartSearch,
    /// The next row matching the search, after the cursor (F3 again).
    SearchNext,
    /// Choose the process list's columns and their order (htop's F2 setup).
    ChooseColumns,
    /// In a list of choices: show or hide the one under the cursor.
    ToggleItem,
    /// In a list of choices: move the one under the cursor up (-1) or down (+1).
    MoveItem(i32),
    /// Tree view: fold or unfold the children of the process under the cursor.
    ToggleFold,
    /// Start typing a process filter.
    StartFilter,
    FilterChar(char),
    FilterBackspace,
    /// Keep the typed filter and return to the list.
    FilterAccept,
    /// Drop the filter.
    FilterClear,
    /// Erase what is typed and keep typing (Ctrl-U).
    FilterErase,
    /// Acknowledge the selected alert (asks first).
    Acknowledge,
    /// Resolve the selected alert (asks first).
    Resolve,
    /// Resolve every open alert (asks first).
    ResolveAll,
    /// Yes to the question on screen.
    Confirm,
    /// No to the question on screen.
    Cancel,
    /// Time travel: the recorded sample before the one shown (or before now).
    PrevSample,
    /// Time travel: the recorded sample after the one shown.
    NextSample,
    /// Time travel: back by the step (the selected history range); from the live screen this
    /// enters time travel.
    JumpBack,
    /// Time travel: forward by the step.
    JumpForward,
    /// Leave time travel.
    Live,
    /// The history charts (for the selected user when the users pane has the focus).
    History,
    /// A longer history range (and time-travel step).
    RangeLonger,
    /// A shorter history range (and time-travel step).
    RangeShorter,
    /// The history view: choose whose CPU and memory are charted.
    PickUser,
    /// Choose a signal for the selected process, or (users pane) every process of the user.
    Signal,
    /// Renice the selected process: -1 raises its priority (F7), +1 lowers it (F8).
    Renice(i32),
    /// Time travel: type a time to go to.
    StartGoto,
}
