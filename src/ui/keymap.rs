//! Keys to actions, from one table.
//!
//! The help overlay and the hint bar are generated from [`BINDINGS`], so what the screen says a
//! key does is what it does. Lookup depends on the [`InputMode`]: while a filter is being typed
//! every printable key is text, and a few keys mean different things in different views
//! (htop users expect `k` to kill in the process list; elsewhere it moves up; while the recorded
//! past is on screen `j` and `J` step back and forward through it, and Down moves).

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::action::{Action, SortKey};

/// Where the keys go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputMode {
    /// The main screen: header, system, users, alerts.
    Main,
    /// A process list.
    Processes,
    /// Typing into the process filter.
    Filter,
    /// Typing what to search for in the process list.
    Search,
    /// A yes/no question is on screen.
    Confirm,
    /// The history charts.
    History,
    /// Choosing a signal to send.
    Signal,
    /// Typing a time to travel to.
    Goto,
    /// The main screen (or an alert's details) showing a recorded moment.
    Travel,
    /// Choosing the user the history charts show.
    UserPicker,
    /// Reading the help: scroll keys scroll, any other key closes it.
    Help,
    /// One process's details.
    Details,
    /// Choosing a nice value.
    Renice,
    /// Choosing the process list's columns.
    Columns,
}

/// Which views a binding applies in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Everywhere,
    Main,
    Processes,
    History,
    /// While the recorded past is on screen (the HISTORY banner).
    Travel,
}

impl Scope {
    fn covers(self, mode: InputMode) -> bool {
        match self {
            Scope::Everywhere => !matches!(
                mode,
                InputMode::Filter
                    | InputMode::Search
                    | InputMode::Confirm
                    | InputMode::Signal
                    | InputMode::Goto
                    | InputMode::UserPicker
                    | InputMode::Help
                    | InputMode::Renice
                    | InputMode::Columns
            ),
            Scope::Main => matches!(mode, InputMode::Main | InputMode::Travel),
            Scope::Travel => mode == InputMode::Travel,
            // What acts on the selected process acts on the one whose details are open too.
            Scope::Processes => matches!(mode, InputMode::Processes | InputMode::Details),
            Scope::History => mode == InputMode::History,
        }
    }

    pub fn heading(self) -> &'static str {
        match self {
            Scope::Everywhere => "Everywhere",
            Scope::Main => "Main screen",
            Scope::Processes => "Process list and details",
            Scope::History => "History charts",
            Scope::Travel => "In the past (HISTORY)",
        }
    }
}

/// One key (with modifiers) as the table spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    pub code: KeyCode,
    pub ctrl: bool,
}

const fn k(c: char) -> Key {
    Key {
        code: KeyCode::Char(c),
        ctrl: false,
    }
}

const fn code(code: KeyCode) -> Key {
    Key { code, ctrl: false }
}

const fn ctrl(c: char) -> Key {
    Key {
        code: KeyCode::Char(c),
        ctrl: true,
    }
}

pub struct Binding {
    pub keys: &'static [Key],
    /// How the help overlay names the keys.
    pub label: &'static str,
    pub action: Action,
    pub scope: Scope,
    pub help: &'static str,
    /// The word in the one-line hint bar, for the bindings worth a reminder.
    pub hint: Option<&'static str>,
}

const fn bind(
    keys: &'static [Key],
    label: &'static str,
    action: Action,
    scope: Scope,
    help: &'static str,
    hint: Option<&'static str>,
) -> Binding {
    Binding {
        keys,
        label,
        action,
        scope,
        help,
        hint,
    }
}

use Scope::{Everywhere, History, Main, Processes, Travel};

/// The first binding that covers the mode and has the key wins, so the time-travel bindings,
/// listed first, take `j`, `J`, `[`, `]` and the arrows from the bindings below while the
/// recorded past is on screen. A binding whose help is empty is described by the line before
/// it in the help overlay (`PgUp PgDn`: page up / down).
#[rustfmt::skip]
pub const BINDINGS: &[Binding] = &[
    bind(&[k('j'), k('<')], "j <", Action::JumpBack, Travel, "back one step (range)", Some("back")),
    bind(&[k('J'), k('>')], "J >", Action::JumpForward, Travel, "forward one step", Some("forward")),
    bind(&[code(KeyCode::Right), k(']')], "Right ]", Action::RangeLonger, Travel, "longer step", Some("step")),
    bind(&[code(KeyCode::Left), k('[')], "Left [", Action::RangeShorter, Travel, "shorter step", None),
    bind(&[k('q'), ctrl('c')], "q Ctrl-C", Action::Quit, Everywhere, "quit", Some("quit")),
    bind(&[k('?'), code(KeyCode::F(1))], "? F1", Action::ToggleHelp, Everywhere, "this help", Some("help")),
    bind(&[code(KeyCode::Esc)], "Esc", Action::Back, Everywhere, "close, go back", None),
    bind(&[code(KeyCode::Up)], "Up", Action::Up, Everywhere, "move up", None),
    bind(&[code(KeyCode::Down), k('j')], "Down j", Action::Down, Everywhere, "move down", None),
    bind(&[code(KeyCode::PageUp)], "PgUp PgDn", Action::PageUp, Everywhere, "page up / down", None),
    bind(&[code(KeyCode::PageDown)], "PgDn", Action::PageDown, Everywhere, "", None),
    bind(&[k('g'), code(KeyCode::Home)], "g Home", Action::Top, Everywhere, "first row", None),
    bind(&[k('G'), code(KeyCode::End)], "G End", Action::Bottom, Everywhere, "last row", None),
    bind(&[k(' ')], "Space", Action::TogglePause, Everywhere, "pause / resume", Some("pause")),
    bind(&[k('+'), k('=')], "+ -", Action::Faster, Everywhere, "refresh faster / slower", None),
    bind(&[k('-')], "-", Action::Slower, Everywhere, "", None),
    bind(&[code(KeyCode::Tab)], "Tab S-Tab", Action::NextPane, Main, "next / previous pane", Some("pane")),
    bind(&[code(KeyCode::BackTab)], "Shift-Tab", Action::PrevPane, Main, "", None),
    bind(&[code(KeyCode::Enter)], "Enter", Action::Enter, Main, "user's processes / alert", Some("open")),
    bind(&[k('a')], "a", Action::Acknowledge, Main, "acknowledge the alert", Some("ack")),
    bind(&[k('r')], "r", Action::Resolve, Main, "resolve the alert", Some("resolve")),
    bind(&[k('R')], "R", Action::ResolveAll, Main, "resolve every alert", None),
    bind(&[k('t')], "t T", Action::PrevSample, Main, "past: prev / next sample", Some("past")),
    bind(&[k('T')], "T", Action::NextSample, Main, "", None),
    bind(&[k('J'), k('<')], "J <", Action::JumpBack, Main, "past: back one range", None),
    bind(&[k('b')], "b", Action::StartGoto, Main, "past: go to a typed time", None),
    bind(&[k('L')], "L", Action::Live, Main, "back to live", None),
    bind(&[k('H')], "H", Action::History, Main, "history charts", Some("history")),
    bind(&[k('p')], "p", Action::AllProcesses, Main, "every process", Some("procs")),
    bind(&[k('s')], "s", Action::ToggleReasons, Main, "why Light/Medium/Heavy", Some("status")),
    bind(&[k('u')], "u", Action::ToggleSystemUsers, Main, "system users on/off", None),
    bind(&[k('k'), code(KeyCode::F(9))], "k F9", Action::Signal, Main, "signal all the user's processes", Some("signal")),
    bind(&[k('/')], "/", Action::StartFilter, Processes, "filter (user= cmd= pid=)", Some("filter")),
    bind(&[k('P')], "P M N T", Action::Sort(SortKey::Cpu), Processes, "sort: CPU/mem/name/time", Some("sort")),
    bind(&[k('M')], "M", Action::Sort(SortKey::Memory), Processes, "", None),
    bind(&[k('N')], "N", Action::Sort(SortKey::Name), Processes, "", None),
    bind(&[k('T')], "T", Action::Sort(SortKey::Time), Processes, "", None),
    bind(&[k('I')], "I", Action::InvertSort, Processes, "invert the order", None),
    bind(&[k('>'), code(KeyCode::F(6))], "< > F6", Action::SortColumn(1), Processes, "sort by the next column", None),
    bind(&[k('<')], "<", Action::SortColumn(-1), Processes, "", None),
    bind(&[code(KeyCode::F(3))], "F3", Action::SearchNext, Processes, "search; again: next match", Some("search")),
    bind(&[code(KeyCode::Right)], "Left Right", Action::ScrollCommand(1), Processes, "scroll the command line", None),
    bind(&[code(KeyCode::Left)], "Left", Action::ScrollCommand(-1), Processes, "", None),
    bind(&[k('c')], "c", Action::ToggleFold, Processes, "tree: fold / unfold children", None),
    bind(&[code(KeyCode::F(2))], "F2", Action::ChooseColumns, Processes, "choose and order columns", None),
    bind(&[code(KeyCode::F(5))], "F5", Action::ToggleTree, Processes, "tree view", Some("tree")),
    bind(&[code(KeyCode::Enter)], "Enter", Action::Enter, Processes, "the process in detail", Some("details")),
    bind(&[k('k'), code(KeyCode::F(9))], "k F9", Action::Signal, Processes, "send a signal", Some("signal")),
    bind(&[code(KeyCode::F(7))], "F7 F8", Action::Renice(-1), Processes, "renice: priority up / down", Some("nice")),
    bind(&[code(KeyCode::F(8))], "F8", Action::Renice(1), Processes, "", None),
    bind(&[code(KeyCode::Right), k(']')], "Right ]", Action::RangeLonger, History, "longer range", Some("range")),
    bind(&[code(KeyCode::Left), k('[')], "Left [", Action::RangeShorter, History, "shorter range", None),
    bind(&[k('u'), code(KeyCode::Enter)], "u Enter", Action::PickUser, History, "choose the user charted", Some("user")),
];

/// The action for a key press in `mode`, if it has one.
pub fn action_for(key: KeyEvent, mode: InputMode) -> Option<Action> {
    let ctrl_held = key.modifiers.contains(KeyModifiers::CONTROL);
    if ctrl_held && key.code == KeyCode::Char('c') {
        return Some(Action::Quit);
    }
    if mode == InputMode::Confirm {
        return match key.code {
            KeyCode::Char('y' | 'Y') | KeyCode::Enter => Some(Action::Confirm),
            KeyCode::Char('n' | 'N' | 'q') | KeyCode::Esc => Some(Action::Cancel),
            _ => None,
        };
    }
    if mode == InputMode::Help {
        // Every key has an answer here: the help promises that any other key closes it.
        return Some(match key.code {
            KeyCode::Up | KeyCode::Char('k') => Action::Up,
            KeyCode::Down | KeyCode::Char('j') => Action::Down,
            KeyCode::PageUp => Action::PageUp,
            KeyCode::PageDown | KeyCode::Char(' ') => Action::PageDown,
            KeyCode::Home | KeyCode::Char('g') => Action::Top,
            KeyCode::End | KeyCode::Char('G') => Action::Bottom,
            _ => Action::Back,
        });
    }
    if mode == InputMode::Columns {
        return match key.code {
            KeyCode::Up | KeyCode::Char('k') => Some(Action::Up),
            KeyCode::Down | KeyCode::Char('j') => Some(Action::Down),
            KeyCode::Char(' ') => Some(Action::ToggleItem),
            KeyCode::F(7) | KeyCode::Char('-') => Some(Action::MoveItem(-1)),
            KeyCode::F(8) | KeyCode::Char('+') => Some(Action::MoveItem(1)),
            KeyCode::Enter => Some(Action::Enter),
            KeyCode::Esc | KeyCode::Char('q') => Some(Action::Back),
            _ => None,
        };
    }
    if mode == InputMode::Renice {
        return match key.code {
            KeyCode::F(7) | KeyCode::Up | KeyCode::Char('-') => Some(Action::Renice(-1)),
            KeyCode::F(8) | KeyCode::Down | KeyCode::Char('+') => Some(Action::Renice(1)),
            KeyCode::Enter => Some(Action::Enter),
            KeyCode::Esc | KeyCode::Char('q') => Some(Action::Back),
            _ => None,
        };
    }
    if matches!(mode, InputMode::Signal | InputMode::UserPicker) {
        return match key.code {
            KeyCode::Up | KeyCode::Char('k') => Some(Action::Up),
            KeyCode::Down | KeyCode::Char('j') => Some(Action::Down),
            KeyCode::PageUp => Some(Action::PageUp),
            KeyCode::PageDown => Some(Action::PageDown),
            KeyCode::Home => Some(Action::Top),
            KeyCode::End => Some(Action::Bottom),
            KeyCode::Enter => Some(Action::Enter),
            KeyCode::Esc | KeyCode::Char('q') => Some(Action::Back),
            _ => None,
        };
    }
    if matches!(
        mode,
        InputMode::Filter | InputMode::Goto | InputMode::Search
    ) {
        return match key.code {
            KeyCode::F(3) if mode == InputMode::Search => Some(Action::SearchNext),
            KeyCode::Char('u') if ctrl_held => Some(Action::FilterErase),
            KeyCode::Enter => Some(Action::FilterAccept),
            KeyCode::Esc => Some(Action::FilterClear),
            KeyCode::Backspace => Some(Action::FilterBackspace),
            KeyCode::Char(c) if !ctrl_held && !c.is_control() => Some(Action::FilterChar(c)),
            _ => None,
        };
    }
    BINDINGS
        .iter()
        .filter(|b| b.scope.covers(mode))
        .find(|b| {
            b.keys
                .iter()
                .any(|k| k.code == key.code && k.ctrl == ctrl_held)
        })
        .map(|b| b.action)
}

/// The scopes the help lists, in its order.
pub const HELP_SCOPES: [Scope; 5] = [
    Scope::Everywhere,
    Scope::Main,
    Scope::Travel,
    Scope::Processes,
    Scope::History,
];

/// How many columns the help takes on a `width` x `height` terminal: 1 or 2 when it all fits,
/// 0 when it must scroll. The overlay draws by it, and the keys scroll only when it scrolls, so
/// that otherwise any key closes the help, as its title says.
pub fn help_columns(width: u16, height: u16) -> usize {
    let len = help_len();
    let room = usize::from(height.saturating_sub(3));
    if len <= room {
        1
    } else if len.div_ceil(2) <= room && width.saturating_sub(2).min(76) >= 60 {
        2
    } else {
        0
    }
}

/// How many lines the help has: a heading per scope and a line per described binding.
pub fn help_len() -> usize {
    let described = BINDINGS
        .iter()
        .filter(|b| HELP_SCOPES.contains(&b.scope) && !b.help.is_empty())
        .count();
    HELP_SCOPES.len() + described
}

/// The bindings that apply in `mode`, for the hint bar; a read-only session is not offered what
/// it may not do.
pub fn hints(mode: InputMode, readonly: bool) -> Vec<(&'static str, &'static str)> {
    match mode {
        InputMode::Filter => return vec![("Enter", "keep"), ("Esc", "clear"), ("Ctrl-U", "erase")],
        InputMode::Search => {
            return vec![("F3", "next"), ("Enter", "keep"), ("Esc", "clear")];
        }
        InputMode::Goto => return vec![("Enter", "go"), ("Esc", "cancel")],
        InputMode::Confirm => return vec![("y", "yes"), ("n", "no")],
        InputMode::Signal => {
            return vec![("Up/Down", "choose"), ("Enter", "send"), ("Esc", "cancel")];
        }
        InputMode::UserPicker => {
            return vec![("Up/Down", "choose"), ("Enter", "chart"), ("Esc", "cancel")];
        }
        InputMode::Columns => {
            return vec![
                ("Space", "show/hide"),
                ("F7/F8", "move"),
                ("Enter", "save"),
                ("Esc", "cancel"),
            ];
        }
        InputMode::Renice => {
            return vec![
                ("F7/F8", "priority up/down"),
                ("Enter", "set"),
                ("Esc", "cancel"),
            ];
        }
        InputMode::Help => {
            return vec![("Up/Down PgUp/PgDn", "scroll"), ("any other key", "close")];
        }
        _ => {}
    }
    BINDINGS
        .iter()
        .filter(|b| b.scope.covers(mode) && !(readonly && b.action.writes()))
        // The details view offers what acts on its process, not the list's own keys.
        .filter(|b| {
            mode != InputMode::Details
                || b.scope == Scope::Everywhere
                || matches!(b.action, Action::Signal | Action::Renice(_))
        })
        .filter_map(|b| {
            b.hint
                .map(|h| (b.label.split(' ').next().unwrap_or(b.label), h))
        })
        .collect()
}
