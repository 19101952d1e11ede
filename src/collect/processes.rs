//! The per-process scan: the part of a refresh that scales with the machine.
//!
//! A refresh needs, for every process, its CPU ticks, resident memory, thread count and owner.
//! All of that except a trustworthy owner is in `/proc/PID/stat`, so that is the only file read
//! per process per refresh, through a descriptor kept open between refreshes (see `procfile`).
//! The owner comes from `fstat` on that descriptor: procfs reports the process's effective uid
//! as the owner unless the process is not dumpable, in which case it says root. So `status` is
//! read only when a process is new, when it appears root-owned, or when its owner changes (a
//! daemon dropping privileges); `cmdline` only when a process is new or has exec'd (its `comm`
//! changed). Everything that reaches a string is sanitised here.
//!
//! Resident memory comes from `statm`: since the kernel keeps RSS in per-CPU counters (6.2),
//! `stat` reports their unsummed, approximate value (seen here up to 10 % under `ps` for small
//! processes, and the error grows with the number of CPUs), while `statm` and `status` sum them
//! as `ps` and htop do. A `statm` read costs half a `stat` read, so it is taken only when the
//! figure can have moved: for a new process, one that ran or whose `stat` RSS changed since, and
//! every 16th refresh otherwise; in between the last exact figure stands. `stat`'s figure is the
//! fallback where `statm` cannot be read.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use rustix::fs::{Mode, OFlags, RawDir, SeekFrom};

pub use super::memory::PssReading;
use super::procfile::read_at_start;
use super::users::UserNames;
use crate::sanitize;

/// A process that neither ran nor changed its `stat` RSS has its `statm` re-read this often
/// (in refreshes), for memory that moved without it (reclaim, another CPU's unflushed count).
const STATM_EVERY: u64 = 16;

/// Command lines longer than this are cut: enough to tell jobs apart, bounded for hostile input.
pub const MAX_CMDLINE: usize = 4096;

/// One process as read from /proc, before any rate is computed.
#[derive(Debug, Clone, PartialEq)]
pub struct RawProc {
    pub pid: u32,
    pub ppid: u32,
    /// Effective uid.
    pub uid: u32,
    pub user: Arc<str>,
    pub name: Arc<str>,
    pub cmdline: Arc<str>,
    pub state: char,
    /// utime + stime of all threads, in clock ticks.
    pub cpu_ticks: u64,
    /// cutime + cstime: what the children this process has waited for used, in clock ticks.
    pub child_ticks: u64,
    /// Resident pages as `ps` shows them (`statm`; `stat`'s approximation if unreadable).
    pub rss_pages: u64,
    /// Proportional set size, where one was measured (see `collect::memory`).
    pub pss: Option<PssReading>,
    pub threads: u64,
    /// Start time in clock ticks after boot: with the pid, it identifies a process uniquely.
    pub start_ticks: u64,
}

/// The few fields of /proc/PID/stat a refresh needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatFields {
    /// Byte range of `comm` inside the buffer that was parsed.
    pub comm: (usize, usize),
    pub state: char,
    pub ppid: u32,
    pub cpu_ticks: u64,
    pub child_ticks: u64,
    pub threads: u64,
    pub start_ticks: u64,
    pub rss_pages: u64,
}

/// Parse /proc/PID/stat. `comm` may contain anything, spaces and parentheses included, so the
/// fields are found after the *last* closing parenthesis.
///
/// procfs-core's parser builds every one of the 52 fields and three heap objects per call; this
/// runs for every process on every refresh and needs seven, so it is written out here.
pub fn parse_stat(buf: &[u8]) -> Option<StatFields> {
    let open = buf.iter().position(|&b| b == b'(')?;
    let close = buf.iter().rposition(|&b| b == b')')?;
    if close < open {
        return None;
    }
    let mut fields = buf.get(close + 2..)?.split(|&b| b == b' ');
    let state = *fields.next()?.first()? as char;
    let mut nth = |n: usize| -> Option<u64> { parse_u64(fields.nth(n)?) };
    // Positions after `state`: ppid is next; utime is the 11th after ppid, then stime, cutime,
    // cstime; num_threads follows priority, nice; starttime follows itrealvalue; rss follows
    // vsize.
    let ppid = nth(0)?;
    let utime = nth(9)?;
    let stime = nth(0)?;
    let cutime = nth(0)?;
    let cstime = nth(0)?;
    let threads = nth(2)?;
    let start_ticks = nth(1)?;
    let rss_pages = nth(1)?;
    Some(StatFields {
        comm: (open + 1, close),
        state,
        ppid: ppid as u32,
        cpu_ticks: utime + stime,
        child_ticks: cutime + cstime,
        threads,
        start_ticks,
        rss_pages,
    })
}

fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            // rss can be negative on some kernels for a process being torn down.
            return if s.first() == Some(&b'-') {
                Some(0)
            } else {
                None
            };
        }
        v = v.checked_mul(10)?.checked_add((b - b'0') as u64)?;
    }
    Some(v)
}

/// Resident pages from /proc/PID/statm (`size resident shared text lib data dt`).
pub fn parse_statm_resident(buf: &[u8]) -> Option<u64> {
    parse_u64(buf.split(|&b| b == b' ').nth(1)?)
}

/// The effective uid from /proc/PID/status (`Uid: real effective saved fs`).
pub fn parse_status_euid(buf: &[u8]) -> Option<u32> {
    let line = buf
        .split(|&b| b == b'\n')
        .find(|l| l.starts_with(b"Uid:"))?;
    let euid = line[4..]
        .split(|&b| b == b'\t' || b == b' ')
        .filter(|f| !f.is_empty())
        .nth(1)?;
    parse_u64(euid).and_then(|v| u32::try_from(v).ok())
}

/// NUL-separated arguments to one line, bounded and sanitised.
pub fn format_cmdline(raw: &[u8]) -> String {
    let raw = &raw[..raw.len().min(MAX_CMDLINE)];
    let joined: Vec<u8> = raw.iter().map(|&b| if b == 0 { b' ' } else { b }).collect();
    sanitize::clean_bytes(&joined).trim_end().to_string()
}

struct Entry {
    fd: Option<OwnedFd>,
    statm: Option<OwnedFd>,
    /// The last exact RSS, and the `stat` RSS and CPU ticks it was read at.
    exact_rss: Option<u64>,
    exact_at: (u64, u64),
    start_ticks: u64,
    /// The owner procfs last reported; a change means the euid must be re-read.
    owner: u32,
    uid: u32,
    user: Arc<str>,
    comm_raw: Box<[u8]>,
    name: Arc<str>,
    cmdline: Arc<str>,
    seen: u64,
}

/// The known processes by pid: a vector sorted by pid, which takes half the memory of a hash
/// map (whose power-of-two table for 2,000 processes is sized for 3,584). A scan walks pids in
/// ascending order, so processes it finds new are kept aside and merged in once at its end.
#[derive(Default)]
struct PidMap {
    sorted: Vec<(u32, Entry)>,
    added: Vec<(u32, Entry)>,
}

impl PidMap {
    fn find(&self, pid: u32) -> Result<usize, usize> {
        self.sorted.binary_search_by_key(&pid, |(p, _)| *p)
    }

    fn get(&self, pid: &u32) -> Option<&Entry> {
        self.find(*pid).ok().map(|i| &self.sorted[i].1)
    }

    fn get_mut(&mut self, pid: &u32) -> Option<&mut Entry> {
        self.find(*pid).ok().map(|i| &mut self.sorted[i].1)
    }

    fn contains_key(&self, pid: &u32) -> bool {
        self.find(*pid).is_ok()
    }

    /// Add a process; it can be looked up after the next `merge_added`.
    fn insert(&mut self, pid: u32, e: Entry) {
        match self.find(pid) {
            Ok(i) => self.sorted[i].1 = e,
            Err(_) => self.added.push((pid, e)),
        }
    }

    fn remove(&mut self, pid: &u32) -> Option<Entry> {
        self.find(*pid).ok().map(|i| self.sorted.remove(i).1)
    }

    fn retain(&mut self, mut keep: impl FnMut(&u32, &mut Entry) -> bool) {
        self.sorted.retain_mut(|(p, e)| keep(p, e));
    }

    fn merge_added(&mut self) {
        if self.added.is_empty() {
            return;
        }
        let in_order = match (self.sorted.last(), self.added.first()) {
            (Some((last, _)), Some((first, _))) => last < first,
            _ => true,
        };
        // A little headroom rather than doubling; `added` is dropped, not kept at its peak.
        let needed = self.sorted.len() + self.added.len();
        if needed > self.sorted.capacity() {
            self.sorted
                .reserve_exact(needed + needed / 8 - self.sorted.len());
        }
        self.sorted.extend(std::mem::take(&mut self.added));
        if !in_order {
            self.sorted.sort_unstable_by_key(|(p, _)| *p);
        }
    }
}

/// Counters about the scan itself, for sysmon's own metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanStats {
    /// Processes listed but not readable (hidepid, permissions) or gone mid-read.
    pub skipped: u64,
    pub new: u64,
    pub held_fds: u64,
}

pub struct ProcessScanner {
    root: OwnedFd,
    dir_buf: Vec<u8>,
    pids: Vec<u32>,
    entries: PidMap,
    stat_buf: Vec<u8>,
    statm_buf: Vec<u8>,
    aux_buf: Vec<u8>,
    generation: u64,
    held: usize,
    fd_budget: usize,
    trust_owner: bool,
}

enum Read {
    /// Known process, still the same one.
    Same(StatFields, u32),
    /// Not known, or its pid now belongs to a new process.
    New(StatFields, u32, Option<OwnedFd>),
    /// Gone or unreadable.
    Skip,
}

impl ProcessScanner {
    /// `trust_owner`: whether directory ownership reflects the effective uid (true for a real
    /// procfs; fixture trees are owned by whoever created them).
    pub fn new(root: &std::path::Path, trust_owner: bool, fd_budget: usize) -> io::Result<Self> {
        let root = rustix::fs::open(
            root,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(ProcessScanner {
            root,
            dir_buf: Vec::with_capacity(32 * 1024),
            pids: Vec::new(),
            entries: PidMap::default(),
            stat_buf: Vec::with_capacity(1024),
            statm_buf: Vec::with_capacity(128),
            aux_buf: Vec::with_capacity(4096),
            generation: 0,
            held: 0,
            fd_budget,
            trust_owner,
        })
    }

    fn list_pids(&mut self) -> io::Result<()> {
        self.pids.clear();
        rustix::fs::seek(&self.root, SeekFrom::Start(0))?;
        let mut dir = RawDir::new(&self.root, self.dir_buf.spare_capacity_mut());
        while let Some(entry) = dir.next() {
            let entry = entry?;
            let name = entry.file_name().to_bytes();
            if let Some(pid) = parse_u64(name).and_then(|p| u32::try_from(p).ok()) {
                self.pids.push(pid);
            }
        }
        self.pids.sort_unstable();
        Ok(())
    }

    /// Scan every process into `out` (cleared first), sorted by pid.
    pub fn scan(&mut self, users: &mut UserNames, out: &mut Vec<RawProc>) -> io::Result<ScanStats> {
        self.generation += 1;
        self.list_pids()?;
        out.clear();
        out.reserve(self.pids.len());
        let mut stats = ScanStats::default();
        let pids = std::mem::take(&mut self.pids);
        for &pid in &pids {
            match self.read_one(pid) {
                Read::Same(f, owner) => {
                    if let Some(p) = self.update_known(pid, f, owner, users) {
                        out.push(p);
                    }
                }
                Read::New(f, owner, fd) => {
                    stats.new += 1;
                    match self.add_new(pid, f, owner, fd, users) {
                        Some(p) => out.push(p),
                        None => stats.skipped += 1,
                    }
                }
                Read::Skip => stats.skipped += 1,
            }
        }
        self.pids = pids;
        let generation = self.generation;
        let held = &mut self.held;
        self.entries.retain(|_, e| {
            let keep = e.seen == generation;
            if !keep {
                *held -= e.held_fds();
            }
            keep
        });
        self.entries.merge_added();
        stats.held_fds = self.held as u64;
        Ok(stats)
    }

    fn read_one(&mut self, pid: u32) -> Read {
        if let Some(e) = self.entries.get(&pid)
            && let Some(fd) = &e.fd
        {
            let start = e.start_ticks;
            if read_at_start(fd, &mut self.stat_buf).is_ok()
                && let Some(f) = parse_stat(&self.stat_buf)
                && f.start_ticks == start
                && let Ok(st) = rustix::fs::fstat(fd)
            {
                return Read::Same(f, st.st_uid);
            }
            // The process behind the descriptor is gone; the pid may be someone new.
            self.drop_entry(pid);
        }
        let Ok(fd) = rustix::fs::openat(
            &self.root,
            PidPath::new(pid, "stat").as_bytes(),
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        ) else {
            return Read::Skip;
        };
        let (Ok(()), Ok(st)) = (
            read_at_start(&fd, &mut self.stat_buf),
            rustix::fs::fstat(&fd),
        ) else {
            return Read::Skip;
        };
        let Some(f) = parse_stat(&self.stat_buf) else {
            return Read::Skip;
        };
        match self.entries.get(&pid) {
            Some(e) if e.start_ticks == f.start_ticks => Read::Same(f, st.st_uid),
            _ => {
                self.drop_entry(pid);
                Read::New(f, st.st_uid, Some(fd))
            }
        }
    }

    fn drop_entry(&mut self, pid: u32) {
        if let Some(e) = self.entries.remove(&pid) {
            self.held -= e.held_fds();
        }
    }

    /// Resident pages from `statm`, through the held descriptor when there is one; a new
    /// process's descriptor is returned for keeping.
    fn read_rss(&mut self, pid: u32, held: Option<&OwnedFd>) -> (Option<u64>, Option<OwnedFd>) {
        let (fd, opened) = match held {
            Some(fd) => (fd, None),
            None => match rustix::fs::openat(
                &self.root,
                PidPath::new(pid, "statm").as_bytes(),
                OFlags::RDONLY | OFlags::CLOEXEC,
                Mode::empty(),
            ) {
                Ok(fd) => {
                    let pages = read_at_start(&fd, &mut self.statm_buf)
                        .ok()
                        .and_then(|()| parse_statm_resident(&self.statm_buf));
                    return (pages, Some(fd));
                }
                Err(_) => return (None, None),
            },
        };
        let pages = read_at_start(fd, &mut self.statm_buf)
            .ok()
            .and_then(|()| parse_statm_resident(&self.statm_buf));
        (pages, opened)
    }

    fn effective_uid(&mut self, pid: u32, owner: u32) -> Option<u32> {
        if self.trust_owner && owner != 0 {
            return Some(owner);
        }
        let fd = rustix::fs::openat(
            &self.root,
            PidPath::new(pid, "status").as_bytes(),
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .ok()?;
        read_at_start(&fd, &mut self.aux_buf).ok()?;
        parse_status_euid(&self.aux_buf)
    }

    fn read_cmdline(&mut self, pid: u32) -> Arc<str> {
        let Ok(fd) = rustix::fs::openat(
            &self.root,
            PidPath::new(pid, "cmdline").as_bytes(),
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        ) else {
            return Arc::from("");
        };
        self.aux_buf.clear();
        self.aux_buf.resize(MAX_CMDLINE, 0);
        let n = rustix::io::pread(fd.as_fd(), &mut self.aux_buf[..], 0).unwrap_or(0);
        Arc::from(format_cmdline(&self.aux_buf[..n]))
    }

    fn add_new(
        &mut self,
        pid: u32,
        f: StatFields,
        owner: u32,
        fd: Option<OwnedFd>,
        users: &mut UserNames,
    ) -> Option<RawProc> {
        let comm_raw: Box<[u8]> = self.stat_buf[f.comm.0..f.comm.1].into();
        let uid = self.effective_uid(pid, owner)?;
        let cmdline = self.read_cmdline(pid);
        let (rss, statm) = self.read_rss(pid, None);
        let mut keep = |fd: Option<OwnedFd>| {
            if self.held < self.fd_budget {
                self.held += usize::from(fd.is_some());
                fd
            } else {
                None
            }
        };
        let fd = keep(fd);
        let statm = keep(statm);
        let e = Entry {
            fd,
            statm,
            exact_rss: rss,
            exact_at: (f.rss_pages, f.cpu_ticks),
            start_ticks: f.start_ticks,
            owner,
            uid,
            user: users.name(uid),
            name: Arc::from(sanitize::clean_bytes(&comm_raw)),
            comm_raw,
            cmdline,
            seen: self.generation,
        };
        let p = raw_proc(pid, &f, rss, &e);
        self.entries.insert(pid, e);
        Some(p)
    }

    fn update_known(
        &mut self,
        pid: u32,
        f: StatFields,
        owner: u32,
        users: &mut UserNames,
    ) -> Option<RawProc> {
        let comm = &self.stat_buf[f.comm.0..f.comm.1];
        let exec_happened = self.entries.get(&pid).map(|e| &*e.comm_raw != comm)?;
        if exec_happened {
            let comm_raw: Box<[u8]> = comm.into();
            let cmdline = self.read_cmdline(pid);
            let e = self.entries.get_mut(&pid)?;
            e.name = Arc::from(sanitize::clean_bytes(&comm_raw));
            e.comm_raw = comm_raw;
            e.cmdline = cmdline;
        }
        let owner_changed = self.entries.get(&pid).map(|e| e.owner != owner)?;
        if owner_changed {
            let uid = self.effective_uid(pid, owner)?;
            let e = self.entries.get_mut(&pid)?;
            e.owner = owner;
            if e.uid != uid {
                e.uid = uid;
                e.user = users.name(uid);
            }
        }
        let generation = self.generation;
        let e = self.entries.get_mut(&pid)?;
        let due = e.exact_rss.is_none()
            || e.exact_at != (f.rss_pages, f.cpu_ticks)
            || (generation + u64::from(pid)).is_multiple_of(STATM_EVERY);
        if due {
            let statm = e.statm.take();
            let (rss, opened) = self.read_rss(pid, statm.as_ref());
            let held = &mut self.held;
            let e = self.entries.get_mut(&pid)?;
            e.statm = statm;
            if let Some(fd) = opened
                && *held < self.fd_budget
            {
                e.statm = Some(fd);
                *held += 1;
            }
            e.exact_rss = rss;
            e.exact_at = (f.rss_pages, f.cpu_ticks);
        }
        let e = self.entries.get_mut(&pid)?;
        e.seen = self.generation;
        Some(raw_proc(pid, &f, e.exact_rss, e))
    }

    /// Re-read the command lines of the given processes (those on screen), since a process may
    /// rewrite its arguments without exec'ing.
    pub fn refresh_cmdlines(&mut self, pids: &[u32]) {
        for &pid in pids {
            if self.entries.contains_key(&pid) {
                let c = self.read_cmdline(pid);
                if let Some(e) = self.entries.get_mut(&pid) {
                    e.cmdline = c;
                }
            }
        }
    }
}

/// "PID/leaf" on the stack: paths are built for every new process and must not allocate.
struct PidPath {
    buf: [u8; 32],
    len: usize,
}

impl PidPath {
    fn new(pid: u32, leaf: &str) -> Self {
        let mut p = PidPath {
            buf: [0; 32],
            len: 0,
        };
        let mut num = itoa::Buffer::new();
        for part in [num.format(pid).as_bytes(), b"/", leaf.as_bytes()] {
            p.buf[p.len..p.len + part.len()].copy_from_slice(part);
            p.len += part.len();
        }
        p
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Entry {
    fn held_fds(&self) -> usize {
        usize::from(self.fd.is_some()) + usize::from(self.statm.is_some())
    }
}

fn raw_proc(pid: u32, f: &StatFields, rss_pages: Option<u64>, e: &Entry) -> RawProc {
    RawProc {
        pid,
        ppid: f.ppid,
        uid: e.uid,
        user: e.user.clone(),
        name: e.name.clone(),
        cmdline: e.cmdline.clone(),
        state: f.state,
        cpu_ticks: f.cpu_ticks,
        child_ticks: f.child_ticks,
        rss_pages: rss_pages.unwrap_or(f.rss_pages),
        pss: None,
        threads: f.threads,
        start_ticks: f.start_ticks,
    }
}

/// How many per-process descriptors may be held open: the soft RLIMIT_NOFILE is raised to the
/// hard limit, and a reserve is kept for everything else the program opens.
pub fn descriptor_budget() -> usize {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    const RESERVE: u64 = 256;
    const CAP: u64 = 1 << 17;
    let lim = getrlimit(Resource::Nofile);
    let mut soft = lim.current.unwrap_or(CAP);
    if let Some(hard) = lim.maximum
        && hard > soft
    {
        let raised = Rlimit {
            current: Some(hard.min(CAP + RESERVE)),
            maximum: lim.maximum,
        };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            soft = raised.current.unwrap_or(soft);
        }
    }
    soft.saturating_sub(RESERVE).min(CAP) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &[u8] = b"4242 (we ird) name)) R 1 4242 4242 0 -1 4194560 100 0 0 0 \
        250 50 7 5 20 0 3 0 123456 1000000 2048 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";

    #[test]
    fn parses_fields_after_last_paren() {
        let f = parse_stat(LINE).expect("parses");
        assert_eq!(&LINE[f.comm.0..f.comm.1], b"we ird) name)");
        assert_eq!(f.state, 'R');
        assert_eq!(f.ppid, 1);
        assert_eq!(f.cpu_ticks, 300);
        assert_eq!(f.child_ticks, 12);
        assert_eq!(f.threads, 3);
        assert_eq!(f.start_ticks, 123456);
        assert_eq!(f.rss_pages, 2048);
    }

    #[test]
    fn statm_resident_is_second_field() {
        assert_eq!(
            parse_statm_resident(b"2837 437 326 33 0 181 0\n"),
            Some(437)
        );
        assert_eq!(parse_statm_resident(b"2837"), None);
        assert_eq!(parse_statm_resident(b""), None);
    }

    #[test]
    fn truncated_stat_is_rejected() {
        assert_eq!(parse_stat(b"12 (x) S 1 2 3"), None);
        assert_eq!(parse_stat(b""), None);
        assert_eq!(parse_stat(b"12 )x( S"), None);
    }

    #[test]
    fn status_euid_is_second_uid_field() {
        let s = b"Name:\tsudo\nUmask:\t0022\nUid:\t1000\t0\t0\t0\nGid:\t1000\t1000\t1000\t1000\n";
        assert_eq!(parse_status_euid(s), Some(0));
        assert_eq!(parse_status_euid(b"Name:\tx\n"), None);
    }

    #[test]
    fn cmdline_is_joined_bounded_and_clean() {
        assert_eq!(
            format_cmdline(b"python3\0-c\0print(1)\0"),
            "python3 -c print(1)"
        );
        assert_eq!(format_cmdline(b"a\x1b]0;pwned\x07\0b\0"), "a]0;pwned b");
        let long = vec![b'x'; MAX_CMDLINE * 2];
        assert_eq!(format_cmdline(&long).len(), MAX_CMDLINE);
    }
}
