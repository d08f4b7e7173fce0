//! A small RFC 5545 (iCalendar) writer: just what `GET /events/calendar.ics` needs, one
//! `VCALENDAR` of `VEVENT`s and the `VTIMEZONE`s they refer to. Written here rather than
//! taken from a crate because it is three rules (TEXT escaping, 75-octet line folding,
//! CRLF) and a dozen properties, all tested below; the time zone rules come from the tz
//! database through `jiff`.
//!
//! An event's times are written in its IANA zone (`DTSTART;TZID=Europe/Paris:
//! 20260301T103000`, RFC 5545 3.3.5 form #3), so a calendar keeps it at its local time,
//! and each zone used gets a `VTIMEZONE` (3.6.5): one `STANDARD` or `DAYLIGHT` observance
//! for the offset in effect at the first event's start and one per transition up to the
//! last event's end, each with its own `DTSTART`, `TZOFFSETFROM`, `TZOFFSETTO` and
//! `TZNAME` (no recurrence rules to get wrong). Events in `UTC` (or a zone the database
//! does not know) are written in UTC (`DTSTART:20260301T093000Z`, form #2).

use std::collections::BTreeMap;

use jiff::tz::{Offset, TimeZone};
use jiff::Timestamp;

use crate::store::time::rfc3339_millis;

use super::store::EventRow;

/// `PRODID` of every calendar Troupe writes.
pub const PRODID: &str = "-//Troupe//events//EN";

/// The calendar of `events`, stamped `now` (unix ms).
pub fn calendar(events: &[EventRow], now: i64) -> String {
    let mut out = String::new();
    line(&mut out, "BEGIN:VCALENDAR");
    line(&mut out, "VERSION:2.0");
    line(&mut out, &format!("PRODID:{PRODID}"));
    line(&mut out, "CALSCALE:GREGORIAN");
    line(&mut out, "METHOD:PUBLISH");
    // The span each zone must cover: from the earliest start to the latest end.
    let mut zones: BTreeMap<&str, (TimeZone, i64, i64)> = BTreeMap::new();
    for e in events {
        let Some(tz) = zone(&e.timezone) else {
            continue;
        };
        let span = zones
            .entry(e.timezone.as_str())
            .or_insert((tz, e.start_at, e.end_at));
        span.1 = span.1.min(e.start_at);
        span.2 = span.2.max(e.end_at);
    }
    for (name, (tz, from, to)) in &zones {
        vtimezone(&mut out, name, tz, *from, *to);
    }
    for e in events {
        line(&mut out, "BEGIN:VEVENT");
        line(&mut out, &format!("UID:{}", uid(&e.id)));
        line(&mut out, &format!("DTSTAMP:{}", utc(now)));
        match zones.get(e.timezone.as_str()) {
            Some((tz, _, _)) => {
                let tzid = &e.timezone;
                let start = local(tz.to_offset(timestamp(e.start_at)), e.start_at);
                let end = local(tz.to_offset(timestamp(e.end_at)), e.end_at);
                line(&mut out, &format!("DTSTART;TZID={tzid}:{start}"));
                line(&mut out, &format!("DTEND;TZID={tzid}:{end}"));
            }
            None => {
                line(&mut out, &format!("DTSTART:{}", utc(e.start_at)));
                line(&mut out, &format!("DTEND:{}", utc(e.end_at)));
            }
        }
        line(&mut out, &format!("SUMMARY:{}", escape(&e.title)));
        if !e.location.is_empty() {
            line(&mut out, &format!("LOCATION:{}", escape(&e.location)));
        }
        if !e.description.is_empty() {
            line(&mut out, &format!("DESCRIPTION:{}", escape(&e.description)));
        }
        line(&mut out, &format!("LAST-MODIFIED:{}", utc(e.updated_at)));
        line(&mut out, "END:VEVENT");
    }
    line(&mut out, "END:VCALENDAR");
    out
}

/// The zone an event's local times are written in: `None` for UTC (and its aliases) and
/// for a name the tz database does not know (times are then written in UTC).
fn zone(name: &str) -> Option<TimeZone> {
    let tz = TimeZone::get(name).ok()?;
    let fixed_utc = tz.following(Timestamp::MIN).next().is_none()
        && tz.to_offset(Timestamp::UNIX_EPOCH) == Offset::UTC;
    (!fixed_utc).then_some(tz)
}

fn timestamp(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// `ts` moved by `secs` seconds (saturating at the ends of time).
fn shift(ts: Timestamp, secs: i64) -> Timestamp {
    ts.saturating_add(jiff::SignedDuration::from_secs(secs))
        .unwrap_or(ts)
}

/// Unix ms as a local DATE-TIME at `offset`: `20260301T103000`.
fn local(offset: Offset, ms: i64) -> String {
    offset
        .to_datetime(timestamp(ms))
        .strftime("%Y%m%dT%H%M%S")
        .to_string()
}

/// A UTC offset as iCalendar writes it: `+0100`, `-0430`, `+053328` (seconds when any).
fn utc_offset(offset: Offset) -> String {
    let secs = offset.seconds();
    let sign = if secs < 0 { '-' } else { '+' };
    let a = secs.unsigned_abs();
    let (h, m, s) = (a / 3600, a / 60 % 60, a % 60);
    if s == 0 {
        format!("{sign}{h:02}{m:02}")
    } else {
        format!("{sign}{h:02}{m:02}{s:02}")
    }
}

/// The `VTIMEZONE` of `tz` for events from `from` to `to` (unix ms): the observance in
/// effect at `from`, then one per transition until `to`.
fn vtimezone(out: &mut String, name: &str, tz: &TimeZone, from: i64, to: i64) {
    let (from, to) = (timestamp(from), timestamp(to));
    line(out, "BEGIN:VTIMEZONE");
    line(out, &format!("TZID:{name}"));
    // When the offset in effect at `from` began, and the offset before it.
    let onset = tz.preceding(shift(from, 1)).next();
    let (at, before) = match &onset {
        Some(t) => (t.timestamp(), tz.to_offset(shift(t.timestamp(), -1))),
        // A zone that never changed: its offset since the epoch.
        None => (Timestamp::UNIX_EPOCH, tz.to_offset(from)),
    };
    let info = tz.to_offset_info(from);
    observance(
        out,
        at,
        before,
        info.offset(),
        info.abbreviation(),
        info.dst().is_dst(),
    );
    for t in tz.following(from).take_while(|t| t.timestamp() <= to) {
        let before = tz.to_offset(shift(t.timestamp(), -1));
        observance(
            out,
            t.timestamp(),
            before,
            t.offset(),
            t.abbreviation(),
            t.dst().is_dst(),
        );
    }
    line(out, "END:VTIMEZONE");
}

/// One `STANDARD` or `DAYLIGHT` observance starting at `at`, when the offset went from
/// `before` to `after` (its `DTSTART` is local time at `before`, RFC 5545 3.6.5).
fn observance(
    out: &mut String,
    at: Timestamp,
    before: Offset,
    after: Offset,
    abbr: &str,
    dst: bool,
) {
    let kind = if dst { "DAYLIGHT" } else { "STANDARD" };
    line(out, &format!("BEGIN:{kind}"));
    line(
        out,
        &format!("DTSTART:{}", local(before, at.as_millisecond())),
    );
    line(out, &format!("TZOFFSETFROM:{}", utc_offset(before)));
    line(out, &format!("TZOFFSETTO:{}", utc_offset(after)));
    if !abbr.is_empty() {
        line(out, &format!("TZNAME:{}", escape(abbr)));
    }
    line(out, &format!("END:{kind}"));
}

/// The stable `UID` of an event.
pub fn uid(event_id: &str) -> String {
    format!("{event_id}@troupe")
}

/// A UTC DATE-TIME: `20260301T093000Z`.
pub fn utc(ms: i64) -> String {
    let s = rfc3339_millis(ms); // 2026-03-01T09:30:00.000Z
    let mut out: String = s[..19].chars().filter(|c| *c != '-' && *c != ':').collect();
    out.push('Z');
    out
}

/// A TEXT value (RFC 5545 3.3.11): `\`, `;` and `,` escaped with a backslash, line breaks
/// as `\n`.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\r' => {
                if chars.peek() != Some(&'\n') {
                    out.push_str("\\n");
                }
            }
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Appends one content line, folded (RFC 5545 3.1) so no physical line exceeds 75 octets
/// (continuations start with a space), never inside a UTF-8 character, each ended by CRLF.
fn line(out: &mut String, content: &str) {
    let mut rest = content;
    let mut limit = 75;
    loop {
        if rest.len() <= limit {
            out.push_str(rest);
            out.push_str("\r\n");
            return;
        }
        let mut cut = limit;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        out.push_str(&rest[..cut]);
        out.push_str("\r\n ");
        rest = &rest[cut..];
        limit = 74;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(title: &str, description: &str) -> EventRow {
        EventRow {
            id: "e1".into(),
            organiser_id: "u1".into(),
            title: title.into(),
            description: description.into(),
            location: "Room 1, Floor 2; East".into(),
            start_at: 1_772_357_400_000, // 2026-03-01T09:30:00Z
            end_at: 1_772_361_000_000,
            timezone: "Europe/Paris".into(),
            capacity: 10,
            registered: 1,
            waitlisted: 0,
            created_at: 0,
            updated_at: 0,
        }
    }

    /// Undoes the folding: what a reader sees.
    fn unfold(s: &str) -> String {
        s.replace("\r\n ", "")
    }

    #[test]
    fn text_escapes_backslash_semicolon_comma_and_newlines() {
        assert_eq!(escape(r"a\b;c,d"), r"a\\b\;c\,d");
        assert_eq!(escape("one\ntwo\r\nthree\rfour"), r"one\ntwo\nthree\nfour");
        assert_eq!(escape("plain: text"), "plain: text");
    }

    #[test]
    fn long_lines_fold_at_75_octets_without_splitting_characters() {
        let title = "é".repeat(100) + &"x".repeat(101);
        let ics = calendar(&[event(&title, "")], 0);
        for l in ics.split("\r\n") {
            assert!(l.len() <= 75, "{} octets: {l}", l.len());
        }
        assert!(unfold(&ics).contains(&format!("\r\nSUMMARY:{title}\r\n")));
        let mut plain = String::new();
        line(&mut plain, &"a".repeat(75));
        assert_eq!(plain, format!("{}\r\n", "a".repeat(75)));
        let mut folded = String::new();
        line(&mut folded, &"a".repeat(76));
        assert_eq!(folded, format!("{}\r\n a\r\n", "a".repeat(75)));
    }

    #[test]
    fn a_calendar_has_its_header_and_one_vevent_per_event() {
        let ics = calendar(&[event("Kick-off", "Bring: pens, paper\nand coffee")], 0);
        assert!(ics.starts_with("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:"));
        assert!(ics.ends_with("END:VCALENDAR\r\n"));
        let ics = unfold(&ics);
        for expected in [
            "UID:e1@troupe",
            "DTSTAMP:19700101T000000Z",
            "DTSTART;TZID=Europe/Paris:20260301T103000",
            "DTEND;TZID=Europe/Paris:20260301T113000",
            "SUMMARY:Kick-off",
            r"LOCATION:Room 1\, Floor 2\; East",
            r"DESCRIPTION:Bring: pens\, paper\nand coffee",
        ] {
            assert!(
                ics.contains(&format!("\r\n{expected}\r\n")),
                "{expected} in {ics}"
            );
        }
        assert_eq!(ics.matches("BEGIN:VEVENT").count(), 1);
        assert_eq!(calendar(&[], 0).matches("VEVENT").count(), 0);
    }

    /// The lines between `BEGIN:VTIMEZONE` and `END:VTIMEZONE`, unfolded.
    fn vtimezones(ics: &str) -> Vec<String> {
        let ics = unfold(ics);
        let mut out = Vec::new();
        let mut inside = false;
        for l in ics.split("\r\n") {
            inside |= l == "BEGIN:VTIMEZONE";
            if inside {
                out.push(l.to_string());
            }
            inside &= l != "END:VTIMEZONE";
        }
        out
    }

    #[test]
    fn a_zone_gets_the_observance_in_effect_and_every_transition_the_events_span() {
        // From 20 March to 5 April 2026 in Paris: CET (since October 2025), then CEST from
        // 29 March 01:00 UTC.
        let mut e = event("Fortnight", "");
        e.start_at = 1_773_997_200_000; // 2026-03-20T09:00:00Z
        e.end_at = 1_775_383_200_000; // 2026-04-05T10:00:00Z
        let ics = calendar(&[e], 0);
        assert_eq!(
            vtimezones(&ics),
            [
                "BEGIN:VTIMEZONE",
                "TZID:Europe/Paris",
                "BEGIN:STANDARD",
                "DTSTART:20251026T030000",
                "TZOFFSETFROM:+0200",
                "TZOFFSETTO:+0100",
                "TZNAME:CET",
                "END:STANDARD",
                "BEGIN:DAYLIGHT",
                "DTSTART:20260329T020000",
                "TZOFFSETFROM:+0100",
                "TZOFFSETTO:+0200",
                "TZNAME:CEST",
                "END:DAYLIGHT",
                "END:VTIMEZONE",
            ]
        );
        // Local times on both sides of the change.
        let ics = unfold(&ics);
        assert!(
            ics.contains("\r\nDTSTART;TZID=Europe/Paris:20260320T100000\r\n"),
            "{ics}"
        );
        assert!(
            ics.contains("\r\nDTEND;TZID=Europe/Paris:20260405T120000\r\n"),
            "{ics}"
        );
    }

    #[test]
    fn one_vtimezone_per_zone_and_none_for_utc() {
        let mut a = event("A", "");
        a.id = "a".into();
        let mut b = event("B", "");
        b.id = "b".into();
        b.timezone = "America/New_York".into();
        let mut c = event("C", "");
        c.id = "c".into();
        c.timezone = "UTC".into();
        let mut d = event("D", "");
        d.id = "d".into();
        d.timezone = "Etc/UTC".into();
        let ics = unfold(&calendar(&[a, b, c.clone(), d, c], 0));
        assert_eq!(ics.matches("BEGIN:VTIMEZONE").count(), 2, "{ics}");
        assert!(ics.contains("\r\nTZID:America/New_York\r\n"));
        assert!(ics.contains("\r\nDTSTART;TZID=America/New_York:20260301T043000\r\n"));
        assert_eq!(
            ics.matches("\r\nDTSTART:20260301T093000Z\r\n").count(),
            3,
            "{ics}"
        );
        assert_eq!(utc_offset(Offset::from_seconds(-16_200).unwrap()), "-0430");
        assert_eq!(utc_offset(Offset::from_seconds(1_172).unwrap()), "+001932");
    }
}
