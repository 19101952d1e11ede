//! Proportional set size, read where it changes a user's memory figure.
//!
//! Summing RSS counts a page once for every process that maps it: a user's forked workers
//! sharing a parent's heap copy-on-write, or a thousand `sleep`s sharing libc, read as many
//! times their real footprint. PSS (`smaps_rollup`) divides each shared page among its mappers,
//! so a user's PSS sum counts it once. Reading it walks the page tables (about 5 ms for a
//! 300 MiB process, 45 µs for a `sleep`), so it is read only for users whose RSS sum is large
//! enough for the duplication to matter and who run more than one process; each reading is
//! cached per (pid, start time) and re-read when the process's RSS moved by more than a tenth,
//! after a minute if it ran since, and after ten minutes regardless (others come and go from
//! the pages it shares), a bounded amount per refresh, unmeasured and largest first. Between readings `derive`
//! adjusts the figure by the change in RSS. Other users' processes need root (ptrace read
//! access); where that is refused the figure stays RSS and says so.

use std::collections::HashMap;
use std::os::fd::OwnedFd;

use rustix::fs::{Mode, OFlags};

use super::processes::RawProc;
use super::procfile::read_at_start;
use crate::model::Timestamp;

/// A PSS measurement and the RSS it was taken against (both from the same `smaps_rollup` read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PssReading {
    pub pss_bytes: u64,
    pub rss_bytes: u64,
}

/// A reading older than this is taken again if the process ran since (copy-on-write breaking
/// moves PSS, not RSS), and one older than `MAX_AGE_MS` anyway.
const RAN_AGE_MS: i64 = 60_000;
const MAX_AGE_MS: i64 = 600_000;
/// Readings one refresh may take.
const MAX_READS: usize = 1024;
/// A process whose PSS could not be read (not ours, gone) is retried after this long.
const RETRY_MS: i64 = 60_000;
/// Resident pages one refresh may walk (512 MiB, about 8 ms here), plus a fixed cost per file
/// read: a machine full of large processes is measured over a few refreshes, not in one.
const PAGE_BUDGET: u64 = 131_072;
const PAGES_PER_READ: u64 = 64;
/// A user qualifies with at least this much RSS summed over two or more processes, or half a
/// percent of memory if that is less (the level the store records a user at).
const USER_FLOOR_BYTES: u64 = 256 << 20;

struct Cached {
    start_ticks: u64,
    cpu_ticks: u64,
    reading: Option<PssReading>,
    at: Timestamp,
}

pub struct PssProbe {
    root: OwnedFd,
    cache: HashMap<u32, Cached>,
    buf: Vec<u8>,
    /// (pid, priority) of the processes to read this refresh; kept to reuse its allocation.
    wanted: Vec<(usize, u64)>,
}

/// Parse `Rss:` and `Pss:` (kB) from smaps_rollup.
pub fn parse_smaps_rollup(buf: &[u8]) -> Option<PssReading> {
    let mut rss = None;
    let mut pss = None;
    for line in buf.split(|&b| b == b'\n') {
        let field = |name: &[u8]| -> Option<u64> {
            let rest = line.strip_prefix(name)?;
            let digits: Vec<u8> = rest
                .iter()
                .copied()
                .skip_while(|b| *b == b' ')
                .take_while(u8::is_ascii_digit)
                .collect();
            std::str::from_utf8(&digits).ok()?.parse::<u64>().ok()
        };
        if let Some(v) = field(b"Rss:") {
            rss = Some(v * 1024);
        } else if let Some(v) = field(b"Pss:") {
            pss = Some(v * 1024);
        }
        if rss.is_some() && pss.is_some() {
            break;
        }
    }
    Some(PssReading {
        pss_bytes: pss?,
        rss_bytes: rss?,
    })
}

impl PssProbe {
    pub fn new(root: &std::path::Path) -> std::io::Result<Self> {
        let root = rustix::fs::open(
            root,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(PssProbe {
            root,
            cache: HashMap::new(),
            buf: Vec::with_capacity(1024),
            wanted: Vec::new(),
        })
    }

    /// Attach PSS readings to the processes of qualifying users, reading the ones due within
    /// this refresh's budget. `procs` is sorted by pid.
    pub fn update(&mut self, procs: &mut [RawProc], page_size: u64, mem_total: u64, at: Timestamp) {
        self.cache.retain(|pid, c| {
            procs
                .binary_search_by_key(pid, |p| p.pid)
                .is_ok_and(|i| procs[i].start_ticks == c.start_ticks)
        });
        let floor = USER_FLOOR_BYTES.min(mem_total / 200).max(1);
        let mut per_user: HashMap<u32, (u32, u64)> = HashMap::new();
        for p in procs.iter() {
            let e = per_user.entry(p.uid).or_default();
            e.0 += 1;
            e.1 += p.rss_pages * page_size;
        }
        let qualifies = |uid: u32| {
            per_user
                .get(&uid)
                .is_some_and(|&(n, rss)| n >= 2 && rss >= floor)
        };

        self.wanted.clear();
        for (i, p) in procs.iter().enumerate() {
            if p.rss_pages == 0 || !qualifies(p.uid) {
                continue;
            }
            let rss = p.rss_pages * page_size;
            let priority = match self.cache.get(&p.pid) {
                None => u64::MAX / 2 + rss / 4096,
                Some(c) => match c.reading {
                    None if at.0 - c.at.0 >= RETRY_MS => (at.0 - c.at.0) as u64,
                    None => continue,
                    Some(r) => {
                        let moved = rss.abs_diff(r.rss_bytes) > r.rss_bytes / 10 + (1 << 20);
                        let age = at.0 - c.at.0;
                        let ran = c.cpu_ticks != p.cpu_ticks;
                        if moved {
                            u64::MAX / 4 + rss / 4096
                        } else if (ran && age >= RAN_AGE_MS) || age >= MAX_AGE_MS {
                            age as u64
                        } else {
                            continue;
                        }
                    }
                },
            };
            self.wanted.push((i, priority));
        }
        self.wanted.sort_unstable_by_key(|w| std::cmp::Reverse(w.1));
        let mut pages = 0;
        let wanted = std::mem::take(&mut self.wanted);
        for &(i, _) in wanted.iter().take(MAX_READS) {
            if pages >= PAGE_BUDGET {
                break;
            }
            let p = &procs[i];
            pages += p.rss_pages + PAGES_PER_READ;
            let reading = self.read(p.pid);
            self.cache.insert(
                p.pid,
                Cached {
                    start_ticks: p.start_ticks,
                    cpu_ticks: p.cpu_ticks,
                    reading,
                    at,
                },
            );
        }
        self.wanted = wanted;
        for p in procs.iter_mut() {
            if qualifies(p.uid) {
                p.pss = self.cache.get(&p.pid).and_then(|c| c.reading);
            }
        }
    }

    fn read(&mut self, pid: u32) -> Option<PssReading> {
        let mut path = itoa::Buffer::new().format(pid).as_bytes().to_vec();
        path.extend_from_slice(b"/smaps_rollup");
        let fd = rustix::fs::openat(
            &self.root,
            path.as_slice(),
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .ok()?;
        read_at_start(&fd, &mut self.buf).ok()?;
        parse_smaps_rollup(&self.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smaps_rollup_fields() {
        let text = b"55d0c8e4a000-7ffd3c9f1000 ---p 00000000 00:00 0    [rollup]\n\
            Rss:                1744 kB\nPss:                 189 kB\nPss_Dirty:   88 kB\n\
            Pss_Anon:             88 kB\nShared_Clean:       1600 kB\n";
        assert_eq!(
            parse_smaps_rollup(text),
            Some(PssReading {
                pss_bytes: 189 * 1024,
                rss_bytes: 1744 * 1024
            })
        );
        assert_eq!(parse_smaps_rollup(b"Rss: 10 kB\n"), None);
        assert_eq!(parse_smaps_rollup(b""), None);
    }
}
