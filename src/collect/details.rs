//! One process in depth, read on request: what the TUI's details view shows.
//!
//! The sampling scan reads a handful of fields for every process; an admin looking at one
//! process wants more (working directory, open files, cgroup, I/O counters, environment), which
//! would be too costly to read for all of them on every refresh. So this is read for one pid,
//! only while its details are on screen. Every field is optional: a process of another user
//! hides most of them from a non-root viewer, and that is shown as such, never as an error.

use std::fs;
use std::io;
use std::path::Path;

use crate::model::{IoCounters, ProcessDetails};
use crate::sanitize::clean_bytes;

/// Longest command line or environment read (the kernel allows far more; a screen shows less).
const MAX_TEXT: usize = 256 * 1024;

/// Read `pid`'s details under `proc_root`. The environment is read only when `with_env` (the
/// caller decides who may see it). Err only when the process does not exist.
pub fn read(proc_root: &Path, pid: u32, with_env: bool) -> io::Result<ProcessDetails> {
    let dir = proc_root.join(pid.to_string());
    let stat = fs::read(dir.join("stat"))?;
    let (priority, nice) = priority_and_nice(&stat).unzip();
    let cmdline = fs::read(dir.join("cmdline"))
        .ok()
        .map(|raw| nul_separated(&raw).join(" "));
    Ok(ProcessDetails {
        pid,
        priority,
        nice,
        cmdline,
        cwd: fs::read_link(dir.join("cwd"))
            .ok()
            .map(|p| clean_bytes(p.as_os_str().as_encoded_bytes())),
        open_files: fs::read_dir(dir.join("fd")).ok().map(Iterator::count),
        cgroup: fs::read(dir.join("cgroup")).ok().map(|c| cgroup(&c)),
        io: fs::read(dir.join("io")).ok().and_then(|b| io_counters(&b)),
        environ: if with_env {
            fs::read(dir.join("environ"))
                .ok()
                .map(|raw| nul_separated(&raw))
        } else {
            None
        },
    })
}

/// `priority` and `nice` from /proc/PID/stat: the 15th and 16th fields after the state.
pub fn priority_and_nice(stat: &[u8]) -> Option<(i32, i32)> {
    let close = stat.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(stat.get(close + 2..)?).ok()?;
    let mut fields = rest.split_ascii_whitespace().skip(15);
    let priority = fields.next()?.parse().ok()?;
    let nice = fields.next()?.parse().ok()?;
    Some((priority, nice))
}

fn nul_separated(raw: &[u8]) -> Vec<String> {
    raw[..raw.len().min(MAX_TEXT)]
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(clean_bytes)
        .collect()
}

/// The cgroup v2 path (`0::/user.slice/...`), else the v1 lines joined.
fn cgroup(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let v2 = text.lines().find_map(|l| l.strip_prefix("0::"));
    match v2 {
        Some(path) => crate::sanitize::clean(path),
        None => crate::sanitize::clean(&text.lines().collect::<Vec<_>>().join("; ")),
    }
}

/// /proc/PID/io: `read_bytes` and `write_bytes` are what reached the storage layer; `rchar` and
/// `wchar` include the page cache and pipes.
pub fn io_counters(raw: &[u8]) -> Option<IoCounters> {
    let text = std::str::from_utf8(raw).ok()?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    Some(IoCounters {
        rchar: field("rchar")?,
        wchar: field("wchar")?,
        read_bytes: field("read_bytes")?,
        write_bytes: field("write_bytes")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_is_signed_and_found_after_a_hostile_comm() {
        let stat = b"42 (a) b) (c) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 0 0 39 19 1 0 500 1000 20 \
                     18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 2 0 0 0 0 0";
        assert_eq!(priority_and_nice(stat), Some((39, 19)));
        let stat = b"7 (x) R 1 7 7 0 -1 0 0 0 0 0 1 1 0 0 10 -10 1 0 5 10 2 0";
        assert_eq!(priority_and_nice(stat), Some((10, -10)));
        assert_eq!(priority_and_nice(b"7 (x) R 1"), None);
    }

    #[test]
    fn io_counters_need_every_field() {
        let io = b"rchar: 10\nwchar: 20\nsyscr: 1\nsyscw: 2\nread_bytes: 4096\nwrite_bytes: 8192\n\
                   cancelled_write_bytes: 0\n";
        assert_eq!(
            io_counters(io),
            Some(IoCounters {
                rchar: 10,
                wchar: 20,
                read_bytes: 4096,
                write_bytes: 8192
            })
        );
        assert_eq!(io_counters(b"rchar: 10\n"), None);
    }

    #[test]
    fn a_fixture_process_reads_in_full_and_its_environment_only_on_request() {
        let dir = tempfile::tempdir().expect("temp dir");
        let p = dir.path().join("77");
        fs::create_dir_all(p.join("fd")).expect("mkdir");
        fs::write(
            p.join("stat"),
            b"77 (job) S 1 77 77 0 -1 0 0 0 0 0 5 5 0 0 25 5 1 0 9 9 9",
        )
        .expect("stat");
        fs::write(p.join("cmdline"), b"python3\0train.py\0--x\x1b[2J\0").expect("cmdline");
        fs::write(p.join("cgroup"), b"0::/user.slice/user-1000.slice\n").expect("cgroup");
        fs::write(p.join("environ"), b"HOME=/home/a\0SECRET=1\0").expect("environ");
        for fd in ["0", "1", "2"] {
            fs::write(p.join("fd").join(fd), b"").expect("fd");
        }
        let d = read(dir.path(), 77, false).expect("details");
        assert_eq!((d.priority, d.nice), (Some(25), Some(5)));
        assert_eq!(d.cmdline.as_deref(), Some("python3 train.py --x[2J"));
        assert_eq!(d.cgroup.as_deref(), Some("/user.slice/user-1000.slice"));
        assert_eq!(d.open_files, Some(3));
        assert_eq!(d.io, None, "no io file: not readable, not zero");
        assert_eq!(d.environ, None);
        let d = read(dir.path(), 77, true).expect("details");
        assert_eq!(
            d.environ,
            Some(vec!["HOME=/home/a".to_string(), "SECRET=1".to_string()])
        );
        assert!(read(dir.path(), 78, true).is_err(), "no such process");
    }
}
