//! One daemon per database.
//!
//! Two daemons writing the same history would double every sample and fight over alerts, so the
//! daemon holds an exclusive `flock` on `<database>.lock` for its whole life, with its pid
//! written inside for the second one's error message and for `sysmon status`. The kernel drops
//! the lock when the process dies, however it dies, so there is never a stale lock to clean up.

use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, flock};

pub struct InstanceLock {
    _file: std::fs::File,
    path: PathBuf,
}

#[derive(Debug)]
pub enum LockError {
    /// Another daemon holds the lock; its pid if it could be read.
    Held(Option<u32>),
    Io(io::Error),
}

pub fn lock_path(db: &Path) -> PathBuf {
    let mut name = db.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    db.with_file_name(name)
}

fn open(path: &Path) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .open(path)
}

fn read_pid(file: &mut std::fs::File) -> Option<u32> {
    let mut s = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut s).ok()?;
    s.trim().parse().ok()
}

impl InstanceLock {
    pub fn acquire(db: &Path) -> Result<InstanceLock, LockError> {
        let path = lock_path(db);
        let mut file = open(&path).map_err(LockError::Io)?;
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => return Err(LockError::Held(read_pid(&mut file))),
            Err(e) => return Err(LockError::Io(e.into())),
        }
        file.set_len(0).map_err(LockError::Io)?;
        file.rewind().map_err(LockError::Io)?;
        writeln!(file, "{}", std::process::id()).map_err(LockError::Io)?;
        Ok(InstanceLock { _file: file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The pid of the daemon using `db`, if one is running.
pub fn running_daemon(db: &Path) -> Option<u32> {
    let path = lock_path(db);
    let mut file = std::fs::File::open(&path).ok()?;
    match flock(&file, FlockOperation::NonBlockingLockShared) {
        Ok(()) => None,
        Err(_) => read_pid(&mut file),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_is_refused_with_the_pid() {
        let dir = tempfile::tempdir().expect("tmp");
        let db = dir.path().join("s.db");
        let first = InstanceLock::acquire(&db).expect("first");
        assert_eq!(first.path(), dir.path().join("s.db.lock"));
        match InstanceLock::acquire(&db) {
            Err(LockError::Held(pid)) => assert_eq!(pid, Some(std::process::id())),
            other => panic!("expected Held, got {:?}", other.map(|_| ())),
        }
        assert_eq!(running_daemon(&db), Some(std::process::id()));
        drop(first);
        assert_eq!(running_daemon(&db), None);
        assert!(InstanceLock::acquire(&db).is_ok());
    }
}
