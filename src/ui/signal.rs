//! The signals the process list offers, and sending one.
//!
//! A short, fixed menu (what an admin actually sends to a runaway job) rather than all 64:
//! TERM first because it lets the process clean up. Before sending, the run loop checks that
//! the pid still belongs to the process the admin chose (same start time in the latest
//! sample), so a pid reused since the screen was drawn is never hit.

use std::io;

use rustix::process::{Pid, Signal, kill_process};

pub struct SignalChoice {
    pub name: &'static str,
    pub what: &'static str,
    pub signal: Signal,
}

pub const SIGNALS: [SignalChoice; 6] = [
    SignalChoice {
        name: "TERM",
        what: "ask it to exit (can clean up)",
        signal: Signal::TERM,
    },
    SignalChoice {
        name: "INT",
        what: "interrupt, like Ctrl-C",
        signal: Signal::INT,
    },
    SignalChoice {
        name: "HUP",
        what: "hang up / reload",
        signal: Signal::HUP,
    },
    SignalChoice {
        name: "KILL",
        what: "kill at once (no clean-up)",
        signal: Signal::KILL,
    },
    SignalChoice {
        name: "STOP",
        what: "pause it",
        signal: Signal::STOP,
    },
    SignalChoice {
        name: "CONT",
        what: "resume a paused process",
        signal: Signal::CONT,
    },
];

/// Send `SIGNALS[choice]` to `pid`.
pub fn send(pid: u32, choice: usize) -> io::Result<()> {
    let sig = SIGNALS
        .get(choice)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no such signal"))?;
    let pid = i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a process id"))?;
    kill_process(pid, sig.signal).map_err(io::Error::from)
}
