//! The compact encoding of a user's top processes in `user_samples.top` (the hot rows; older
//! rows are packed into blocks, see `block.rs`).
//!
//! Why a blob and not JSON or a child table: the top processes are written for every recorded
//! user every few seconds, and at 50 users that is 250 processes per sample. A child table costs
//! a row header and key per process; JSON spells every number in decimal with separators. This
//! format is a version byte followed by four unsigned LEB128 varints per process — pid, command
//! id (`commands` table), CPU in hundredths of a percent of one core, resident memory in KiB —
//! about 9 bytes per process instead of ~30 for compact JSON.
//!
//! Precision: a top process's CPU and memory are kept to three significant figures (CPU never
//! finer than 0.1 % of a core, memory never finer than 1 KiB), and a user's list is kept in one
//! canonical order (CPU, then pid). They answer "who ran what, roughly how hard" at a past
//! moment; the user's own figures, which the tracker and the charts use, stay exact. Every digit
//! past the third is noise that changes at every sample, and storing that noise was most of the
//! file (see the budget test): with 50 busy users it is the difference between ~150 and ~50 MB
//! a week.

use super::StoreError;

const VERSION: u8 = 1;

/// One process as stored: figures already in storage units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct StoredProcess {
    pub pid: u64,
    pub command: u64,
    pub cpu_hundredths: u64,
    pub mem_kib: u64,
}

impl StoredProcess {
    /// A process at the precision it is stored (see the module comment).
    pub(super) fn new(pid: u32, command: i64, cpu_percent: f64, memory_bytes: u64) -> Self {
        let hundredths = (cpu_percent * 100.0).round().max(0.0) as u64;
        StoredProcess {
            pid: u64::from(pid),
            command: command.max(0) as u64,
            cpu_hundredths: significant(hundredths, 10),
            mem_kib: significant(memory_bytes.saturating_add(512) / 1024, 1),
        }
    }
}

/// `v` rounded to three significant decimal figures, in multiples of at least `min_unit`.
pub(super) fn significant(v: u64, min_unit: u64) -> u64 {
    let mut unit = 1u64;
    while v / unit >= 1000 {
        unit *= 10;
    }
    let unit = unit.max(min_unit);
    let down = v / unit * unit;
    match down.checked_add(unit) {
        Some(up) if v - down >= unit.div_ceil(2) => up,
        _ => down,
    }
}

/// The order a user's top processes are stored and read back in: heaviest first, then by pid
/// (and the other fields, so that the order is total).
pub(super) fn canonical_order(top: &mut [StoredProcess]) {
    top.sort_by(|a, b| {
        b.cpu_hundredths
            .cmp(&a.cpu_hundredths)
            .then(a.pid.cmp(&b.pid))
            .then(a.command.cmp(&b.command))
            .then(b.mem_kib.cmp(&a.mem_kib))
    });
}

pub(super) fn encode(processes: &[StoredProcess]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + processes.len() * 10);
    out.push(VERSION);
    for p in processes {
        for v in [p.pid, p.command, p.cpu_hundredths, p.mem_kib] {
            put_varint(&mut out, v);
        }
    }
    out
}

pub(super) fn decode(blob: &[u8]) -> Result<Vec<StoredProcess>, StoreError> {
    Ok(decode_tuples::<4>(blob, "top processes")?
        .into_iter()
        .map(|[pid, command, cpu_hundredths, mem_kib]| StoredProcess {
            pid,
            command,
            cpu_hundredths,
            mem_kib,
        })
        .collect())
}

/// A version byte, then groups of `N` varints.
fn decode_tuples<const N: usize>(
    blob: &[u8],
    what: &'static str,
) -> Result<Vec<[u64; N]>, StoreError> {
    let corrupt = |why: &str| StoreError::Corrupt {
        what,
        value: why.to_string(),
    };
    let Some((&version, mut rest)) = blob.split_first() else {
        return Ok(Vec::new());
    };
    if version != VERSION {
        return Err(corrupt(&format!("unknown encoding version {version}")));
    }
    let mut out = Vec::new();
    while !rest.is_empty() {
        let mut field = [0u64; N];
        for f in &mut field {
            let (v, used) = get_varint(rest).ok_or_else(|| corrupt("truncated varint"))?;
            *f = v;
            rest = &rest[used..];
        }
        out.push(field);
    }
    Ok(out)
}

/// The memory a user holds on each GPU (`user_gpu_samples.devices`): a version byte, then
/// (device id, KiB) as varint pairs in device id order. A few bytes per device.
pub(super) fn encode_devices(devices: &[(u64, u64)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + devices.len() * 5);
    out.push(VERSION);
    for &(id, kib) in devices {
        put_varint(&mut out, id);
        put_varint(&mut out, kib);
    }
    out
}

pub(super) fn decode_devices(blob: &[u8]) -> Result<Vec<(u64, u64)>, StoreError> {
    Ok(decode_tuples::<2>(blob, "GPU memory per device")?
        .into_iter()
        .map(|[id, kib]| (id, kib))
        .collect())
}

pub(super) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// The value and the number of bytes it took; None when truncated or longer than 64 bits.
pub(super) fn get_varint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, &b) in bytes.iter().enumerate().take(10) {
        let shift = 7 * i as u32;
        let part = u64::from(b & 0x7f);
        if shift == 63 && part > 1 {
            return None;
        }
        value |= part << shift;
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_bytes() {
        let p = StoredProcess {
            pid: 300,
            command: 1,
            cpu_hundredths: 0,
            mem_kib: 127,
        };
        assert_eq!(encode(&[p]), vec![1, 0xac, 0x02, 1, 0, 127]);
        assert_eq!(decode(&[1, 0xac, 0x02, 1, 0, 127]).ok(), Some(vec![p]));
    }

    #[test]
    fn empty_and_bad_input() {
        assert_eq!(decode(&[]).ok(), Some(vec![]));
        assert_eq!(decode(&[1]).ok(), Some(vec![]));
        assert!(decode(&[2, 1, 1, 1, 1]).is_err(), "unknown version");
        assert!(decode(&[1, 1, 1, 1]).is_err(), "three fields only");
        assert!(decode(&[1, 0x80]).is_err(), "truncated varint");
        let too_long = [
            1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
        ];
        assert!(decode(&too_long).is_err(), "over 64 bits");
    }

    #[test]
    fn three_significant_figures() {
        let cases = [
            (0, 10, 0),
            (4, 10, 0),
            (5, 10, 10),
            (999, 1, 999),
            (1_234, 1, 1_230),
            (1_235, 1, 1_240),
            (9_996, 1, 10_000),
            (39_876, 10, 39_900),
            (9_876, 10, 9_880),
            (2_345_678, 1, 2_350_000),
            (u64::MAX, 1, 18_400_000_000_000_000_000),
        ];
        for (v, min_unit, want) in cases {
            assert_eq!(significant(v, min_unit), want, "{v} (unit {min_unit})");
        }
        let p = StoredProcess::new(7, 3, 398.76, 2_000_000 * 1024 + 700);
        assert_eq!((p.cpu_hundredths, p.mem_kib), (39_900, 2_000_000));
        let idle = StoredProcess::new(8, -1, 0.04, 100);
        assert_eq!((idle.command, idle.cpu_hundredths, idle.mem_kib), (0, 0, 0));
        let small = StoredProcess::new(9, 1, 12.34, 512 * 1024);
        assert_eq!((small.cpu_hundredths, small.mem_kib), (1_230, 512));
    }

    #[test]
    fn canonical_order_is_heaviest_first_then_pid() {
        let p = |pid, cpu| StoredProcess {
            pid,
            command: 1,
            cpu_hundredths: cpu,
            mem_kib: 0,
        };
        let mut top = vec![p(9, 100), p(3, 500), p(5, 100), p(1, 0)];
        canonical_order(&mut top);
        let pids: Vec<u64> = top.iter().map(|p| p.pid).collect();
        assert_eq!(pids, [3, 5, 9, 1]);
    }

    #[test]
    fn device_memory_round_trips_and_damage_is_an_error() {
        let d = vec![(1, 0), (2, 40 << 20), (300, u64::MAX)];
        assert_eq!(decode_devices(&encode_devices(&d)).ok(), Some(d));
        assert_eq!(decode_devices(&[]).ok(), Some(vec![]));
        assert!(decode_devices(&[1, 5]).is_err(), "a lone id");
        assert!(decode_devices(&[9, 1, 1]).is_err(), "unknown version");
    }

    proptest! {
        #[test]
        fn significant_is_within_half_a_percent(v in any::<u64>(), min_unit in 1u64..20) {
            let q = significant(v, min_unit);
            let err = q.abs_diff(v) as f64;
            // Near u64::MAX rounding up would overflow, so it rounds down: a little over 0.5 %.
            let tolerance = if v > u64::MAX / 100 * 99 { 0.006 } else { 0.005 };
            prop_assert!(err <= (v as f64 * tolerance).max(min_unit as f64 / 2.0), "{v} -> {q}");
            prop_assert_eq!(significant(q, min_unit), q, "stable");
        }

        #[test]
        fn round_trip(raw in prop::collection::vec(any::<(u64, u64, u64, u64)>(), 0..6)) {
            let procs: Vec<StoredProcess> = raw
                .iter()
                .map(|&(pid, command, cpu_hundredths, mem_kib)| StoredProcess {
                    pid, command, cpu_hundredths, mem_kib,
                })
                .collect();
            let decoded = decode(&encode(&procs));
            prop_assert_eq!(decoded.ok(), Some(procs));
        }
    }
}
