//! The compact encoding of a user's top processes in `user_samples.top` (the hot rows; older
//! rows are packed into blocks, see `block.rs`).
//!
//! Why a blob and not JSON or a child table: the top processes are written for every recorded
//! user every few seconds, and at 50 users that is 250 processes per sample. A child table costs
//! a row header and key per process; JSON spells every number in decimal with separators. This
//! format is a version byte followed by four unsigned LEB128 varints per process — pid, command
//! id (`commands` table), CPU in hundredths of a percent of one core, resident memory in KiB —
//! about 9 bytes per process instead of ~30 for compact JSON.

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
    let corrupt = |why: &str| StoreError::Corrupt {
        what: "top processes",
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
        let mut field = [0u64; 4];
        for f in &mut field {
            let (v, used) = get_varint(rest).ok_or_else(|| corrupt("truncated varint"))?;
            *f = v;
            rest = &rest[used..];
        }
        out.push(StoredProcess {
            pid: field[0],
            command: field[1],
            cpu_hundredths: field[2],
            mem_kib: field[3],
        });
    }
    Ok(out)
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

    proptest! {
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
