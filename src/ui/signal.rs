//! The signals the signal menu offers, sending one, and renicing.
//!
//! Every standard Linux signal, the ones an admin sends to a runaway job first (TERM, because
//! it lets the process clean up), the rest by number, as `kill -l` lists them. Before acting,
//! the run loop checks that each pid still belongs to the process the admin chose (same start
//! time in the latest sample), so a pid reused since the screen was drawn is never hit.

use std::io;

use rustix::process::{Pid, Signal, kill_process, setpriority_process};

pub struct SignalChoice {
    pub name: &'static str,
    pub what: &'static str,
    pub signal: Signal,
}

const fn sig(name: &'static str, what: &'static str, signal: Signal) -> SignalChoice {
    SignalChoice { name, what, signal }
}

pub const SIGNALS: [SignalChoice; 31] = [
    sig("TERM", "ask it to exit (can clean up)", Signal::TERM),
    sig("INT", "interrupt, like Ctrl-C", Signal::INT),
    sig("HUP", "hang up / reload", Signal::HUP),
    sig("KILL", "kill at once (no clean-up)", Signal::KILL),
    sig("STOP", "pause it", Signal::STOP),
    sig("CONT", "resume a paused process", Signal::CONT),
    sig("QUIT", "quit with a core dump", Signal::QUIT),
    sig("ILL", "illegal instruction", Signal::ILL),
    sig("TRAP", "trace trap", Signal::TRAP),
    sig("ABRT", "abort", Signal::ABORT),
    sig("BUS", "bus error", Signal::BUS),
    sig("FPE", "floating point exception", Signal::FPE),
    sig("USR1", "user-defined 1", Signal::USR1),
    sig("SEGV", "segmentation fault", Signal::SEGV),
    sig("USR2", "user-defined 2", Signal::USR2),
    sig("PIPE", "broken pipe", Signal::PIPE),
    sig("ALRM", "alarm clock", Signal::ALARM),
    sig("STKFLT", "stack fault", Signal::STKFLT),
    sig("CHLD", "child status changed", Signal::CHILD),
    sig("TSTP", "stop from the terminal, like Ctrl-Z", Signal::TSTP),
    sig("TTIN", "background read from the terminal", Signal::TTIN),
    sig("TTOU", "background write to the terminal", Signal::TTOU),
    sig("URG", "urgent socket data", Signal::URG),
    sig("XCPU", "CPU time limit exceeded", Signal::XCPU),
    sig("XFSZ", "file size limit exceeded", Signal::XFSZ),
    sig("VTALRM", "virtual alarm clock", Signal::VTALARM),
    sig("PROF", "profiling timer", Signal::PROF),
    sig("WINCH", "window size changed", Signal::WINCH),
    sig("IO", "I/O possible", Signal::IO),
    sig("PWR", "power failure", Signal::POWER),
    sig("SYS", "bad system call", Signal::SYS),
];

fn pid_of(pid: u32) -> io::Result<Pid> {
    i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a process id"))
}

/// Send `SIGNALS[choice]` to `pid`.
pub fn send(pid: u32, choice: usize) -> io::Result<()> {
    let sig = SIGNALS
        .get(choice)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no such signal"))?;
    kill_process(pid_of(pid)?, sig.signal).map_err(io::Error::from)
}

/// Nice values run from -20 (first served) to 19 (last).
pub const NICE_RANGE: std::ops::RangeInclusive<i32> = -20..=19;

/// Set `pid`'s nice value. Lowering it below what it is needs root (CAP_SYS_NICE).
pub fn renice(pid: u32, nice: i32) -> io::Result<()> {
    let nice = nice.clamp(*NICE_RANGE.start(), *NICE_RANGE.end());
    setpriority_process(Some(pid_of(pid)?), nice).map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_standard_signal_once() {
        let mut raw: Vec<i32> = SIGNALS.iter().map(|s| s.signal.as_raw()).collect();
        raw.sort_unstable();
        raw.dedup();
        assert_eq!(raw, (1..=31).collect::<Vec<_>>());
    }
}
