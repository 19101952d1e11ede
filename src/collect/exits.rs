//! The CPU of every process that exited, from the kernel's taskstats exit records.
//!
//! A process that starts and ends between two samples is never seen in /proc. Its parent's
//! `cutime` receives its CPU when it is reaped, which `derive` uses everywhere, but that cannot
//! say whose it was when the reaper is another user (init, a root `sudo`/`runuser`/cron) or
//! when the parent ignores SIGCHLD. Where sysmon has CAP_NET_ADMIN (root, the daemon's unit),
//! the kernel sends one record per exiting thread over generic netlink, carrying its real uid,
//! thread group and CPU time: exact for every shape.
//!
//! The CPU time is the record's `cpu_run_virtual_total`, the scheduler's runtime in nanoseconds,
//! not `ac_utime + ac_stime`: those are the raw tick samples, which `getrusage` and
//! `/proc/PID/stat` scale to that runtime before reporting. For jobs of tens of milliseconds the
//! samples are biased (measured here: 71 % of what 124 jobs reported of themselves, against
//! 101 % for the runtime). A kernel that leaves the runtime at zero gets the tick samples.
//!
//! BSD process accounting (what atop uses) was the other candidate: it is one file for the whole
//! machine that other tools also claim, and rounds each process's CPU down to 10 ms ticks,
//! which loses a third of a 30 ms job. cgroup v2 `user-UID.slice/cpu.stat` is exact but only
//! covers what logind placed there, not jobs that root-owned parents start for a user.
//!
//! A thread reads the socket as records arrive (so a storm does not overflow its buffer) and
//! sums them per thread group. At a sample, after the /proc scan, the collector drains what is
//! left and takes the groups whose process is gone from that scan: a record is queued before its
//! process leaves /proc, so none is taken too late. Groups whose process still lives (a thread
//! that ended, or a process exiting right now) wait for its end, when together they make its
//! whole CPU. If the kernel dropped records (the socket overflowed), the interval is marked
//! incomplete and `derive` falls back to `cutime` for it.

use std::collections::HashMap;
use std::io;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, poll};
use rustix::net::{
    AddressFamily, RecvFlags, SendFlags, SocketType, netlink, recv, send, socket_with, sockopt,
};

use super::processes::RawProc;

/// What the processes of one thread group that ended since the last sample used.
#[derive(Debug, Clone, PartialEq)]
pub struct ExitedGroup {
    pub tgid: u32,
    /// Real uid, as the kernel records it.
    pub uid: u32,
    /// Filled in by the collector.
    pub user: Arc<str>,
    /// CPU time of every thread of the group whose record arrived, in microseconds.
    pub cpu_us: u64,
}

/// The exit records taken at one sample.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExitLog {
    pub groups: Vec<ExitedGroup>,
    /// False when the kernel reported lost records since the previous sample.
    pub complete: bool,
}

const GENL_ID_CTRL: u16 = 16;
const CTRL_CMD_GETFAMILY: u8 = 3;
const CTRL_ATTR_FAMILY_ID: u16 = 1;
const CTRL_ATTR_FAMILY_NAME: u16 = 2;
const TASKSTATS_CMD_GET: u8 = 1;
const TASKSTATS_CMD_ATTR_REGISTER_CPUMASK: u16 = 3;
const TASKSTATS_TYPE_STATS: u16 = 3;
const TASKSTATS_TYPE_AGGR_PID: u16 = 4;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLA_TYPE_MASK: u16 = 0x3fff;

// Offsets in `struct taskstats` (linux/taskstats.h); ac_tgid arrived in version 12.
const TS_VERSION: usize = 0;
const TS_RUN_VIRTUAL: usize = 72;
const TS_UID: usize = 120;
const TS_UTIME: usize = 152;
const TS_STIME: usize = 160;
const TS_TGID: usize = 368;
const TS_MIN_VERSION: u16 = 12;

/// One exiting thread, as parsed from a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadExit {
    pub tgid: u32,
    pub uid: u32,
    pub cpu_us: u64,
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Netlink attributes (type, payload) in `b`.
fn attrs(mut b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        let len = usize::from(u16_at(b, 0)?);
        let kind = u16_at(b, 2)? & NLA_TYPE_MASK;
        if len < 4 || len > b.len() {
            return None;
        }
        let payload = &b[4..len];
        b = b.get((len + 3) & !3..).unwrap_or(&[]);
        Some((kind, payload))
    })
}

fn parse_stats(s: &[u8]) -> Option<ThreadExit> {
    if u16_at(s, TS_VERSION)? < TS_MIN_VERSION {
        return None;
    }
    let runtime_ns = u64_at(s, TS_RUN_VIRTUAL)?;
    let cpu_us = if runtime_ns > 0 {
        runtime_ns / 1000
    } else {
        u64_at(s, TS_UTIME)?.saturating_add(u64_at(s, TS_STIME)?)
    };
    Some(ThreadExit {
        tgid: u32_at(s, TS_TGID)?,
        uid: u32_at(s, TS_UID)?,
        cpu_us,
    })
}

/// The per-thread exit records in a buffer of netlink messages (one `recv`). Thread-group
/// summaries are skipped: every thread's own record is counted instead.
pub fn parse_messages(mut buf: &[u8], family: u16, out: &mut Vec<ThreadExit>) {
    while let (Some(len), Some(kind)) = (u32_at(buf, 0), u16_at(buf, 4)) {
        let len = len as usize;
        if len < 20 || len > buf.len() {
            return;
        }
        if kind == family {
            for (t, nested) in attrs(&buf[20..len]) {
                if t != TASKSTATS_TYPE_AGGR_PID {
                    continue;
                }
                if let Some(e) = attrs(nested)
                    .find(|(t, _)| *t == TASKSTATS_TYPE_STATS)
                    .and_then(|(_, s)| parse_stats(s))
                {
                    out.push(e);
                }
            }
        }
        buf = buf.get((len + 3) & !3..).unwrap_or(&[]);
    }
}

fn genl_message(kind: u16, flags: u16, cmd: u8, attr_type: u16, value: &[u8]) -> Vec<u8> {
    let attr_len = 4 + value.len();
    let total = 16 + 4 + ((attr_len + 3) & !3);
    let mut m = Vec::with_capacity(total);
    m.extend_from_slice(&(total as u32).to_ne_bytes());
    m.extend_from_slice(&kind.to_ne_bytes());
    m.extend_from_slice(&flags.to_ne_bytes());
    m.extend_from_slice(&1u32.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(&[cmd, 1, 0, 0]);
    m.extend_from_slice(&(attr_len as u16).to_ne_bytes());
    m.extend_from_slice(&attr_type.to_ne_bytes());
    m.extend_from_slice(value);
    m.resize(total, 0);
    m
}

fn request(fd: &OwnedFd, msg: &[u8], buf: &mut [u8]) -> io::Result<usize> {
    send(fd, msg, SendFlags::empty())?;
    let (n, _) = recv(fd, &mut *buf, RecvFlags::empty())?;
    if u16_at(buf, 4) == Some(NLMSG_ERROR) {
        let code = u32_at(buf, 16).map_or(0, |c| c as i32);
        if code != 0 {
            return Err(io::Error::from_raw_os_error(-code));
        }
    }
    Ok(n)
}

#[derive(Default)]
struct Pending {
    groups: HashMap<u32, ExitedGroup>,
    lost: bool,
    parsed: Vec<ThreadExit>,
    buf: Vec<u8>,
}

impl Pending {
    /// Read everything queued on the socket without waiting.
    fn drain(&mut self, fd: &OwnedFd, family: u16) {
        // A netlink read returns one message (a record is about 600 bytes).
        if self.buf.len() < 8192 {
            self.buf.resize(8192, 0);
        }
        loop {
            match recv(fd, &mut self.buf[..], RecvFlags::DONTWAIT) {
                Ok((0, _)) => return,
                Ok((n, _)) => {
                    self.parsed.clear();
                    parse_messages(&self.buf[..n], family, &mut self.parsed);
                    for e in &self.parsed {
                        let g = self.groups.entry(e.tgid).or_insert(ExitedGroup {
                            tgid: e.tgid,
                            uid: e.uid,
                            user: Arc::from(""),
                            cpu_us: 0,
                        });
                        g.cpu_us = g.cpu_us.saturating_add(e.cpu_us);
                    }
                }
                Err(rustix::io::Errno::NOBUFS) => self.lost = true,
                Err(rustix::io::Errno::INTR) => {}
                Err(_) => return,
            }
        }
    }
}

struct Shared {
    fd: OwnedFd,
    family: u16,
    pending: Mutex<Pending>,
    stop: AtomicBool,
}

/// A registered taskstats listener with its reader thread.
pub struct ExitListener {
    shared: Arc<Shared>,
}

impl ExitListener {
    /// Register for exit records on every possible CPU. Fails without CAP_NET_ADMIN, on kernels
    /// without taskstats, or outside the initial network namespace: callers then use `cutime`.
    pub fn open() -> io::Result<Self> {
        let fd = socket_with(
            AddressFamily::NETLINK,
            SocketType::RAW,
            rustix::net::SocketFlags::CLOEXEC,
            Some(netlink::GENERIC),
        )?;
        rustix::net::bind(&fd, &netlink::SocketAddrNetlink::new(0, 0))?;
        // Room for a burst of a few thousand exits while the reader thread is not scheduled.
        if sockopt::set_socket_recv_buffer_size_force(&fd, 4 << 20).is_err() {
            let _ = sockopt::set_socket_recv_buffer_size(&fd, 4 << 20);
        }
        let mut buf = vec![0u8; 8192];
        let n = request(
            &fd,
            &genl_message(
                GENL_ID_CTRL,
                NLM_F_REQUEST,
                CTRL_CMD_GETFAMILY,
                CTRL_ATTR_FAMILY_NAME,
                b"TASKSTATS\0",
            ),
            &mut buf,
        )?;
        let family = buf
            .get(20..n.min(buf.len()))
            .and_then(|b| attrs(b).find(|(t, _)| *t == CTRL_ATTR_FAMILY_ID))
            .and_then(|(_, v)| u16_at(v, 0))
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no taskstats family"))?;
        let cpus = std::fs::read_to_string("/sys/devices/system/cpu/possible")?;
        let mut mask = cpus.trim().as_bytes().to_vec();
        mask.push(0);
        request(
            &fd,
            &genl_message(
                family,
                NLM_F_REQUEST | NLM_F_ACK,
                TASKSTATS_CMD_GET,
                TASKSTATS_CMD_ATTR_REGISTER_CPUMASK,
                &mask,
            ),
            &mut buf,
        )?;
        let shared = Arc::new(Shared {
            fd,
            family,
            pending: Mutex::new(Pending::default()),
            stop: AtomicBool::new(false),
        });
        let reader = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("sysmon-exits".into())
            .stack_size(64 * 1024)
            .spawn(move || read_loop(&reader))?;
        Ok(ExitListener { shared })
    }

    /// The groups whose process is not in `alive` (this sample's scan, sorted by pid). Groups
    /// of living processes stay for a later sample.
    pub fn take(&self, alive: &[RawProc]) -> ExitLog {
        let Ok(mut p) = self.shared.pending.lock() else {
            return ExitLog::default();
        };
        p.drain(&self.shared.fd, self.shared.family);
        let mut groups = Vec::new();
        p.groups.retain(|tgid, g| {
            let lives = alive.binary_search_by_key(tgid, |a| a.pid).is_ok();
            if !lives {
                groups.push(g.clone());
            }
            lives
        });
        groups.sort_unstable_by_key(|g| g.tgid);
        let complete = !std::mem::take(&mut p.lost);
        ExitLog { groups, complete }
    }
}

impl Drop for ExitListener {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
    }
}

fn read_loop(shared: &Shared) {
    while !shared.stop.load(Ordering::Relaxed) {
        let mut fds = [PollFd::new(&shared.fd, PollFlags::IN)];
        let timeout = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 200_000_000,
        };
        if poll(&mut fds, Some(&timeout)).is_ok_and(|n| n > 0) {
            match shared.pending.lock() {
                Ok(mut p) => p.drain(&shared.fd, shared.family),
                Err(_) => return,
            }
            // Let records gather: one wake-up per batch rather than per exit.
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(version: u16, tgid: u32, uid: u32, utime: u64, stime: u64) -> Vec<u8> {
        stats_with_runtime(version, tgid, uid, utime, stime, 0)
    }

    fn stats_with_runtime(
        version: u16,
        tgid: u32,
        uid: u32,
        utime: u64,
        stime: u64,
        runtime_ns: u64,
    ) -> Vec<u8> {
        let mut s = vec![0u8; 416];
        s[TS_VERSION..2].copy_from_slice(&version.to_ne_bytes());
        s[TS_RUN_VIRTUAL..TS_RUN_VIRTUAL + 8].copy_from_slice(&runtime_ns.to_ne_bytes());
        s[TS_UID..TS_UID + 4].copy_from_slice(&uid.to_ne_bytes());
        s[TS_UTIME..TS_UTIME + 8].copy_from_slice(&utime.to_ne_bytes());
        s[TS_STIME..TS_STIME + 8].copy_from_slice(&stime.to_ne_bytes());
        s[TS_TGID..TS_TGID + 4].copy_from_slice(&tgid.to_ne_bytes());
        s
    }

    fn attr(kind: u16, payload: &[u8]) -> Vec<u8> {
        let mut a = Vec::new();
        a.extend_from_slice(&((4 + payload.len()) as u16).to_ne_bytes());
        a.extend_from_slice(&kind.to_ne_bytes());
        a.extend_from_slice(payload);
        while a.len() % 4 != 0 {
            a.push(0);
        }
        a
    }

    fn message(family: u16, attrs: &[Vec<u8>]) -> Vec<u8> {
        let body: Vec<u8> = attrs.concat();
        let len = 20 + body.len();
        let mut m = Vec::new();
        m.extend_from_slice(&(len as u32).to_ne_bytes());
        m.extend_from_slice(&family.to_ne_bytes());
        m.extend_from_slice(&[0; 10]);
        m.extend_from_slice(&[2, 1, 0, 0]);
        m.extend_from_slice(&body);
        m
    }

    #[test]
    fn thread_records_are_parsed_and_group_summaries_skipped() {
        let pid_attr = attr(1, &4242u32.to_ne_bytes());
        let one = message(
            31,
            &[attr(
                TASKSTATS_TYPE_AGGR_PID,
                &[
                    pid_attr.clone(),
                    attr(3, &stats(13, 4242, 1001, 20_000, 5_000)),
                ]
                .concat(),
            )],
        );
        // A multi-threaded group's last thread: its own record and the group summary.
        let two = message(
            31,
            &[
                attr(
                    TASKSTATS_TYPE_AGGR_PID,
                    &[pid_attr, attr(3, &stats(13, 77, 0, 1_000, 0))].concat(),
                ),
                attr(
                    5,
                    &[
                        attr(2, &77u32.to_ne_bytes()),
                        attr(3, &stats(13, 77, 0, 9_999, 9_999)),
                    ]
                    .concat(),
                ),
            ],
        );
        let other_family = message(32, &[attr(4, &attr(3, &stats(13, 1, 1, 1, 1)))]);
        let old_kernel = message(31, &[attr(4, &attr(3, &stats(11, 5, 5, 5, 5)))]);
        let buf = [one, two, other_family, old_kernel].concat();
        let mut out = Vec::new();
        parse_messages(&buf, 31, &mut out);
        assert_eq!(
            out,
            vec![
                ThreadExit {
                    tgid: 4242,
                    uid: 1001,
                    cpu_us: 25_000
                },
                ThreadExit {
                    tgid: 77,
                    uid: 0,
                    cpu_us: 1_000
                },
            ]
        );
    }

    #[test]
    fn the_schedulers_runtime_is_preferred_to_the_tick_samples() {
        // 31.4 ms of runtime that the ticks sampled as 20 ms.
        let m = message(
            31,
            &[attr(
                TASKSTATS_TYPE_AGGR_PID,
                &attr(
                    3,
                    &stats_with_runtime(13, 9, 1001, 16_000, 4_000, 31_400_123),
                ),
            )],
        );
        let mut out = Vec::new();
        parse_messages(&m, 31, &mut out);
        assert_eq!(
            out,
            vec![ThreadExit {
                tgid: 9,
                uid: 1001,
                cpu_us: 31_400
            }]
        );
    }

    #[test]
    fn truncated_messages_stop_parsing_without_panic() {
        let m = message(31, &[attr(4, &attr(3, &stats(13, 9, 9, 9, 9)))]);
        for cut in 0..m.len() {
            let mut out = Vec::new();
            parse_messages(&m[..cut], 31, &mut out);
            assert!(out.is_empty(), "cut at {cut}");
        }
        let mut out = Vec::new();
        let mut bad = m.clone();
        bad[0..4].copy_from_slice(&3u32.to_ne_bytes());
        parse_messages(&bad, 31, &mut out);
        assert!(out.is_empty());
    }
}
