//! Time as people write and read it: RFC 3339 for machines and logs, and the short forms an
//! admin types (`6h`, `2026-11-22T03:00`). Neutral: the CLI, the TUI, the HTTP API and the log
//! all use it, none through another.

use crate::model::Timestamp;

/// `2026-11-22T03:00:00Z`.
pub fn rfc3339(at: Timestamp) -> String {
    jiff::Timestamp::from_millisecond(at.0)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|_| at.0.to_string())
}

/// `6h`, `30m`, `7d`, `90s` back from `now`, or an absolute time (RFC 3339, or a local
/// `YYYY-MM-DD[THH:MM[:SS]]`).
pub fn parse_when(s: &str, now: Timestamp) -> Result<Timestamp, String> {
    let s = s.trim();
    if let Some((num, unit)) = s.find(|c: char| !c.is_ascii_digit()).map(|i| s.split_at(i))
        && let Ok(n) = num.parse::<i64>()
    {
        let secs = match unit {
            "s" => Some(n),
            "m" | "min" => Some(n * 60),
            "h" => Some(n * 3600),
            "d" => Some(n * 86_400),
            "w" => Some(n * 7 * 86_400),
            _ => None,
        };
        if let Some(secs) = secs {
            return Ok(Timestamp(now.0 - secs * 1000));
        }
    }
    if let Ok(t) = s.parse::<jiff::Timestamp>() {
        return Ok(Timestamp(t.as_millisecond()));
    }
    let civil = s
        .parse::<jiff::civil::DateTime>()
        .or_else(|_| {
            s.parse::<jiff::civil::Date>()
                .map(|d| d.to_datetime(jiff::civil::Time::midnight()))
        })
        .map_err(|_| {
            format!("{s:?} is neither a duration like 6h nor a time like 2026-11-22T03:00")
        })?;
    civil
        .to_zoned(jiff::tz::TimeZone::system())
        .map(|z| Timestamp(z.timestamp().as_millisecond()))
        .map_err(|e| format!("{s:?}: {e}"))
}
