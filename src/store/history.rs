//! Reading the past: range queries for charts and exports, and "time travel" to one sample.
//!
//! Why the resolution is chosen here and not by the caller: the CLI, the TUI and the HTTP API all
//! ask "what happened between A and B", and the answer must be fast whatever the range. Short
//! recent ranges come from raw samples; longer ones from the 1-minute rollups; anything older
//! than those (or longer than a month) from the 1-hour rollups. Buckets that retention has not
//! rolled up yet (the current minute or hour) are aggregated on the fly from the finer level with
//! the same code (`series.rs`), so a chart does not change when retention runs.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::alerts::{alert_columns, parse_kind, parse_metric, parse_severity, query_alerts};
use super::block::GpuRow;
use super::series::{
    self, GPU_SCALE, Keyed, Point, SYSTEM_METRICS, SYSTEM_SCALE, USER_GPU_SCALE, USER_SCALE,
    aggregate, align,
};
use super::{
    Context, Store, StoreError, StoredAlert, bucket_start, bytes_from_kib, from_hundredths,
};
use crate::model::{
    AlertKind, AlertState, LoadAverage, Metric, PersistentEpisode, Severity, Timestamp, TopProcess,
};

/// Raw samples answer ranges up to this long (4,320 points at a 5 s interval).
pub const RAW_MAX_SPAN_MS: i64 = 6 * 3_600_000;
/// 1-minute rollups answer ranges up to this long (46,080 points); longer ranges use hours.
pub const MINUTE_MAX_SPAN_MS: i64 = 32 * 86_400_000;

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 3_600_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryQuery {
    pub since: Timestamp,
    /// Inclusive.
    pub until: Timestamp,
    /// A login name: adds that user's series, and restricts the alert marks to that user's and
    /// the machine's.
    pub user: Option<String>,
    /// Thin the series to at most this many points (coarser buckets, same aggregation).
    pub max_points: Option<usize>,
}

/// Where the points come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Resolution {
    Raw,
    Minute,
    Hour,
}

/// A figure over a point: for a raw sample all three are the sample's value.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Agg {
    pub avg: f64,
    pub min: f64,
    pub max: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystemPoint {
    /// The sample's time, or the start of the bucket.
    pub at: Timestamp,
    /// Raw samples summarised.
    pub samples: u32,
    /// Percent of the whole machine.
    pub cpu: Agg,
    pub memory: Agg,
    pub swap: Agg,
    pub load1: Agg,
    /// Bytes per second, summed over interfaces.
    pub net_rx: Agg,
    pub net_tx: Agg,
    /// Bytes per second, summed over devices.
    pub disk_read: Agg,
    pub disk_write: Agg,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserPoint {
    pub at: Timestamp,
    /// Raw samples summarised.
    pub samples: u32,
    /// Of those, the samples in which the user was recorded; the others count as zero.
    pub present: u32,
    /// Percent of the whole machine.
    pub cpu_percent: Agg,
    pub memory_percent: Agg,
    pub memory_bytes: Agg,
    pub processes: Agg,
}

impl History {
    /// The machine's GPUs together at each point (one per system point): the whole GPUs' mean
    /// utilization and the share of their memory in use (a MIG instance is part of its GPU).
    /// Empty without GPUs in the range.
    pub fn gpu_totals(&self) -> Vec<GpuTotal> {
        let whole: Vec<&GpuSeries> = self
            .gpus
            .iter()
            .filter(|g| g.mig_parent.is_none())
            .collect();
        if whole.is_empty() {
            return Vec::new();
        }
        // A GPU split into MIG instances has no utilization reading (stored as zero), and a GPU
        // absent from part of a point (replaced, or not yet there) has zeros for that part: the
        // mean is over the GPUs that were there and have a reading, as the live summary is.
        let split = |g: &GpuSeries| self.gpus.iter().any(|m| m.mig_parent == Some(g.index));
        (0..self.system.len())
            .map(|i| {
                let (mut util, mut busy_gpus, mut used, mut total) = (0.0, 0u32, 0.0, 0.0);
                for g in &whole {
                    let Some(p) = g.points.get(i).filter(|p| p.present > 0) else {
                        continue;
                    };
                    let scale = f64::from(p.samples.max(1)) / f64::from(p.present);
                    if !split(g) {
                        util += p.utilization_percent.avg * scale;
                        busy_gpus += 1;
                    }
                    used += p.memory_used_bytes.avg * scale;
                    total += p.memory_total_bytes.avg * scale;
                }
                GpuTotal {
                    utilization_percent: if busy_gpus > 0 {
                        util / f64::from(busy_gpus)
                    } else {
                        0.0
                    },
                    memory_percent: if total > 0.0 {
                        used / total * 100.0
                    } else {
                        0.0
                    },
                }
            })
            .collect()
    }
}

/// All GPUs together at one point ([`History::gpu_totals`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GpuTotal {
    pub utilization_percent: f64,
    pub memory_percent: f64,
}

/// A user's GPU figures over a point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserGpuPoint {
    pub at: Timestamp,
    pub samples: u32,
    /// Of those, the samples in which the user held a GPU; the others count as zero.
    pub present: u32,
    /// Share of all the machine's GPUs kept busy by the user.
    pub utilization_percent: Agg,
    /// Of all the GPUs' memory.
    pub memory_percent: Agg,
    pub memory_bytes: Agg,
    pub processes: Agg,
}

/// One GPU (or MIG instance) over a range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuSeries {
    /// The UUID, as `nvidia-smi -L` shows it.
    pub id: String,
    pub index: u32,
    pub mig_parent: Option<u32>,
    pub name: String,
    pub points: Vec<GpuPoint>,
}

/// A GPU's figures over a point; a figure the driver does not give reads as zero.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuPoint {
    pub at: Timestamp,
    pub samples: u32,
    /// Of those, the samples in which the GPU was seen.
    pub present: u32,
    pub utilization_percent: Agg,
    pub memory_used_bytes: Agg,
    pub memory_total_bytes: Agg,
    pub temperature_celsius: Agg,
    pub power_watts: Agg,
}

/// An alert that was open at some time in the range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertMark {
    /// When it opened.
    pub at: Timestamp,
    pub resolved_at: Option<Timestamp>,
    pub id: i64,
    pub severity: Severity,
    pub kind: AlertKind,
    pub subject: String,
    pub metric: Metric,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct History {
    pub source: Resolution,
    /// Seconds per point: the sampling interval for raw points, else the bucket size.
    pub resolution_secs: u64,
    pub system: Vec<SystemPoint>,
    /// The queried user's points, one per system point; empty without a user.
    pub user: Vec<UserPoint>,
    /// The queried user's GPU figures, one per system point (zero where the user held no GPU);
    /// empty without a user, or when the user held no GPU in the range.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub user_gpu: Vec<UserGpuPoint>,
    /// Each GPU sampled in the range, its points one per system point (zero where it was not
    /// sampled); empty on a machine without GPUs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gpus: Vec<GpuSeries>,
    pub alerts: Vec<AlertMark>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiskPoint {
    pub path: String,
    pub used_percent: f64,
}

/// The machine at one recorded sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedSystem {
    pub interval_secs: f64,
    pub cpu_percent: f64,
    pub iowait_percent: f64,
    pub memory_percent: f64,
    pub swap_percent: f64,
    pub memory_used_bytes: u64,
    pub memory_total_bytes: u64,
    pub load: LoadAverage,
    pub net_rx_bytes_per_sec: f64,
    pub net_tx_bytes_per_sec: f64,
    pub disk_read_bytes_per_sec: f64,
    pub disk_write_bytes_per_sec: f64,
    pub processes: u64,
    pub threads: u64,
    pub cores: u64,
    pub disks: Vec<DiskPoint>,
}

/// A user as recorded at one sample (tracked or non-trivial users only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedUser {
    pub uid: u32,
    pub name: String,
    pub tracked: bool,
    pub cpu_percent: f64,
    pub memory_percent: f64,
    pub memory_bytes: u64,
    pub processes: u64,
    /// Heaviest CPU first, as recorded (up to five).
    pub top_processes: Vec<TopProcess>,
    /// What the user held on the GPUs (schema v4); None when nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<RecordedUserGpu>,
}

/// A user's GPU figures at one recorded sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedUserGpu {
    pub memory_bytes: u64,
    /// Of all the GPUs' memory.
    pub memory_percent: f64,
    /// Share of all the machine's GPUs kept busy by the user.
    pub utilization_percent: f64,
    pub processes: u64,
    /// The devices held and the memory on each, in device order.
    pub devices: Vec<RecordedUserDevice>,
}

/// The memory one user held on one device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedUserDevice {
    /// The device's UUID ([`RecordedGpu::id`]).
    pub id: String,
    pub memory_bytes: u64,
}

/// One GPU (or MIG instance) at one recorded sample. Its index, MIG parent, name and driver are
/// as last recorded for its UUID.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedGpu {
    pub id: String,
    pub index: u32,
    pub mig_parent: Option<u32>,
    pub name: String,
    pub driver: String,
    pub utilization_percent: Option<f64>,
    pub memory_used_bytes: Option<u64>,
    pub memory_total_bytes: Option<u64>,
    pub temperature_celsius: Option<f64>,
    pub power_watts: Option<f64>,
    pub processes: u64,
}

/// Everything recorded about one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedState {
    /// The sample's time (at or before the time asked for).
    pub at: Timestamp,
    pub system: RecordedSystem,
    /// Heaviest CPU first.
    pub users: Vec<RecordedUser>,
    /// Alerts open at that moment, with the state they had then (open or acknowledged); their
    /// figures are the latest recorded.
    pub alerts: Vec<StoredAlert>,
    /// Persistent-user episodes under way at that moment.
    pub persistent: Vec<PersistentEpisode>,
    /// The GPUs, in index order (MIG instances after their parent); empty without GPUs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gpus: Vec<RecordedGpu>,
}

pub(super) type SysPt = Point<8>;
pub(super) type UserPt = Point<4>;
pub(super) type GpuPt = Point<5>;

/// The series of one range at one level, every one aligned to `system`.
pub(super) struct Levels {
    pub system: Vec<SysPt>,
    /// The queried user's (empty without one).
    pub user: Vec<UserPt>,
    /// The queried user's GPU figures (zero where the user held no GPU); empty when the user
    /// held none in the range, so that a machine without GPUs pays nothing for them.
    pub user_gpu: Vec<UserPt>,
    /// Each GPU ever recorded, by id.
    pub gpus: BTreeMap<i64, Vec<GpuPt>>,
}

fn no_points() -> Vec<UserPt> {
    Vec::new()
}

/// Points aligned to `system`, or none when there are no points to align.
fn aligned_or_empty(system: &[SysPt], pts: &[UserPt]) -> Vec<UserPt> {
    if pts.is_empty() {
        Vec::new()
    } else {
        align(system, pts)
    }
}

impl Levels {
    /// Appends a finer level's points, aggregated into buckets of `size`.
    pub(super) fn extend(&mut self, tail: &Levels, size: i64) {
        let tail_system = aggregate(&tail.system, size);
        let tail_gpu = aggregate(&tail.user_gpu, size);
        // An empty side stands for zeros: filled in only when the other side has points.
        match (self.user_gpu.is_empty(), tail_gpu.is_empty()) {
            (true, true) => {}
            (false, true) => self.user_gpu.extend(align(&tail_system, &no_points())),
            (true, false) => {
                self.user_gpu = align(&self.system, &no_points());
                self.user_gpu.extend(tail_gpu);
            }
            (false, false) => self.user_gpu.extend(tail_gpu),
        }
        // Every GPU keeps one point per system point: one recorded between the reads of the two
        // levels has zeros for the stored part, one missing from the tail zeros for the tail.
        for (id, pts) in &tail.gpus {
            self.gpus
                .entry(*id)
                .or_insert_with(|| align(&self.system, &[]))
                .extend(aggregate(pts, size));
        }
        for (id, pts) in &mut self.gpus {
            if !tail.gpus.contains_key(id) {
                pts.extend(align(&tail_system, &[]));
            }
        }
        self.system.extend(tail_system);
        self.user.extend(aggregate(&tail.user, size));
    }

    /// Coarser buckets of `size` for every series.
    fn thin(&self, size: i64) -> Levels {
        Levels {
            system: aggregate(&self.system, size),
            user: aggregate(&self.user, size),
            user_gpu: aggregate(&self.user_gpu, size),
            gpus: self
                .gpus
                .iter()
                .map(|(id, pts)| (*id, aggregate(pts, size)))
                .collect(),
        }
    }
}

impl Store {
    /// Points for a time range, at a resolution chosen for it (see the module docs).
    pub fn history(&self, q: &HistoryQuery) -> Result<History, StoreError> {
        let (since, until) = (q.since.0, q.until.0);
        let user_ids = match &q.user {
            Some(name) => Some(self.user_ids_named(name)?),
            None => None,
        };
        let source = self.choose_resolution(since, until, q.max_points)?;
        let (from, unit_ms) = match source {
            Resolution::Raw => (since, 1_000),
            Resolution::Minute => (bucket_start(since, MINUTE_MS), MINUTE_MS),
            Resolution::Hour => (bucket_start(since, HOUR_MS), HOUR_MS),
        };
        let mut levels = if until < since {
            Levels {
                system: Vec::new(),
                user: Vec::new(),
                user_gpu: Vec::new(),
                gpus: BTreeMap::new(),
            }
        } else {
            self.series(source, from, until, user_ids.as_deref())?
        };
        let mut resolution_ms = match source {
            Resolution::Raw => self.raw_interval_ms(since, until)?,
            _ => unit_ms,
        };
        if let Some(max) = q.max_points {
            let max = max.max(1);
            if levels.system.len() > max {
                let span = (until - from).max(1);
                let mut size = round_up(ceil_div(span, max as i64), unit_ms).max(resolution_ms);
                loop {
                    let thinned = levels.thin(size);
                    if thinned.system.len() <= max {
                        levels = thinned;
                        break;
                    }
                    size += round_up(size / 4, unit_ms).max(unit_ms);
                }
                resolution_ms = size;
            }
        }
        let held = |pts: &[UserPt]| pts.iter().any(|p| p.present > 0);
        let user_gpu = if q.user.is_some() && held(&levels.user_gpu) {
            levels.user_gpu.iter().map(user_gpu_point).collect()
        } else {
            Vec::new()
        };
        Ok(History {
            source,
            resolution_secs: (resolution_ms.max(0) as u64).div_ceil(1000),
            system: levels.system.iter().map(system_point).collect(),
            user: if q.user.is_some() {
                levels.user.iter().map(user_point).collect()
            } else {
                Vec::new()
            },
            user_gpu,
            gpus: self.gpu_series(&levels.gpus)?,
            alerts: self.alert_marks(since, until, q.user.as_deref())?,
        })
    }

    /// The GPUs with points in the range, in index order (MIG instances after their parent).
    fn gpu_series(&self, gpus: &BTreeMap<i64, Vec<GpuPt>>) -> Result<Vec<GpuSeries>, StoreError> {
        let mut out = Vec::new();
        let mut stmt = self
            .conn
            .prepare_cached("SELECT uuid, idx, mig_parent, name FROM gpu_devices WHERE id = ?1")
            .ctx("preparing a GPU look-up")?;
        for (id, pts) in gpus.iter().filter(|(_, p)| p.iter().any(|p| p.present > 0)) {
            let (uuid, index, parent, name): (String, i64, Option<i64>, String) = stmt
                .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .ctx("looking up a GPU")?;
            let index32 = |v: i64| u32::try_from(v).unwrap_or(u32::MAX);
            out.push(GpuSeries {
                id: uuid,
                index: index32(index),
                mig_parent: parent.map(index32),
                name,
                points: pts.iter().map(gpu_point).collect(),
            });
        }
        out.sort_by_key(|g| {
            (
                g.mig_parent.unwrap_or(g.index),
                g.mig_parent.is_some(),
                g.index,
            )
        });
        Ok(out)
    }

    /// The recorded state nearest at or before `at`; None before the first raw sample kept.
    pub fn state_at(&self, at: Timestamp) -> Result<Option<RecordedState>, StoreError> {
        let row = self
            .conn
            .query_row(
                "SELECT s.id, at, interval_ms, cpu, iowait, memory, swap, mem_used_kib, \
                 mem_total_kib, load1, load5, load15, net_rx, net_tx, disk_read, disk_write, \
                 processes, threads, cores, COALESCE(d.disks, s.disks) \
                 FROM samples s LEFT JOIN disk_sets d ON d.id = s.disk_set WHERE at <= ?1 \
                 ORDER BY at DESC LIMIT 1",
                [at.0],
                |r| {
                    let mut ints = [0i64; 19];
                    for (i, v) in ints.iter_mut().enumerate() {
                        *v = r.get(i)?;
                    }
                    Ok((ints, r.get::<_, Option<String>>(19)?))
                },
            )
            .optional()
            .ctx("reading a recorded sample")?;
        let Some((v, disks)) = row else {
            return Ok(None);
        };
        let sample_at = Timestamp(v[1]);
        let disks: Vec<(String, i64)> = match disks {
            Some(j) => serde_json::from_str(&j).ctx("reading a sample's disk figures")?,
            None => Vec::new(),
        };
        let system = RecordedSystem {
            interval_secs: v[2] as f64 / 1000.0,
            cpu_percent: from_hundredths(v[3]),
            iowait_percent: from_hundredths(v[4]),
            memory_percent: from_hundredths(v[5]),
            swap_percent: from_hundredths(v[6]),
            memory_used_bytes: bytes_from_kib(v[7]),
            memory_total_bytes: bytes_from_kib(v[8]),
            load: LoadAverage {
                one: from_hundredths(v[9]),
                five: from_hundredths(v[10]),
                fifteen: from_hundredths(v[11]),
            },
            net_rx_bytes_per_sec: v[12] as f64,
            net_tx_bytes_per_sec: v[13] as f64,
            disk_read_bytes_per_sec: v[14] as f64,
            disk_write_bytes_per_sec: v[15] as f64,
            processes: v[16].max(0) as u64,
            threads: v[17].max(0) as u64,
            cores: v[18].max(0) as u64,
            disks: disks
                .into_iter()
                .map(|(path, used)| DiskPoint {
                    path,
                    used_percent: from_hundredths(used),
                })
                .collect(),
        };
        let gpus = self.recorded_gpus(sample_at.0)?;
        let users = self.recorded_users(sample_at.0)?;
        let sql = format!(
            "SELECT {} FROM alerts WHERE opened_at <= ?1 \
             AND (resolved_at IS NULL OR resolved_at > ?1) ORDER BY opened_at, id",
            alert_columns()
        );
        let mut alerts = query_alerts(&self.conn, &sql, params![sample_at.0])?;
        for a in &mut alerts {
            a.alert.state = match a.acknowledged_at {
                Some(t) if t <= sample_at => AlertState::Acknowledged,
                _ => AlertState::Open,
            };
        }
        let persistent = self.episodes_where(
            "started_at <= ?1 AND (ended_at IS NULL OR ended_at > ?2)",
            sample_at.0,
            sample_at.0,
        )?;
        Ok(Some(RecordedState {
            at: sample_at,
            system,
            users,
            alerts,
            persistent,
            gpus,
        }))
    }

    /// The login names recorded at some time in [since, until], in name order: the users a
    /// history chart can be drawn for. The rollups are looked up per user through their primary
    /// key; raw rows (hot or packed) only for the minutes not rolled up yet, at most the range's
    /// last [`RAW_MAX_SPAN_MS`], so the cost stays flat however long the range.
    pub fn users_between(
        &self,
        since: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<String>, StoreError> {
        let rolled = super::retention::watermark(&self.conn, "rollup_1m_next")?;
        let raw_since = since
            .0
            .max(until.0.saturating_sub(RAW_MAX_SPAN_MS))
            .max(rolled.unwrap_or(i64::MIN));
        let mut ids = super::compact::user_ids_between(&self.conn, raw_since, until.0)?;
        // Hours only where the minutes are gone: an hour bucket that starts before `since`
        // would also list who was there before it.
        let minutes_from: Option<i64> = self
            .conn
            .query_row("SELECT MIN(bucket) FROM system_1m", [], |r| r.get(0))
            .ctx("finding the oldest minute")?;
        let hours_until = minutes_from.map_or(until.0, |m| until.0.min(m - 1));
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT u.id FROM users u WHERE \
                 EXISTS (SELECT 1 FROM user_1m m WHERE m.user_id = u.id \
                         AND m.bucket BETWEEN ?1 AND ?3) \
                 OR EXISTS (SELECT 1 FROM user_1h h WHERE h.user_id = u.id \
                            AND h.bucket BETWEEN ?2 AND ?4)",
            )
            .ctx("preparing the users of a range")?;
        let rolled_ids = stmt
            .query_map(
                params![
                    bucket_start(since.0, MINUTE_MS),
                    bucket_start(since.0, HOUR_MS),
                    until.0,
                    hours_until
                ],
                |r| r.get(0),
            )
            .ctx("reading the users of a range")?
            .collect::<Result<Vec<i64>, _>>()
            .ctx("reading the users of a range")?;
        ids.extend(rolled_ids);
        let mut names = Vec::with_capacity(ids.len());
        let mut name_of = self
            .conn
            .prepare_cached("SELECT name FROM users WHERE id = ?1")
            .ctx("preparing a user lookup")?;
        for id in ids {
            let name: Option<String> = name_of
                .query_row([id], |r| r.get(0))
                .optional()
                .ctx("looking up a user")?;
            names.extend(name);
        }
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// The latest recorded sample strictly before `at`.
    pub fn prev_sample_time(&self, at: Timestamp) -> Result<Option<Timestamp>, StoreError> {
        self.one_time("SELECT MAX(at) FROM samples WHERE at < ?1", at)
    }

    /// The earliest recorded sample strictly after `at`.
    pub fn next_sample_time(&self, at: Timestamp) -> Result<Option<Timestamp>, StoreError> {
        self.one_time("SELECT MIN(at) FROM samples WHERE at > ?1", at)
    }

    /// Persistent-user episodes under way at some time in [since, until], oldest first.
    pub fn episodes(
        &self,
        since: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<PersistentEpisode>, StoreError> {
        self.episodes_where(
            "started_at <= ?2 AND (ended_at IS NULL OR ended_at >= ?1)",
            since.0,
            until.0,
        )
    }

    fn episodes_where(
        &self,
        filter: &str,
        a: i64,
        b: i64,
    ) -> Result<Vec<PersistentEpisode>, StoreError> {
        let sql = format!(
            "SELECT user, metric, threshold, started_at, ended_at, duration_secs, peak, average, \
             samples FROM episodes WHERE {filter} ORDER BY started_at, id"
        );
        let mut stmt = self
            .conn
            .prepare_cached(&sql)
            .ctx("preparing an episode query")?;
        type Raw = (String, String, f64, i64, Option<i64>, i64, f64, f64, i64);
        let rows: Vec<Raw> = super::rows(&mut stmt, params![a, b], "reading episodes")?;
        rows.into_iter()
            .map(
                |(user, metric, threshold, start, end, dur, peak, average, samples)| {
                    Ok(PersistentEpisode {
                        user,
                        metric: parse_metric(&metric)?,
                        threshold,
                        started_at: Timestamp(start),
                        ended_at: end.map(Timestamp),
                        duration_secs: dur.max(0) as u64,
                        peak,
                        average,
                        samples: samples.max(0) as u64,
                    })
                },
            )
            .collect()
    }

    fn one_time(&self, sql: &str, at: Timestamp) -> Result<Option<Timestamp>, StoreError> {
        self.conn
            .query_row(sql, [at.0], |r| r.get::<_, Option<i64>>(0))
            .ctx("stepping between samples")
            .map(|t| t.map(Timestamp))
    }

    /// The users recorded at one sample, packed or hot, heaviest CPU first (then by name).
    fn recorded_users(&self, at: i64) -> Result<Vec<RecordedUser>, StoreError> {
        let rows = super::compact::user_rows(&self.conn, None, at, at)?;
        let mut names = self
            .conn
            .prepare_cached("SELECT uid, name FROM users WHERE id = ?1")
            .ctx("preparing a user name look-up")?;
        let mut commands: HashMap<u64, (Arc<str>, Arc<str>)> = HashMap::new();
        let mut out = Vec::with_capacity(rows.len());
        for (id, rows) in rows {
            let (uid, name): (i64, String) = names
                .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
                .ctx("looking up a user name")?
                .ok_or_else(|| StoreError::Corrupt {
                    what: "user id of a recorded sample",
                    value: id.to_string(),
                })?;
            for row in rows {
                let mut top_processes = Vec::with_capacity(row.top.len());
                for p in row.top {
                    let (pname, cmdline) = match commands.get(&p.command) {
                        Some(c) => c.clone(),
                        None => {
                            let c = self.command(p.command)?;
                            commands.insert(p.command, c.clone());
                            c
                        }
                    };
                    top_processes.push(TopProcess {
                        pid: u32::try_from(p.pid).unwrap_or(u32::MAX),
                        name: pname,
                        cmdline,
                        cpu_percent: p.cpu_hundredths as f64 / 100.0,
                        memory_bytes: p.mem_kib.saturating_mul(1024),
                    });
                }
                out.push((
                    row.cpu,
                    RecordedUser {
                        uid: u32::try_from(uid).unwrap_or(u32::MAX),
                        name: name.clone(),
                        tracked: row.tracked,
                        cpu_percent: from_hundredths(row.cpu),
                        memory_percent: from_hundredths(row.memory),
                        memory_bytes: bytes_from_kib(row.mem_kib),
                        processes: row.processes.max(0) as u64,
                        top_processes,
                        gpu: row.gpu.map(|g| self.recorded_user_gpu(g)).transpose()?,
                    },
                ));
            }
        }
        out.sort_by(|a, b| {
            b.0.cmp(&a.0)
                .then_with(|| a.1.name.cmp(&b.1.name))
                .then_with(|| a.1.uid.cmp(&b.1.uid))
        });
        Ok(out.into_iter().map(|(_, u)| u).collect())
    }

    /// The GPUs recorded with a sample, in index order (MIG instances after their parent), hot
    /// or packed. Without GPUs, not even a look for their rows.
    fn recorded_gpus(&self, at: i64) -> Result<Vec<RecordedGpu>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, uuid, idx, mig_parent, name, driver FROM gpu_devices \
                 ORDER BY COALESCE(mig_parent, idx), mig_parent IS NOT NULL, idx",
            )
            .ctx("preparing the GPU query")?;
        type Device = (i64, String, i64, Option<i64>, String, String);
        let devices: Vec<Device> = super::rows(&mut stmt, [], "reading the GPUs")?;
        if devices.is_empty() {
            return Ok(Vec::new());
        }
        let mut rows = super::compact::gpu_rows(&self.conn, at, at)?;
        let index = |v: i64| u32::try_from(v).unwrap_or(u32::MAX);
        Ok(devices
            .into_iter()
            .filter_map(|(device, id, idx, parent, name, driver)| {
                let g = rows.remove(&device)?.pop()?;
                Some(RecordedGpu {
                    id,
                    index: index(idx),
                    mig_parent: parent.map(index),
                    name,
                    driver,
                    utilization_percent: g.util.map(from_hundredths),
                    memory_used_bytes: g.mem_kib.map(bytes_from_kib),
                    memory_total_bytes: g.total_kib.map(bytes_from_kib),
                    temperature_celsius: g.temperature.map(from_hundredths),
                    power_watts: g.power.map(|mw| mw as f64 / 1000.0),
                    processes: g.processes.max(0) as u64,
                })
            })
            .collect())
    }

    fn recorded_user_gpu(&self, g: GpuRow) -> Result<RecordedUserGpu, StoreError> {
        let mut uuid = self
            .conn
            .prepare_cached("SELECT uuid FROM gpu_devices WHERE id = ?1")
            .ctx("preparing a GPU look-up")?;
        let mut devices = Vec::with_capacity(g.devices.len());
        for (id, kib) in g.devices {
            let id: String = uuid
                .query_row([super::to_i64(id)], |r| r.get(0))
                .optional()
                .ctx("looking up a GPU")?
                .ok_or_else(|| StoreError::Corrupt {
                    what: "GPU of a recorded user",
                    value: id.to_string(),
                })?;
            devices.push(RecordedUserDevice {
                id,
                memory_bytes: kib.saturating_mul(1024),
            });
        }
        Ok(RecordedUserGpu {
            memory_bytes: bytes_from_kib(g.mem_kib),
            memory_percent: from_hundredths(g.memory),
            utilization_percent: from_hundredths(g.util),
            processes: g.processes.max(0) as u64,
            devices,
        })
    }

    /// A command's name and command line; empty when the row is gone (it cannot be while a
    /// sample refers to it, see retention).
    fn command(&self, id: u64) -> Result<(Arc<str>, Arc<str>), StoreError> {
        let row: Option<(String, String)> = self
            .conn
            .prepare_cached("SELECT name, cmdline FROM commands WHERE id = ?1")
            .ctx("preparing a command look-up")?
            .query_row([super::to_i64(id)], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .ctx("looking up a command")?;
        let (name, cmdline) = row.unwrap_or_default();
        Ok((name.into(), cmdline.into()))
    }

    fn user_ids_named(&self, name: &str) -> Result<Vec<i64>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id FROM users WHERE name = ?1 ORDER BY id")
            .ctx("preparing a user look-up")?;
        let ids = stmt
            .query_map([name], |r| r.get(0))
            .ctx("looking up a user")?
            .collect::<Result<Vec<i64>, _>>()
            .ctx("looking up a user")?;
        Ok(ids)
    }

    /// The level a range is read from: the finest that covers it, or, with a point budget, the
    /// coarsest that still fills the budget over the data there is (a 30-day chart of 400
    /// points reads 720 hours instead of 43,200 minutes).
    fn choose_resolution(
        &self,
        since: i64,
        until: i64,
        max_points: Option<usize>,
    ) -> Result<Resolution, StoreError> {
        let span = until.saturating_sub(since);
        let oldest = |sql: &str| -> Result<Option<i64>, StoreError> {
            self.conn
                .query_row(sql, [], |r| r.get::<_, Option<i64>>(0))
                .ctx("finding the oldest data")
        };
        let raw_from = oldest("SELECT MIN(at) FROM samples")?;
        let minute_from = oldest("SELECT MIN(bucket) FROM system_1m")?;
        let hour_from = oldest("SELECT MIN(bucket) FROM system_1h")?;
        // A level covers the range when it reaches back to `since`, or when no coarser level
        // reaches back further (then it is the best there is).
        let covers = |from: Option<i64>, coarser: &[Option<i64>]| match from {
            None => coarser.iter().all(Option::is_none),
            Some(f) => f <= since || coarser.iter().flatten().all(|c| *c >= f),
        };
        if let Some(max) = max_points {
            let data_from = [raw_from, minute_from, hour_from]
                .into_iter()
                .flatten()
                .min();
            let filled = until.saturating_sub(data_from.map_or(until, |f| f.max(since)));
            let max = i64::try_from(max.max(1)).unwrap_or(i64::MAX);
            let fills = |unit: i64| filled / unit >= max;
            if hour_from.is_some() && fills(HOUR_MS) {
                return Ok(Resolution::Hour);
            }
            if minute_from.is_some() && fills(MINUTE_MS) && covers(minute_from, &[hour_from]) {
                return Ok(Resolution::Minute);
            }
        }
        if span <= RAW_MAX_SPAN_MS && covers(raw_from, &[minute_from, hour_from]) {
            return Ok(Resolution::Raw);
        }
        let minute_from = minute_from.or(raw_from);
        if span <= MINUTE_MAX_SPAN_MS && covers(minute_from, &[hour_from]) {
            return Ok(Resolution::Minute);
        }
        Ok(Resolution::Hour)
    }

    /// The sampling interval of a range's raw points: the latest sample's (the first one after a
    /// start covers only the priming gap), at least 1 s.
    fn raw_interval_ms(&self, since: i64, until: i64) -> Result<i64, StoreError> {
        let ms: Option<i64> = self
            .conn
            .query_row(
                "SELECT interval_ms FROM samples WHERE at >= ?1 AND at <= ?2 ORDER BY at DESC LIMIT 1",
                [since, until],
                |r| r.get(0),
            )
            .optional()
            .ctx("reading the sampling interval")?;
        Ok(ms.unwrap_or(1_000).max(1_000))
    }

    /// The system series, and the users' and GPUs' aligned to it, for [from, to] at a level.
    /// Buckets not rolled up yet come from the finer level.
    pub(super) fn series(
        &self,
        level: Resolution,
        from: i64,
        to: i64,
        users: Option<&[i64]>,
    ) -> Result<Levels, StoreError> {
        let (tables, size, finer, watermark) = match level {
            Resolution::Raw => return self.raw_series(from, to, users),
            Resolution::Minute => (0, MINUTE_MS, Resolution::Raw, "rollup_1m_next"),
            Resolution::Hour => (1, HOUR_MS, Resolution::Minute, "rollup_1h_next"),
        };
        let table = |k: (&'static str, &'static str)| if tables == 0 { k.0 } else { k.1 };
        let rolled_until = super::retention::watermark(&self.conn, watermark)?.unwrap_or(i64::MIN);
        let stored_to = to.min(rolled_until.saturating_sub(1));
        let system = stored_system(
            &self.conn,
            table(("system_1m", "system_1h")),
            from,
            stored_to,
        )?;
        let keyed = |kind: &Keyed<4>, ids: &[i64]| {
            stored_keyed(&self.conn, kind, table(kind.tables), ids, from, stored_to)
        };
        let (user, user_gpu) = match users {
            Some(ids) => (
                align(&system, &keyed(&series::USERS, ids)?),
                aligned_or_empty(&system, &keyed(&series::USER_GPUS, ids)?),
            ),
            None => (Vec::new(), Vec::new()),
        };
        let mut gpus = BTreeMap::new();
        for id in gpu_device_ids(&self.conn)? {
            let kind = &series::GPUS;
            let pts = stored_keyed(&self.conn, kind, table(kind.tables), &[id], from, stored_to)?;
            gpus.insert(id, align(&system, &pts));
        }
        let mut out = Levels {
            system,
            user,
            user_gpu,
            gpus,
        };
        let tail_from = from.max(rolled_until);
        if tail_from <= to {
            let tail = self.series(finer, tail_from, to, users)?;
            out.extend(&tail, size);
        }
        Ok(out)
    }

    fn raw_series(&self, from: i64, to: i64, users: Option<&[i64]>) -> Result<Levels, StoreError> {
        let system = raw_system(&self.conn, from, to)?;
        let mut gpus = BTreeMap::new();
        let ids = gpu_device_ids(&self.conn)?;
        // Without GPUs, not even a look for their rows.
        let mut raw = if ids.is_empty() {
            BTreeMap::new()
        } else {
            raw_gpus(&self.conn, from, to)?
        };
        for id in ids {
            let pts = raw.remove(&id).unwrap_or_default();
            gpus.insert(id, align(&system, &pts));
        }
        let Some(ids) = users else {
            return Ok(Levels {
                system,
                user: Vec::new(),
                user_gpu: Vec::new(),
                gpus,
            });
        };
        let (mut per_id, mut gpu_per_id) = (Vec::new(), Vec::new());
        for &id in ids {
            let rows = super::compact::user_rows(&self.conn, Some(id), from, to)?;
            let rows: Vec<super::block::UserRow> = rows.into_values().flatten().collect();
            gpu_per_id.push(rows.iter().filter_map(raw_user_gpu_point).collect());
            per_id.push(rows.into_iter().map(raw_user_point).collect());
        }
        Ok(Levels {
            user: align(&system, &merge(per_id)),
            user_gpu: aligned_or_empty(&system, &merge(gpu_per_id)),
            system,
            gpus,
        })
    }

    fn alert_marks(
        &self,
        since: i64,
        until: i64,
        user: Option<&str>,
    ) -> Result<Vec<AlertMark>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT opened_at, resolved_at, id, severity, kind, subject, metric, message \
                 FROM alerts WHERE opened_at <= ?2 AND (resolved_at IS NULL OR resolved_at >= ?1) \
                 AND (?3 IS NULL OR subject = ?3 OR kind = 'system') ORDER BY opened_at, id",
            )
            .ctx("preparing the alert marks query")?;
        type Raw = (
            i64,
            Option<i64>,
            i64,
            String,
            String,
            String,
            String,
            String,
        );
        let rows: Vec<Raw> = super::rows(
            &mut stmt,
            params![since, until, user],
            "reading alert marks",
        )?;
        rows.into_iter()
            .map(
                |(at, resolved, id, severity, kind, subject, metric, message)| {
                    Ok(AlertMark {
                        at: Timestamp(at),
                        resolved_at: resolved.map(Timestamp),
                        id,
                        severity: parse_severity(&severity)?,
                        kind: parse_kind(&kind)?,
                        subject,
                        metric: parse_metric(&metric)?,
                        message,
                    })
                },
            )
            .collect()
    }
}

/// Raw system points with a time in [from, to], in time order.
pub(super) fn raw_system(conn: &Connection, from: i64, to: i64) -> Result<Vec<SysPt>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT at, cpu, memory, swap, load1, net_rx, net_tx, disk_read, disk_write \
             FROM samples WHERE at >= ?1 AND at <= ?2 ORDER BY at",
        )
        .ctx("preparing the raw system query")?;
    stmt.query_map([from, to], |r| {
        let mut v = [0.0; 8];
        for (i, x) in v.iter_mut().enumerate() {
            *x = r.get::<_, i64>(i + 1)? as f64;
        }
        Ok(Point::raw(r.get(0)?, v, true))
    })
    .ctx("reading raw samples")?
    .collect::<Result<Vec<_>, _>>()
    .ctx("reading raw samples")
}

/// One recorded user row as a raw point.
pub(super) fn raw_user_point(r: super::block::UserRow) -> UserPt {
    let v = [r.cpu, r.memory, r.mem_kib, r.processes].map(|x| x as f64);
    Point::raw(r.at, v, true)
}

pub(super) fn stored_system(
    conn: &Connection,
    table: &str,
    from: i64,
    to: i64,
) -> Result<Vec<SysPt>, StoreError> {
    if to < from {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT bucket, samples, {} FROM {table} WHERE bucket >= ?1 AND bucket <= ?2 \
             ORDER BY bucket",
        series::columns(&SYSTEM_METRICS)
    );
    let mut stmt = conn.prepare_cached(&sql).ctx("preparing a rollup query")?;
    let rows = stmt
        .query_map([from, to], |r| Point::from_row(r, false))
        .ctx("reading system rollups")?
        .collect::<Result<Vec<_>, _>>()
        .ctx("reading system rollups")?;
    Ok(rows)
}

/// Raw GPU points with a time in [from, to], hot or packed, by device id, in time order.
pub(super) fn raw_gpus(
    conn: &Connection,
    from: i64,
    to: i64,
) -> Result<BTreeMap<i64, Vec<GpuPt>>, StoreError> {
    Ok(super::compact::gpu_rows(conn, from, to)?
        .into_iter()
        .map(|(id, rows)| {
            let points = rows
                .into_iter()
                .map(|g| {
                    let v = [g.util, g.mem_kib, g.total_kib, g.temperature, g.power]
                        .map(|x| x.unwrap_or(0) as f64);
                    Point::raw(g.at, v, true)
                })
                .collect();
            (id, points)
        })
        .collect())
}

/// The GPUs ever recorded (a handful), by id.
pub(super) fn gpu_device_ids(conn: &Connection) -> Result<Vec<i64>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT id FROM gpu_devices ORDER BY id")
        .ctx("preparing the GPU list")?;
    let ids: Vec<(i64,)> = super::rows(&mut stmt, [], "listing GPUs")?;
    Ok(ids.into_iter().map(|(id,)| id).collect())
}

/// A recorded user row's GPU figures as a raw point; None when the user held no GPU then.
pub(super) fn raw_user_gpu_point(r: &super::block::UserRow) -> Option<UserPt> {
    let g = r.gpu.as_ref()?;
    let v = [g.util, g.memory, g.mem_kib, g.processes].map(|x| x as f64);
    Some(Point::raw(r.at, v, true))
}

/// The rollup points of one subject (several ids of one user name are merged) in [from, to].
pub(super) fn stored_keyed<const N: usize>(
    conn: &Connection,
    kind: &Keyed<N>,
    table: &str,
    ids: &[i64],
    from: i64,
    to: i64,
) -> Result<Vec<Point<N>>, StoreError> {
    if to < from {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT bucket, samples, present, {} FROM {table} \
             WHERE {} = ?1 AND bucket >= ?2 AND bucket <= ?3 ORDER BY bucket",
        series::columns(kind.metrics),
        kind.key
    );
    let mut stmt = conn.prepare_cached(&sql).ctx("preparing a rollup query")?;
    let mut per_id = Vec::new();
    for &id in ids {
        let rows = stmt
            .query_map(params![id, from, to], |r| Point::from_row(r, true))
            .ctx("reading rollups")?
            .collect::<Result<Vec<_>, _>>()
            .ctx("reading rollups")?;
        per_id.push(rows);
    }
    Ok(merge(per_id))
}

/// Several series of the same user (one per interned id: the same name under two uids) as one,
/// adding the figures of points at the same time.
fn merge<const N: usize>(mut series: Vec<Vec<Point<N>>>) -> Vec<Point<N>> {
    if series.len() <= 1 {
        return series.pop().unwrap_or_default();
    }
    let mut all: Vec<Point<N>> = series.into_iter().flatten().collect();
    all.sort_by_key(|p| p.at);
    let mut out: Vec<Point<N>> = Vec::with_capacity(all.len());
    for p in all {
        match out.last_mut() {
            Some(last) if last.at == p.at => {
                last.present = last.present.max(p.present);
                for i in 0..N {
                    last.min[i] += p.min[i];
                    last.avg[i] += p.avg[i];
                    last.max[i] += p.max[i];
                }
            }
            _ => out.push(p),
        }
    }
    out
}

/// Ceiling division for non-negative `v` and positive `d`.
fn ceil_div(v: i64, d: i64) -> i64 {
    let d = d.max(1);
    v / d + i64::from(v % d != 0)
}

fn round_up(v: i64, unit: i64) -> i64 {
    ceil_div(v, unit) * unit.max(1)
}

fn agg<const N: usize>(p: &Point<N>, i: usize, scale: f64) -> Agg {
    Agg {
        avg: p.avg[i] / scale,
        min: p.min[i] / scale,
        max: p.max[i] / scale,
    }
}

fn system_point(p: &SysPt) -> SystemPoint {
    let a = |i: usize| agg(p, i, SYSTEM_SCALE[i]);
    SystemPoint {
        at: Timestamp(p.at),
        samples: p.samples,
        cpu: a(0),
        memory: a(1),
        swap: a(2),
        load1: a(3),
        net_rx: a(4),
        net_tx: a(5),
        disk_read: a(6),
        disk_write: a(7),
    }
}

fn user_point(p: &UserPt) -> UserPoint {
    let a = |i: usize| agg(p, i, USER_SCALE[i]);
    UserPoint {
        at: Timestamp(p.at),
        samples: p.samples,
        present: p.present,
        cpu_percent: a(0),
        memory_percent: a(1),
        memory_bytes: a(2),
        processes: a(3),
    }
}

fn user_gpu_point(p: &UserPt) -> UserGpuPoint {
    let a = |i: usize| agg(p, i, USER_GPU_SCALE[i]);
    UserGpuPoint {
        at: Timestamp(p.at),
        samples: p.samples,
        present: p.present,
        utilization_percent: a(0),
        memory_percent: a(1),
        memory_bytes: a(2),
        processes: a(3),
    }
}

fn gpu_point(p: &GpuPt) -> GpuPoint {
    let a = |i: usize| agg(p, i, GPU_SCALE[i]);
    GpuPoint {
        at: Timestamp(p.at),
        samples: p.samples,
        present: p.present,
        utilization_percent: a(0),
        memory_used_bytes: a(1),
        memory_total_bytes: a(2),
        temperature_celsius: a(3),
        power_watts: a(4),
    }
}

/// The query behind `sysmon history` and `GET /api/v1/history`: `since` and `until` as
/// [`crate::time::parse_when`] reads them (`until` defaults to now).
pub fn history_query(
    since: &str,
    until: Option<&str>,
    user: Option<String>,
    now: Timestamp,
) -> Result<HistoryQuery, String> {
    let since = crate::time::parse_when(since, now)?;
    let until = match until {
        Some(u) => crate::time::parse_when(u, now)?,
        None => now,
    };
    if until <= since {
        return Err("until must be later than since".into());
    }
    Ok(HistoryQuery {
        since,
        until,
        user,
        max_points: None,
    })
}
