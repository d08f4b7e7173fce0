//! Field checks of the `events` service: text lengths, RFC 3339 times and IANA time zones.

/// Longest title, in characters.
pub const TITLE_MAX: usize = 200;
/// Longest description, in characters.
pub const DESCRIPTION_MAX: usize = 4000;
/// Longest location, in characters.
pub const LOCATION_MAX: usize = 200;
/// Largest capacity.
pub const CAPACITY_MAX: i64 = 1_000_000;

/// The IANA time zone names (zones and links) of tzdata 2025b, one per line, sorted: made
/// from `tzdata.zi` with
/// `awk '$1=="Z"{print $2} $1=="L"{print $3}' /usr/share/zoneinfo/tzdata.zi | sort -u`.
/// Only the name is checked (the calendar is written in UTC), so a list is all a check
/// needs: no time-zone database crate (chrono-tz is not in the build).
const ZONES: &str = include_str!("zones.txt");

/// A title: 1 to 200 characters, not only spaces, no control characters.
pub fn title(s: &str) -> Result<(), String> {
    if s.trim().is_empty() {
        return Err("is required".into());
    }
    if s.chars().count() > TITLE_MAX {
        return Err(format!("must be at most {TITLE_MAX} characters"));
    }
    if s.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(())
}

/// Free text of at most `max` characters; line breaks and tabs are the only control
/// characters allowed.
pub fn text(s: &str, max: usize) -> Result<(), String> {
    if s.chars().count() > max {
        return Err(format!("must be at most {max} characters"));
    }
    if s.chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err("must not contain control characters".into());
    }
    Ok(())
}

/// A capacity: 1 to [`CAPACITY_MAX`].
pub fn capacity(n: i64) -> Result<(), String> {
    if !(1..=CAPACITY_MAX).contains(&n) {
        return Err(format!("must be between 1 and {CAPACITY_MAX}"));
    }
    Ok(())
}

/// An IANA time zone name, e.g. `Europe/Paris` or `UTC`.
pub fn timezone(s: &str) -> Result<(), String> {
    if ZONES.lines().any(|z| z == s) {
        Ok(())
    } else {
        Err(format!(
            "unknown time zone {s:?} (an IANA name such as Europe/Paris)"
        ))
    }
}

/// An RFC 3339 date-time (`2026-03-01T09:30:00Z`, `2026-03-01T10:30:00.5+01:00`) as unix
/// milliseconds.
pub fn rfc3339(s: &str) -> Result<i64, String> {
    parse_rfc3339(s.as_bytes())
        .ok_or_else(|| "must be an RFC 3339 date-time such as 2026-03-01T09:30:00Z".to_string())
}

fn parse_rfc3339(b: &[u8]) -> Option<i64> {
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(r)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut i = 19;
    let mut millis = 0;
    if b[i] == b'.' {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
        let digits = &b[start..i.min(start + 3)];
        let mut ms = 0i64;
        for (k, c) in digits.iter().enumerate() {
            ms += i64::from(c - b'0') * [100, 10, 1][k];
        }
        millis = ms;
    }
    let offset_min = match b.get(i..)? {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let digits = [*h1, *h2, *m1, *m2];
            if !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let oh = i64::from(h1 - b'0') * 10 + i64::from(h2 - b'0');
            let om = i64::from(m1 - b'0') * 10 + i64::from(m2 - b'0');
            if oh > 23 || om > 59 {
                return None;
            }
            let m = oh * 60 + om;
            if *sign == b'-' {
                -m
            } else {
                m
            }
        }
        _ => return None,
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days_in = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&mo) || d < 1 || d > days_in[(mo - 1) as usize] {
        return None;
    }
    // 60: a leap second, counted as the next second's start.
    if h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3600 + mi * 60 + s - offset_min * 60;
    Some(secs * 1000 + millis)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::time::rfc3339_millis;

    #[test]
    fn rfc3339_reads_zulu_offsets_and_fractions() {
        assert_eq!(rfc3339("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(rfc3339("2024-02-29T13:05:09.042Z"), Ok(1_709_211_909_042));
        assert_eq!(
            rfc3339("2024-02-29T14:05:09.042+01:00"),
            Ok(1_709_211_909_042)
        );
        assert_eq!(
            rfc3339("2024-02-29T08:05:09.0421-05:00"),
            Ok(1_709_211_909_042)
        );
        let ms = rfc3339("2026-12-31T23:59:59.999Z").unwrap();
        assert_eq!(rfc3339_millis(ms), "2026-12-31T23:59:59.999Z");
    }

    #[test]
    fn rfc3339_refuses_what_is_not_one() {
        for bad in [
            "",
            "2026-03-01",
            "2026-03-01T09:30:00",
            "2026-02-29T09:30:00Z",
            "2026-13-01T09:30:00Z",
            "2026-03-01T24:00:00Z",
            "2026-03-01T09:30:00+1:00",
            "2026-03-01T09:30:00.Z",
            "tomorrow at nine o'clock",
        ] {
            assert!(rfc3339(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn time_zones_are_iana_names() {
        for ok in [
            "UTC",
            "Europe/Paris",
            "America/Argentina/Buenos_Aires",
            "Asia/Kolkata",
        ] {
            assert_eq!(timezone(ok), Ok(()), "{ok}");
        }
        for bad in ["", "Mars/Olympus_Mons", "europe/paris", "+01:00"] {
            assert!(timezone(bad).is_err(), "{bad}");
        }
    }
}
