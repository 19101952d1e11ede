//! The times `b` (go to) understands, beyond what the command line's `--since` takes.
//!
//! At a prompt an admin types what they think: `04:37` (the last time the clock read that),
//! `1.5h` or `2m30s` back from now, `yesterday` (this time, a day ago); dates and durations
//! like `6h` are read as everywhere else (`time::parse_when`).

use jiff::tz::TimeZone;

use crate::model::Timestamp;

const UNITS: [(&str, f64); 6] = [
    ("s", 1.0),
    ("min", 60.0),
    ("m", 60.0),
    ("h", 3600.0),
    ("d", 86_400.0),
    ("w", 604_800.0),
];

/// `2m30s`, `1.5h`, `1h30m` in seconds; None when it is not such a duration.
fn duration_secs(s: &str) -> Option<f64> {
    let mut rest = s;
    let mut total = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let n: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let (unit, secs) = UNITS.iter().find(|(u, _)| rest.starts_with(u))?;
        total += n * secs;
        rest = &rest[unit.len()..];
    }
    (total.is_finite() && !s.is_empty()).then_some(total)
}

/// `HH:MM` or `HH:MM:SS`: the most recent moment the clock in `tz` read that (today, or
/// yesterday when that is still to come).
fn clock_time(s: &str, now: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
    if !s.contains(':') || s.contains(['-', 'T', ' ']) {
        return None;
    }
    let time: jiff::civil::Time = s.parse().ok()?;
    let now_z = jiff::Timestamp::from_millisecond(now.0)
        .ok()?
        .to_zoned(tz.clone());
    let today = now_z.date().to_datetime(time).to_zoned(tz.clone()).ok()?;
    let at = if today.timestamp() > now_z.timestamp() {
        today.checked_sub(jiff::Span::new().days(1)).ok()?
    } else {
        today
    };
    Some(Timestamp(at.timestamp().as_millisecond()))
}

/// The moment `text` means, relative to `now`.
pub fn parse(text: &str, now: Timestamp, tz: &TimeZone) -> Result<Timestamp, String> {
    let s = text.trim();
    match s.to_lowercase().as_str() {
        "yesterday" => return Ok(now.plus_secs(-86_400.0)),
        "now" => return Ok(now),
        _ => {}
    }
    if let Some(secs) = duration_secs(s) {
        return Ok(now.plus_secs(-secs));
    }
    if let Some(t) = clock_time(s, now, tz) {
        return Ok(t);
    }
    crate::time::parse_when(s, now).map_err(|_| {
        format!("{s:?} is not a time: try 04:37, 30m, 1.5h, 2m30s, yesterday or 2026-11-22T03:00")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-20 03:00:00 UTC.
    const NOW: Timestamp = Timestamp(1_795_143_600_000);

    fn at(s: &str) -> Result<Timestamp, String> {
        parse(s, NOW, &TimeZone::UTC)
    }

    #[test]
    fn what_an_admin_types_at_the_prompt() {
        assert_eq!(at("1.5h"), Ok(NOW.plus_secs(-5400.0)));
        assert_eq!(at("2m30s"), Ok(NOW.plus_secs(-150.0)));
        assert_eq!(at("1h30m"), Ok(NOW.plus_secs(-5400.0)));
        assert_eq!(at("6h"), Ok(NOW.plus_secs(-21_600.0)));
        assert_eq!(at("yesterday"), Ok(NOW.plus_secs(-86_400.0)));
        // 02:37 today is 23 minutes ago; 04:37 has not come yet today: yesterday's.
        assert_eq!(at("02:37"), Ok(NOW.plus_secs(-23.0 * 60.0)));
        assert_eq!(at("04:37"), Ok(NOW.plus_secs(-86_400.0 + 97.0 * 60.0)));
        assert_eq!(at("02:59:30"), Ok(NOW.plus_secs(-30.0)));
        assert!(at("2026-11-19T03:00").is_ok());
    }

    #[test]
    fn nonsense_says_what_would_work() {
        for bad in ["", "soon", "5x", "25:00", "1.2.3h"] {
            let e = at(bad).expect_err(bad);
            assert!(e.contains("04:37") && e.contains("1.5h"), "{bad}: {e}");
        }
    }
}
