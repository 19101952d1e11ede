//! Human-readable numbers, shared by every text sink (reports, the TUI, email) so that a figure
//! reads the same wherever an admin meets it.

/// Bytes in binary units with one decimal: `3.8 GiB`, `512 B`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// A rate in bytes per second: `1.2 MiB/s`.
pub fn rate(bytes_per_sec: f64) -> String {
    format!("{}/s", bytes(bytes_per_sec.max(0.0).round() as u64))
}

/// A duration as the largest two units: `3d 4h`, `1h12m`, `5m 3s`, `42s`.
pub fn duration(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    let (d, h, m, sec) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h{m:02}m")
    } else if m > 0 {
        format!("{m}m {sec}s")
    } else {
        format!("{sec}s")
    }
}

/// Cut `s` to at most `width` characters, marking the cut with `…` (or `~` in ASCII mode).
pub fn truncate(s: &str, width: usize, ascii: bool) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    let mark = if ascii { '~' } else { '…' };
    let mut out: String = s.chars().take(width.saturating_sub(1)).collect();
    out.push(mark);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
        assert_eq!(rate(2048.0), "2.0 KiB/s");
        assert_eq!(duration(42.0), "42s");
        assert_eq!(duration(303.0), "5m 3s");
        assert_eq!(duration(4320.0), "1h12m");
        assert_eq!(duration(3.0 * 86_400.0 + 4.5 * 3600.0), "3d 4h");
        assert_eq!(truncate("abcdef", 4, false), "abc…");
        assert_eq!(truncate("abcdef", 4, true), "abc~");
        assert_eq!(truncate("abc", 4, false), "abc");
    }
}
