//! The packed encoding of the GPUs' raw rows over one window (`gpu_blocks.data`, schema v5).
//!
//! Why: a `gpu_samples` row costs ~35 bytes (row header, key, six columns), one per GPU per
//! sample: on a server with 8 GPUs that was 280 bytes per sample, more than all the packed user
//! rows together. A GPU's figures move slowly (utilization in whole percent, temperature in
//! whole degrees, memory in allocator-sized steps, a process count that rarely changes), so a
//! complete window's rows are packed like the users' (`block.rs`, whose column coding this
//! reuses) into one row of `gpu_blocks` per window, by `compact.rs` in the same transaction
//! that packs the users.
//!
//! Layout (version 1), deflated: the device count; each device's id and row count; one byte per
//! row saying which of the five optional figures the driver gave (NVML may not tell a
//! utilization or a power); the sample times as the change of the interval; each optional
//! figure as the delta from the same device's previous present value, over the rows that have
//! it; the process counts as deltas. Devices are concatenated in each column, each starting
//! from zero.
//!
//! Decoding gives back the encoded rows exactly (wrapping deltas); damaged input gives
//! `StoreError::Corrupt`, never a panic, and a damaged count cannot make the decoder allocate
//! much: devices and rows per device are capped as the users' blocks cap theirs.

use std::collections::BTreeMap;

use super::StoreError;
use super::block::{MAX_ROWS_PER_USER, Reader, put_column, time_steps, unzigzag, zigzag};
use super::codec::put_varint;

const VERSION: u8 = 1;
/// Deflate level, as for the users' blocks.
const LEVEL: u8 = 6;
/// A window of a few GPUs takes a few KiB inflated; this is far beyond any real machine.
const MAX_RAW_BYTES: usize = 32 << 20;
/// More devices than this in one block is damage (GPUs and MIG instances of one machine).
const MAX_DEVICES: usize = 4096;
/// The optional figures, in the order of the presence bits.
const FIGURES: usize = 5;

/// One GPU at one sample, in storage units (as in `gpu_samples`: hundredths of a percent or
/// degree, KiB, milliwatts); None where the driver did not tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct GpuSample {
    pub at: i64,
    pub util: Option<i64>,
    pub mem_kib: Option<i64>,
    pub total_kib: Option<i64>,
    pub temperature: Option<i64>,
    pub power: Option<i64>,
    pub processes: i64,
}

impl GpuSample {
    fn figures(&self) -> [Option<i64>; FIGURES] {
        [
            self.util,
            self.mem_kib,
            self.total_kib,
            self.temperature,
            self.power,
        ]
    }
}

fn corrupt(why: &str) -> StoreError {
    StoreError::Corrupt {
        what: "packed GPU samples",
        value: why.to_string(),
    }
}

/// The column reader's errors, named for what is read here.
fn relabel(e: StoreError) -> StoreError {
    match e {
        StoreError::Corrupt { value, .. } => corrupt(&value),
        e => e,
    }
}

/// Encodes each device's rows (in time order) into one block.
pub(super) fn encode(devices: &BTreeMap<i64, Vec<GpuSample>>) -> Vec<u8> {
    let mut raw = Vec::new();
    put_varint(&mut raw, devices.len() as u64);
    for (&id, rows) in devices {
        put_varint(&mut raw, zigzag(id));
        put_varint(&mut raw, rows.len() as u64);
    }
    let all = || devices.values().flat_map(|rows| rows.iter());
    raw.extend(all().map(|r| {
        r.figures()
            .iter()
            .enumerate()
            .fold(0u8, |bits, (k, f)| bits | u8::from(f.is_some()) << k)
    }));
    let mut dod = Vec::new();
    for rows in devices.values() {
        time_steps(&mut dod, rows.iter().map(|r| r.at));
    }
    put_column(&mut raw, &dod);
    let per_device = |value: &dyn Fn(&GpuSample) -> Option<i64>| {
        let mut deltas = Vec::new();
        for rows in devices.values() {
            let mut prev = 0i64;
            for v in rows.iter().filter_map(value) {
                deltas.push(v.wrapping_sub(prev));
                prev = v;
            }
        }
        deltas
    };
    for k in 0..FIGURES {
        put_column(&mut raw, &per_device(&|r| r.figures()[k]));
    }
    put_column(&mut raw, &per_device(&|r| Some(r.processes)));
    let mut out = vec![VERSION];
    out.extend(miniz_oxide::deflate::compress_to_vec(&raw, LEVEL));
    out
}

/// Decodes a block: each device's rows in time order.
pub(super) fn decode(block: &[u8]) -> Result<BTreeMap<i64, Vec<GpuSample>>, StoreError> {
    let Some((&version, packed)) = block.split_first() else {
        return Err(corrupt("empty block"));
    };
    if version != VERSION {
        return Err(corrupt(&format!("unknown block version {version}")));
    }
    let raw = miniz_oxide::inflate::decompress_to_vec_with_limit(packed, MAX_RAW_BYTES)
        .map_err(|e| corrupt(&format!("cannot inflate: {e}")))?;
    decode_raw(&raw).map_err(relabel)
}

fn decode_raw(raw: &[u8]) -> Result<BTreeMap<i64, Vec<GpuSample>>, StoreError> {
    let mut rd = Reader(raw);
    let count = rd.count()?;
    if count > MAX_DEVICES {
        return Err(corrupt("more GPUs than a machine has"));
    }
    let mut heads = Vec::with_capacity(count);
    let mut total = 0usize;
    for _ in 0..count {
        let id = unzigzag(rd.varint()?);
        let rows = rd.count()?;
        // A few bytes of zero runs could otherwise stand for millions of rows of a few dozen
        // bytes each once decoded.
        if rows > MAX_ROWS_PER_USER {
            return Err(corrupt("more rows for one GPU than a window holds"));
        }
        total = total.saturating_add(rows);
        heads.push((id, rows));
    }
    // Every row has its presence byte.
    if total > rd.0.len() {
        return Err(corrupt("more rows than the data holds"));
    }
    let (flags, rest) = rd.0.split_at(total);
    rd.0 = rest;
    if flags.iter().any(|&f| f >> FIGURES != 0) {
        return Err(corrupt("unknown figure flags"));
    }
    let dod = rd.column_with_runs(total)?;
    let mut figures = Vec::with_capacity(FIGURES);
    for k in 0..FIGURES {
        let present = flags.iter().filter(|&&f| f >> k & 1 == 1).count();
        figures.push(rd.column_with_runs(present)?.into_iter());
    }
    let processes = rd.column_with_runs(total)?;
    if !rd.0.is_empty() {
        return Err(corrupt("trailing bytes after the last column"));
    }

    let mut out = BTreeMap::new();
    let mut row = 0usize;
    for (id, n) in heads {
        let mut rows = Vec::with_capacity(n);
        let (mut at, mut step) = (0i64, 0i64);
        let mut last = [0i64; FIGURES];
        let mut procs = 0i64;
        for _ in 0..n {
            step = step.wrapping_add(dod[row]);
            at = at.wrapping_add(step);
            procs = procs.wrapping_add(processes[row]);
            let mut value = [None; FIGURES];
            for (k, col) in figures.iter_mut().enumerate() {
                if flags[row] >> k & 1 == 1 {
                    // The column holds one value per row with the bit: counted above.
                    let d = col
                        .next()
                        .ok_or_else(|| corrupt("figure column too short"))?;
                    last[k] = last[k].wrapping_add(d);
                    value[k] = Some(last[k]);
                }
            }
            let [util, mem_kib, total_kib, temperature, power] = value;
            rows.push(GpuSample {
                at,
                util,
                mem_kib,
                total_kib,
                temperature,
                power,
                processes: procs,
            });
            row += 1;
        }
        if out.insert(id, rows).is_some() {
            return Err(corrupt(&format!("device {id} twice in one block")));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Eight GPUs over a window at 5 s, moving as the budget test's do.
    fn window() -> BTreeMap<i64, Vec<GpuSample>> {
        (1..=8)
            .map(|id| {
                let rows = (0..180)
                    .map(|i| GpuSample {
                        at: 1_700_000_000_000 + i * 5_000,
                        util: Some(((id * 7 + i) % 13) * 100),
                        mem_kib: Some((20 << 20) + (i / 60) * 2048),
                        total_kib: Some(80 << 20),
                        temperature: Some((60 + (i % 3)) * 100),
                        power: (id != 3).then_some(250_000 + (i % 5) * 1_000),
                        processes: 1 + i / 100,
                    })
                    .collect();
                (id, rows)
            })
            .collect()
    }

    #[test]
    fn a_window_round_trips_and_is_small() {
        let w = window();
        let block = encode(&w);
        assert_eq!(decode(&block).ok(), Some(w));
        // 1440 rows that cost ~35 bytes each unpacked.
        assert!(block.len() < 1_440, "{} bytes", block.len());
        let empty = BTreeMap::new();
        assert_eq!(decode(&encode(&empty)).ok(), Some(empty));
    }

    #[test]
    fn damaged_blocks_are_errors_not_panics() {
        let good = encode(&window());
        assert!(decode(&[]).is_err());
        assert!(decode(&[2]).is_err(), "unknown version");
        assert!(decode(&[VERSION, 0xff, 0x00]).is_err(), "not deflate");
        assert!(decode(&good[..good.len() / 2]).is_err(), "truncated");
        let raw = miniz_oxide::inflate::decompress_to_vec(&good[1..]).expect("inflate");
        let wrap = |r: &[u8]| {
            let mut b = vec![VERSION];
            b.extend(miniz_oxide::deflate::compress_to_vec(r, 1));
            decode(&b)
        };
        let mut trailing = raw.clone();
        trailing.push(0);
        assert!(wrap(&trailing).is_err(), "trailing");
        // One device claiming more rows than there are bytes.
        let err = wrap(&[1, 2, 200, 1]).expect_err("too many rows");
        assert!(err.to_string().contains("packed GPU samples"), "{err}");
        // One device claiming more rows than a window holds, every figure a zero run: a few
        // bytes that would decode to gigabytes.
        let rows = 8 * 900 + 1;
        let mut huge = vec![1, 2];
        put_varint(&mut huge, rows as u64);
        huge.extend(std::iter::repeat_n(0x1f, rows));
        let err = wrap(&huge).expect_err("rows past a window");
        assert!(err.to_string().contains("more rows for one GPU"), "{err}");
        // The same device twice.
        let mut twice = vec![2, 2, 0, 2, 0];
        twice.extend([1, 0, 0].repeat(7));
        assert!(
            wrap(&twice)
                .expect_err("twice")
                .to_string()
                .contains("twice")
        );
        // Every change to a byte of the payload decodes or errors, never panics.
        for i in 0..raw.len().min(400) {
            for v in [0, 1, 2, 0x1f, 0x7f, 0x80, 0xff] {
                let mut r = raw.clone();
                r[i] = v;
                let _ = wrap(&r);
            }
        }
        for i in 0..good.len() {
            for bit in 0..8 {
                let mut b = good.clone();
                b[i] ^= 1 << bit;
                let _ = decode(&b);
            }
        }
    }

    fn arb_sample() -> impl Strategy<Value = GpuSample> {
        (any::<i64>(), any::<[Option<i64>; FIGURES]>(), any::<i64>()).prop_map(
            |(at, f, processes)| GpuSample {
                at,
                util: f[0],
                mem_kib: f[1],
                total_kib: f[2],
                temperature: f[3],
                power: f[4],
                processes,
            },
        )
    }

    proptest! {
        #[test]
        fn round_trip(devices in prop::collection::btree_map(
            any::<i64>(),
            prop::collection::vec(arb_sample(), 0..30),
            0..5,
        )) {
            prop_assert_eq!(decode(&encode(&devices)).ok(), Some(devices));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let mut b = vec![VERSION];
            b.extend(miniz_oxide::deflate::compress_to_vec(&bytes, 1));
            let _ = decode(&b);
            let _ = decode(&bytes);
        }
    }
}
