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
//!   that was not there is spelled out (pid, command id). The lists are coded in pid order (v3),
//!   so a set of processes whose CPU ranking shuffles codes as the same references every sample;
//!   the decoder puts them back in the stored order (`codec::canonical_order`);
//! - each process's CPU and KiB as the delta from the process it refers to.
//!
//! Each numeric column is divided by the greatest common divisor of its deltas (resident memory
//! moves in whole pages, 4 KiB), zigzag-encoded and written as LEB128 varints; the whole payload
//! is then deflated (`miniz_oxide`, pure Rust): runs of unchanged values and the skewed byte
//! distribution of small deltas compress well.
//!
//! - GPU figures (v4, only in a block where some user held a GPU): per row the number of devices
//!   the user held (0 for none), the user's GPU figures as deltas, the device ids, and the memory
//!   held on each as the delta from the same device in the user's previous row. A block with no
//!   GPU figure is written as v3, byte for byte what it was before GPUs were recorded.
//!
//! Every value is exact: decoding gives back the rows that were encoded, bit for bit (deltas use
//! wrapping arithmetic, so any `i64`/`u64` survives), with each top list in canonical order. Damaged input gives `StoreError::Corrupt`,
//! never a panic; decompression is capped, and so are the users in a block and the rows of each
//! (decoded one user at a time), so a damaged count cannot exhaust memory.

use std::collections::BTreeMap;

use super::StoreError;
use super::codec::{StoredProcess, canonical_order, get_varint, put_varint};

/// Format version, the first byte of a block. Version 2 coded each top list in stored order and
/// is still read.
const VERSION: u8 = 3;
const VERSION_STORED_ORDER: u8 = 2;
/// v3 with GPU figures.
const VERSION_GPU: u8 = 4;
/// Deflate level. Measured on the budget workload: 9 saves under 1 % over 6 but more than
/// doubles the time the packing `record` holds the write lock (118 ms against 49 ms).
const LEVEL: u8 = 6;
/// A block never decompresses to more than this: a window of 180 samples takes ~4 KiB per
/// user, so this is thousands of users at a 1 s interval.
const MAX_RAW_BYTES: usize = 32 << 20;
/// Every row takes at least this many bytes (v2: two per figure column, tracked flag, count;
/// v3: the flag and the count), which bounds what a damaged row count can make the decoder
/// allocate.
const MIN_ROW_BYTES: usize = 2;
const MIN_ROW_BYTES_V2: usize = 12;
/// More top processes than this in one row is damage (the store keeps five).
const MAX_PROCESSES_PER_ROW: u64 = 255;
/// More rows for one user (or one GPU) than this in one block is damage: a window holds 900
/// samples at the shortest interval (1 s), and this leaves room for restarts and clock steps.
pub(super) const MAX_ROWS_PER_USER: usize = 8 * (super::compact::BLOCK_MS / 1000) as usize;
/// More users than this in one block is damage (uids with processes at one moment).
const MAX_USERS: usize = 65_536;

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
    /// None when the user held no GPU at that sample.
    pub gpu: Option<GpuRow>,
}

/// A user's GPU figures at one sample, in storage units (KiB, hundredths of a percent).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(super) struct GpuRow {
    pub mem_kib: i64,
    pub memory: i64,
    pub util: i64,
    pub processes: i64,
    /// (device id, KiB held on it), in device id order.
    pub devices: Vec<(u64, u64)>,
}

fn corrupt(why: &str) -> StoreError {
    StoreError::Corrupt {
        what: "packed user samples",
        value: why.to_string(),
    }
}

pub(super) fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

pub(super) fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// A column of signed deltas (v3): its divisor, then each delta divided by it and zigzagged,
/// with the zeros taken out as run lengths (most deltas are zero: a process that idles, memory
/// that did not move), and the rest split into two planes — the low bytes of all values, then
/// the rest of each as a varint. Deflate then sees the nearly uniform low bytes apart from the
/// small, repetitive high parts and run lengths, which it codes in a bit or two, instead of
/// varint bytes that mix both, and codes no symbol at all for each zero.
pub(super) fn put_column(out: &mut Vec<u8>, deltas: &[i64]) {
    let g = deltas.iter().fold(0, |g, d| gcd(g, d.unsigned_abs()));
    // 0 (all zero) and 2^63 (only i64::MIN) cannot divide usefully.
    let g = if g == 0 || g > i64::MAX as u64 { 1 } else { g };
    put_varint(out, g);
    let values: Vec<u64> = deltas
        .iter()
        .map(|&d| zigzag(d / g as i64))
        .filter(|&v| v != 0)
        .collect();
    put_varint(out, values.len() as u64);
    let mut zeros = 0u64;
    for &d in deltas {
        if d == 0 {
            zeros += 1;
        } else {
            put_varint(out, zeros);
            zeros = 0;
        }
    }
    put_varint(out, zeros);
    out.extend(values.iter().map(|v| *v as u8));
    for v in values {
        put_varint(out, v >> 8);
    }
}

/// Sample times as the change of the interval (delta of delta, from 0): a steady interval is
/// all zeros.
pub(super) fn time_steps(out: &mut Vec<i64>, times: impl Iterator<Item = i64>) {
    let (mut prev_at, mut prev_step) = (0i64, 0i64);
    for at in times {
        let step = at.wrapping_sub(prev_at);
        out.push(step.wrapping_sub(prev_step));
        (prev_at, prev_step) = (at, step);
    }
}

/// Reads varints off the front of a byte slice.
pub(super) struct Reader<'a>(pub(super) &'a [u8]);

impl Reader<'_> {
    pub(super) fn varint(&mut self) -> Result<u64, StoreError> {
        let (v, used) = get_varint(self.0).ok_or_else(|| corrupt("truncated varint"))?;
        self.0 = &self.0[used..];
        Ok(v)
    }

    /// A count of items that each take at least one more byte: bounded by what is left.
    pub(super) fn count(&mut self) -> Result<usize, StoreError> {
        let n = self.varint()?;
        if n > self.0.len() as u64 {
            return Err(corrupt("count larger than the data"));
        }
        Ok(n as usize)
    }

    /// A column as [`put_column`] writes it (v3), or without the zero runs (`v3` false).
    fn column(&mut self, n: usize, v3: bool) -> Result<Vec<i64>, StoreError> {
        if v3 {
            self.column_with_runs(n)
        } else {
            self.column_plain(n)
        }
    }

    pub(super) fn column_with_runs(&mut self, n: usize) -> Result<Vec<i64>, StoreError> {
        let g = self.varint()?;
        let nonzero = self.count()?;
        if nonzero > n {
            return Err(corrupt("more values than the column holds"));
        }
        let mut runs = Vec::with_capacity(nonzero + 1);
        let mut total = nonzero as u64;
        for _ in 0..=nonzero {
            let run = self.varint()?;
            total = total.saturating_add(run);
            runs.push(run as usize);
        }
        if total != n as u64 {
            return Err(corrupt("column runs do not add up"));
        }
        let mut rest = Reader(self.0);
        let values = rest.column_plain_with(nonzero, g)?;
        self.0 = rest.0;
        let mut out = Vec::with_capacity(n);
        for (run, v) in runs.iter().zip(values.iter().map(Some).chain([None])) {
            out.extend(std::iter::repeat_n(0, *run));
            out.extend(v);
        }
        Ok(out)
    }

    fn column_plain(&mut self, n: usize) -> Result<Vec<i64>, StoreError> {
        let g = self.varint()?;
        self.column_plain_with(n, g)
    }

    fn column_plain_with(&mut self, n: usize, g: u64) -> Result<Vec<i64>, StoreError> {
        let g = g as i64;
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

/// A user's section is cut into this many parts (time, the four figures, flags, process
/// identities, process CPU, process memory); a v3 block stores each part of every user
/// together, so deflate codes like with like instead of one user's mix after another's.
const PARTS: usize = 9;
/// v4 adds four: device counts, the GPU figures, device ids, memory per device.
const PARTS_GPU: usize = 13;

fn parts_of(version: u8) -> usize {
    if version == VERSION_GPU {
        PARTS_GPU
    } else {
        PARTS
    }
}

/// Encodes each user's rows (in time order) into one block, for a window of samples.
pub(super) fn encode(users: &BTreeMap<i64, Vec<UserRow>>) -> Vec<u8> {
    let gpu = users.values().flatten().any(|r| r.gpu.is_some());
    let (version, parts) = if gpu {
        (VERSION_GPU, PARTS_GPU)
    } else {
        (VERSION, PARTS)
    };
    let sections: Vec<(i64, Vec<Vec<u8>>)> = users
        .iter()
        .map(|(&id, rows)| (id, encode_rows(rows, gpu)))
        .collect();
    let mut raw = Vec::new();
    put_varint(&mut raw, sections.len() as u64);
    for (id, parts) in &sections {
        put_varint(&mut raw, zigzag(*id));
        for part in parts {
            put_varint(&mut raw, part.len() as u64);
        }
    }
    for k in 0..parts {
        for (_, parts) in &sections {
            raw.extend(&parts[k]);
        }
    }
    let mut out = vec![version];
    out.extend(miniz_oxide::deflate::compress_to_vec(&raw, LEVEL));
    out
}

/// Decodes a block: each user's rows in time order, or only `only`'s.
pub(super) fn decode(
    block: &[u8],
    only: Option<i64>,
) -> Result<BTreeMap<i64, Vec<UserRow>>, StoreError> {
    let mut out = BTreeMap::new();
    decode_each(block, only, |id, rows| {
        out.insert(id, rows);
    })?;
    Ok(out)
}

/// Decodes a block one user at a time, handing each user's rows (in time order) to `each`, so
/// that a caller keeping only some of them never holds the whole block decoded.
pub(super) fn decode_each(
    block: &[u8],
    only: Option<i64>,
    mut each: impl FnMut(i64, Vec<UserRow>),
) -> Result<(), StoreError> {
    let (version, raw) = inflate(block)?;
    let parted = version >= VERSION;
    let sections = if parted {
        split_parts(&raw, only, parts_of(version))?
    } else {
        split_sections(&raw)?
    };
    let mut seen = std::collections::HashSet::with_capacity(sections.len());
    for (id, section) in sections {
        if !seen.insert(id) {
            return Err(corrupt(&format!("user {id} twice in one block")));
        }
        if only.is_some_and(|o| o != id) {
            continue;
        }
        let mut rows = decode_rows(&section, parted, version == VERSION_GPU)?;
        if parted {
            for r in &mut rows {
                canonical_order(&mut r.top);
            }
        }
        each(id, rows);
    }
    Ok(())
}

/// The users a block holds rows for, without decoding the rows.
pub(super) fn user_ids(block: &[u8]) -> Result<Vec<i64>, StoreError> {
    let (version, raw) = inflate(block)?;
    Ok(if version >= VERSION {
        let (heads, _) = read_heads(&mut Reader(&raw), parts_of(version))?;
        heads.into_iter().map(|(id, _)| id).collect()
    } else {
        split_sections(&raw)?
            .into_iter()
            .map(|(id, _)| id)
            .collect()
    })
}

/// The format version and the inflated payload.
fn inflate(block: &[u8]) -> Result<(u8, Vec<u8>), StoreError> {
    let Some((&version, packed)) = block.split_first() else {
        return Err(corrupt("empty block"));
    };
    if !(VERSION_STORED_ORDER..=VERSION_GPU).contains(&version) {
        return Err(corrupt(&format!("unknown block version {version}")));
    }
    let raw = miniz_oxide::inflate::decompress_to_vec_with_limit(packed, MAX_RAW_BYTES)
        .map_err(|e| corrupt(&format!("cannot inflate: {e}")))?;
    Ok((version, raw))
}

/// A user count, bounded by [`MAX_USERS`] and by what is left to read.
fn user_count(rd: &mut Reader<'_>) -> Result<usize, StoreError> {
    let users = rd.count()?;
    if users > MAX_USERS {
        return Err(corrupt(&format!("{users} users in one block")));
    }
    Ok(users)
}

type Heads = Vec<(i64, Vec<usize>)>;

/// v3 header: each user's id and part lengths; with the total length of each part.
fn read_heads(rd: &mut Reader<'_>, parts: usize) -> Result<(Heads, Vec<usize>), StoreError> {
    let users = user_count(rd)?;
    let limit = rd.0.len();
    let mut heads = Vec::with_capacity(users);
    let mut totals = vec![0usize; parts];
    for _ in 0..users {
        let id = unzigzag(rd.varint()?);
        let mut lens = vec![0usize; parts];
        for (len, total) in lens.iter_mut().zip(&mut totals) {
            *len = usize::try_from(rd.varint()?)
                .ok()
                .filter(|&l| l <= limit)
                .ok_or_else(|| corrupt("part longer than the block"))?;
            *total += *len;
        }
        heads.push((id, lens));
    }
    Ok((heads, totals))
}

/// v3: the users' ids and part lengths, then each part of every user in turn; gives each
/// user's section (or only `only`'s) reassembled.
fn split_parts(
    raw: &[u8],
    only: Option<i64>,
    parts: usize,
) -> Result<Vec<(i64, Vec<u8>)>, StoreError> {
    let mut rd = Reader(raw);
    let (heads, totals) = read_heads(&mut rd, parts)?;
    if totals.iter().sum::<usize>() != rd.0.len() {
        return Err(corrupt("parts do not add up to the block"));
    }
    let mut starts = vec![0usize; parts];
    for k in 1..parts {
        starts[k] = starts[k - 1] + totals[k - 1];
    }
    let body = rd.0;
    let mut out = Vec::new();
    for (id, lens) in heads {
        let wanted = only.is_none_or(|o| o == id);
        let mut section = Vec::with_capacity(if wanted { lens.iter().sum() } else { 0 });
        for k in 0..parts {
            if wanted {
                section.extend(&body[starts[k]..starts[k] + lens[k]]);
            }
            starts[k] += lens[k];
        }
        // Unwanted users keep their place (an id given twice is still found).
        out.push((id, section));
    }
    Ok(out)
}

/// v2: each user's id, length and section in turn.
fn split_sections(raw: &[u8]) -> Result<Vec<(i64, Vec<u8>)>, StoreError> {
    let mut rd = Reader(raw);
    let users = user_count(&mut rd)?;
    let mut out = Vec::with_capacity(users);
    for _ in 0..users {
        let id = unzigzag(rd.varint()?);
        let len = usize::try_from(rd.varint()?)
            .ok()
            .filter(|&l| l <= rd.0.len())
            .ok_or_else(|| corrupt("section longer than the block"))?;
        let (section, rest) = rd.0.split_at(len);
        rd.0 = rest;
        out.push((id, section.to_vec()));
    }
    if !rd.0.is_empty() {
        return Err(corrupt("trailing bytes after the last user"));
    }
    Ok(out)
}

/// One user's rows, uncompressed, in [`PARTS`] parts, or [`PARTS_GPU`] with `gpu` (read back
/// concatenated).
fn encode_rows(rows: &[UserRow], gpu: bool) -> Vec<Vec<u8>> {
    let n = rows.len();
    let mut raw = Vec::with_capacity(16 + n * 24);
    let mut cuts = Vec::with_capacity(PARTS);
    put_varint(&mut raw, n as u64);

    let mut dod = Vec::with_capacity(n);
    time_steps(&mut dod, rows.iter().map(|r| r.at));
    put_column(&mut raw, &dod);
    cuts.push(raw.len());
    let figures: [fn(&UserRow) -> i64; 4] =
        [|r| r.cpu, |r| r.memory, |r| r.mem_kib, |r| r.processes];
    for f in figures {
        put_column(&mut raw, &deltas_of(rows, f));
        cuts.push(raw.len());
    }
    for r in rows {
        put_varint(&mut raw, u64::from(r.tracked));
        put_varint(&mut raw, r.top.len() as u64);
    }
    cuts.push(raw.len());

    // Top processes: references to the previous row's list, new identities, figure deltas.
    let mut refs = Vec::new();
    let mut fresh = Vec::new();
    let (mut cpu, mut mem) = (Vec::new(), Vec::new());
    let by_pid: Vec<Vec<StoredProcess>> = rows
        .iter()
        .map(|r| {
            let mut top = r.top.clone();
            top.sort_by_key(|p| (p.pid, p.command, p.cpu_hundredths, p.mem_kib));
            top
        })
        .collect();
    let mut prev: &[StoredProcess] = &[];
    for top in &by_pid {
        for (k, p) in top.iter().enumerate() {
            let base = prev
                .iter()
                .position(|q| q.pid == p.pid && q.command == p.command);
            let (base_cpu, base_mem) = match base {
                Some(i) => {
                    // v3: relative to the position, so an unchanged list is all ones.
                    refs.push(zigzag(i as i64 - k as i64) + 1);
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
        prev = top;
    }
    for v in refs.iter().chain(&fresh) {
        put_varint(&mut raw, *v);
    }
    cuts.push(raw.len());
    put_column(&mut raw, &cpu);
    cuts.push(raw.len());
    put_column(&mut raw, &mem);
    cuts.push(raw.len());
    if gpu {
        encode_gpu(rows, &mut raw, &mut cuts);
    }
    debug_assert_eq!(cuts.len(), if gpu { PARTS_GPU } else { PARTS });
    let mut parts = Vec::with_capacity(cuts.len());
    let mut from = 0;
    for cut in cuts {
        parts.push(raw[from..cut].to_vec());
        from = cut;
    }
    parts
}

/// Each row's `f` as the difference from the row before (the first from zero).
fn deltas_of(rows: &[UserRow], f: impl Fn(&UserRow) -> i64) -> Vec<i64> {
    let mut prev = 0i64;
    rows.iter()
        .map(|r| {
            let d = f(r).wrapping_sub(prev);
            prev = f(r);
            d
        })
        .collect()
}

const GPU_FIGURES: [fn(&GpuRow) -> i64; 4] =
    [|g| g.mem_kib, |g| g.memory, |g| g.util, |g| g.processes];

/// The four GPU parts (v4): device counts (0: no GPU), the figures (zero where none), device
/// ids, memory per device as the change from the same device in the user's previous row.
fn encode_gpu(rows: &[UserRow], raw: &mut Vec<u8>, cuts: &mut Vec<usize>) {
    for r in rows {
        put_varint(
            raw,
            r.gpu.as_ref().map_or(0, |g| 1 + g.devices.len() as u64),
        );
    }
    cuts.push(raw.len());
    for f in GPU_FIGURES {
        put_column(raw, &deltas_of(rows, |r| r.gpu.as_ref().map_or(0, f)));
    }
    cuts.push(raw.len());
    let devices = rows
        .iter()
        .flat_map(|r| r.gpu.iter().flat_map(|g| &g.devices));
    for &(id, _) in devices.clone() {
        put_varint(raw, id);
    }
    cuts.push(raw.len());
    let mut last: BTreeMap<u64, u64> = BTreeMap::new();
    let held: Vec<i64> = devices
        .map(|&(id, kib)| {
            let before = last.insert(id, kib).unwrap_or(0);
            kib.wrapping_sub(before) as i64
        })
        .collect();
    put_column(raw, &held);
    cuts.push(raw.len());
}

fn decode_gpu(rd: &mut Reader<'_>, rows: &mut [UserRow]) -> Result<(), StoreError> {
    let n = rows.len();
    let mut counts = Vec::with_capacity(n);
    let mut total = 0usize;
    for _ in 0..n {
        let c = rd.varint()?;
        if c > MAX_PROCESSES_PER_ROW + 1 {
            return Err(corrupt(&format!("{c} GPUs in one sample")));
        }
        counts.push(c as usize);
        total += (c as usize).saturating_sub(1);
    }
    if total > rd.0.len() {
        return Err(corrupt("more GPUs than the data holds"));
    }
    let figures: Vec<Vec<i64>> = (0..4)
        .map(|_| rd.column(n, true))
        .collect::<Result<_, _>>()?;
    let ids: Vec<u64> = (0..total).map(|_| rd.varint()).collect::<Result<_, _>>()?;
    let held = rd.column(total, true)?;
    let mut value = [0i64; 4];
    let mut last: BTreeMap<u64, u64> = BTreeMap::new();
    let mut next = 0usize;
    for (i, (r, &c)) in rows.iter_mut().zip(&counts).enumerate() {
        for (k, col) in figures.iter().enumerate() {
            value[k] = value[k].wrapping_add(col[i]);
        }
        if c == 0 {
            continue;
        }
        let mut devices = Vec::with_capacity(c - 1);
        for _ in 1..c {
            let id = ids[next];
            let kib = last
                .get(&id)
                .copied()
                .unwrap_or(0)
                .wrapping_add(held[next] as u64);
            last.insert(id, kib);
            devices.push((id, kib));
            next += 1;
        }
        r.gpu = Some(GpuRow {
            mem_kib: value[0],
            memory: value[1],
            util: value[2],
            processes: value[3],
            devices,
        });
    }
    Ok(())
}

/// `v3`: columns with zero runs, references counted from the process's own position (not from
/// the start of the previous list). `gpu`: the v4 GPU parts follow.
fn decode_rows(raw: &[u8], v3: bool, gpu: bool) -> Result<Vec<UserRow>, StoreError> {
    let mut rd = Reader(raw);
    let n = rd.count()?;
    if n > MAX_ROWS_PER_USER {
        return Err(corrupt(&format!("{n} rows for one user in one block")));
    }
    let min_row = if v3 { MIN_ROW_BYTES } else { MIN_ROW_BYTES_V2 };
    if n.saturating_mul(min_row) > rd.0.len() {
        return Err(corrupt("more rows than the data holds"));
    }

    let dod = rd.column(n, v3)?;
    let figures: Vec<Vec<i64>> = (0..4).map(|_| rd.column(n, v3)).collect::<Result<_, _>>()?;
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
            gpu: None,
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
    let cpu = rd.column(total, v3)?;
    let mem = rd.column(total, v3)?;
    if gpu {
        decode_gpu(&mut rd, &mut rows)?;
    }
    if !rd.0.is_empty() {
        return Err(corrupt("trailing bytes after a user's rows"));
    }

    let (mut next, mut fresh) = (0usize, identities.into_iter());
    let mut prev: Vec<StoredProcess> = Vec::new();
    for (r, &count) in rows.iter_mut().zip(&counts) {
        let mut top = Vec::with_capacity(count);
        for k in 0..count {
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
                r => {
                    let i = if v3 {
                        (k as i64).checked_add(unzigzag(r - 1))
                    } else {
                        i64::try_from(r - 1).ok()
                    };
                    *i.and_then(|i| usize::try_from(i).ok())
                        .and_then(|i| prev.get(i))
                        .ok_or_else(|| corrupt(&format!("reference {r} past the previous list")))?
                }
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
            gpu: None,
        }
    }

    fn one(rows: Vec<UserRow>) -> BTreeMap<i64, Vec<UserRow>> {
        BTreeMap::from([(7, rows)])
    }

    /// User 7's rows back from a block.
    fn back(block: &[u8]) -> Option<Vec<UserRow>> {
        decode(block, None).ok()?.remove(&7)
    }

    /// What a block gives back for `rows`: the same rows, each top list in canonical order.
    fn canonical(mut rows: Vec<UserRow>) -> Option<Vec<UserRow>> {
        for r in &mut rows {
            canonical_order(&mut r.top);
        }
        Some(rows)
    }

    #[test]
    fn lists_come_back_in_canonical_order() {
        // Coded in pid order, so a shuffled ranking costs nothing; read back heaviest first.
        let rows: Vec<UserRow> = (0..100)
            .map(|i| {
                let (a, b) = if i % 2 == 0 { (10, 90) } else { (90, 10) };
                row(i * 5_000, 1, &[(1, 1, a, 5), (2, 2, b, 6)])
            })
            .collect();
        let block = encode(&one(rows.clone()));
        let back_rows = back(&block).expect("decode");
        assert_eq!(Some(back_rows.clone()), canonical(rows));
        assert_eq!(back_rows[0].top[0].pid, 2, "heaviest first");
        assert_eq!(back_rows[1].top[0].pid, 1, "heaviest first");
    }

    /// A v3 block whose payload is `raw` exactly.
    fn block_of(raw: &[u8]) -> Vec<u8> {
        let mut b = vec![VERSION];
        b.extend(miniz_oxide::deflate::compress_to_vec(raw, 1));
        b
    }

    #[test]
    fn damaged_counts_cannot_make_the_decoder_allocate_without_bound() {
        // More users than a block can hold, with the bytes to look plausible.
        let mut raw = Vec::new();
        put_varint(&mut raw, MAX_USERS as u64 + 1);
        raw.resize(raw.len() + (MAX_USERS + 1) * (1 + PARTS), 0);
        let err = decode(&block_of(&raw), None).expect_err("too many users");
        assert!(err.to_string().contains("users in one block"), "{err}");
        assert!(user_ids(&block_of(&raw)).is_err());

        // One user with more rows than a window can hold: every column one run of zeros, so
        // the rows cost two bytes each.
        let n = MAX_ROWS_PER_USER + 1;
        let mut section = Vec::new();
        put_varint(&mut section, n as u64);
        for _ in 0..5 {
            put_column(&mut section, &vec![0; n]);
        }
        section.extend([0, 0].repeat(n));
        put_column(&mut section, &[]);
        put_column(&mut section, &[]);
        let mut raw = vec![1, 14];
        raw.extend([0; PARTS - 1]);
        put_varint(&mut raw, section.len() as u64);
        raw.extend(&section);
        let err = decode(&block_of(&raw), None).expect_err("too many rows");
        assert!(err.to_string().contains("rows for one user"), "{err}");
        // The same with one row fewer is a valid block of empty rows.
        let rows = back(&encode(&one(vec![row(0, 0, &[]); n - 1]))).expect("decode");
        assert_eq!(rows.len(), n - 1);
    }

    #[test]
    fn user_ids_come_from_the_header_alone() {
        let mut users = BTreeMap::new();
        for id in [3i64, -1, 40] {
            users.insert(id, vec![row(0, id, &[(1, 1, 2, 3)])]);
        }
        assert_eq!(user_ids(&encode(&users)).ok(), Some(vec![-1, 3, 40]));
    }

    /// A column as v2 wrote it: divisor, low bytes, high parts; no zero runs.
    fn put_plain_column(out: &mut Vec<u8>, values: &[i64]) {
        out.push(1);
        out.extend(values.iter().map(|&v| zigzag(v) as u8));
        for &v in values {
            put_varint(out, zigzag(v) >> 8);
        }
    }

    #[test]
    fn version_2_blocks_still_read_with_absolute_references_in_stored_order() {
        // Two samples of one user (id 7), two processes each, the lighter first as stored.
        let mut section = Vec::new();
        put_varint(&mut section, 2);
        put_plain_column(&mut section, &[0, 5_000]);
        for _ in 0..4 {
            put_plain_column(&mut section, &[0, 0]);
        }
        section.extend([0, 2, 0, 2]); // tracked, count; per sample
        section.extend([0, 0, 1, 2]); // new, new; then the first and second of the previous list
        section.extend([1, 1, 2, 2]); // the new identities (pid, command)
        put_plain_column(&mut section, &[10, 90, 0, 0]);
        put_plain_column(&mut section, &[5, 6, 0, 0]);
        let mut raw = vec![1, 14];
        put_varint(&mut raw, section.len() as u64);
        raw.extend(section);
        let mut block = vec![VERSION_STORED_ORDER];
        block.extend(miniz_oxide::deflate::compress_to_vec(&raw, 6));
        let rows = back(&block).expect("a version 2 block");
        let tops: Vec<Vec<(u64, u64)>> = rows
            .iter()
            .map(|r| r.top.iter().map(|p| (p.pid, p.cpu_hundredths)).collect())
            .collect();
        assert_eq!(tops, [[(1, 10), (2, 90)], [(1, 10), (2, 90)]]);
        assert_eq!(rows[1].at, 5_000);
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
        assert_eq!(back(&block), canonical(rows));
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
        // Valid deflate around invalid contents: one user (id 0) whose section is `raw` (all
        // of it in the last part, which reassembles to the same section).
        let wrap = |raw: &[u8]| {
            let mut inner = vec![1, 0, 0, 0, 0, 0, 0, 0, 0, 0, raw.len() as u8];
            inner.extend_from_slice(raw);
            let mut b = vec![VERSION];
            b.extend(miniz_oxide::deflate::compress_to_vec(&inner, 1));
            decode(&b, None)
        };
        // No rows: seven columns of (divisor 1, no value other than zero, a run of no zeros).
        let mut minimal = vec![0];
        minimal.extend([1, 0, 0].repeat(7));
        assert!(wrap(&minimal).is_ok(), "the minimal valid section");
        assert!(wrap(&[5]).is_err(), "rows missing");
        let mut trailing = minimal.clone();
        trailing.push(7);
        assert!(wrap(&trailing).is_err(), "trailing");
        let mut runs_too_long = minimal.clone();
        runs_too_long[3] = 1;
        assert!(wrap(&runs_too_long).is_err(), "more zeros than rows");
        // One row whose single process refers to a previous list that does not exist.
        // Five figure columns of (divisor 1, no value other than zero, a run of one zero),
        // tracked 0, one process, reference 1, then the process CPU and KiB columns.
        let mut bad_ref = vec![1];
        bad_ref.extend([1, 0, 1].repeat(5));
        bad_ref.extend([0, 1, 1]);
        bad_ref.extend([1, 0, 1].repeat(2));
        let err = wrap(&bad_ref).expect_err("dangling reference");
        assert!(err.to_string().contains("reference 1 past"), "{err}");
        bad_ref[18] = 0; // a new process instead: valid once its identity is there
        bad_ref.splice(19..19, [42, 7]);
        let ok = wrap(&bad_ref).expect("a new process");
        assert_eq!(ok[&0][0].top[0].pid, 42);
        assert_eq!(ok[&0][0].top[0].command, 7);
        // Every change to a byte of the payload decodes or errors, never panics.
        let raw = miniz_oxide::inflate::decompress_to_vec(&good[1..]).expect("inflate");
        for i in 0..raw.len() {
            for v in [0, 1, 2, 0x7f, 0x80, 0xff] {
                let mut r = raw.clone();
                r[i] = v;
                let mut b = vec![VERSION];
                b.extend(miniz_oxide::deflate::compress_to_vec(&r, 1));
                let _ = decode(&b, None);
            }
        }
        // Every single-byte change decodes or errors, never panics.
        for i in 0..good.len() {
            for bit in 0..8 {
                let mut b = good.clone();
                b[i] ^= 1 << bit;
                let _ = decode(&b, None);
            }
        }
    }

    fn arb_gpu() -> impl Strategy<Value = Option<GpuRow>> {
        prop::option::of((
            any::<(i64, i64, i64, i64)>(),
            prop::collection::vec((0u64..10, any::<u64>()), 0..4),
        ))
        .prop_map(|g| {
            g.map(|((mem_kib, memory, util, processes), devices)| GpuRow {
                mem_kib,
                memory,
                util,
                processes,
                devices,
            })
        })
    }

    fn arb_row() -> impl Strategy<Value = UserRow> {
        (
            any::<i64>(),
            any::<(i64, i64, i64, i64, bool)>(),
            prop::collection::vec((0u64..4, 0u64..4, any::<u64>(), any::<u64>()), 0..6),
            arb_gpu(),
        )
            .prop_map(
                |(at, (cpu, memory, mem_kib, processes, tracked), top, gpu)| UserRow {
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
                    gpu,
                },
            )
    }

    /// A user holding 20 GiB on device 3 and a little on device 5 that comes and goes.
    fn gpu_rows(n: i64) -> Vec<UserRow> {
        (0..n)
            .map(|i| {
                let mut r = row(i * 5_000, 100 + i % 3, &[(1, 1, 9_000, 4 << 20)]);
                let mut devices = vec![(3, 20 << 20)];
                if i % 10 < 5 {
                    devices.push((5, 1_024 + (i as u64 % 2) * 4));
                }
                r.gpu = (i % 50 != 49).then(|| GpuRow {
                    mem_kib: devices.iter().map(|d| d.1 as i64).sum(),
                    memory: 1_250,
                    util: 9_000 + i % 7,
                    processes: devices.len() as i64,
                    devices,
                });
                r
            })
            .collect()
    }

    #[test]
    fn gpu_figures_round_trip_in_a_version_4_block_and_cost_little() {
        let rows = gpu_rows(180);
        let block = encode(&one(rows.clone()));
        assert_eq!(block[0], VERSION_GPU);
        assert_eq!(back(&block), canonical(rows.clone()));
        let without: Vec<UserRow> = rows
            .iter()
            .cloned()
            .map(|mut r| {
                r.gpu = None;
                r
            })
            .collect();
        let plain = encode(&one(without));
        assert_eq!(plain[0], VERSION, "no GPU figure: the format of before");
        // A window of a user steadily holding GPUs: a few bytes per sample more.
        let extra = block.len() - plain.len();
        assert!(extra < 180, "{extra} bytes for 180 samples");
    }

    #[test]
    fn damaged_version_4_blocks_are_errors_not_panics() {
        let good = encode(&one(gpu_rows(60)));
        let raw = miniz_oxide::inflate::decompress_to_vec(&good[1..]).expect("inflate");
        for i in 0..raw.len() {
            for v in [0, 1, 2, 0x7f, 0x80, 0xff] {
                let mut r = raw.clone();
                r[i] = v;
                let mut b = vec![VERSION_GPU];
                b.extend(miniz_oxide::deflate::compress_to_vec(&r, 1));
                let _ = decode(&b, None);
            }
        }
        assert!(decode(&good[..good.len() / 2], None).is_err(), "truncated");
        // A v3 payload read as v4 lacks the GPU parts.
        let plain = encode(&one(vec![row(0, 1, &[])]));
        let mut relabelled = plain.clone();
        relabelled[0] = VERSION_GPU;
        assert!(decode(&relabelled, None).is_err());
    }

    proptest! {
        #[test]
        fn round_trip(rows in prop::collection::vec(arb_row(), 0..40)) {
            prop_assert_eq!(back(&encode(&one(rows.clone()))), canonical(rows));
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
            prop_assert_eq!(back(&encode(&one(rows.clone()))), canonical(rows));
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
