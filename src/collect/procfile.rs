//! A /proc file kept open and re-read in place.
//!
//! procfs regenerates a file's contents whenever it is read from offset 0, so one descriptor can
//! serve every refresh: `pread` at 0 instead of open + read + close saves a path lookup and two
//! syscalls per file per refresh, which for thousands of processes is most of a monitor's cost.

use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::buffer::spare_capacity;
use rustix::fs::{Mode, OFlags};

/// Read the whole file behind `fd` from offset 0 into `buf` (cleared first).
///
/// A read that does not fill the buffer has reached the end: procfs (seq_file) hands out the
/// whole remaining text up to the size asked for, as regular files do, so there is no second
/// syscall just to see end-of-file.
pub fn read_at_start(fd: &OwnedFd, buf: &mut Vec<u8>) -> io::Result<()> {
    buf.clear();
    if buf.capacity() < 4096 {
        buf.reserve(4096);
    }
    loop {
        if buf.capacity() == buf.len() {
            buf.reserve(buf.len().max(4096));
        }
        let offset = buf.len() as u64;
        let room = buf.capacity() - buf.len();
        let n = rustix::io::pread(fd, spare_capacity(buf), offset)?;
        if n < room {
            return Ok(());
        }
    }
}

pub fn open_read_only(path: &Path) -> io::Result<OwnedFd> {
    Ok(rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// A file read once per refresh. Opened on first use and reopened once if a read fails (a fixture
/// replaced it, or the descriptor went stale).
pub struct ProcFile {
    path: PathBuf,
    fd: Option<OwnedFd>,
}

impl ProcFile {
    pub fn new(path: PathBuf) -> Self {
        ProcFile { path, fd: None }
    }

    pub fn read(&mut self, buf: &mut Vec<u8>) -> io::Result<()> {
        if let Some(fd) = &self.fd
            && read_at_start(fd, buf).is_ok()
        {
            return Ok(());
        }
        let fd = open_read_only(&self.path)?;
        let result = read_at_start(&fd, buf);
        self.fd = Some(fd);
        result
    }
}
