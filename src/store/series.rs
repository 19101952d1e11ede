//! Time series in storage units, and the one aggregation both the rollups and the queries use.
//!
//! Why one implementation: `run_retention` writes 1-minute and 1-hour rollups, and `history`
//! aggregates on the fly whatever is not rolled up yet (the current minute, the current hour) or
//! must be thinned to `max_points`. If those were two pieces of code (SQL for one, Rust for the
//! other) a chart would change shape the moment retention ran. Here both go through
//! [`aggregate`]: averages weighted by the number of samples, minimum of minima, maximum of
//! maxima.
//!
//! Users: a user is recorded only in the samples where they were tracked or non-trivial. Every
//! user series is first [`align`]ed to the system series, so a sample (or bucket) without the
//! user counts as zero: averages are over all samples of the bucket, and the minimum of a bucket
//! the user was missing from is zero.

use rusqlite::{Row, Transaction, params};

use super::{Context, StoreError};

/// The system figures, in this order, as named in the rollup tables' columns.
pub(super) const SYSTEM_METRICS: [&str; 8] = [
    "cpu",
    "memory",
    "swap",
    "load1",
    "net_rx",
    "net_tx",
    "disk_read",
    "disk_write",
];
/// Storage unit per public unit: hundredths for percentages and load, bytes/s as they are.
pub(super) const SYSTEM_SCALE: [f64; 8] = [100.0, 100.0, 100.0, 100.0, 1.0, 1.0, 1.0, 1.0];

/// The per-user figures, in this order.
pub(super) const USER_METRICS: [&str; 4] = ["cpu", "memory", "mem_kib", "processes"];
/// Memory is stored in KiB and handed out in bytes.
pub(super) const USER_SCALE: [f64; 4] = [100.0, 100.0, 1.0 / 1024.0, 1.0];

/// A user's GPU figures (schema v4, `user_gpu_1m`, `user_gpu_1h`): utilization and memory share
/// in hundredths of a percent, memory in KiB, processes.
pub(super) const USER_GPU_METRICS: [&str; 4] = ["util", "memory", "mem_kib", "processes"];
pub(super) const USER_GPU_SCALE: [f64; 4] = [100.0, 100.0, 1.0 / 1024.0, 1.0];

/// A GPU's figures (`gpu_1m`, `gpu_1h`): utilization in hundredths of a percent, memory used and
/// total in KiB, temperature in hundredths of a degree, power in milliwatts. A figure the driver
/// does not give counts as zero.
pub(super) const GPU_METRICS: [&str; 5] = ["util", "mem_kib", "total_kib", "temperature", "power"];
pub(super) const GPU_SCALE: [f64; 5] = [100.0, 1.0 / 1024.0, 1.0 / 1024.0, 100.0, 1000.0];

/// A rollup table keyed by a subject (a user, a GPU) and its figures.
#[derive(Debug, Clone, Copy)]
pub(super) struct Keyed<const N: usize> {
    /// The 1-minute and the 1-hour table.
    pub tables: (&'static str, &'static str),
    /// The subject's column.
    pub key: &'static str,
    pub metrics: &'static [&'static str; N],
}

pub(super) const USERS: Keyed<4> = Keyed {
    tables: ("user_1m", "user_1h"),
    key: "user_id",
    metrics: &USER_METRICS,
};
pub(super) const USER_GPUS: Keyed<4> = Keyed {
    tables: ("user_gpu_1m", "user_gpu_1h"),
    key: "user_id",
    metrics: &USER_GPU_METRICS,
};
pub(super) const GPUS: Keyed<5> = Keyed {
    tables: ("gpu_1m", "gpu_1h"),
    key: "device_id",
    metrics: &GPU_METRICS,
};

/// One point: a raw sample (min = avg = max) or a bucket.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Point<const N: usize> {
    /// The sample's time, or the start of the bucket.
    pub at: i64,
    /// System samples summarised.
    pub samples: u32,
    /// Samples in which the subject was recorded (equal to `samples` for the system).
    pub present: u32,
    pub min: [f64; N],
    pub avg: [f64; N],
    pub max: [f64; N],
}

impl<const N: usize> Point<N> {
    pub fn raw(at: i64, values: [f64; N], present: bool) -> Self {
        Point {
            at,
            samples: 1,
            present: u32::from(present),
            min: values,
            avg: values,
            max: values,
        }
    }

    /// A subject absent from a bucket of `samples` samples.
    pub fn zero(at: i64, samples: u32) -> Self {
        Point {
            at,
            samples,
            present: 0,
            min: [0.0; N],
            avg: [0.0; N],
            max: [0.0; N],
        }
    }

    /// Reads `bucket, samples[, present], <m>_min, <m>_avg, <m>_max...` (see [`columns`]).
    pub fn from_row(row: &Row<'_>, with_present: bool) -> rusqlite::Result<Self> {
        let at: i64 = row.get(0)?;
        let samples: i64 = row.get(1)?;
        let (present, first) = if with_present {
            (row.get::<_, i64>(2)?, 3)
        } else {
            (samples, 2)
        };
        let mut p = Point::zero(at, clamp_u32(samples));
        p.present = clamp_u32(present);
        for i in 0..N {
            p.min[i] = row.get::<_, i64>(first + 3 * i)? as f64;
            p.avg[i] = row.get::<_, i64>(first + 3 * i + 1)? as f64;
            p.max[i] = row.get::<_, i64>(first + 3 * i + 2)? as f64;
        }
        Ok(p)
    }
}

fn clamp_u32(v: i64) -> u32 {
    u32::try_from(v.max(0)).unwrap_or(u32::MAX)
}

/// `cpu_min, cpu_avg, cpu_max, memory_min, ...` for the given figures.
pub(super) fn columns(metrics: &[&str]) -> String {
    metrics
        .iter()
        .flat_map(|m| [format!("{m}_min"), format!("{m}_avg"), format!("{m}_max")])
        .collect::<Vec<_>>()
        .join(", ")
}

/// Merges points (sorted by time) into buckets of `size_ms` starting at multiples of it.
pub(super) fn aggregate<const N: usize>(points: &[Point<N>], size_ms: i64) -> Vec<Point<N>> {
    fn finish<const N: usize>(p: &mut Point<N>, sums: &[f64; N], weight: f64) {
        if weight > 0.0 {
            for (avg, sum) in p.avg.iter_mut().zip(sums) {
                *avg = sum / weight;
            }
        }
    }
    let mut out: Vec<Point<N>> = Vec::new();
    let mut sums = [0.0f64; N];
    let mut weight = 0.0f64;
    for p in points {
        let bucket = super::bucket_start(p.at, size_ms);
        if out.last().is_none_or(|cur| cur.at != bucket) {
            if let Some(cur) = out.last_mut() {
                finish(cur, &sums, weight);
            }
            let mut next = p.clone();
            next.at = bucket;
            next.samples = 0;
            next.present = 0;
            out.push(next);
            sums = [0.0; N];
            weight = 0.0;
        }
        let Some(cur) = out.last_mut() else {
            continue;
        };
        let w = f64::from(p.samples.max(1));
        cur.samples = cur.samples.saturating_add(p.samples);
        cur.present = cur.present.saturating_add(p.present);
        for (i, sum) in sums.iter_mut().enumerate() {
            cur.min[i] = cur.min[i].min(p.min[i]);
            cur.max[i] = cur.max[i].max(p.max[i]);
            *sum += p.avg[i] * w;
        }
        weight += w;
    }
    if let Some(cur) = out.last_mut() {
        finish(cur, &sums, weight);
    }
    out
}

/// One user point per system point: the user's where there is one at the same time, zero
/// elsewhere. Both inputs sorted by time; user points at times without a system point are
/// dropped (they cannot occur in a consistent file).
pub(super) fn align<const N: usize, const M: usize>(
    system: &[Point<M>],
    user: &[Point<N>],
) -> Vec<Point<N>> {
    let mut out = Vec::with_capacity(system.len());
    let mut j = 0;
    for s in system {
        while j < user.len() && user[j].at < s.at {
            j += 1;
        }
        match user.get(j) {
            Some(u) if u.at == s.at => {
                let mut u = u.clone();
                u.samples = s.samples;
                out.push(u);
                j += 1;
            }
            _ => out.push(Point::zero(s.at, s.samples)),
        }
    }
    out
}

/// Writes system rollup points into `table` (`system_1m` or `system_1h`), replacing any rows
/// for the same buckets. Returns the rows written.
pub(super) fn write_system(
    tx: &Transaction<'_>,
    table: &str,
    points: &[Point<8>],
) -> Result<u64, StoreError> {
    let cols = columns(&SYSTEM_METRICS);
    let marks = placeholders(2 + 3 * SYSTEM_METRICS.len());
    let sql = format!("INSERT OR REPLACE INTO {table} (bucket, samples, {cols}) VALUES ({marks})");
    let mut stmt = tx.prepare_cached(&sql).ctx("preparing a rollup write")?;
    for p in points {
        let mut values = vec![p.at, i64::from(p.samples)];
        values.extend(flatten(p));
        stmt.execute(rusqlite::params_from_iter(values))
            .ctx("writing a system rollup")?;
    }
    Ok(points.len() as u64)
}

/// Writes one subject's rollup points into `table` (one of `kind.tables`); buckets the
/// subject was absent from are not stored (they read back as zero).
pub(super) fn write_keyed<const N: usize>(
    tx: &Transaction<'_>,
    kind: &Keyed<N>,
    table: &str,
    id: i64,
    points: &[Point<N>],
) -> Result<u64, StoreError> {
    let cols = columns(kind.metrics);
    let marks = placeholders(4 + 3 * N);
    let sql = format!(
        "INSERT OR REPLACE INTO {table} ({}, bucket, samples, present, {cols}) \
         VALUES ({marks})",
        kind.key
    );
    let mut stmt = tx.prepare_cached(&sql).ctx("preparing a rollup write")?;
    let mut written = 0;
    for p in points.iter().filter(|p| p.present > 0) {
        let mut values = vec![id, p.at, i64::from(p.samples), i64::from(p.present)];
        values.extend(flatten(p));
        stmt.execute(rusqlite::params_from_iter(values))
            .ctx("writing a user rollup")?;
        written += 1;
    }
    Ok(written)
}

/// Deletes the rows of `table` for buckets in [from, to) before they are rewritten, so a bucket
/// a user has dropped out of does not keep a stale row.
pub(super) fn clear(
    tx: &Transaction<'_>,
    table: &str,
    from: i64,
    to: i64,
) -> Result<(), StoreError> {
    tx.execute(
        &format!("DELETE FROM {table} WHERE bucket >= ?1 AND bucket < ?2"),
        params![from, to],
    )
    .ctx("clearing rollup buckets before rewriting them")?;
    Ok(())
}

fn flatten<const N: usize>(p: &Point<N>) -> Vec<i64> {
    (0..N)
        .flat_map(|i| [p.min[i], p.avg[i], p.max[i]])
        .map(|v| v.round() as i64)
        .collect()
}

fn placeholders(n: usize) -> String {
    (1..=n)
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(at: i64, v: f64) -> Point<1> {
        Point::raw(at, [v], true)
    }

    #[test]
    fn aggregate_known_numbers() {
        let pts = [
            raw(0, 10.0),
            raw(20_000, 20.0),
            raw(40_000, 60.0),
            raw(60_000, 5.0),
        ];
        let agg = aggregate(&pts, 60_000);
        assert_eq!(agg.len(), 2);
        assert_eq!((agg[0].at, agg[0].samples), (0, 3));
        assert_eq!(
            (agg[0].min[0], agg[0].avg[0], agg[0].max[0]),
            (10.0, 30.0, 60.0)
        );
        assert_eq!((agg[1].at, agg[1].samples), (60_000, 1));
        assert_eq!(agg[1].avg[0], 5.0);
    }

    #[test]
    fn aggregate_weights_by_samples() {
        let mut a = raw(0, 10.0);
        a.samples = 3;
        let mut b = raw(60_000, 50.0);
        b.samples = 1;
        let agg = aggregate(&[a, b], 3_600_000);
        assert_eq!(agg.len(), 1);
        assert_eq!(agg[0].avg[0], 20.0, "(3*10 + 1*50) / 4");
        assert_eq!(agg[0].samples, 4);
    }

    #[test]
    fn align_fills_absent_with_zero() {
        let sys = [raw(0, 1.0), raw(5_000, 1.0), raw(10_000, 1.0)];
        let user = [raw(5_000, 40.0)];
        let aligned = align(&sys, &user);
        assert_eq!(aligned.len(), 3);
        assert_eq!(aligned[0], Point::zero(0, 1));
        assert_eq!(aligned[1].avg[0], 40.0);
        assert_eq!(aligned[2].present, 0);
        let minute = aggregate(&aligned, 60_000);
        assert_eq!(minute[0].min[0], 0.0);
        assert!((minute[0].avg[0] - 40.0 / 3.0).abs() < 1e-9);
        assert_eq!(minute[0].max[0], 40.0);
        assert_eq!(minute[0].present, 1);
    }
}
