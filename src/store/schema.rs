//! The schema and its migrations.
//!
//! Why numbered, forward-only migrations in a `schema_version` table: the file outlives the
//! binary (a package upgrade restarts the daemon on last week's database), and several processes
//! open it. Each migration runs in its own IMMEDIATE transaction that re-reads the version first,
//! so two processes opening a new file at once apply it once; a file written by a newer sysmon is
//! refused with a clear error rather than misread.
//!
//! Layout, and why (sizes are what a 5 s interval with 50 busy users costs, see the budget test):
//! - `samples`: one row per sample (the system figures). `at` is unique: a sample is recorded
//!   once, and a retried write of the same sample is recognised. Its disk figures are a
//!   reference to `disk_sets` (v3), which holds each distinct set once.
//! - `user_samples`: the recent ("hot") per-user rows: one row per recorded user per sample,
//!   keyed by (sample, user) WITHOUT ROWID so rows are appended in key order (a sample touches
//!   one or two pages, not one per user) and the key is the only index. Figures are integers;
//!   the top processes are a varint blob (`codec.rs`) that refers to `commands`, because
//!   repeating each command line every few seconds would be most of the file.
//! - `user_blocks` (v2): the same rows once their 15-minute window is complete, packed per window
//!   column by column (`compact.rs`, `block.rs`): ~90 bytes per user and sample as hot rows,
//!   a small fraction of that packed.
//! - `users`, `commands`: interned names, AUTOINCREMENT so an id is never reused for something
//!   else after retention deletes an unused command.
//! - `system_1m`, `system_1h`, `user_1m`, `user_1h`: rollups with min/avg/max per figure and the
//!   number of samples they summarise. A user row exists only for buckets where the user was
//!   recorded at least once; its averages count the samples where they were not as zero.
//! - `alerts`: one row per occurrence; a partial unique index allows one row that is not
//!   resolved per key, which is the tracker's own rule made durable.
//! - `operator_actions`: acknowledgements and resolutions by operators, in order, so the daemon
//!   can apply each exactly once (AUTOINCREMENT: a cursor never points at a reused number).
//! - `episodes`: persistent-user episodes.
//! - `outbox`: mails, written in the same transaction as the alert they are about.
//! - `tracker_state`: the tracker's state as JSON, one row.
//! - `meta`: rollup watermarks.
//! - `gpu_devices`, `gpu_samples`, `user_gpu_samples` and their rollups (v4): see [`V4`].
//! - `gpu_blocks` (v5): the GPUs' raw rows packed per window, see [`V5`].

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use super::{Context, StoreError};
use crate::model::Timestamp;

/// A step of a migration that SQL alone cannot do, run in the migration's transaction.
type Convert = fn(&Transaction<'_>) -> Result<u64, StoreError>;

/// (version, SQL, conversion after the SQL). Append only: never edit a migration that has
/// shipped.
const MIGRATIONS: &[(i64, &str, Option<Convert>)] = &[
    (1, V1, None),
    (2, V2, Some(super::compact::compact)),
    (3, V3, None),
    (4, V4, None),
    (5, V5, Some(super::compact::pack_gpu_rows)),
];

pub(super) const LATEST: i64 = 5;

const V1: &str = "
CREATE TABLE samples (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL UNIQUE,
    interval_ms INTEGER NOT NULL,
    cpu INTEGER NOT NULL,
    iowait INTEGER NOT NULL,
    memory INTEGER NOT NULL,
    swap INTEGER NOT NULL,
    mem_used_kib INTEGER NOT NULL,
    mem_total_kib INTEGER NOT NULL,
    load1 INTEGER NOT NULL,
    load5 INTEGER NOT NULL,
    load15 INTEGER NOT NULL,
    net_rx INTEGER NOT NULL,
    net_tx INTEGER NOT NULL,
    disk_read INTEGER NOT NULL,
    disk_write INTEGER NOT NULL,
    processes INTEGER NOT NULL,
    threads INTEGER NOT NULL,
    cores INTEGER NOT NULL,
    disks TEXT
);

CREATE TABLE users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uid INTEGER NOT NULL,
    name TEXT NOT NULL,
    UNIQUE (name, uid)
);

CREATE TABLE commands (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    cmdline TEXT NOT NULL,
    last_seen INTEGER NOT NULL,
    UNIQUE (name, cmdline)
);
CREATE INDEX commands_last_seen ON commands (last_seen);

CREATE TABLE user_samples (
    sample_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    cpu INTEGER NOT NULL,
    memory INTEGER NOT NULL,
    mem_kib INTEGER NOT NULL,
    processes INTEGER NOT NULL,
    tracked INTEGER NOT NULL,
    top BLOB,
    PRIMARY KEY (sample_id, user_id)
) WITHOUT ROWID;

CREATE TABLE system_1m (
    bucket INTEGER PRIMARY KEY,
    samples INTEGER NOT NULL,
    cpu_min INTEGER NOT NULL, cpu_avg INTEGER NOT NULL, cpu_max INTEGER NOT NULL,
    memory_min INTEGER NOT NULL, memory_avg INTEGER NOT NULL, memory_max INTEGER NOT NULL,
    swap_min INTEGER NOT NULL, swap_avg INTEGER NOT NULL, swap_max INTEGER NOT NULL,
    load1_min INTEGER NOT NULL, load1_avg INTEGER NOT NULL, load1_max INTEGER NOT NULL,
    net_rx_min INTEGER NOT NULL, net_rx_avg INTEGER NOT NULL, net_rx_max INTEGER NOT NULL,
    net_tx_min INTEGER NOT NULL, net_tx_avg INTEGER NOT NULL, net_tx_max INTEGER NOT NULL,
    disk_read_min INTEGER NOT NULL, disk_read_avg INTEGER NOT NULL, disk_read_max INTEGER NOT NULL,
    disk_write_min INTEGER NOT NULL, disk_write_avg INTEGER NOT NULL, disk_write_max INTEGER NOT NULL
);

CREATE TABLE system_1h (
    bucket INTEGER PRIMARY KEY,
    samples INTEGER NOT NULL,
    cpu_min INTEGER NOT NULL, cpu_avg INTEGER NOT NULL, cpu_max INTEGER NOT NULL,
    memory_min INTEGER NOT NULL, memory_avg INTEGER NOT NULL, memory_max INTEGER NOT NULL,
    swap_min INTEGER NOT NULL, swap_avg INTEGER NOT NULL, swap_max INTEGER NOT NULL,
    load1_min INTEGER NOT NULL, load1_avg INTEGER NOT NULL, load1_max INTEGER NOT NULL,
    net_rx_min INTEGER NOT NULL, net_rx_avg INTEGER NOT NULL, net_rx_max INTEGER NOT NULL,
    net_tx_min INTEGER NOT NULL, net_tx_avg INTEGER NOT NULL, net_tx_max INTEGER NOT NULL,
    disk_read_min INTEGER NOT NULL, disk_read_avg INTEGER NOT NULL, disk_read_max INTEGER NOT NULL,
    disk_write_min INTEGER NOT NULL, disk_write_avg INTEGER NOT NULL, disk_write_max INTEGER NOT NULL
);

CREATE TABLE user_1m (
    user_id INTEGER NOT NULL,
    bucket INTEGER NOT NULL,
    samples INTEGER NOT NULL,
    present INTEGER NOT NULL,
    cpu_min INTEGER NOT NULL, cpu_avg INTEGER NOT NULL, cpu_max INTEGER NOT NULL,
    memory_min INTEGER NOT NULL, memory_avg INTEGER NOT NULL, memory_max INTEGER NOT NULL,
    mem_kib_min INTEGER NOT NULL, mem_kib_avg INTEGER NOT NULL, mem_kib_max INTEGER NOT NULL,
    processes_min INTEGER NOT NULL, processes_avg INTEGER NOT NULL, processes_max INTEGER NOT NULL,
    PRIMARY KEY (user_id, bucket)
) WITHOUT ROWID;

CREATE TABLE user_1h (
    user_id INTEGER NOT NULL,
    bucket INTEGER NOT NULL,
    samples INTEGER NOT NULL,
    present INTEGER NOT NULL,
    cpu_min INTEGER NOT NULL, cpu_avg INTEGER NOT NULL, cpu_max INTEGER NOT NULL,
    memory_min INTEGER NOT NULL, memory_avg INTEGER NOT NULL, memory_max INTEGER NOT NULL,
    mem_kib_min INTEGER NOT NULL, mem_kib_avg INTEGER NOT NULL, mem_kib_max INTEGER NOT NULL,
    processes_min INTEGER NOT NULL, processes_avg INTEGER NOT NULL, processes_max INTEGER NOT NULL,
    PRIMARY KEY (user_id, bucket)
) WITHOUT ROWID;

CREATE TABLE alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    metric TEXT NOT NULL,
    severity TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'acknowledged', 'resolved')),
    opened_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    last_notified_at INTEGER NOT NULL,
    resolved_at INTEGER,
    acknowledged_at INTEGER,
    acknowledged_by TEXT,
    resolved_by TEXT,
    value REAL NOT NULL,
    threshold REAL NOT NULL,
    peak REAL NOT NULL,
    message TEXT NOT NULL,
    details TEXT NOT NULL
);
CREATE UNIQUE INDEX alerts_one_open ON alerts (kind, subject, metric)
    WHERE status != 'resolved';
CREATE INDEX alerts_key ON alerts (kind, subject, metric, id);
CREATE INDEX alerts_opened ON alerts (opened_at);
CREATE INDEX alerts_resolved ON alerts (resolved_at) WHERE resolved_at IS NOT NULL;

CREATE TABLE operator_actions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    metric TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('ack', 'resolve')),
    at INTEGER NOT NULL,
    by TEXT NOT NULL
);
CREATE INDEX operator_actions_at ON operator_actions (at);

CREATE TABLE episodes (
    id INTEGER PRIMARY KEY,
    user TEXT NOT NULL,
    metric TEXT NOT NULL,
    threshold REAL NOT NULL,
    started_at INTEGER NOT NULL,
    ended_at INTEGER,
    duration_secs INTEGER NOT NULL,
    peak REAL NOT NULL,
    average REAL NOT NULL,
    samples INTEGER NOT NULL,
    UNIQUE (user, metric, started_at)
);
CREATE INDEX episodes_started ON episodes (started_at);

CREATE TABLE outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at INTEGER NOT NULL,
    alert_id INTEGER REFERENCES alerts (id) ON DELETE SET NULL,
    severity TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error TEXT,
    last_attempt_at INTEGER,
    sent_at INTEGER
);
CREATE INDEX outbox_due ON outbox (next_attempt_at, id) WHERE sent_at IS NULL;
CREATE INDEX outbox_sent ON outbox (sent_at) WHERE sent_at IS NOT NULL;
CREATE INDEX outbox_alert ON outbox (alert_id);

CREATE TABLE tracker_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    saved_at INTEGER NOT NULL,
    operator_cursor INTEGER NOT NULL,
    state TEXT NOT NULL
);

CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
";

/// Packed per-user rows (`compact.rs`, `block.rs`), one row per window keyed by its start. The
/// conversion packs the v1 file's complete windows, so an upgraded daemon's file shrinks at once.
const V2: &str = "
CREATE TABLE user_blocks (
    block INTEGER PRIMARY KEY,
    rows INTEGER NOT NULL,
    data BLOB NOT NULL
);
";

/// Disk figures interned (v3): the same JSON list of (mount, hundredths of a percent) was
/// written with every sample, a third of each `samples` row, while disks fill by a hundredth of
/// a percent every few minutes at most. A sample refers to its set; `disks` stays for rows
/// written before and is NULL from now on.
const V3: &str = "
CREATE TABLE disk_sets (
    id INTEGER PRIMARY KEY,
    disks TEXT NOT NULL UNIQUE
);
ALTER TABLE samples ADD COLUMN disk_set INTEGER;
INSERT OR IGNORE INTO disk_sets (disks)
    SELECT DISTINCT disks FROM samples WHERE disks IS NOT NULL;
UPDATE samples
    SET disk_set = (SELECT id FROM disk_sets d WHERE d.disks = samples.disks), disks = NULL
    WHERE disks IS NOT NULL;
";

/// GPU figures (v4), in tables of their own so that a machine without GPUs writes exactly what
/// it wrote before: no row and no byte more per sample or per user row.
/// - `gpu_devices`: each GPU (or MIG instance) interned by its UUID, like users and commands;
///   its index, name and driver as last seen. Never deleted: a machine has a handful, and the
///   hour rollups refer to them for a year.
/// - `gpu_samples`: one row per device per sample, deleted with its sample. Utilization and
///   temperature in hundredths (of a percent, of a degree), memory in KiB, power in milliwatts
///   (what NVML reports); NULL where the driver does not tell.
/// - `user_gpu_samples`: the hot GPU figures of a recorded user, beside its `user_samples` row
///   (same key), with the memory held on each device as a varint blob of (device id, KiB)
///   pairs: "who held which GPU at 3 am". Packed into the user's block with the other figures.
/// - `gpu_1m`, `gpu_1h`, `user_gpu_1m`, `user_gpu_1h`: rollups like `user_1m`, keyed by device
///   or user; a row only where the device was sampled or the user held a GPU.
const V4: &str = "
CREATE TABLE gpu_devices (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid TEXT NOT NULL UNIQUE,
    idx INTEGER NOT NULL,
    mig_parent INTEGER,
    name TEXT NOT NULL,
    driver TEXT NOT NULL
);

CREATE TABLE gpu_samples (
    sample_id INTEGER NOT NULL,
    device_id INTEGER NOT NULL,
    util INTEGER,
    mem_kib INTEGER,
    total_kib INTEGER,
    temperature INTEGER,
    power INTEGER,
    processes INTEGER NOT NULL,
    PRIMARY KEY (sample_id, device_id)
) WITHOUT ROWID;

CREATE TABLE user_gpu_samples (
    sample_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    mem_kib INTEGER NOT NULL,
    memory INTEGER NOT NULL,
    util INTEGER NOT NULL,
    processes INTEGER NOT NULL,
    devices BLOB,
    PRIMARY KEY (sample_id, user_id)
) WITHOUT ROWID;

CREATE TABLE gpu_1m (
    device_id INTEGER NOT NULL,
    bucket INTEGER NOT NULL,
    samples INTEGER NOT NULL,
    present INTEGER NOT NULL,
    util_min INTEGER NOT NULL, util_avg INTEGER NOT NULL, util_max INTEGER NOT NULL,
    mem_kib_min INTEGER NOT NULL, mem_kib_avg INTEGER NOT NULL, mem_kib_max INTEGER NOT NULL,
    total_kib_min INTEGER NOT NULL, total_kib_avg INTEGER NOT NULL, total_kib_max INTEGER NOT NULL,
    temperature_min INTEGER NOT NULL, temperature_avg INTEGER NOT NULL, temperature_max INTEGER NOT NULL,
    power_min INTEGER NOT NULL, power_avg INTEGER NOT NULL, power_max INTEGER NOT NULL,
    PRIMARY KEY (device_id, bucket)
) WITHOUT ROWID;

CREATE TABLE gpu_1h (
    device_id INTEGER NOT NULL,
    bucket INTEGER NOT NULL,
    samples INTEGER NOT NULL,
    present INTEGER NOT NULL,
    util_min INTEGER NOT NULL, util_avg INTEGER NOT NULL, util_max INTEGER NOT NULL,
    mem_kib_min INTEGER NOT NULL, mem_kib_avg INTEGER NOT NULL, mem_kib_max INTEGER NOT NULL,
    total_kib_min INTEGER NOT NULL, total_kib_avg INTEGER NOT NULL, total_kib_max INTEGER NOT NULL,
    temperature_min INTEGER NOT NULL, temperature_avg INTEGER NOT NULL, temperature_max INTEGER NOT NULL,
    power_min INTEGER NOT NULL, power_avg INTEGER NOT NULL, power_max INTEGER NOT NULL,
    PRIMARY KEY (device_id, bucket)
) WITHOUT ROWID;

CREATE TABLE user_gpu_1m (
    user_id INTEGER NOT NULL,
    bucket INTEGER NOT NULL,
    samples INTEGER NOT NULL,
    present INTEGER NOT NULL,
    util_min INTEGER NOT NULL, util_avg INTEGER NOT NULL, util_max INTEGER NOT NULL,
    memory_min INTEGER NOT NULL, memory_avg INTEGER NOT NULL, memory_max INTEGER NOT NULL,
    mem_kib_min INTEGER NOT NULL, mem_kib_avg INTEGER NOT NULL, mem_kib_max INTEGER NOT NULL,
    processes_min INTEGER NOT NULL, processes_avg INTEGER NOT NULL, processes_max INTEGER NOT NULL,
    PRIMARY KEY (user_id, bucket)
) WITHOUT ROWID;

CREATE TABLE user_gpu_1h (
    user_id INTEGER NOT NULL,
    bucket INTEGER NOT NULL,
    samples INTEGER NOT NULL,
    present INTEGER NOT NULL,
    util_min INTEGER NOT NULL, util_avg INTEGER NOT NULL, util_max INTEGER NOT NULL,
    memory_min INTEGER NOT NULL, memory_avg INTEGER NOT NULL, memory_max INTEGER NOT NULL,
    mem_kib_min INTEGER NOT NULL, mem_kib_avg INTEGER NOT NULL, mem_kib_max INTEGER NOT NULL,
    processes_min INTEGER NOT NULL, processes_avg INTEGER NOT NULL, processes_max INTEGER NOT NULL,
    PRIMARY KEY (user_id, bucket)
) WITHOUT ROWID;
";

/// The GPUs' raw rows packed per window (v5, `gpu_block.rs`), beside the users' blocks: as plain
/// `gpu_samples` rows they cost ~35 bytes per GPU and sample, more than every user's packed
/// figures together on a GPU server. `gpu_samples` keeps the recent (hot) rows. The conversion
/// packs the windows a v4 file has already packed the users of.
const V5: &str = "
CREATE TABLE gpu_blocks (
    block INTEGER PRIMARY KEY,
    rows INTEGER NOT NULL,
    data BLOB NOT NULL
);
";

const CREATE_VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY,
    applied_at INTEGER NOT NULL
)";

/// Brings the file up to [`LATEST`]; returns the version it is at.
pub(super) fn migrate(conn: &mut Connection, path: &Path) -> Result<i64, StoreError> {
    conn.execute_batch(CREATE_VERSION_TABLE)
        .ctx("creating the schema_version table")?;
    check_not_newer(current_version(conn)?, path)?;
    for &(version, sql, convert) in MIGRATIONS {
        // Opening an up-to-date file takes no write lock (a TUI opening while the daemon writes).
        if current_version(conn)? >= version {
            continue;
        }
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .ctx("starting a migration")?;
        // Re-read under the write lock: another process may have migrated meanwhile.
        let current = current_version(&tx)?;
        check_not_newer(current, path)?;
        if current >= version {
            continue;
        }
        tx.execute_batch(sql).ctx("applying a schema migration")?;
        if let Some(convert) = convert {
            convert(&tx)?;
        }
        tx.execute(
            "INSERT INTO schema_version (version, applied_at) VALUES (?1, ?2)",
            params![version, Timestamp::now().0],
        )
        .ctx("recording the schema version")?;
        tx.commit().ctx("committing a schema migration")?;
    }
    current_version(conn)
}

fn check_not_newer(found: i64, path: &Path) -> Result<(), StoreError> {
    if found > LATEST {
        return Err(StoreError::NewerSchema {
            path: path.to_path_buf(),
            found,
            supported: LATEST,
        });
    }
    Ok(())
}

pub(super) fn current_version(conn: &Connection) -> Result<i64, StoreError> {
    conn.query_row("SELECT MAX(version) FROM schema_version", [], |r| {
        r.get::<_, Option<i64>>(0)
    })
    .optional()
    .ctx("reading the schema version")
    .map(|v| v.flatten().unwrap_or(0))
}
