//! The per-sample write: everything one tick of the daemon produced, in one transaction.
//!
//! Why one transaction: the alert rows, the mails about them and the tracker state that decided
//! them must agree after a crash. If the mail were queued in a separate transaction, a crash in
//! between would lose it (or, the other way round, send it twice after the tracker re-decides);
//! if the tracker state were saved apart from the alerts, a restart could re-open an alert that
//! is already in the table. The sample's figures ride along because they are what the alert is
//! about, and one commit per tick is also the cheapest way to write them.
//!
//! Which users are recorded: every *tracked* user (the tracker may alert on them, so history must
//! show them even when idle), and every other user at or above [`TRIVIAL_PERCENT`] of CPU or
//! memory, and every user holding GPU memory or running on a GPU (a job that holds a GPU idle
//! is what admins of GPU servers look for, and it may use no CPU at all). System accounts idling
//! at 0.0 % would otherwise be most of the rows; in history a user who was not recorded counts
//! as zero.
//!
//! GPU figures (schema v4) go to tables of their own (`gpu_samples` per device, and
//! `user_gpu_samples` beside a user's row), written only when the snapshot has GPUs: a machine
//! without them writes exactly what it wrote before.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use rusqlite::{OptionalExtension, Transaction, TransactionBehavior, params};

use super::codec::{self, StoredProcess};
use super::{Context, Store, StoreError, TRIVIAL_PERCENT, hundredths, kib, to_i64};
use crate::model::{AlertKey, Event, GpuDevice, Mail, Snapshot, Timestamp, UserStats};
use crate::track::TrackerState;

/// At most this many top processes are kept per user and sample.
pub const MAX_TOP_PROCESSES: usize = 5;

/// A command's `last_seen` is rewritten at most this often; retention keeps commands whose
/// `last_seen` is within this margin of the oldest raw sample, so a command still referenced is
/// never deleted.
pub(super) const COMMAND_TOUCH_MS: i64 = 3_600_000;

/// Everything one tick produced.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    pub snapshot: &'a Snapshot,
    /// The tracker's events for this snapshot (and any operator actions applied before it).
    pub events: &'a [Event],
    /// Notifications to queue in the outbox.
    pub mails: &'a [PendingMail],
    /// The tracker's state after the events.
    pub tracker: &'a TrackerState,
}

/// A rendered mail waiting to be queued, with the alert it concerns.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingMail {
    pub mail: Mail,
    /// The store links the outbox row to this key's alert row: the one still open, or else the
    /// latest (an alert resolved in this same transaction). `mail.alert_id` is used when this is
    /// None.
    pub alert_key: Option<AlertKey>,
    /// Already delivered, from memory, while the database could not be written: the row is
    /// recorded as sent at this time and never sent again.
    pub sent_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct RecordOutcome {
    /// The `samples` row.
    pub sample_id: i64,
    /// The sample was already in the file (a retried write whose first attempt committed):
    /// nothing was written again, so no mail is queued twice.
    pub already_recorded: bool,
    /// Users given a row (see the module docs for which).
    pub users_recorded: usize,
    /// Alerts opened in this transaction, by key, with their new ids.
    pub opened: BTreeMap<AlertKey, i64>,
    /// The outbox ids of the queued mails, in the order given.
    pub mail_ids: Vec<i64>,
}

/// Whether a user gets a row in this sample.
pub fn worth_recording(u: &UserStats) -> bool {
    u.tracked
        || u.cpu_percent >= TRIVIAL_PERCENT
        || u.memory_percent >= TRIVIAL_PERCENT
        || holds_gpu(u)
}

/// The user has a process on a GPU (holding memory, or busy on a driver that does not say).
fn holds_gpu(u: &UserStats) -> bool {
    u.gpu
        .as_ref()
        .is_some_and(|g| g.memory_bytes > 0 || g.processes > 0)
}

/// A GPU's identity as `gpu_devices` keeps it: index, MIG parent, name, driver.
pub(super) type GpuIdentity = (u32, Option<u32>, Arc<str>, Arc<str>);

fn identity(d: &GpuDevice) -> GpuIdentity {
    (
        d.index,
        d.mig.map(|m| m.parent_index),
        d.name.clone(),
        d.driver.clone(),
    )
}

/// Interned ids created inside the running transaction; they join the caches only once it
/// commits, so a rolled-back transaction cannot leave an id in memory that the file never got.
#[derive(Default)]
struct NewIds {
    users: HashMap<(u32, String), i64>,
    commands: HashMap<(String, String), (i64, i64)>,
    gpus: HashMap<Arc<str>, (i64, GpuIdentity)>,
}

impl Store {
    /// Writes one sample with its consequences, all or nothing. See the module docs.
    pub fn record(&mut self, rec: &Record<'_>) -> Result<RecordOutcome, StoreError> {
        let snap = rec.snapshot;
        let at = snap.at.0;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .ctx("starting the transaction for a sample")?;
        let existing: Option<i64> = tx
            .query_row("SELECT id FROM samples WHERE at = ?1", [at], |r| r.get(0))
            .optional()
            .ctx("looking for the sample")?;
        if let Some(sample_id) = existing {
            return Ok(RecordOutcome {
                sample_id,
                already_recorded: true,
                ..RecordOutcome::default()
            });
        }
        let sample_id = insert_sample(&tx, snap)?;
        let mut fresh = NewIds::default();
        let mut users_recorded = 0;
        let gpu_ids = insert_gpus(&tx, sample_id, &self.gpu_ids, &mut fresh, snap)?;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO user_samples \
                     (sample_id, user_id, cpu, memory, mem_kib, processes, tracked, top) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .ctx("preparing the user rows")?;
            for u in snap.users.iter().filter(|u| worth_recording(u)) {
                let user_id = user_id(&tx, &self.user_ids, &mut fresh, u)?;
                let mut top = Vec::with_capacity(u.top_processes.len());
                for p in u.top_processes.iter().take(MAX_TOP_PROCESSES) {
                    let command =
                        command_id(&tx, &self.command_ids, &mut fresh, &p.name, &p.cmdline, at)?;
                    top.push(StoredProcess::new(
                        p.pid,
                        command,
                        p.cpu_percent,
                        p.memory_bytes,
                    ));
                }
                codec::canonical_order(&mut top);
                let top = (!top.is_empty()).then(|| codec::encode(&top));
                insert
                    .execute(params![
                        sample_id,
                        user_id,
                        hundredths(u.cpu_percent),
                        hundredths(u.memory_percent),
                        kib(u.memory_bytes),
                        to_i64(u.processes),
                        u.tracked,
                        top,
                    ])
                    .ctx("writing a user row")?;
                if holds_gpu(u) {
                    insert_user_gpu(&tx, sample_id, user_id, u, snap, &gpu_ids)?;
                }
                users_recorded += 1;
            }
        }
        let opened = super::alerts::apply_events(&tx, rec.events, snap.at)?;
        let mut mail_ids = Vec::with_capacity(rec.mails.len());
        for m in rec.mails {
            mail_ids.push(queue_mail(&tx, m, snap.at)?);
        }
        save_tracker_state(&tx, rec.tracker, snap.at, self.handed_out_cursor.get())?;
        mark_rollups_dirty(&tx, at)?;
        tx.commit().ctx("committing the sample")?;
        self.user_ids.extend(fresh.users);
        self.command_ids.extend(fresh.commands);
        self.gpu_ids.extend(fresh.gpus);
        if at >= self.compact_due {
            self.compact_after_record(at);
        }
        Ok(RecordOutcome {
            sample_id,
            already_recorded: false,
            users_recorded,
            opened,
            mail_ids,
        })
    }

    /// Packs the windows that have become complete (see `compact.rs`). The sample is already
    /// committed, so a failure here must not fail `record`: the rows stay hot (readable, nothing
    /// lost), compaction is retried a minute later, and `run_retention` reports the error.
    fn compact_after_record(&mut self, at: i64) {
        let done = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .ctx("starting compaction")
            .and_then(|tx| {
                super::compact::compact(&tx)?;
                tx.commit().ctx("committing compaction")
            });
        self.compact_due = match done {
            // The next window becomes complete COMPACT_DELAY_MS after it ends.
            Ok(()) => {
                super::compact::window_of(at.saturating_sub(super::compact::COMPACT_DELAY_MS))
                    .saturating_add(super::compact::BLOCK_MS + super::compact::COMPACT_DELAY_MS)
            }
            Err(_) => at.saturating_add(60_000),
        };
    }

    /// The tracker state saved with the last recorded sample. An error when it is there but
    /// cannot be read (for instance written by another version): the caller may start afresh.
    pub fn load_tracker_state(&self) -> Result<Option<TrackerState>, StoreError> {
        let json: Option<String> = self
            .conn
            .query_row("SELECT state FROM tracker_state WHERE id = 1", [], |r| {
                r.get(0)
            })
            .optional()
            .ctx("reading the saved tracker state")?;
        json.map(|j| serde_json::from_str(&j))
            .transpose()
            .ctx("the saved tracker state cannot be read")
    }

    /// Where a restarted daemon should resume [`Store::operator_actions_since`]: just after the
    /// actions its saved tracker state already reflects, or — without a saved state, when the
    /// tracker starts empty and old actions mean nothing to it — after the latest action.
    pub fn resume_cursor(&self) -> Result<i64, StoreError> {
        let saved: Option<i64> = self
            .conn
            .query_row(
                "SELECT operator_cursor FROM tracker_state WHERE id = 1",
                [],
                |r| r.get(0),
            )
            .optional()
            .ctx("reading the saved operator cursor")?;
        match saved {
            Some(c) => Ok(c),
            None => self.latest_operator_seq(),
        }
    }
}

fn insert_sample(tx: &Transaction<'_>, snap: &Snapshot) -> Result<i64, StoreError> {
    let sys = &snap.system;
    let sum = |it: &mut dyn Iterator<Item = f64>| it.sum::<f64>().round() as i64;
    let net_rx = sum(&mut sys.net.iter().map(|n| n.rx_bytes_per_sec));
    let net_tx = sum(&mut sys.net.iter().map(|n| n.tx_bytes_per_sec));
    let disk_read = sum(&mut sys.disk_io.iter().map(|d| d.read_bytes_per_sec));
    let disk_write = sum(&mut sys.disk_io.iter().map(|d| d.write_bytes_per_sec));
    let disks: Vec<(&str, i64)> = sys
        .disks
        .iter()
        .filter(|d| d.ok)
        .map(|d| (d.path.as_str(), hundredths(d.used_percent)))
        .collect();
    let disk_set = if disks.is_empty() {
        None
    } else {
        let json = serde_json::to_string(&disks).ctx("encoding the disk figures")?;
        Some(disk_set_id(tx, &json)?)
    };
    tx.prepare_cached(
        "INSERT INTO samples (at, interval_ms, cpu, iowait, memory, swap, mem_used_kib, \
         mem_total_kib, load1, load5, load15, net_rx, net_tx, disk_read, disk_write, processes, \
         threads, cores, disk_set) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, \
         ?19)",
    )
    .ctx("preparing the sample row")?
    .execute(params![
        snap.at.0,
        (snap.interval_secs * 1000.0).round() as i64,
        hundredths(sys.cpu.total.busy),
        hundredths(sys.cpu.total.iowait),
        hundredths(sys.memory.used_percent),
        hundredths(sys.memory.swap_used_percent),
        kib(sys.memory.used_bytes),
        kib(sys.memory.total_bytes),
        hundredths(sys.load.one),
        hundredths(sys.load.five),
        hundredths(sys.load.fifteen),
        net_rx,
        net_tx,
        disk_read,
        disk_write,
        to_i64(sys.tasks.processes),
        to_i64(sys.tasks.threads),
        to_i64(sys.cpu.count as u64),
        disk_set,
    ])
    .ctx("writing the sample row")?;
    Ok(tx.last_insert_rowid())
}

/// Writes one `gpu_samples` row per device; returns each device's interned id by UUID.
fn insert_gpus(
    tx: &Transaction<'_>,
    sample_id: i64,
    cache: &HashMap<Arc<str>, (i64, GpuIdentity)>,
    fresh: &mut NewIds,
    snap: &Snapshot,
) -> Result<HashMap<Arc<str>, i64>, StoreError> {
    let mut ids = HashMap::with_capacity(snap.gpu.devices.len());
    if snap.gpu.devices.is_empty() {
        return Ok(ids);
    }
    let mut insert = tx
        .prepare_cached(
            "INSERT OR REPLACE INTO gpu_samples (sample_id, device_id, util, mem_kib, total_kib, \
             temperature, power, processes) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .ctx("preparing the GPU rows")?;
    for d in &snap.gpu.devices {
        let id = gpu_id(tx, cache, fresh, d)?;
        ids.insert(d.id.clone(), id);
        insert
            .execute(params![
                sample_id,
                id,
                d.utilization_percent.map(hundredths),
                d.memory_used_bytes.map(kib),
                d.memory_total_bytes.map(kib),
                d.temperature_celsius.map(hundredths),
                d.power_watts.map(|w| (w * 1000.0).round() as i64),
                to_i64(d.processes),
            ])
            .ctx("writing a GPU row")?;
    }
    Ok(ids)
}

/// A device's interned id, added or brought up to date (index, name) when it changed.
fn gpu_id(
    tx: &Transaction<'_>,
    cache: &HashMap<Arc<str>, (i64, GpuIdentity)>,
    fresh: &mut NewIds,
    d: &GpuDevice,
) -> Result<i64, StoreError> {
    let ident = identity(d);
    if let Some((id, known)) = fresh.gpus.get(&d.id).or_else(|| cache.get(&d.id))
        && *known == ident
    {
        return Ok(*id);
    }
    let id = tx
        .prepare_cached(
            "INSERT INTO gpu_devices (uuid, idx, mig_parent, name, driver) \
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (uuid) DO UPDATE SET idx = excluded.idx, \
             mig_parent = excluded.mig_parent, name = excluded.name, driver = excluded.driver \
             RETURNING id",
        )
        .ctx("preparing a GPU look-up")?
        .query_row(
            params![&*d.id, ident.0, ident.1, &*ident.2, &*ident.3],
            |r| r.get(0),
        )
        .ctx("interning a GPU")?;
    fresh.gpus.insert(d.id.clone(), (id, ident));
    Ok(id)
}

/// A recorded user's GPU figures, with the memory held on each device (from the snapshot's
/// GPU processes, which carry the uid).
fn insert_user_gpu(
    tx: &Transaction<'_>,
    sample_id: i64,
    user_id: i64,
    u: &UserStats,
    snap: &Snapshot,
    gpu_ids: &HashMap<Arc<str>, i64>,
) -> Result<(), StoreError> {
    let Some(g) = &u.gpu else {
        return Ok(());
    };
    let mut per_device: BTreeMap<u64, u64> = BTreeMap::new();
    for p in snap.gpu.processes.iter().filter(|p| p.uid == Some(u.uid)) {
        if let Some(&id) = gpu_ids.get(&p.device) {
            let held = per_device.entry(id.max(0) as u64).or_default();
            *held = held.saturating_add(p.memory_bytes.unwrap_or(0));
        }
    }
    let devices: Vec<(u64, u64)> = per_device
        .into_iter()
        .map(|(id, bytes)| (id, kib(bytes).max(0) as u64))
        .collect();
    tx.prepare_cached(
        "INSERT INTO user_gpu_samples (sample_id, user_id, mem_kib, memory, util, processes, \
         devices) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .ctx("preparing a user's GPU row")?
    .execute(params![
        sample_id,
        user_id,
        kib(g.memory_bytes),
        hundredths(g.memory_percent),
        hundredths(g.utilization_percent),
        to_i64(g.processes),
        (!devices.is_empty()).then(|| codec::encode_devices(&devices)),
    ])
    .ctx("writing a user's GPU row")?;
    Ok(())
}

/// The id of a set of disk figures, added if it is new (`disk_sets`, schema v3).
fn disk_set_id(tx: &Transaction<'_>, json: &str) -> Result<i64, StoreError> {
    let found = tx
        .prepare_cached("SELECT id FROM disk_sets WHERE disks = ?1")
        .ctx("preparing the disk set lookup")?
        .query_row([json], |r| r.get(0))
        .optional()
        .ctx("looking up the disk figures")?;
    if let Some(id) = found {
        return Ok(id);
    }
    tx.prepare_cached("INSERT INTO disk_sets (disks) VALUES (?1)")
        .ctx("preparing the disk set insert")?
        .execute([json])
        .ctx("writing the disk figures")?;
    Ok(tx.last_insert_rowid())
}

fn user_id(
    tx: &Transaction<'_>,
    cache: &HashMap<(u32, String), i64>,
    fresh: &mut NewIds,
    u: &UserStats,
) -> Result<i64, StoreError> {
    let key = (u.uid, u.name.to_string());
    if let Some(&id) = cache.get(&key).or_else(|| fresh.users.get(&key)) {
        return Ok(id);
    }
    let id = tx
        .query_row(
            "INSERT INTO users (uid, name) VALUES (?1, ?2) \
             ON CONFLICT (name, uid) DO UPDATE SET uid = excluded.uid RETURNING id",
            params![u.uid, &*u.name],
            |r| r.get(0),
        )
        .ctx("interning a user name")?;
    fresh.users.insert(key, id);
    Ok(id)
}

fn command_id(
    tx: &Transaction<'_>,
    cache: &HashMap<(String, String), (i64, i64)>,
    fresh: &mut NewIds,
    name: &str,
    cmdline: &str,
    at: i64,
) -> Result<i64, StoreError> {
    let key = (name.to_string(), cmdline.to_string());
    if let Some(&(id, _)) = fresh.commands.get(&key) {
        return Ok(id);
    } else if let Some(&(id, seen)) = cache.get(&key) {
        if at.saturating_sub(seen) < COMMAND_TOUCH_MS {
            return Ok(id);
        }
        let touched = tx
            .execute(
                "UPDATE commands SET last_seen = MAX(last_seen, ?2) WHERE id = ?1",
                params![id, at],
            )
            .ctx("refreshing a command's last use")?;
        if touched == 1 {
            fresh.commands.insert(key, (id, at));
            return Ok(id);
        }
    }
    let id = tx
        .query_row(
            "INSERT INTO commands (name, cmdline, last_seen) VALUES (?1, ?2, ?3) \
             ON CONFLICT (name, cmdline) DO UPDATE SET last_seen = MAX(last_seen, excluded.last_seen) \
             RETURNING id",
            params![name, cmdline, at],
            |r| r.get(0),
        )
        .ctx("interning a command")?;
    fresh.commands.insert(key, (id, at));
    Ok(id)
}

fn queue_mail(tx: &Transaction<'_>, m: &PendingMail, at: Timestamp) -> Result<i64, StoreError> {
    let alert_id = match &m.alert_key {
        Some(key) => super::alerts::row_for_key(tx, key)?.or(m.mail.alert_id),
        None => m.mail.alert_id,
    };
    tx.prepare_cached(
        "INSERT INTO outbox (created_at, alert_id, severity, subject, body, next_attempt_at, \
         sent_at, last_attempt_at) VALUES (?1, ?2, ?3, ?4, ?5, ?1, ?6, ?6)",
    )
    .ctx("preparing the outbox row")?
    .execute(params![
        at.0,
        alert_id,
        m.mail.severity.as_str(),
        m.mail.subject,
        m.mail.body,
        m.sent_at.map(|t| t.0),
    ])
    .ctx("queueing a mail")?;
    Ok(tx.last_insert_rowid())
}

fn save_tracker_state(
    tx: &Transaction<'_>,
    state: &TrackerState,
    at: Timestamp,
    cursor: i64,
) -> Result<(), StoreError> {
    let json = serde_json::to_string(state).ctx("encoding the tracker state")?;
    tx.prepare_cached(
        "INSERT INTO tracker_state (id, saved_at, operator_cursor, state) VALUES (1, ?1, ?2, ?3) \
         ON CONFLICT (id) DO UPDATE SET saved_at = excluded.saved_at, \
         operator_cursor = MAX(operator_cursor, excluded.operator_cursor), state = excluded.state",
    )
    .ctx("preparing the tracker state")?
    .execute(params![at.0, cursor, json])
    .ctx("saving the tracker state")?;
    Ok(())
}

/// A sample older than a rollup watermark (a late write after a database outage) moves the
/// watermark back, so the next retention run recomputes the buckets it belongs to; likewise the
/// compaction watermark, so its window is packed again with it.
fn mark_rollups_dirty(tx: &Transaction<'_>, at: i64) -> Result<(), StoreError> {
    let mut stmt = tx
        .prepare_cached("UPDATE meta SET value = MIN(value, ?2) WHERE key = ?1")
        .ctx("preparing the rollup watermark")?;
    for (key, size) in super::retention::WATERMARKS {
        stmt.execute(params![key, super::bucket_start(at, size)])
            .ctx("moving a rollup watermark back")?;
    }
    stmt.execute(params![
        super::compact::WATERMARK,
        super::compact::window_of(at)
    ])
    .ctx("moving the compaction watermark back")?;
    Ok(())
}
