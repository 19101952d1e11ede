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
        execute!(io::stdout(), EnterAlternateScreen, cursor::Hide)?;
        Ok(guard)
    }
}

fn restore() {
    let _ = terminal::disable_raw_mode();
    let _ = execute!(io::stdout(), LeaveAlternateScreen, cursor::Show);
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
            Effect::Signal {
                pid,
                start_time,
                signal,
            } => send_signal(state, pid, start_time, signal),
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

/// Send a signal, but only to the process that was chosen: its pid must still be in the latest
/// sample with the same start time.
fn send_signal(state: &mut AppState, pid: u32, start_time: Timestamp, signal: usize) {
    let same = state.feed.as_ref().is_some_and(|f| {
        f.snapshot
            .processes
            .iter()
            .any(|p| p.pid == pid && p.start_time == start_time)
    });
    let name = super::signal::SIGNALS.get(signal).map_or("?", |s| s.name);
    if !same {
        state.notify(format!("process {pid} has exited; nothing sent"), true);
        return;
    }
    match super::signal::send(pid, signal) {
        Ok(()) => state.notify(format!("sent SIG{name} to {pid}"), false),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => state.notify(
            format!("SIG{name} to {pid}: not permitted (only its owner or root may signal it)"),
            true,
        ),
        Err(e) => state.notify(format!("SIG{name} to {pid}: {e}"), true),
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
            state.arrive(feed);
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
            run_effects(session, state);
            next_tick = Instant::now() + Duration::from_secs_f64(state.refresh_secs);
        }
        if dirty {
            let size = terminal.size()?;
            state.page = usize::from(size.height.saturating_sub(8)).max(1);
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
            Event::Resize(..) => {
                terminal.autoresize()?;
                dirty = true;
            }
            _ => {}
        }
    }
    Ok(())
}
