//! The terminal and the event loop.
//!
//! The terminal is put back (raw mode off, main screen, cursor shown) on every way out: normal
//! return, error, and panic, because a monitor that leaves an admin's SSH session in raw mode is
//! worse than no monitor. The loop waits for keys with a timeout that ends at the next sample, so
//! an idle TUI sleeps instead of spinning, and redraws only when a tick, a key or a resize changed
//! something.

use std::io::{self, Stdout};
use std::time::{Duration, Instant};

use crossterm::event::{self, Event, KeyEventKind};
use crossterm::terminal::{self, EnterAlternateScreen, LeaveAlternateScreen};
use crossterm::{cursor, execute};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

use super::db::AlertDb;
use super::keymap;
use super::state::{AppState, Effect, Feed, TravelTo};
use crate::engine::Engine;
use crate::model::Timestamp;

/// Points a session-only chart keeps; the view thins them further to its width.
const MAX_SESSION_CHART_POINTS: usize = 400;

/// Restores the terminal when dropped.
struct TerminalGuard;

impl TerminalGuard {
    fn enter() -> io::Result<TerminalGuard> {
        terminal::enable_raw_mode()?;
        let guard = TerminalGuard;
        execute!(
            io::stdout(),
            EnterAlternateScreen,
            cursor::Hide,
            event::EnableMouseCapture
        )?;
        Ok(guard)
    }
}

fn restore() {
    let _ = terminal::disable_raw_mode();
    let _ = execute!(
        io::stdout(),
        event::DisableMouseCapture,
        LeaveAlternateScreen,
        cursor::Show
    );
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore();
    }
}

/// Restore the terminal before the default hook prints the panic message, so it is readable.
fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore();
        previous(info);
    }));
}

/// Run the TUI until the user quits.
pub fn run(engine: Engine, mut state: AppState) -> io::Result<()> {
    install_panic_hook();
    let _guard = TerminalGuard::enter()?;
    let mut terminal = Terminal::new(CrosstermBackend::new(io::stdout()))?;
    terminal.clear()?;
    let mut session = Session {
        db: AlertDb::open(engine.config()),
        engine,
        operator: crate::operator::current(),
    };
    event_loop(&mut session, &mut state, &mut terminal)
}

/// What the loop works with besides the screen.
struct Session {
    engine: Engine,
    db: AlertDb,
    /// Who acknowledgements and resolutions are recorded as.
    operator: String,
}

fn tick(session: &mut Session, state: &mut AppState) -> io::Result<bool> {
    let Some(t) = session.engine.tick(Timestamp::now())? else {
        return Ok(false);
    };
    let stored = session.db.open_alerts();
    let tracker = session.engine.tracker();
    let at = t.snapshot.at;
    let daemons = if session.db.daemon_running() {
        session.db.episodes_now(at)
    } else {
        None
    };
    let (alerts, persistent) = match daemons {
        Some(eps) => (
            Vec::new(),
            super::travel::episodes_at(at, &eps, &[], session.engine.config()),
        ),
        None => (tracker.open_alerts(), tracker.persistent_users()),
    };
    state.alerts_source = session.db.note.clone();
    state.ingest(Feed {
        snapshot: t.snapshot,
        status: tracker.status().clone(),
        alerts,
        persistent,
        stored,
    });
    Ok(true)
}

/// Carry out what the last action decided, and show how it went.
fn run_effects(session: &mut Session, state: &mut AppState) {
    for effect in state.take_effects() {
        match effect {
            Effect::Alerts(op, targets) => {
                let (text, error) = session.db.apply(
                    session.engine.tracker_mut(),
                    op,
                    &targets,
                    Timestamp::now(),
                    &session.operator,
                );
                state.notify(text, error);
                let stored = session.db.open_alerts();
                state.set_stored(stored);
                if let Some(feed) = &mut state.feed {
                    feed.alerts = session.engine.tracker().open_alerts();
                }
            }
            Effect::Travel(to) => travel(session, state, to),
            Effect::Signal { targets, signal } => send_signal(state, &targets, signal),
            Effect::Renice {
                pid,
                start_time,
                nice,
            } => {
                renice(state, pid, start_time, nice);
                // Show the value the kernel now has.
                load_details(session, state, pid);
            }
            Effect::LoadDetails { pid } => load_details(session, state, pid),
            Effect::SaveColumns(columns) => save_columns(state, &columns),
            Effect::LoadHistory { since, until, user } => {
                match session.db.history(since, until, user.as_deref()) {
                    Some(Ok(data)) => state.history = Some(data),
                    Some(Err(e)) => state.notify(format!("cannot read history: {e}"), true),
                    None => {
                        state.history = Some(super::history::from_session(
                            &state.session,
                            since,
                            until,
                            MAX_SESSION_CHART_POINTS,
                            user.as_deref(),
                        ));
                    }
                }
            }
        }
    }
}

/// Whether `pid` with `start_time` is still in the latest sample: the process that was chosen,
/// not another one that got its pid since.
fn still_there(state: &AppState, pid: u32, start_time: Timestamp) -> bool {
    state.feed.as_ref().is_some_and(|f| {
        f.snapshot
            .processes
            .iter()
            .any(|p| p.pid == pid && p.start_time == start_time)
    })
}

/// Send a signal, but only to the processes that were chosen: each pid must still be in the
/// latest sample with the same start time.
fn send_signal(state: &mut AppState, targets: &[(u32, Timestamp)], signal: usize) {
    let name = super::signal::SIGNALS.get(signal).map_or("?", |s| s.name);
    let (mut sent, mut gone, mut denied, mut failed) = (0, 0, 0, None);
    for &(pid, start) in targets {
        if !still_there(state, pid, start) {
            gone += 1;
            continue;
        }
        match super::signal::send(pid, signal) {
            Ok(()) => sent += 1,
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => denied += 1,
            Err(e) => failed = Some(format!("{pid}: {e}")),
        }
    }
    let (text, error) = match targets {
        [(pid, _)] if sent == 1 => (format!("sent SIG{name} to {pid}"), false),
        [(pid, _)] if gone == 1 => (format!("process {pid} has exited; nothing sent"), true),
        [(pid, _)] if denied == 1 => (
            format!("SIG{name} to {pid}: not permitted (only its owner or root may signal it)"),
            true,
        ),
        _ => {
            let mut t = format!("sent SIG{name} to {sent} of {} processes", targets.len());
            if gone > 0 {
                t.push_str(&format!("; {gone} had exited (left alone)"));
            }
            if denied > 0 {
                t.push_str(&format!("; {denied} not permitted"));
            }
            if let Some(f) = &failed {
                t.push_str(&format!("; {f}"));
            }
            (t, sent < targets.len())
        }
    };
    state.notify(text, error);
}

/// Renice the chosen process if it is still the one chosen.
fn renice(state: &mut AppState, pid: u32, start_time: Timestamp, nice: i32) {
    if !still_there(state, pid, start_time) {
        state.notify(format!("process {pid} has exited; not reniced"), true);
        return;
    }
    match super::signal::renice(pid, nice) {
        Ok(()) => state.notify(format!("process {pid} now has nice {nice}"), false),
        Err(e) if matches!(e.kind(), io::ErrorKind::PermissionDenied) => state.notify(
            format!(
                "renice {pid}: not permitted (only root may raise a priority; only the owner or \
                 root may lower it)"
            ),
            true,
        ),
        Err(e) => state.notify(format!("renice {pid}: {e}"), true),
    }
}

/// Keep the chosen columns in the config file this session read, for the next one.
fn save_columns(state: &mut AppState, columns: &[String]) {
    let Some(path) = state.options.config_path.clone() else {
        state.notify(
            "columns set for this session; no config file to keep them in \
             (sysmon config init creates one)",
            false,
        );
        return;
    };
    match crate::config::edit::save_ui_columns(&path, columns) {
        Ok(()) => state.notify(format!("columns saved to {}", path.display()), false),
        Err(e) => state.notify(
            format!(
                "columns set for this session; not saved to {}: {e}",
                path.display()
            ),
            true,
        ),
    }
}

/// Read one process in depth through the engine; its environment only for its own user or root.
fn load_details(session: &Session, state: &mut AppState, pid: u32) {
    let owner = state
        .shown()
        .and_then(|f| f.snapshot.processes.iter().find(|p| p.pid == pid))
        .map(|p| p.uid);
    let viewer = rustix::process::geteuid().as_raw();
    let with_env = viewer == 0 || owner == Some(viewer);
    match session.engine.process_details(pid, with_env) {
        Ok(d) => state.set_details(Timestamp::now(), d),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            state.notify(format!("process {pid} has exited"), true);
        }
        Err(e) => state.notify(format!("cannot read process {pid}: {e}"), true),
    }
}

fn travel(session: &Session, state: &mut AppState, to: TravelTo) {
    match session.db.recorded(to) {
        Ok(Some(rec)) => {
            let live_at = state.feed.as_ref().map(|f| f.snapshot.at);
            // Forward past the newest record is the present.
            if matches!(to, TravelTo::At(t) if live_at.is_some_and(|l| t >= l)) {
                state.go_live();
                return;
            }
            let host = state
                .feed
                .as_ref()
                .map(|f| f.snapshot.host.clone())
                .unwrap_or_default();
            let feed = super::travel::feed_from(&rec, &host, &state.config);
            let asked = match to {
                TravelTo::At(t) => Some(t),
                _ => None,
            };
            state.arrive(feed);
            // Further back than anything kept: the first sample is what there is. Say so.
            if let Some(t) = asked
                && rec.at.secs_since(t) > rec.system.interval_secs.max(1.0) * 2.0
            {
                let first = super::views::header::stamp(state, rec.at.0);
                state.notify(
                    format!(
                        "nothing is recorded that far back: the first sample, {first}, is shown"
                    ),
                    true,
                );
            }
        }
        Ok(None) => match to {
            TravelTo::After(_) => {
                state.go_live();
                state.notify("no later recorded sample: back to live", false);
            }
            _ => state.notify("no earlier recorded sample", true),
        },
        Err(e) => state.notify(e, true),
    }
}

fn event_loop(
    session: &mut Session,
    state: &mut AppState,
    terminal: &mut Terminal<CrosstermBackend<Stdout>>,
) -> io::Result<()> {
    // The first tick only primes the counters; the second follows soon so the screen fills fast.
    tick(session, state)?;
    let mut next_tick = Instant::now() + Duration::from_secs_f64(state.refresh_secs.min(1.0));
    let mut dirty = true;
    while !state.quit {
        if !state.paused && Instant::now() >= next_tick {
            dirty |= tick(session, state)?;
            state.load_history();
            state.load_details();
            run_effects(session, state);
            next_tick = Instant::now() + Duration::from_secs_f64(state.refresh_secs);
        }
        if dirty {
            let size = terminal.size()?;
            state.page = usize::from(size.height.saturating_sub(8)).max(1);
            state.screen = (size.width, size.height);
            terminal.draw(|f| super::views::draw(f, state))?;
            dirty = false;
        }
        let wait = if state.paused {
            Duration::from_millis(500)
        } else {
            next_tick.saturating_duration_since(Instant::now())
        };
        if !event::poll(wait)? {
            continue;
        }
        match event::read()? {
            Event::Key(key) if key.kind != KeyEventKind::Release => {
                if let Some(action) = keymap::action_for(key, state.input_mode()) {
                    let before = state.refresh_secs;
                    state.apply(action);
                    run_effects(session, state);
                    if state.refresh_secs != before {
                        next_tick = Instant::now() + Duration::from_secs_f64(state.refresh_secs);
                    }
                    dirty = true;
                }
            }
            Event::Mouse(m) => {
                let size = terminal.size()?;
                let area = ratatui::layout::Rect::new(0, 0, size.width, size.height);
                let actions = super::mouse::actions(state, area, m);
                for action in &actions {
                    state.apply(*action);
                }
                run_effects(session, state);
                dirty |= !actions.is_empty();
            }
            Event::Resize(..) => {
                terminal.autoresize()?;
                dirty = true;
            }
            _ => {}
        }
    }
    Ok(())
}
