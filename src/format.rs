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

/// A duration as its two largest units: `45s`, `12m`, `1h12m`, `3d 4h`. The same form in the
/// status reasons, alert messages, emails and the UI.
pub fn duration(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d {}h", s / 86_400, (s % 86_400) / 3600),
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
        assert_eq!(duration(42), "42s");
        assert_eq!(duration(303), "5m");
        assert_eq!(duration(3600), "1h00m");
        assert_eq!(duration(4320), "1h12m");
        assert_eq!(duration(3 * 86_400 + 4 * 3600 + 1800), "3d 4h");
        assert_eq!(truncate("abcdef", 4, false), "abc…");
        assert_eq!(truncate("abcdef", 4, true), "abc~");
        assert_eq!(truncate("abc", 4, false), "abc");
    }
}
