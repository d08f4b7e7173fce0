//! A coach's schedule and the slots it opens: weekly availability windows and dated
//! exceptions in the coach's IANA time zone, cut into slots of `slot_minutes`.
//!
//! Everything is computed in local time and only then turned into instants, with `jiff`'s
//! time-zone database, so a slot keeps its wall-clock time across DST changes:
//!
//! - a 09:00 slot is 09:00 local time before and after the change;
//! - a local start that does not exist (inside a spring-forward gap) is no slot;
//! - a local start that happens twice (inside a fall-back fold) is its earlier instant;
//! - a slot lasts `slot_minutes` of real time from its start (its end is not re-read on
//!   the local clock, so a slot that spans a change is still as long as every other one).
//!
//! Weekdays are ISO: 1 is Monday, 7 is Sunday. A window `start`-`end` opens the slots that
//! start at `start`, `start + slot`, ... and end by `end` (`end` may be `24:00`). An
//! exception names a local date and, optionally, a window of it: no slot that overlaps it
//! (the whole date without a window) is open.

use jiff::civil::{Date, DateTime};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Shortest slot, in minutes.
pub const SLOT_MIN: i64 = 15;
/// Longest slot, in minutes.
pub const SLOT_MAX: i64 = 480;
/// Slot length when none is given, in minutes.
pub const SLOT_DEFAULT: i64 = 60;
/// Most availability windows a coach may have.
pub const WINDOWS_MAX: usize = 100;
/// Most exceptions a coach may have.
pub const EXCEPTIONS_MAX: usize = 1000;
/// Longest time-zone name.
const ZONE_MAX: usize = 64;
const MINUTE_MS: i64 = 60_000;
const DAY_MINUTES: u16 = 24 * 60;

/// One weekly availability window, as stored (JSON) and shown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// ISO weekday: 1 (Monday) to 7 (Sunday).
    pub weekday: u8,
    /// Local start, `HH:MM`.
    pub start: String,
    /// Local end, `HH:MM` (or `24:00`), after `start`.
    pub end: String,
}

/// One exception, as stored (JSON) and shown: the coach is not available on `date` (in the
/// window `start`-`end` of it when given, else all day).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exception {
    /// Local date, `YYYY-MM-DD`.
    pub date: String,
    /// Local start, `HH:MM`, with `end`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// Local end, `HH:MM` (or `24:00`), with `start`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
}

/// A window in minutes of the local day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Minutes {
    start: u16,
    end: u16,
}

/// A checked schedule, ready to compute slots.
#[derive(Clone, Debug)]
pub struct Schedule {
    tz: TimeZone,
    slot_minutes: i64,
    /// Windows by weekday (index 0: Monday), each list sorted.
    weekly: [Vec<Minutes>; 7],
    /// Exceptions by local date; `None`: the whole day.
    exceptions: Vec<(Date, Option<Minutes>)>,
}

/// One slot: start and end, unix milliseconds.
pub type Slot = (i64, i64);

/// The time zone named `name` (an IANA name such as `Europe/Berlin`, or `UTC`), with the
/// name as the database spells it.
pub fn timezone(name: &str) -> Result<(TimeZone, String), String> {
    let bad = || {
        format!("unknown time zone {name:?} (an IANA name such as Europe/Berlin)")
            .chars()
            .take(200)
            .collect::<String>()
    };
    let shaped = !name.is_empty()
        && name.len() <= ZONE_MAX
        && name
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-' | '+'));
    if !shaped {
        return Err(bad());
    }
    let tz = TimeZone::get(name).map_err(|_| bad())?;
    let canonical = tz.iana_name().unwrap_or(name).to_string();
    Ok((tz, canonical))
}

/// A slot length: [`SLOT_MIN`] to [`SLOT_MAX`] minutes.
pub fn slot_minutes(n: i64) -> Result<(), String> {
    if (SLOT_MIN..=SLOT_MAX).contains(&n) {
        Ok(())
    } else {
        Err(format!("must be between {SLOT_MIN} and {SLOT_MAX} minutes"))
    }
}

/// `HH:MM` as minutes of the day; `24:00` only when `end_of_day` is allowed.
fn hh_mm(s: &str, end_of_day: bool) -> Result<u16, String> {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| -> Option<u16> {
        let part = b.get(r)?;
        part.iter()
            .all(u8::is_ascii_digit)
            .then(|| part.iter().fold(0, |n, d| n * 10 + u16::from(d - b'0')))
    };
    let parsed = (b.len() == 5 && b[2] == b':')
        .then(|| Some((digits(0..2)?, digits(3..5)?)))
        .flatten();
    match parsed {
        Some((24, 0)) if end_of_day => Ok(DAY_MINUTES),
        Some((h, m)) if h < 24 && m < 60 => Ok(h * 60 + m),
        _ => Err(format!("{s:?} is not a time of day as HH:MM")),
    }
}

fn hh_mm_text(minutes: u16) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

/// A window `start`-`end` of `HH:MM` times, `start` before `end`.
fn minutes(start: &str, end: &str) -> Result<Minutes, String> {
    let s = hh_mm(start, false)?;
    let e = hh_mm(end, true)?;
    if s >= e {
        return Err(format!("start {start} must be before end {end}"));
    }
    Ok(Minutes { start: s, end: e })
}

/// `YYYY-MM-DD` as a date.
fn date(s: &str) -> Result<Date, String> {
    let b = s.as_bytes();
    let bad = || format!("{s:?} is not a date as YYYY-MM-DD");
    let shaped = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shaped {
        return Err(bad());
    }
    let (y, m, d) = (&s[0..4], &s[5..7], &s[8..10]);
    let (Ok(y), Ok(m), Ok(d)) = (y.parse::<i16>(), m.parse::<i8>(), d.parse::<i8>()) else {
        return Err(bad());
    };
    Date::new(y, m, d).map_err(|_| bad())
}

/// Checks `windows`: weekdays 1-7, `HH:MM` times with start before end, and no two windows
/// of one weekday overlapping (touching is fine). Answers them canonical, sorted.
pub fn check_windows(windows: &[Window]) -> Result<Vec<Window>, String> {
    if windows.len() > WINDOWS_MAX {
        return Err(format!("must have at most {WINDOWS_MAX} windows"));
    }
    let mut parsed: Vec<(u8, Minutes)> = Vec::with_capacity(windows.len());
    for (i, w) in windows.iter().enumerate() {
        if !(1..=7).contains(&w.weekday) {
            return Err(format!(
                "window {i}: weekday must be 1 (Monday) to 7 (Sunday)"
            ));
        }
        let m = minutes(&w.start, &w.end).map_err(|e| format!("window {i}: {e}"))?;
        parsed.push((w.weekday, m));
    }
    parsed.sort_by_key(|(d, m)| (*d, m.start, m.end));
    for pair in parsed.windows(2) {
        let ((d1, a), (d2, b)) = (pair[0], pair[1]);
        if d1 == d2 && b.start < a.end {
            return Err(format!(
                "windows {}-{} and {}-{} of weekday {d1} overlap",
                hh_mm_text(a.start),
                hh_mm_text(a.end),
                hh_mm_text(b.start),
                hh_mm_text(b.end)
            ));
        }
    }
    Ok(parsed
        .into_iter()
        .map(|(weekday, m)| Window {
            weekday,
            start: hh_mm_text(m.start),
            end: hh_mm_text(m.end),
        })
        .collect())
}

/// Checks `exceptions`: a date, and either both `start` and `end` (start before end) or
/// neither. Answers them canonical, sorted by date.
pub fn check_exceptions(exceptions: &[Exception]) -> Result<Vec<Exception>, String> {
    if exceptions.len() > EXCEPTIONS_MAX {
        return Err(format!("must have at most {EXCEPTIONS_MAX} exceptions"));
    }
    let mut out = Vec::with_capacity(exceptions.len());
    for (i, x) in exceptions.iter().enumerate() {
        let d = date(&x.date).map_err(|e| format!("exception {i}: {e}"))?;
        let window = match (&x.start, &x.end) {
            (None, None) => None,
            (Some(s), Some(e)) => Some(minutes(s, e).map_err(|e| format!("exception {i}: {e}"))?),
            _ => {
                return Err(format!(
                    "exception {i}: give both start and end, or neither"
                ))
            }
        };
        out.push((d, window));
    }
    out.sort_by_key(|(d, w)| (*d, w.map(|m| (m.start, m.end))));
    Ok(out
        .into_iter()
        .map(|(d, w)| Exception {
            date: d.to_string(),
            start: w.map(|m| hh_mm_text(m.start)),
            end: w.map(|m| hh_mm_text(m.end)),
        })
        .collect())
}

impl Schedule {
    /// The schedule of a coach as stored: a known zone and checked windows and exceptions
    /// (anything else is refused with the reason).
    pub fn new(
        timezone_name: &str,
        slot_minutes: i64,
        windows: &[Window],
        exceptions: &[Exception],
    ) -> Result<Schedule, String> {
        let (tz, _) = timezone(timezone_name)?;
        self::slot_minutes(slot_minutes)?;
        let mut weekly: [Vec<Minutes>; 7] = Default::default();
        for w in check_windows(windows)? {
            weekly[usize::from(w.weekday - 1)].push(minutes(&w.start, &w.end)?);
        }
        let mut dated = Vec::new();
        for x in check_exceptions(exceptions)? {
            let window = match (&x.start, &x.end) {
                (Some(s), Some(e)) => Some(minutes(s, e)?),
                _ => None,
            };
            dated.push((date(&x.date)?, window));
        }
        Ok(Schedule {
            tz,
            slot_minutes,
            weekly,
            exceptions: dated,
        })
    }

    /// Slot length in milliseconds.
    pub fn slot_ms(&self) -> i64 {
        self.slot_minutes * MINUTE_MS
    }

    /// Every slot of the schedule that starts in `[from, to)` (unix ms), soonest first,
    /// whether booked or not.
    pub fn slots(&self, from: i64, to: i64) -> Vec<Slot> {
        let mut out = Vec::new();
        let (Some(first), Some(last)) = (self.local_date(from), self.local_date(to)) else {
            return out;
        };
        // A day either side: an instant's local date and a slot's can differ around a
        // transition at midnight.
        let mut day = first.yesterday().unwrap_or(first);
        let last = last.tomorrow().unwrap_or(last);
        while day <= last {
            self.slots_of(day, from, to, &mut out);
            match day.tomorrow() {
                Ok(next) => day = next,
                Err(_) => break,
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The slot that starts at `start` (unix ms), if the schedule has one.
    pub fn slot_at(&self, start: i64) -> Option<Slot> {
        self.slots(start, start.saturating_add(1))
            .into_iter()
            .find(|(s, _)| *s == start)
    }

    fn local_date(&self, ms: i64) -> Option<Date> {
        let ts = Timestamp::from_millisecond(ms).ok()?;
        Some(self.tz.to_datetime(ts).date())
    }

    /// The slots of local date `day` that start in `[from, to)`.
    fn slots_of(&self, day: Date, from: i64, to: i64, out: &mut Vec<Slot>) {
        let weekday = day.weekday().to_monday_one_offset();
        let Some(windows) = usize::try_from(weekday - 1)
            .ok()
            .and_then(|i| self.weekly.get(i))
        else {
            return;
        };
        let closed: Vec<Option<Minutes>> = self
            .exceptions
            .iter()
            .filter(|(d, _)| *d == day)
            .map(|(_, w)| *w)
            .collect();
        if closed.iter().any(Option::is_none) {
            return;
        }
        let slot = u16::try_from(self.slot_minutes).unwrap_or(DAY_MINUTES);
        for w in windows {
            let mut t = w.start;
            while t + slot <= w.end {
                let blocked = closed
                    .iter()
                    .flatten()
                    .any(|x| t < x.end && t + slot > x.start);
                if !blocked {
                    if let Some(start) = self.instant(day, t) {
                        if start >= from && start < to {
                            out.push((start, start + self.slot_ms()));
                        }
                    }
                }
                t += slot;
            }
        }
    }

    /// The instant of local `day` at `minute` of the day: `None` inside a gap, the earlier
    /// one inside a fold.
    fn instant(&self, day: Date, minute: u16) -> Option<i64> {
        let hour = i8::try_from(minute / 60).ok()?;
        let min = i8::try_from(minute % 60).ok()?;
        let local: DateTime = day.at(hour, min, 0, 0);
        let ambiguous = self.tz.to_ambiguous_timestamp(local);
        if matches!(ambiguous.offset(), AmbiguousOffset::Gap { .. }) {
            return None;
        }
        ambiguous.earlier().ok().map(|ts| ts.as_millisecond())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_of_day_are_hh_mm() {
        assert_eq!(hh_mm("00:00", false), Ok(0));
        assert_eq!(hh_mm("09:30", false), Ok(570));
        assert_eq!(hh_mm("23:59", false), Ok(1439));
        assert_eq!(hh_mm("24:00", true), Ok(1440));
        for bad in [
            "24:00", "9:30", "09:60", "25:00", "0930", "09:3a", "", "09:30:00",
        ] {
            assert!(hh_mm(bad, false).is_err(), "{bad}");
        }
        assert!(hh_mm("24:01", true).is_err());
    }

    #[test]
    fn dates_are_yyyy_mm_dd() {
        assert_eq!(date("2030-03-31").unwrap().to_string(), "2030-03-31");
        for bad in [
            "2030-02-29",
            "2030-13-01",
            "2030-3-1",
            "20300301",
            "2030/03/01",
            "",
        ] {
            assert!(date(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn zones_are_iana_names_spelled_as_the_database_does() {
        assert_eq!(timezone("Europe/Berlin").unwrap().1, "Europe/Berlin");
        assert_eq!(timezone("UTC").unwrap().1, "UTC");
        for bad in [
            "",
            "Mars/Olympus_Mons",
            "+01:00",
            "../etc/passwd",
            "Europe/../UTC",
        ] {
            assert!(timezone(bad).is_err(), "{bad}");
        }
    }
}
