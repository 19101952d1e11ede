//! The packed encoding of one user's raw rows over one window (`user_blocks.data`).
//!
//! Why: a row per user per sample in `user_samples` costs ~90 bytes (row header, key, eight
//! columns, the top-process blob), which at a 5 s interval and 50 users is over half a gigabyte
//! a week. Consecutive samples of one user are nearly alike — the same processes in the top
//! list, figures that move a little — so once a window is complete (`compact.rs`) its rows are
//! stored together, column by column, each figure as the difference from the previous sample:
//!
//! - sample times as the change of the interval (0 for a steady interval);
//! - the user's figures (CPU, memory, KiB, processes) as deltas;
//! - each top process as a reference to the same process (pid and command) in the previous
//!   sample's list, so an unchanged list costs a byte per process before compression; a process
//!   that was not there is spelled out (pid, command id);
//! - each process's CPU and KiB as the delta from the process it refers to.
//!
//! Each numeric column is divided by the greatest common divisor of its deltas (resident memory
//! moves in whole pages, 4 KiB), zigzag-encoded and written as LEB128 varints; the whole payload
//! is then deflated (`miniz_oxide`, pure Rust): runs of unchanged values and the skewed byte
//! distribution of small deltas compress well.
//!
//! Every value is exact: decoding gives back the rows that were encoded, bit for bit (deltas use
//! wrapping arithmetic, so any `i64`/`u64` survives). Damaged input gives `StoreError::Corrupt`,
//! never a panic, and decompression is capped so a damaged length cannot exhaust memory.

use std::collections::BTreeMap;

use super::StoreError;
use super::codec::{StoredProcess, get_varint, put_varint};

/// Format version, the first byte of a block.
const VERSION: u8 = 2;
/// Deflate level. Measured on the budget workload: 9 saves under 1 % over 6 but more than
/// doubles the time the packing `record` holds the write lock (118 ms against 49 ms).
const LEVEL: u8 = 6;
/// A block never decompresses to more than this: a window of 180 samples takes ~4 KiB per
/// user, so this is thousands of users at a 1 s interval.
const MAX_RAW_BYTES: usize = 32 << 20;
/// Every row takes at least this many bytes (two per figure column, tracked flag, count), which
/// bounds what a damaged row count can make the decoder allocate.
const MIN_ROW_BYTES: usize = 12;
/// More top processes than this in one row is damage (the store keeps five).
const MAX_PROCESSES_PER_ROW: u64 = 255;

/// One user at one sample, in storage units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct UserRow {
    pub at: i64,
    pub cpu: i64,
    pub memory: i64,
    pub mem_kib: i64,
    pub processes: i64,
    pub tracked: bool,
    pub top: Vec<StoredProcess>,
}

fn corrupt(why: &str) -> StoreError {
    StoreError::Corrupt {
        what: "packed user samples",
        value: why.to_string(),
    }
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// A column of signed deltas: its divisor, then each delta divided by it and zigzagged, split
/// into two planes — the low bytes of all values, then the rest of each as a varint. Deflate
/// then sees the nearly uniform low bytes apart from the small, repetitive high parts, which
/// it codes in a bit or two, instead of varint bytes that mix both (a third smaller blocks).
fn put_column(out: &mut Vec<u8>, deltas: &[i64]) {
    let g = deltas.iter().fold(0, |g, d| gcd(g, d.unsigned_abs()));
    // 0 (all zero) and 2^63 (only i64::MIN) cannot divide usefully.
    let g = if g == 0 || g > i64::MAX as u64 { 1 } else { g };
    put_varint(out, g);
    let values: Vec<u64> = deltas.iter().map(|&d| zigzag(d / g as i64)).collect();
    out.extend(values.iter().map(|v| *v as u8));
    for v in values {
        put_varint(out, v >> 8);
    }
}

/// Reads varints off the front of a byte slice.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn varint(&mut self) -> Result<u64, StoreError> {
        let (v, used) = get_varint(self.0).ok_or_else(|| corrupt("truncated varint"))?;
        self.0 = &self.0[used..];
        Ok(v)
    }

    /// A count of items that each take at least one more byte: bounded by what is left.
    fn count(&mut self) -> Result<usize, StoreError> {
        let n = self.varint()?;
        if n > self.0.len() as u64 {
            return Err(corrupt("count larger than the data"));
        }
        Ok(n as usize)
    }

    fn column(&mut self, n: usize) -> Result<Vec<i64>, StoreError> {
        let g = self.varint()? as i64;
        if n > self.0.len() {
            return Err(corrupt("column longer than the data"));
        }
        let (low, rest) = self.0.split_at(n);
        self.0 = rest;
        low.iter()
            .map(|&l| {
                let high = self.varint()?;
                if high >> 56 != 0 {
                    return Err(corrupt("value over 64 bits"));
                }
                Ok(unzigzag(high << 8 | u64::from(l)).wrapping_mul(g))
            })
            .collect()
    }
}

/// Encodes each user's rows (in time order) into one block, for a window of samples.
pub(super) fn encode(users: &BTreeMap<i64, Vec<UserRow>>) -> Vec<u8> {
    let mut raw = Vec::new();
    put_varint(&mut raw, users.len() as u64);
    for (&id, rows) in users {
        let section = encode_rows(rows);
        put_varint(&mut raw, zigzag(id));
        put_varint(&mut raw, section.len() as u64);
        raw.extend(section);
    }
    let mut out = vec![VERSION];
    out.extend(miniz_oxide::deflate::compress_to_vec(&raw, LEVEL));
    out
}

/// Decodes a block: each user's rows in time order, or only `only`'s.
pub(super) fn decode(
    block: &[u8],
    only: Option<i64>,
) -> Result<BTreeMap<i64, Vec<UserRow>>, StoreError> {
    let Some((&version, packed)) = block.split_first() else {
        return Err(corrupt("empty block"));
    };
    if version != VERSION {
        return Err(corrupt(&format!("unknown block version {version}")));
    }
    let raw = miniz_oxide::inflate::decompress_to_vec_with_limit(packed, MAX_RAW_BYTES)
        .map_err(|e| corrupt(&format!("cannot inflate: {e}")))?;
    let mut rd = Reader(&raw);
    let users = rd.count()?;
    let mut out = BTreeMap::new();
    for _ in 0..users {
        let id = unzigzag(rd.varint()?);
        let len = rd.varint()?;
        let len = usize::try_from(len)
            .ok()
            .filter(|&l| l <= rd.0.len())
            .ok_or_else(|| corrupt("section longer than the block"))?;
        let (section, rest) = rd.0.split_at(len);
        rd.0 = rest;
        if only.is_none_or(|o| o == id) && out.insert(id, decode_rows(section)?).is_some() {
            return Err(corrupt(&format!("user {id} twice in one block")));
        }
    }
    if !rd.0.is_empty() {
        return Err(corrupt("trailing bytes after the last user"));
    }
    Ok(out)
}

/// One user's rows, uncompressed.
fn encode_rows(rows: &[UserRow]) -> Vec<u8> {
    let n = rows.len();
    let mut raw = Vec::with_capacity(16 + n * 24);
    put_varint(&mut raw, n as u64);

    // Times: delta of delta.
    let mut dod = Vec::with_capacity(n);
    let (mut prev_at, mut prev_step) = (0i64, 0i64);
    for r in rows {
        let step = r.at.wrapping_sub(prev_at);
        dod.push(step.wrapping_sub(prev_step));
        (prev_at, prev_step) = (r.at, step);
    }
    put_column(&mut raw, &dod);
    let figures: [fn(&UserRow) -> i64; 4] =
        [|r| r.cpu, |r| r.memory, |r| r.mem_kib, |r| r.processes];
    for f in figures {
        let mut prev = 0i64;
        let deltas: Vec<i64> = rows
            .iter()
            .map(|r| {
                let d = f(r).wrapping_sub(prev);
                prev = f(r);
                d
            })
            .collect();
        put_column(&mut raw, &deltas);
    }
    for r in rows {
        put_varint(&mut raw, u64::from(r.tracked));
        put_varint(&mut raw, r.top.len() as u64);
    }

    // Top processes: references to the previous row's list, new identities, figure deltas.
    let mut refs = Vec::new();
    let mut fresh = Vec::new();
    let (mut cpu, mut mem) = (Vec::new(), Vec::new());
    let mut prev: &[StoredProcess] = &[];
    for r in rows {
        for p in &r.top {
            let base = prev
                .iter()
                .position(|q| q.pid == p.pid && q.command == p.command);
            let (base_cpu, base_mem) = match base {
                Some(i) => {
                    refs.push(i as u64 + 1);
                    (prev[i].cpu_hundredths, prev[i].mem_kib)
                }
                None => {
                    refs.push(0);
                    fresh.push(p.pid);
                    fresh.push(p.command);
                    (0, 0)
                }
            };
            cpu.push(p.cpu_hundredths.wrapping_sub(base_cpu) as i64);
            mem.push(p.mem_kib.wrapping_sub(base_mem) as i64);
        }
        prev = &r.top;
    }
    for v in refs.iter().chain(&fresh) {
        put_varint(&mut raw, *v);
    }
    put_column(&mut raw, &cpu);
    put_column(&mut raw, &mem);
    raw
}

fn decode_rows(raw: &[u8]) -> Result<Vec<UserRow>, StoreError> {
    let mut rd = Reader(raw);
    let n = rd.count()?;
    if n.saturating_mul(MIN_ROW_BYTES) > rd.0.len() {
        return Err(corrupt("more rows than the data holds"));
    }

    let dod = rd.column(n)?;
    let figures: Vec<Vec<i64>> = (0..4).map(|_| rd.column(n)).collect::<Result<_, _>>()?;
    let mut rows = Vec::with_capacity(n);
    let (mut at, mut step) = (0i64, 0i64);
    let mut last = [0i64; 4];
    for (i, d) in dod.iter().enumerate() {
        step = step.wrapping_add(*d);
        at = at.wrapping_add(step);
        for (k, col) in figures.iter().enumerate() {
            last[k] = last[k].wrapping_add(col[i]);
        }
        rows.push(UserRow {
            at,
            cpu: last[0],
            memory: last[1],
            mem_kib: last[2],
            processes: last[3],
            tracked: false,
            top: Vec::new(),
        });
    }
    let mut counts = Vec::with_capacity(n);
    let mut total = 0usize;
    for r in &mut rows {
        r.tracked = match rd.varint()? {
            0 => false,
            1 => true,
            v => return Err(corrupt(&format!("tracked flag {v}"))),
        };
        let c = rd.varint()?;
        if c > MAX_PROCESSES_PER_ROW {
            return Err(corrupt(&format!("{c} top processes in one sample")));
        }
        counts.push(c as usize);
        total += c as usize;
    }
    if total > rd.0.len() {
        return Err(corrupt("more processes than the data holds"));
    }
    let refs: Vec<u64> = (0..total).map(|_| rd.varint()).collect::<Result<_, _>>()?;
    let mut identities = Vec::new();
    for _ in refs.iter().filter(|&&r| r == 0) {
        identities.push((rd.varint()?, rd.varint()?));
    }
    let cpu = rd.column(total)?;
    let mem = rd.column(total)?;
    if !rd.0.is_empty() {
        return Err(corrupt("trailing bytes after a user's rows"));
    }

    let (mut next, mut fresh) = (0usize, identities.into_iter());
    let mut prev: Vec<StoredProcess> = Vec::new();
    for (r, &count) in rows.iter_mut().zip(&counts) {
        let mut top = Vec::with_capacity(count);
        for _ in 0..count {
            let base = match refs[next] {
                0 => {
                    let (pid, command) = fresh.next().ok_or_else(|| corrupt("missing process"))?;
                    StoredProcess {
                        pid,
                        command,
                        cpu_hundredths: 0,
                        mem_kib: 0,
                    }
                }
                i => *usize::try_from(i - 1)
                    .ok()
                    .and_then(|i| prev.get(i))
                    .ok_or_else(|| corrupt(&format!("reference {i} past the previous list")))?,
            };
            top.push(StoredProcess {
                cpu_hundredths: base.cpu_hundredths.wrapping_add(cpu[next] as u64),
                mem_kib: base.mem_kib.wrapping_add(mem[next] as u64),
                ..base
            });
            next += 1;
        }
        prev.clone_from(&top);
        r.top = top;
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn row(at: i64, cpu: i64, top: &[(u64, u64, u64, u64)]) -> UserRow {
        UserRow {
            at,
            cpu,
            memory: 120,
            mem_kib: 1 << 20,
            processes: 12,
            tracked: at % 2 == 0,
            top: top
                .iter()
                .map(|&(pid, command, cpu_hundredths, mem_kib)| StoredProcess {
                    pid,
                    command,
                    cpu_hundredths,
                    mem_kib,
                })
                .collect(),
        }
    }

    fn one(rows: Vec<UserRow>) -> BTreeMap<i64, Vec<UserRow>> {
        BTreeMap::from([(7, rows)])
    }

    /// User 7's rows back from a block.
    fn back(block: &[u8]) -> Option<Vec<UserRow>> {
        decode(block, None).ok()?.remove(&7)
    }

    #[test]
    fn round_trip_of_a_steady_user_is_small() {
        let rows: Vec<UserRow> = (0..360)
            .map(|i| {
                row(
                    1_700_000_000_000 + i * 5_000,
                    250 + i % 3,
                    &[(100, 1, 9_000, 4 << 20), (101, 2, 500, 1 << 10)],
                )
            })
            .collect();
        let block = encode(&one(rows.clone()));
        assert_eq!(back(&block), Some(rows));
        assert!(block.len() < 150, "{} bytes for 360 samples", block.len());
    }

    #[test]
    fn empty_block_round_trips() {
        assert_eq!(back(&encode(&one(Vec::new()))), Some(Vec::new()));
        assert_eq!(
            decode(&encode(&BTreeMap::new()), None).ok(),
            Some(BTreeMap::new())
        );
    }

    #[test]
    fn several_users_and_one_of_them() {
        let mut users = BTreeMap::new();
        for id in [-3i64, 1, 9, i64::MAX] {
            let rows = (0..20).map(|i| row(i * 5_000, id.wrapping_mul(i), &[(1, 1, 2, 3)]));
            users.insert(id, rows.collect::<Vec<_>>());
        }
        let block = encode(&users);
        assert_eq!(decode(&block, None).ok(), Some(users.clone()));
        let nine = decode(&block, Some(9)).expect("decode");
        assert_eq!(nine.len(), 1);
        assert_eq!(nine.get(&9), users.get(&9));
        assert_eq!(decode(&block, Some(2)).ok(), Some(BTreeMap::new()));
    }

    #[test]
    fn damaged_blocks_are_errors() {
        let rows: Vec<UserRow> = (0..50)
            .map(|i| {
                row(
                    i * 5_000,
                    i,
                    &[(7, 3, 10, 20), (8 + i as u64 % 3, 4, 30, 40)],
                )
            })
            .collect();
        let good = encode(&one(rows));
        assert!(decode(&[], None).is_err());
        assert!(decode(&[1], None).is_err(), "unknown version");
        assert!(decode(&[VERSION, 0xff, 0x00], None).is_err(), "not deflate");
        assert!(decode(&good[..good.len() / 2], None).is_err(), "truncated");
        // Valid deflate around invalid contents: one user (id 0) whose section is `raw`.
        let wrap = |raw: &[u8]| {
            let mut inner = vec![1, 0, raw.len() as u8];
            inner.extend_from_slice(raw);
            let mut b = vec![VERSION];
            b.extend(miniz_oxide::deflate::compress_to_vec(&inner, 1));
            decode(&b, None)
        };
        assert!(
            wrap(&[0, 1, 1, 1, 1, 1, 1, 1]).is_ok(),
            "the minimal valid section"
        );
        assert!(wrap(&[5]).is_err(), "rows missing");
        assert!(wrap(&[0, 1, 1, 1, 1, 1, 1, 1, 7]).is_err(), "trailing");
        // One row whose single process refers to a previous list that does not exist.
        // Five figure columns of (divisor 1, low byte 0, high part 0), tracked 0, one process,
        // reference 1, then the process CPU and KiB columns.
        let mut bad_ref = vec![1];
        bad_ref.extend([1, 0, 0].repeat(5));
        bad_ref.extend([0, 1, 1]);
        bad_ref.extend([1, 0, 0].repeat(2));
        let err = wrap(&bad_ref).expect_err("dangling reference");
        assert!(err.to_string().contains("reference 1 past"), "{err}");
        bad_ref[18] = 0; // a new process instead: valid once its identity is there
        bad_ref.splice(19..19, [42, 7]);
        let ok = wrap(&bad_ref).expect("a new process");
        assert_eq!(ok[&0][0].top[0].pid, 42);
        assert_eq!(ok[&0][0].top[0].command, 7);
        // Every single-byte change decodes or errors, never panics.
        for i in 0..good.len() {
            for bit in 0..8 {
                let mut b = good.clone();
                b[i] ^= 1 << bit;
                let _ = decode(&b, None);
            }
        }
    }

    fn arb_row() -> impl Strategy<Value = UserRow> {
        (
            any::<i64>(),
            any::<(i64, i64, i64, i64, bool)>(),
            prop::collection::vec((0u64..4, 0u64..4, any::<u64>(), any::<u64>()), 0..6),
        )
            .prop_map(
                |(at, (cpu, memory, mem_kib, processes, tracked), top)| UserRow {
                    at,
                    cpu,
                    memory,
                    mem_kib,
                    processes,
                    tracked,
                    top: top
                        .into_iter()
                        .map(|(pid, command, cpu_hundredths, mem_kib)| StoredProcess {
                            pid,
                            command,
                            cpu_hundredths,
                            mem_kib,
                        })
                        .collect(),
                },
            )
    }

    proptest! {
        #[test]
        fn round_trip(rows in prop::collection::vec(arb_row(), 0..40)) {
            prop_assert_eq!(back(&encode(&one(rows.clone()))), Some(rows));
        }

        #[test]
        fn round_trip_of_walks(
            start in any::<i64>(),
            steps in prop::collection::vec((-600i64..600, 0u64..3, -300i64..300), 1..200),
        ) {
            let mut rows = Vec::new();
            let (mut cpu, mut mem) = (5_000u64, 1u64 << 20);
            for (i, &(dc, swap, dm)) in steps.iter().enumerate() {
                cpu = cpu.saturating_add_signed(dc);
                mem = mem.saturating_add_signed(dm * 4);
                let mut top = vec![(1, 1, cpu, mem), (2, 2, cpu / 2, mem / 3), (3 + swap, 3, 7, 8)];
                top.rotate_left(swap as usize);
                rows.push(row(start.wrapping_add(i as i64 * 5_000), dc, &top));
            }
            prop_assert_eq!(back(&encode(&one(rows.clone()))), Some(rows));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let mut b = vec![VERSION];
            b.extend(miniz_oxide::deflate::compress_to_vec(&bytes, 1));
            let _ = decode(&b, None);
            let _ = decode(&bytes, None);
        }
    }
}
