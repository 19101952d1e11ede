//! Compaction: the per-user rows of complete windows are packed into one block per window.
//!
//! Why two forms of the same data: `record` must make every sample durable at its commit with
//! little work, so it appends plain rows to `user_samples` (the "hot" rows). Those rows are
//! large (see `block.rs`), and nothing about a window changes once it is complete, so a few
//! minutes after a window of [`BLOCK_MS`] ends, its rows for all users are packed into one row
//! of `user_blocks` and the hot rows deleted, in one transaction: a crash leaves either the hot
//! rows or the block, never neither. One block holds every user of the window (rather than one
//! per user) because SQLite stores a large blob in overflow pages whose last page is half empty
//! on average — per user and window that slack alone would be a third of the budget — and
//! because `state_at` wants every user at one moment.
//!
//! Readers go through [`user_rows`], which merges blocks and hot rows, so callers see the same
//! rows whatever has been compacted. A sample written late into a window that is already
//! packed (the daemon catching up after an outage) stays hot until the next compaction merges it
//! into the block: `record` moves the `compact_next` watermark back to its window.
//!
//! The GPUs' raw rows (`gpu_samples`, schema v5) are packed the same way into `gpu_blocks`, one
//! row per window beside the users' block, in the same transaction; [`gpu_rows`] merges them
//! with the hot ones. A machine without GPUs has no such row and reads or packs nothing more.
//!
//! Who compacts: `record` after its commit, once per window (so the daemon needs no extra call),
//! and `run_retention`, which reports errors. A failure in `record`'s compaction does not fail
//! the sample (it is committed); the rows stay hot, readable, and are packed on the next try.

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::block::{self, GpuRow, UserRow};
use super::codec;
use super::gpu_block::{self, GpuSample};
use super::{Context, StoreError};

/// A block holds the samples of this window (15 minutes: 180 samples per user at 5 s).
pub(super) const BLOCK_MS: i64 = 15 * 60_000;
/// A window is packed this long after it ends, so the latest minutes stay cheap to append to
/// and a TUI reading "now" reads plain rows.
pub(super) const COMPACT_DELAY_MS: i64 = 5 * 60_000;
/// `meta` key: every window before this value is packed (apart from late writes, which move it
/// back).
pub(super) const WATERMARK: &str = "compact_next";

/// The start of the window holding `at` (saturating at the ends of time).
pub(super) fn window_of(at: i64) -> i64 {
    at.saturating_sub(at.rem_euclid(BLOCK_MS))
}

/// Packs every complete window that ended [`COMPACT_DELAY_MS`] before the latest sample.
/// Returns the rows packed.
pub(super) fn compact(tx: &Transaction<'_>) -> Result<u64, StoreError> {
    let latest: Option<i64> = tx
        .query_row("SELECT MAX(at) FROM samples", [], |r| r.get(0))
        .ctx("finding the latest sample to compact up to")?;
    let Some(latest) = latest else {
        return Ok(0);
    };
    compact_until(tx, window_of(latest.saturating_sub(COMPACT_DELAY_MS)))
}

/// Packs the hot rows of every window that starts before `cutoff` (a window start).
pub(super) fn compact_until(tx: &Transaction<'_>, cutoff: i64) -> Result<u64, StoreError> {
    let next = super::retention::watermark(tx, WATERMARK)?.unwrap_or(i64::MIN);
    if next >= cutoff {
        return Ok(0);
    }
    let packed = pack_windows(tx, next, cutoff)?;
    tx.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![WATERMARK, cutoff],
    )
    .ctx("saving the compaction watermark")?;
    Ok(packed)
}

/// The conversion to schema v5: packs the GPU rows of the windows a v4 file has already packed
/// the users of (before the watermark). Returns the user rows packed with them (late ones).
pub(super) fn pack_gpu_rows(tx: &Transaction<'_>) -> Result<u64, StoreError> {
    match super::retention::watermark(tx, WATERMARK)? {
        Some(next) => pack_windows(tx, i64::MIN, next),
        None => Ok(0),
    }
}

/// Packs the hot rows of every window in [start, cutoff) that has any.
fn pack_windows(tx: &Transaction<'_>, start: i64, cutoff: i64) -> Result<u64, StoreError> {
    let gpu_scan = if packs_gpus(tx)? {
        " OR EXISTS (SELECT 1 FROM gpu_samples g WHERE g.sample_id = s.id)"
    } else {
        ""
    };
    let mut first_hot = tx
        .prepare_cached(&format!(
            "SELECT MIN(s.at) FROM samples s WHERE s.at >= ?1 AND s.at < ?2 \
             AND (EXISTS (SELECT 1 FROM user_samples u WHERE u.sample_id = s.id){gpu_scan})"
        ))
        .ctx("preparing the compaction scan")?;
    let mut packed = 0;
    let mut start = start;
    while start < cutoff {
        let first: Option<i64> = first_hot
            .query_row([start, cutoff], |r| r.get(0))
            .ctx("finding rows to compact")?;
        let Some(first) = first else {
            break;
        };
        let window = window_of(first);
        packed += compact_window(tx, window)?;
        start = window.saturating_add(BLOCK_MS);
    }
    Ok(packed)
}

/// Merges the window's hot rows (users', and GPUs' where there are any) into its blocks and
/// deletes them. Returns the user rows moved.
fn compact_window(tx: &Transaction<'_>, window: i64) -> Result<u64, StoreError> {
    let end = window.saturating_add(BLOCK_MS);
    let hot = hot_rows(tx, None, window, end - 1)?;
    let moved: usize = hot.values().map(Vec::len).sum();
    if moved > 0 {
        let mut users = stored_block(tx, window, None)?;
        merge(&mut users, hot, |r| r.at);
        write_block(tx, window, &users)?;
    }
    let mut tables = vec!["user_samples"];
    if has_rows(tx, "user_gpu_samples")? {
        tables.push("user_gpu_samples");
    }
    if packs_gpus(tx)? {
        let hot = hot_gpu_samples(tx, window, end - 1)?;
        if !hot.is_empty() {
            let mut devices = stored_gpu_block(tx, window)?;
            merge(&mut devices, hot, |r| r.at);
            write_gpu_block(tx, window, &devices)?;
            tables.push("gpu_samples");
        }
    }
    for table in tables {
        tx.prepare_cached(&format!(
            "DELETE FROM {table} WHERE sample_id IN \
             (SELECT id FROM samples WHERE at >= ?1 AND at < ?2)"
        ))
        .ctx("preparing the hot row deletion")?
        .execute([window, end])
        .ctx("deleting compacted rows")?;
    }
    Ok(moved as u64)
}

/// Adds rows to what a block held, each key's in time order.
fn merge<T>(
    into: &mut BTreeMap<i64, Vec<T>>,
    rows: BTreeMap<i64, Vec<T>>,
    at: impl Fn(&T) -> i64 + Copy,
) {
    for (id, rows) in rows {
        let all = into.entry(id).or_default();
        let sort = !all.is_empty();
        all.extend(rows);
        if sort {
            all.sort_by_key(at);
        }
    }
}

/// Replaces a window's GPU block (deleting it when no rows are left).
fn write_gpu_block(
    tx: &Transaction<'_>,
    window: i64,
    devices: &BTreeMap<i64, Vec<GpuSample>>,
) -> Result<(), StoreError> {
    let rows: usize = devices.values().map(Vec::len).sum();
    put_block(tx, "gpu_blocks", window, rows, || {
        gpu_block::encode(devices)
    })
}

/// The GPU rows packed in one window's block (empty when there is none).
fn stored_gpu_block(
    conn: &Connection,
    window: i64,
) -> Result<BTreeMap<i64, Vec<GpuSample>>, StoreError> {
    match block_data(conn, "gpu_blocks", window)? {
        Some(d) => gpu_block::decode(&d),
        None => Ok(BTreeMap::new()),
    }
}

/// Every recorded GPU row with a time in [from, to], packed or hot, by device id and in time
/// order. Only for a file with GPUs (callers check `gpu_devices`).
pub(super) fn gpu_rows(
    conn: &Connection,
    from: i64,
    to: i64,
) -> Result<BTreeMap<i64, Vec<GpuSample>>, StoreError> {
    if to < from {
        return Ok(BTreeMap::new());
    }
    let (_snapshot, blocks) = packed_between(conn, "gpu_blocks", from, to)?;
    let mut out: BTreeMap<i64, Vec<GpuSample>> = BTreeMap::new();
    for data in blocks {
        for (id, rows) in gpu_block::decode(&data)? {
            out.entry(id)
                .or_default()
                .extend(rows.into_iter().filter(|r| r.at >= from && r.at <= to));
        }
    }
    merge(&mut out, hot_gpu_samples(conn, from, to)?, |r| r.at);
    out.retain(|_, rows| !rows.is_empty());
    Ok(out)
}

/// The hot GPU rows with a time in [from, to], by device id and in time order.
fn hot_gpu_samples(
    conn: &Connection,
    from: i64,
    to: i64,
) -> Result<BTreeMap<i64, Vec<GpuSample>>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT g.device_id, s.at, g.util, g.mem_kib, g.total_kib, g.temperature, g.power, \
             g.processes FROM samples s JOIN gpu_samples g ON g.sample_id = s.id \
             WHERE s.at >= ?1 AND s.at <= ?2 ORDER BY s.at",
        )
        .ctx("preparing the raw GPU query")?;
    type Raw = (
        i64,
        i64,
        Option<i64>,
        Option<i64>,
        Option<i64>,
        Option<i64>,
        Option<i64>,
        i64,
    );
    let rows: Vec<Raw> = super::rows(&mut stmt, [from, to], "reading raw GPU samples")?;
    let mut out: BTreeMap<i64, Vec<GpuSample>> = BTreeMap::new();
    for (id, at, util, mem_kib, total_kib, temperature, power, processes) in rows {
        out.entry(id).or_default().push(GpuSample {
            at,
            util,
            mem_kib,
            total_kib,
            temperature,
            power,
            processes,
        });
    }
    Ok(out)
}

/// Replaces a window's block (deleting it when no rows are left).
pub(super) fn write_block(
    tx: &Transaction<'_>,
    window: i64,
    users: &BTreeMap<i64, Vec<UserRow>>,
) -> Result<(), StoreError> {
    let rows: usize = users.values().map(Vec::len).sum();
    put_block(tx, "user_blocks", window, rows, || block::encode(users))
}

/// Writes a window's block of `rows` rows into `table` (`user_blocks`, `gpu_blocks`), or deletes
/// it when there are none.
fn put_block(
    tx: &Transaction<'_>,
    table: &str,
    window: i64,
    rows: usize,
    encode: impl FnOnce() -> Vec<u8>,
) -> Result<(), StoreError> {
    if rows == 0 {
        tx.prepare_cached(&format!("DELETE FROM {table} WHERE block = ?1"))
            .ctx("preparing a block deletion")?
            .execute([window])
            .ctx("deleting an empty block")?;
        return Ok(());
    }
    tx.prepare_cached(&format!(
        "INSERT INTO {table} (block, rows, data) VALUES (?1, ?2, ?3) \
         ON CONFLICT (block) DO UPDATE SET rows = excluded.rows, data = excluded.data"
    ))
    .ctx("preparing a block write")?
    .execute(params![window, rows as i64, encode()])
    .ctx("writing a block")?;
    Ok(())
}

/// A window's block in `table`, as stored.
fn block_data(conn: &Connection, table: &str, window: i64) -> Result<Option<Vec<u8>>, StoreError> {
    conn.prepare_cached(&format!("SELECT data FROM {table} WHERE block = ?1"))
        .ctx("preparing a block read")?
        .query_row([window], |r| r.get(0))
        .optional()
        .ctx("reading a block")
}

/// The rows packed in one window's block (empty when there is none).
pub(super) fn stored_block(
    conn: &Connection,
    window: i64,
    only: Option<i64>,
) -> Result<BTreeMap<i64, Vec<UserRow>>, StoreError> {
    match block_data(conn, "user_blocks", window)? {
        Some(d) => block::decode(&d, only),
        None => Ok(BTreeMap::new()),
    }
}

/// Every recorded user row with a time in [from, to] (or only `user`'s), packed or hot, by user
/// and in time order.
pub(super) fn user_rows(
    conn: &Connection,
    user: Option<i64>,
    from: i64,
    to: i64,
) -> Result<BTreeMap<i64, Vec<UserRow>>, StoreError> {
    if to < from {
        return Ok(BTreeMap::new());
    }
    let (_snapshot, blocks) = packed_between(conn, "user_blocks", from, to)?;
    let mut out: BTreeMap<i64, Vec<UserRow>> = BTreeMap::new();
    for data in blocks {
        block::decode_each(&data, user, |id, rows| {
            out.entry(id)
                .or_default()
                .extend(rows.into_iter().filter(|r| r.at >= from && r.at <= to));
        })?;
    }
    merge(&mut out, hot_rows(conn, user, from, to)?, |r| r.at);
    out.retain(|_, rows| !rows.is_empty());
    Ok(out)
}

/// The blocks of `table` that may hold rows in [from, to], and the read transaction to hold
/// while the hot rows are read too (None when the caller is in one): between two autocommit
/// reads, another process's compaction could move rows from the second place read to the first.
fn packed_between<'c>(
    conn: &'c Connection,
    table: &str,
    from: i64,
    to: i64,
) -> Result<(Option<rusqlite::Transaction<'c>>, Vec<Vec<u8>>), StoreError> {
    let snapshot = if conn.is_autocommit() {
        Some(
            conn.unchecked_transaction()
                .ctx("starting a read of user samples")?,
        )
    } else {
        None
    };
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT data FROM {table} WHERE block >= ?1 AND block <= ?2 ORDER BY block"
        ))
        .ctx("preparing the block query")?;
    let blocks: Vec<(Vec<u8>,)> = super::rows(&mut stmt, [window_of(from), to], "reading blocks")?;
    Ok((snapshot, blocks.into_iter().map(|(b,)| b).collect()))
}

/// The users with rows in [from, to], packed or hot, without decoding any row: for a packed
/// window, whoever has rows in it (a window holds 15 minutes).
pub(super) fn user_ids_between(
    conn: &Connection,
    from: i64,
    to: i64,
) -> Result<std::collections::BTreeSet<i64>, StoreError> {
    let mut ids = std::collections::BTreeSet::new();
    if to < from {
        return Ok(ids);
    }
    let (_snapshot, blocks) = packed_between(conn, "user_blocks", from, to)?;
    for data in blocks {
        ids.extend(block::user_ids(&data)?);
    }
    let mut stmt = conn
        .prepare_cached(
            "SELECT DISTINCT u.user_id FROM samples s JOIN user_samples u ON u.sample_id = s.id \
             WHERE s.at >= ?1 AND s.at <= ?2",
        )
        .ctx("preparing the hot user query")?;
    let hot: Vec<(i64,)> = super::rows(&mut stmt, [from, to], "reading hot users")?;
    ids.extend(hot.into_iter().map(|(id,)| id));
    Ok(ids)
}

/// The hot rows with a time in [from, to] (or only `user`'s), by user and in time order.
fn hot_rows(
    conn: &Connection,
    user: Option<i64>,
    from: i64,
    to: i64,
) -> Result<BTreeMap<i64, Vec<UserRow>>, StoreError> {
    let (gpu_columns, gpu_join) = if has_rows(conn, "user_gpu_samples")? {
        (
            "g.mem_kib, g.memory, g.util, g.processes, g.devices",
            " LEFT JOIN user_gpu_samples g ON g.sample_id = u.sample_id AND g.user_id = u.user_id",
        )
    } else {
        ("NULL, NULL, NULL, NULL, NULL", "")
    };
    let user_filter = if user.is_some() {
        " AND u.user_id = ?3"
    } else {
        ""
    };
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT u.user_id, s.at, u.cpu, u.memory, u.mem_kib, u.processes, u.tracked, u.top, \
             {gpu_columns} FROM samples s JOIN user_samples u ON u.sample_id = s.id{gpu_join} \
             WHERE s.at >= ?1 AND s.at <= ?2{user_filter} ORDER BY s.at"
        ))
        .ctx("preparing the raw user query")?;
    let mut query = match user {
        Some(id) => stmt.query(params![from, to, id]),
        None => stmt.query(params![from, to]),
    }
    .ctx("reading raw user samples")?;
    let mut out: BTreeMap<i64, Vec<UserRow>> = BTreeMap::new();
    while let Some(r) = query.next().ctx("reading raw user samples")? {
        let top: Option<Vec<u8>> = r.get(7).ctx("reading raw user samples")?;
        let gpu_kib: Option<i64> = r.get(8).ctx("reading raw user samples")?;
        let gpu = match gpu_kib {
            Some(mem_kib) => {
                let devices: Option<Vec<u8>> = r.get(12).ctx("reading raw user samples")?;
                Some(GpuRow {
                    mem_kib,
                    memory: r.get(9).ctx("reading raw user samples")?,
                    util: r.get(10).ctx("reading raw user samples")?,
                    processes: r.get(11).ctx("reading raw user samples")?,
                    devices: codec::decode_devices(devices.as_deref().unwrap_or_default())?,
                })
            }
            None => None,
        };
        let id: i64 = r.get(0).ctx("reading raw user samples")?;
        out.entry(id).or_default().push(UserRow {
            at: r.get(1).ctx("reading raw user samples")?,
            cpu: r.get(2).ctx("reading raw user samples")?,
            memory: r.get(3).ctx("reading raw user samples")?,
            mem_kib: r.get(4).ctx("reading raw user samples")?,
            processes: r.get(5).ctx("reading raw user samples")?,
            tracked: r.get(6).ctx("reading raw user samples")?,
            top: codec::decode(top.as_deref().unwrap_or_default())?,
            gpu,
        });
    }
    Ok(out)
}

/// Whether there are hot GPU rows (`user_gpu_samples`, `gpu_samples`) to read or delete with
/// the hot user rows: never on a machine without GPUs (which then reads and deletes exactly as
/// before), nor while an older file is converted (the conversion to v2 packs a v1 file's rows
/// before the GPU tables exist).
fn has_rows(conn: &Connection, table: &str) -> Result<bool, StoreError> {
    if !has_table(conn, table)? {
        return Ok(false);
    }
    conn.prepare_cached(&format!("SELECT EXISTS (SELECT 1 FROM {table})"))
        .ctx("preparing the GPU row look-up")?
        .query_row([], |r| r.get(0))
        .ctx("looking for hot GPU rows")
}

/// Whether there are GPU rows to pack, into a file that packs them (v5; a v4 file being
/// converted packs its users as it did).
fn packs_gpus(conn: &Connection) -> Result<bool, StoreError> {
    Ok(has_table(conn, "gpu_blocks")? && has_rows(conn, "gpu_samples")?)
}

fn has_table(conn: &Connection, table: &str) -> Result<bool, StoreError> {
    conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
    )
    .ctx("preparing the schema look-up")?
    .query_row([table], |r| r.get(0))
    .ctx("looking up the GPU tables")
}

/// Deletes packed rows older than `cut`: whole blocks before it, and the older part of the block
/// that straddles it; the GPUs' blocks likewise. Returns the user rows deleted.
pub(super) fn delete_before(tx: &Transaction<'_>, cut: i64) -> Result<u64, StoreError> {
    let whole_until = window_of(cut);
    let deleted: i64 = tx
        .query_row(
            "SELECT COALESCE(SUM(rows), 0) FROM user_blocks WHERE block < ?1",
            [whole_until],
            |r| r.get(0),
        )
        .ctx("counting expired packed rows")?;
    for table in ["user_blocks", "gpu_blocks"] {
        tx.execute(
            &format!("DELETE FROM {table} WHERE block < ?1"),
            [whole_until],
        )
        .ctx("deleting expired blocks")?;
    }
    let mut deleted = deleted.max(0) as u64;
    if whole_until < cut {
        let mut users = stored_block(tx, whole_until, None)?;
        let dropped = drop_before(&mut users, cut, |r| r.at);
        if dropped > 0 {
            write_block(tx, whole_until, &users)?;
            deleted += dropped as u64;
        }
        let mut devices = stored_gpu_block(tx, whole_until)?;
        if drop_before(&mut devices, cut, |r| r.at) > 0 {
            write_gpu_block(tx, whole_until, &devices)?;
        }
    }
    Ok(deleted)
}

/// Drops a block's rows before `cut` (and the keys left with none); returns how many.
fn drop_before<T>(block: &mut BTreeMap<i64, Vec<T>>, cut: i64, at: impl Fn(&T) -> i64) -> usize {
    let before: usize = block.values().map(Vec::len).sum();
    for rows in block.values_mut() {
        rows.retain(|r| at(r) >= cut);
    }
    block.retain(|_, rows| !rows.is_empty());
    before - block.values().map(Vec::len).sum::<usize>()
}
