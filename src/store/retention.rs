//! Retention: roll raw samples up into 1-minute and 1-hour aggregates, then delete what the
//! aggregates replace, so the file stays bounded while long ranges stay answerable.
//!
//! Why this order and these watermarks:
//! - Aggregate before deleting, in the same transaction: a crash never leaves a range that is
//!   neither raw nor rolled up. Deletion never goes past what has been rolled up.
//! - Only whole buckets before `now` are rolled up, and `meta` remembers up to where
//!   (`rollup_1m_next`, `rollup_1h_next`), so running retention twice at the same time does
//!   nothing the second time. A sample written late (the daemon catching up after the database
//!   was unwritable) moves the watermarks back (`record.rs`), and the buckets it belongs to are
//!   recomputed from scratch.
//! - `raw_floor` / `minute_floor` remember where data was deleted, so a recomputation never
//!   rebuilds a bucket from what is left of it.
//! - Rollups are computed with the same aggregation as history queries (`series.rs`).
//! - The file is created with `auto_vacuum = INCREMENTAL`; after deleting, `incremental_vacuum`
//!   returns free pages to the file system.

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use serde::{Deserialize, Serialize};

use super::history::{
    GpuPt, SysPt, UserPt, gpu_device_ids, raw_gpus, raw_system, raw_user_gpu_point, raw_user_point,
    stored_keyed, stored_system,
};
use super::record::COMMAND_TOUCH_MS;
use super::series::{
    GPUS, Keyed, USER_GPUS, USERS, aggregate, align, clear, write_keyed, write_system,
};
use super::{Context, HOUR_RETENTION_MS, RAW_RETENTION_MS, Store, StoreError, bucket_start};
use crate::model::Timestamp;

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;

/// The rollup watermarks and their bucket sizes: everything before the value is rolled up.
pub(super) const WATERMARKS: [(&str, i64); 2] =
    [("rollup_1m_next", MINUTE_MS), ("rollup_1h_next", HOUR_MS)];

/// What one retention run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RetentionReport {
    /// 1-minute system buckets written (or rewritten).
    pub minutes_rolled_up: u64,
    /// 1-minute user rows written.
    pub user_minutes_rolled_up: u64,
    pub hours_rolled_up: u64,
    pub user_hours_rolled_up: u64,
    pub samples_deleted: u64,
    pub user_samples_deleted: u64,
    /// 1-minute rows deleted, system and users.
    pub minute_rows_deleted: u64,
    /// 1-hour rows deleted, system and users.
    pub hour_rows_deleted: u64,
    pub alerts_deleted: u64,
    pub episodes_deleted: u64,
    pub outbox_deleted: u64,
    pub operator_actions_deleted: u64,
    pub commands_deleted: u64,
    /// Free pages handed back to the file system.
    pub pages_freed: u64,
}

impl RetentionReport {
    pub fn changed_anything(&self) -> bool {
        *self != RetentionReport::default()
    }
}

impl Store {
    /// Rolls up and deletes as of `now`: raw samples are kept 48 h, 1-minute aggregates
    /// `retention_days`, 1-hour aggregates 365 days; resolved alerts, ended episodes, sent mail
    /// and operator actions `retention_days`. Unsent mail is never deleted. Idempotent.
    ///
    /// Run it from the connection that records samples (it clears that connection's interned-id
    /// caches, since unused commands are deleted).
    pub fn run_retention(
        &mut self,
        now: Timestamp,
        retention_days: u64,
    ) -> Result<RetentionReport, StoreError> {
        let now = now.0;
        let keep_ms = i64::try_from(retention_days)
            .unwrap_or(i64::MAX)
            .saturating_mul(DAY_MS);
        let mut rep = RetentionReport::default();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .ctx("starting retention")?;
        // Pack what `record` has not (or could not): errors are reported here.
        super::compact::compact(&tx)?;

        // 1-minute rollups of the raw samples.
        let raw_floor = watermark(&tx, "raw_floor")?.unwrap_or(i64::MIN);
        let oldest_raw = oldest(&tx, "SELECT MIN(at) FROM samples")?;
        let next_1m =
            watermark(&tx, "rollup_1m_next")?.or(oldest_raw.map(|t| bucket_start(t, MINUTE_MS)));
        let mut rolled_1m = next_1m;
        if let Some(from) = next_1m {
            let from = from.max(ceil_to(raw_floor, MINUTE_MS));
            let to = bucket_start(now, MINUTE_MS);
            if from < to {
                let (s, u) = roll_minutes(&tx, from, to)?;
                rep.minutes_rolled_up = s;
                rep.user_minutes_rolled_up = u;
                set_watermark(&tx, "rollup_1m_next", to)?;
                rolled_1m = Some(to);
            }
        }

        // 1-hour rollups of the 1-minute ones.
        let minute_floor = watermark(&tx, "minute_floor")?.unwrap_or(i64::MIN);
        let oldest_minute = oldest(&tx, "SELECT MIN(bucket) FROM system_1m")?;
        let next_1h =
            watermark(&tx, "rollup_1h_next")?.or(oldest_minute.map(|t| bucket_start(t, HOUR_MS)));
        let mut rolled_1h = next_1h;
        if let (Some(from), Some(minutes_until)) = (next_1h, rolled_1m) {
            let from = from.max(ceil_to(minute_floor, HOUR_MS));
            let to = bucket_start(now.min(minutes_until), HOUR_MS);
            if from < to {
                let (s, u) = roll_hours(&tx, from, to)?;
                rep.hours_rolled_up = s;
                rep.user_hours_rolled_up = u;
                set_watermark(&tx, "rollup_1h_next", to)?;
                rolled_1h = Some(to);
            }
        }

        // Raw samples: never past what is rolled up.
        let raw_cut = (now.saturating_sub(RAW_RETENTION_MS)).min(rolled_1m.unwrap_or(i64::MIN));
        rep.user_samples_deleted = exec(
            &tx,
            "DELETE FROM user_samples WHERE sample_id IN (SELECT id FROM samples WHERE at < ?1)",
            raw_cut,
        )? + super::compact::delete_before(&tx, raw_cut)?;
        // The device list is never deleted: without it no GPU row was ever written.
        let had_gpus = !gpu_device_ids(&tx)?.is_empty();
        for table in ["user_gpu_samples", "gpu_samples"]
            .into_iter()
            .filter(|_| had_gpus)
        {
            exec(
                &tx,
                &format!(
                    "DELETE FROM {table} WHERE sample_id IN (SELECT id FROM samples WHERE at < ?1)"
                ),
                raw_cut,
            )?;
        }
        rep.samples_deleted = exec(&tx, "DELETE FROM samples WHERE at < ?1", raw_cut)?;
        if raw_cut > raw_floor && oldest_raw.is_some() {
            set_watermark(&tx, "raw_floor", raw_cut)?;
        }
        rep.commands_deleted = exec(
            &tx,
            "DELETE FROM commands WHERE last_seen < ?1",
            raw_cut.saturating_sub(COMMAND_TOUCH_MS),
        )?;
        tx.execute(
            "DELETE FROM disk_sets WHERE id NOT IN \
             (SELECT disk_set FROM samples WHERE disk_set IS NOT NULL)",
            [],
        )
        .ctx("deleting disk figures no sample refers to")?;

        // Rollups.
        let minute_cut = now
            .saturating_sub(keep_ms)
            .min(rolled_1h.unwrap_or(i64::MIN));
        rep.minute_rows_deleted = delete_buckets(&tx, ("system_1m", 0), minute_cut)?;
        if minute_cut > minute_floor && oldest_minute.is_some() {
            set_watermark(&tx, "minute_floor", minute_cut)?;
        }
        let hour_cut = now.saturating_sub(HOUR_RETENTION_MS);
        rep.hour_rows_deleted = delete_buckets(&tx, ("system_1h", 1), hour_cut)?;

        // Records.
        let keep_cut = now.saturating_sub(keep_ms);
        rep.alerts_deleted = exec(
            &tx,
            "DELETE FROM alerts WHERE status = 'resolved' AND resolved_at < ?1",
            keep_cut,
        )?;
        rep.episodes_deleted = exec(
            &tx,
            "DELETE FROM episodes WHERE ended_at IS NOT NULL AND ended_at < ?1",
            keep_cut,
        )?;
        rep.outbox_deleted = exec(
            &tx,
            "DELETE FROM outbox WHERE sent_at IS NOT NULL AND sent_at < ?1",
            keep_cut,
        )?;
        rep.operator_actions_deleted =
            exec(&tx, "DELETE FROM operator_actions WHERE at < ?1", keep_cut)?;
        tx.commit().ctx("committing retention")?;
        // Deleted commands may be in the caches; ids are never reused (AUTOINCREMENT), so
        // re-interning finds or creates the right row.
        self.command_ids.clear();
        self.user_ids.clear();

        rep.pages_freed = self.vacuum()?;
        Ok(rep)
    }

    /// Hands free pages back to the file system and checkpoints the WAL without waiting for
    /// readers. Returns the pages freed.
    fn vacuum(&self) -> Result<u64, StoreError> {
        let free: i64 = self
            .conn
            .query_row("PRAGMA freelist_count", [], |r| r.get(0))
            .ctx("counting free pages")?;
        if free > 0 {
            // Each step of the pragma frees one page: run it to the end.
            let mut stmt = self
                .conn
                .prepare("PRAGMA incremental_vacuum")
                .ctx("returning free pages to the file system")?;
            let mut rows = stmt
                .query([])
                .ctx("returning free pages to the file system")?;
            while rows
                .next()
                .ctx("returning free pages to the file system")?
                .is_some()
            {}
        }
        let after: i64 = self
            .conn
            .query_row("PRAGMA freelist_count", [], |r| r.get(0))
            .ctx("counting free pages")?;
        self.conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
            .ctx("checkpointing the write-ahead log")?;
        Ok((free - after).max(0) as u64)
    }
}

/// A `meta` value.
pub(super) fn watermark(conn: &Connection, key: &str) -> Result<Option<i64>, StoreError> {
    conn.prepare_cached("SELECT value FROM meta WHERE key = ?1")
        .ctx("preparing a watermark read")?
        .query_row([key], |r| r.get(0))
        .optional()
        .ctx("reading a rollup watermark")
}

fn set_watermark(tx: &Transaction<'_>, key: &str, value: i64) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )
    .ctx("saving a rollup watermark")?;
    Ok(())
}

fn oldest(conn: &Connection, sql: &str) -> Result<Option<i64>, StoreError> {
    conn.query_row(sql, [], |r| r.get::<_, Option<i64>>(0))
        .ctx("finding the oldest data")
}

fn exec(tx: &Transaction<'_>, sql: &str, cut: i64) -> Result<u64, StoreError> {
    tx.execute(sql, [cut])
        .ctx("deleting expired data")
        .map(|n| n as u64)
}

fn first_in(
    tx: &Transaction<'_>,
    sql: &str,
    from: i64,
    to: i64,
) -> Result<Option<i64>, StoreError> {
    tx.prepare_cached(sql)
        .ctx("preparing a rollup scan")?
        .query_row([from, to], |r| r.get::<_, Option<i64>>(0))
        .ctx("finding data to roll up")
}

fn ceil_to(t: i64, size: i64) -> i64 {
    if t == i64::MIN {
        return t;
    }
    let start = bucket_start(t, size);
    if start == t {
        t
    } else {
        start.saturating_add(size)
    }
}

fn user_ids(conn: &Connection) -> Result<Vec<i64>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT id FROM users ORDER BY id")
        .ctx("preparing the user list")?;
    let ids = stmt
        .query_map([], |r| r.get(0))
        .ctx("listing users")?
        .collect::<Result<Vec<i64>, _>>()
        .ctx("listing users")?;
    Ok(ids)
}

/// Deletes buckets before `cut` from a system rollup table (`tables.0`) and the user and GPU
/// ones of the same level (`tables.1`: 0 for minutes, 1 for hours), per subject, so the
/// (subject, bucket) key serves the range.
fn delete_buckets(
    tx: &Transaction<'_>,
    tables: (&str, usize),
    cut: i64,
) -> Result<u64, StoreError> {
    let mut n = exec(
        tx,
        &format!("DELETE FROM {} WHERE bucket < ?1", tables.0),
        cut,
    )?;
    let level = |t: (&'static str, &'static str)| if tables.1 == 0 { t.0 } else { t.1 };
    let users = user_ids(tx)?;
    let gpus = gpu_device_ids(tx)?;
    let kinds = [
        (level(USERS.tables), USERS.key, &users),
        (level(USER_GPUS.tables), USER_GPUS.key, &users),
        (level(GPUS.tables), GPUS.key, &gpus),
    ];
    // Without a GPU ever recorded the GPU tables are empty: no statement per user for them.
    let gpu_tables = if gpus.is_empty() { 1 } else { kinds.len() };
    for (table, key, ids) in kinds.into_iter().take(gpu_tables) {
        let mut stmt = tx
            .prepare(&format!(
                "DELETE FROM {table} WHERE {key} = ?1 AND bucket < ?2"
            ))
            .ctx("preparing a rollup deletion")?;
        for id in ids {
            n += stmt
                .execute(params![id, cut])
                .ctx("deleting expired rollups")? as u64;
        }
    }
    Ok(n)
}

/// Clears a keyed rollup table's buckets in [from, to), subject by subject.
fn clear_keyed<const N: usize>(
    tx: &Transaction<'_>,
    kind: &Keyed<N>,
    table: &str,
    ids: &[i64],
    from: i64,
    to: i64,
) -> Result<(), StoreError> {
    let mut stmt = tx
        .prepare_cached(&format!(
            "DELETE FROM {table} WHERE {} = ?1 AND bucket >= ?2 AND bucket < ?3",
            kind.key
        ))
        .ctx("preparing a rollup rewrite")?;
    for &id in ids {
        stmt.execute(params![id, from, to])
            .ctx("clearing rollups before rewriting them")?;
    }
    Ok(())
}

/// Rolls raw samples in [from, to) up into minutes, an hour at a time so memory stays small
/// when catching up on two days. Returns (system rows, user rows) written.
fn roll_minutes(tx: &Transaction<'_>, from: i64, to: i64) -> Result<(u64, u64), StoreError> {
    let ids = user_ids(tx)?;
    let gpu_ids = gpu_device_ids(tx)?;
    let (mut sys_rows, mut user_rows) = (0, 0);
    let mut start = from;
    while start < to {
        // Skip hours without samples (a long outage) rather than visiting each.
        let Some(first) = first_in(
            tx,
            "SELECT MIN(at) FROM samples WHERE at >= ?1 AND at < ?2",
            start,
            to,
        )?
        else {
            break;
        };
        start = start.max(bucket_start(first, MINUTE_MS));
        let end = to.min(bucket_start(start, HOUR_MS).saturating_add(HOUR_MS));
        let chunk = raw_chunk(tx, start, end, !gpu_ids.is_empty())?;
        let system = &chunk.system;
        clear(tx, "system_1m", start, end)?;
        clear_keyed(tx, &USERS, "user_1m", &ids, start, end)?;
        if !gpu_ids.is_empty() {
            clear_keyed(tx, &USER_GPUS, "user_gpu_1m", &ids, start, end)?;
            clear_keyed(tx, &GPUS, "gpu_1m", &gpu_ids, start, end)?;
        }
        sys_rows += write_system(tx, "system_1m", &aggregate(system, MINUTE_MS))?;
        let minutes = |pts| aggregate(&align(system, pts), MINUTE_MS);
        for (id, pts) in &chunk.users {
            user_rows += write_keyed(tx, &USERS, "user_1m", *id, &minutes(pts))?;
        }
        for (id, pts) in &chunk.user_gpus {
            write_keyed(tx, &USER_GPUS, "user_gpu_1m", *id, &minutes(pts))?;
        }
        for (id, pts) in &chunk.gpus {
            let minutes = aggregate(&align(system, pts), MINUTE_MS);
            write_keyed(tx, &GPUS, "gpu_1m", *id, &minutes)?;
        }
        start = end;
    }
    Ok((sys_rows, user_rows))
}

/// Raw system points in an interval, and each user's (CPU and memory, GPU) and each GPU's, by
/// interned id.
struct RawChunk {
    system: Vec<SysPt>,
    users: BTreeMap<i64, Vec<UserPt>>,
    user_gpus: BTreeMap<i64, Vec<UserPt>>,
    gpus: BTreeMap<i64, Vec<GpuPt>>,
}

/// Raw points in [from, to); GPUs' only when there are any.
fn raw_chunk(tx: &Transaction<'_>, from: i64, to: i64, gpus: bool) -> Result<RawChunk, StoreError> {
    let last = to.saturating_sub(1);
    let system = raw_system(tx, from, last)?;
    let mut users: BTreeMap<i64, Vec<UserPt>> = BTreeMap::new();
    let mut user_gpus: BTreeMap<i64, Vec<UserPt>> = BTreeMap::new();
    for (id, rows) in super::compact::user_rows(tx, None, from, last)? {
        let gpu: Vec<UserPt> = rows.iter().filter_map(raw_user_gpu_point).collect();
        if !gpu.is_empty() {
            user_gpus.entry(id).or_default().extend(gpu);
        }
        users
            .entry(id)
            .or_default()
            .extend(rows.into_iter().map(raw_user_point));
    }
    Ok(RawChunk {
        system,
        users,
        user_gpus,
        gpus: if gpus {
            raw_gpus(tx, from, last)?
        } else {
            BTreeMap::new()
        },
    })
}

/// Rolls 1-minute rows in [from, to) up into hours, a day at a time.
fn roll_hours(tx: &Transaction<'_>, from: i64, to: i64) -> Result<(u64, u64), StoreError> {
    let ids = user_ids(tx)?;
    let gpu_ids = gpu_device_ids(tx)?;
    let (mut sys_rows, mut user_rows) = (0, 0);
    let mut start = from;
    while start < to {
        let Some(first) = first_in(
            tx,
            "SELECT MIN(bucket) FROM system_1m WHERE bucket >= ?1 AND bucket < ?2",
            start,
            to,
        )?
        else {
            break;
        };
        start = start.max(bucket_start(first, HOUR_MS));
        let end = to.min(start.saturating_add(DAY_MS));
        let system = stored_system(tx, "system_1m", start, end - 1)?;
        clear(tx, "system_1h", start, end)?;
        sys_rows += write_system(tx, "system_1h", &aggregate(&system, HOUR_MS))?;
        user_rows += hours_of(tx, &USERS, &ids, &system, start, end)?;
        if !gpu_ids.is_empty() {
            hours_of(tx, &USER_GPUS, &ids, &system, start, end)?;
            hours_of(tx, &GPUS, &gpu_ids, &system, start, end)?;
        }
        start = end;
    }
    Ok((sys_rows, user_rows))
}

/// Rewrites the hours in [start, end) of each subject's rollups from its minutes. Returns the
/// rows written.
fn hours_of<const N: usize>(
    tx: &Transaction<'_>,
    kind: &Keyed<N>,
    ids: &[i64],
    system: &[SysPt],
    start: i64,
    end: i64,
) -> Result<u64, StoreError> {
    clear_keyed(tx, kind, kind.tables.1, ids, start, end)?;
    let mut written = 0;
    for &id in ids {
        let minutes = stored_keyed(tx, kind, kind.tables.0, &[id], start, end - 1)?;
        if minutes.is_empty() {
            continue;
        }
        let hours = aggregate(&align(system, &minutes), HOUR_MS);
        written += write_keyed(tx, kind, kind.tables.1, id, &hours)?;
    }
    Ok(written)
}
