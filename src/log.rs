//! One line per event on stderr, in the form journald wants.
//!
//! Under systemd (`$JOURNAL_STREAM` set) each line starts with a `<N>` priority prefix, which
//! journald turns into the entry's priority, and carries no timestamp (journald adds its own).
//! Elsewhere a line is `TIME LEVEL message`. There are never colours, and every message passes
//! through `sanitize` since it may quote user and process names.
//!
//! Its own module, beside `sanitize` and `format`, because the daemon, its mail thread and the
//! HTTP server all log: no sink imports another to do so.

use std::io::Write;

use crate::model::Timestamp;
use crate::sanitize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Error,
    Warning,
    Notice,
    Info,
}

impl Level {
    fn priority(self) -> u8 {
        match self {
            Level::Error => 3,
            Level::Warning => 4,
            Level::Notice => 5,
            Level::Info => 6,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Level::Error => "ERROR",
            Level::Warning => "WARN",
            Level::Notice => "NOTICE",
            Level::Info => "INFO",
        }
    }
}

pub fn line(level: Level, message: &str, journald: bool, at: Timestamp) -> String {
    let clean = sanitize::clean(message);
    if journald {
        format!("<{}>{clean}", level.priority())
    } else {
        format!("{} {:<6} {clean}", crate::time::rfc3339(at), level.name())
    }
}

pub fn log(level: Level, message: &str) {
    let journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let text = line(level, message, journald, Timestamp::now());
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{text}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journald_lines_carry_priority_and_no_control_characters() {
        let l = line(
            Level::Warning,
            "user ev\x1b[2Jil\nforged",
            true,
            Timestamp(0),
        );
        assert_eq!(l, "<4>user ev[2Jil forged");
        let plain = line(Level::Info, "started", false, Timestamp(0));
        assert_eq!(plain, "1970-01-01T00:00:00Z INFO   started");
    }
}
