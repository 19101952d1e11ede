//! The history store: one SQLite file shared by the daemon, every TUI and the CLI.
//!
//! Why SQLite in WAL mode: the daemon writes one transaction per sample while other processes
//! (a TUI looking back in time, `sysmon alerts ack`, `sysmon history`) read and occasionally
//! write the same file. WAL lets readers run during a write, `busy_timeout` makes the rare
//! write/write collision wait instead of fail, and a transaction per sample means a crash loses at
//! most the sample being written: the alert changes, the mails about them (the outbox) and the
//! tracker state of a sample are committed together or not at all, so a restart loses no
//! notification and queues none twice. Delivery is exactly once except for a crash in the few
//! milliseconds between the mail server accepting a message (its reply to the end of DATA) and
//! the commit that marks it sent; that mail then goes out again with the same Message-ID.
//!
//! The file is laid out for its two very different workloads (see `schema.rs`): raw samples are
//! appended every few seconds and kept 48 hours in compact rows (integer hundredths instead of
//! floats, interned process commands, a varint blob for each user's top processes), while long
//! ranges are answered from 1-minute and 1-hour rollups that `run_retention` computes before it
//! deletes what they summarise. The per-user raw rows, by far the bulk, are packed a few minutes
//! after each 15-minute window ends (`compact`, `block`), to about a fifth of their size.
//!
//! Units on disk: timestamps are milliseconds since the epoch; percentages and load averages are
//! integer hundredths (`9312` = 93.12 %); memory is KiB; rates are bytes per second. The public
//! types convert back to the model's units (percent as `f64`, bytes), so callers never see them.
//!
//! Modules by job: `schema` (migrations), `record` (the per-sample write), `alerts` (the alert
//! table, operator actions), `history` (range queries, time travel), `retention` (rollups and
//! deletion), `outbox` (the mail queue), `codec` (the top-process blob), `compact` and `block`
//! (packing old per-user rows), `series` (aggregation shared by rollups and queries).

mod alerts;
mod block;
mod codec;
mod compact;
mod gpu_block;
mod history;
mod outbox;
mod record;
mod retention;
mod schema;
mod series;

#[cfg(test)]
mod tests;

use std::cell::Cell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::model::Timestamp;

pub use alerts::{ActionKind, OperatorAction, StoredAlert};
pub use history::{
    Agg, AlertMark, DiskPoint, GpuPoint, GpuSeries, GpuTotal, History, HistoryQuery,
    MINUTE_MAX_SPAN_MS, RAW_MAX_SPAN_MS, RecordedGpu, RecordedState, RecordedSystem, RecordedUser,
    RecordedUserDevice, RecordedUserGpu, Resolution, SystemPoint, UserGpuPoint, UserPoint,
    history_query,
};
pub use record::{MAX_TOP_PROCESSES, PendingMail, Record, RecordOutcome, worth_recording};
pub use retention::RetentionReport;

/// Raw samples are kept this long; older data lives on in the rollups.
pub const RAW_RETENTION_MS: i64 = 48 * 3_600_000;
/// 1-hour rollups are kept this long.
pub const HOUR_RETENTION_MS: i64 = 365 * 86_400_000;
/// A user below both figures (percent of the machine) who is not tracked is not recorded: on a
/// shared server most accounts idle, and a row for each of them every sample would be most of
/// the file. In history such a user counts as zero.
pub const TRIVIAL_PERCENT: f64 = 0.5;

const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// The WAL is truncated back to this size after a checkpoint, so one big retention run does not
/// leave a large `-wal` file behind for good.
const JOURNAL_SIZE_LIMIT: i64 = 16 << 20;

/// What went wrong, with what the store was doing at the time.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the database directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot create the database {path}: {source}")]
    CreateFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "the database {path} has schema version {found}, newer than this sysmon understands \
         ({supported}); use a newer sysmon or another database file"
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error("{context}: {source}")]
    Sqlite {
        context: &'static str,
        source: rusqlite::Error,
    },
    #[error("{context}: {source}")]
    Json {
        context: &'static str,
        source: serde_json::Error,
    },
    /// A value in the file that this version cannot interpret (hand-edited or damaged file).
    #[error("unexpected data in the database ({what}): {value}")]
    Corrupt { what: &'static str, value: String },
}

impl StoreError {
    fn sqlite_code(&self) -> Option<ErrorCode> {
        match self {
            StoreError::Open { source, .. } | StoreError::Sqlite { source, .. } => {
                source.sqlite_error_code()
            }
            _ => None,
        }
    }

    /// The disk (or the file system's quota) is full: the caller should keep the data in memory
    /// and try again later.
    pub fn is_disk_full(&self) -> bool {
        match self {
            StoreError::CreateDir { source, .. } | StoreError::CreateFile { source, .. } => {
                source.kind() == std::io::ErrorKind::StorageFull
            }
            _ => self.sqlite_code() == Some(ErrorCode::DiskFull),
        }
    }

    /// Restarting cannot fix it: the file is from a newer sysmon, is not a SQLite database, is
    /// damaged, or cannot be opened, read or written by this user. A daemon exits 2 on it, so that systemd
    /// (`RestartPreventExitStatus=2`) does not restart it in a loop.
    pub fn is_permanent(&self) -> bool {
        match self {
            StoreError::NewerSchema { .. } => true,
            _ => {
                self.is_read_only()
                    || self.is_corrupt()
                    || self.sqlite_code() == Some(ErrorCode::NotADatabase)
            }
        }
    }

    /// The file is damaged: SQLite found a malformed page, or a value this version cannot
    /// interpret.
    pub fn is_corrupt(&self) -> bool {
        matches!(self, StoreError::Corrupt { .. })
            || self.sqlite_code() == Some(ErrorCode::DatabaseCorrupt)
    }

    /// Another connection held a lock for longer than the busy timeout.
    pub fn is_busy(&self) -> bool {
        matches!(
            self.sqlite_code(),
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
        )
    }

    /// The file or its directory cannot be written (permissions, read-only mount).
    pub fn is_read_only(&self) -> bool {
        match self {
            StoreError::CreateDir { source, .. } | StoreError::CreateFile { source, .. } => {
                matches!(
                    source.kind(),
                    std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
                )
            }
            _ => matches!(
                self.sqlite_code(),
                Some(ErrorCode::ReadOnly | ErrorCode::PermissionDenied | ErrorCode::CannotOpen)
            ),
        }
    }
}

/// Adds what the store was doing to a rusqlite error.
trait Context<T> {
    fn ctx(self, context: &'static str) -> Result<T, StoreError>;
}

impl<T> Context<T> for Result<T, rusqlite::Error> {
    fn ctx(self, context: &'static str) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Sqlite { context, source })
    }
}

impl<T> Context<T> for Result<T, serde_json::Error> {
    fn ctx(self, context: &'static str) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Json { context, source })
    }
}

/// Run a prepared query and read every row as a tuple of its columns.
fn rows<T, P>(
    stmt: &mut rusqlite::Statement<'_>,
    params: P,
    context: &'static str,
) -> Result<Vec<T>, StoreError>
where
    P: rusqlite::Params,
    T: for<'r> TryFrom<&'r rusqlite::Row<'r>, Error = rusqlite::Error>,
{
    stmt.query_map(params, |r| T::try_from(r))
        .ctx(context)?
        .collect::<Result<Vec<T>, _>>()
        .ctx(context)
}

/// Figures for `sysmon status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoreStats {
    pub path: PathBuf,
    /// The main file.
    pub db_bytes: u64,
    /// The write-ahead log beside it (not yet checkpointed writes).
    pub wal_bytes: u64,
    pub schema_version: i64,
    pub last_sample: Option<Timestamp>,
    /// Raw samples currently kept.
    pub samples: u64,
    /// Open and acknowledged alerts.
    pub open_alerts: u64,
    /// Mails not yet accepted by the server.
    pub outbox_backlog: u64,
}

/// An open database. One per thread: the connection is not shared.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// Interned ids, so a sample costs no look-ups for users and commands seen before. Only
    /// committed ids are kept here (see `record`).
    user_ids: HashMap<(u32, String), i64>,
    /// (name, cmdline) -> (id, the `last_seen` last written for it).
    command_ids: HashMap<(String, String), (i64, i64)>,
    /// GPU UUID -> (id, the identity last written for it).
    gpu_ids: HashMap<Arc<str>, (i64, record::GpuIdentity)>,
    /// The highest operator-action cursor this connection handed out; saved with the tracker
    /// state so that a restarted daemon resumes after the actions its state already reflects.
    handed_out_cursor: Cell<i64>,
    /// `record` tries compaction again when a sample at or after this time is written (once per
    /// window, see `compact.rs`).
    compact_due: i64,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (creating it and its directory if needed) and migrates the database.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        create_parent(path)?;
        create_file(path)?;
        let open_err = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = Connection::open_with_flags(path, flags).map_err(open_err)?;
        configure(&conn).map_err(open_err)?;
        schema::migrate(&mut conn, path)?;
        Ok(Store {
            conn,
            path: path.to_path_buf(),
            user_ids: HashMap::new(),
            command_ids: HashMap::new(),
            gpu_ids: HashMap::new(),
            handed_out_cursor: Cell::new(0),
            compact_due: i64::MIN,
        })
    }

    /// How long a write waits for another process's lock before failing with "busy". The
    /// daemon's sampling connection waits briefly and buffers instead of stalling a tick.
    pub fn set_busy_timeout(&self, wait: std::time::Duration) -> Result<(), StoreError> {
        self.conn.busy_timeout(wait).ctx("setting the busy timeout")
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn stats(&self) -> Result<StoreStats, StoreError> {
        let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        let count = |sql: &str| -> Result<u64, StoreError> {
            let n: i64 = self
                .conn
                .query_row(sql, [], |r| r.get(0))
                .ctx("counting rows for the status")?;
            Ok(n.max(0) as u64)
        };
        Ok(StoreStats {
            path: self.path.clone(),
            db_bytes: size(&self.path),
            wal_bytes: size(Path::new(&wal)),
            schema_version: schema::current_version(&self.conn)?,
            last_sample: self.last_sample_time()?,
            samples: count("SELECT COUNT(*) FROM samples")?,
            open_alerts: count("SELECT COUNT(*) FROM alerts WHERE status != 'resolved'")?,
            outbox_backlog: count("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL")?,
        })
    }

    /// `PRAGMA integrity_check`: "ok", or SQLite's list of problems, one per line.
    pub fn integrity_check(&self) -> Result<String, StoreError> {
        let mut stmt = self
            .conn
            .prepare("PRAGMA integrity_check")
            .ctx("checking the database's integrity")?;
        let lines = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .ctx("checking the database's integrity")?
            .collect::<Result<Vec<_>, _>>()
            .ctx("checking the database's integrity")?;
        Ok(lines.join("\n"))
    }

    /// `PRAGMA quick_check`: None when the file is sound, else SQLite's first few problems on
    /// one line. It reads every page (0.3 s for a 130 MB file in the page cache on the 2-core
    /// development VM) but, unlike
    /// `integrity_check`, does not compare indexes with their tables. A file too damaged for the
    /// check to run at all counts as damaged.
    pub fn quick_check(&self) -> Result<Option<String>, StoreError> {
        const SHOWN: usize = 3;
        let run = || -> rusqlite::Result<Vec<String>> {
            let mut stmt = self.conn.prepare("PRAGMA quick_check(20)")?;
            stmt.query_map([], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()
        };
        match run() {
            Ok(lines) if lines.len() == 1 && lines[0] == "ok" => Ok(None),
            Ok(lines) => {
                let mut shown = lines
                    .iter()
                    .take(SHOWN)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; ");
                if lines.len() > SHOWN {
                    shown.push_str(&format!("; and {} more", lines.len() - SHOWN));
                }
                Ok(Some(shown))
            }
            Err(e) => {
                let e = StoreError::Sqlite {
                    context: "checking the database",
                    source: e,
                };
                if e.is_corrupt() {
                    Ok(Some(e.to_string()))
                } else {
                    Err(e)
                }
            }
        }
    }

    /// The time of the newest raw sample.
    pub fn last_sample_time(&self) -> Result<Option<Timestamp>, StoreError> {
        self.conn
            .query_row("SELECT MAX(at) FROM samples", [], |r| {
                r.get::<_, Option<i64>>(0)
            })
            .optional()
            .ctx("reading the last sample time")
            .map(|t| t.flatten().map(Timestamp))
    }
}

/// Creates the database's directory, private to its owner, when it does not exist yet.
fn create_parent(path: &Path) -> Result<(), StoreError> {
    let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(());
    };
    if dir.is_dir() {
        return Ok(());
    }
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| StoreError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })
}

/// Creates an empty database file (a valid empty SQLite database) readable and writable by its
/// owner and group as the umask allows, never by others. SQLite would create it 0644: readable
/// by every user of the machine, and the file holds every user's command lines. Its WAL and
/// shared-memory files take the database file's mode, so under a umask of 0007 an admin group
/// shares all three (README: sharing the database), under systemd's 0077 they stay private.
fn create_file(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o660)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        // Not ours to create (a read-only place, a reader without write access): opening it
        // says what is wrong, or works when the file is there to read.
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied && path.exists() => Ok(()),
        Err(source) => Err(StoreError::CreateFile {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // auto_vacuum can only be chosen before the first table exists: a new file gets incremental
    // vacuum so that retention can hand freed pages back to the file system.
    let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    if pages == 0 {
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
    }
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
            Some(format!(
                "cannot switch to WAL mode (journal mode is {mode})"
            )),
        ));
    }
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "journal_size_limit", JOURNAL_SIZE_LIMIT)?;
    Ok(())
}

/// Percent (or load average) to the integer hundredths stored on disk. Saturates; NaN is 0.
fn hundredths(v: f64) -> i64 {
    (v * 100.0).round() as i64
}

fn from_hundredths(v: i64) -> f64 {
    v as f64 / 100.0
}

/// Bytes to the KiB stored on disk (resident memory is counted in pages, so nothing is lost).
fn kib(bytes: u64) -> i64 {
    i64::try_from(bytes.saturating_add(512) / 1024).unwrap_or(i64::MAX)
}

fn bytes_from_kib(k: i64) -> u64 {
    (k.max(0) as u64).saturating_mul(1024)
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The start of the bucket of `size_ms` that contains `at`.
fn bucket_start(at: i64, size_ms: i64) -> i64 {
    at - at.rem_euclid(size_ms)
}
