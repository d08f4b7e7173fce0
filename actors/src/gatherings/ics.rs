//! A small RFC 5545 (iCalendar) writer: just what `GET /events/calendar.ics` needs, one
//! `VCALENDAR` of `VEVENT`s with times in UTC. Written here rather than taken from a crate
//! because it is three rules (TEXT escaping, 75-octet line folding, CRLF) and a dozen
//! properties, all tested below.
//!
//! Times are written in UTC (`DTSTART:20260301T093000Z`), which RFC 5545 (3.3.5, form #2)
//! allows for any event: a calendar shows them in its reader's zone. The organiser's IANA
//! zone is kept on the event and exported as `X-TROUPE-TIMEZONE` for reference.

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
    for e in events {
        line(&mut out, "BEGIN:VEVENT");
        line(&mut out, &format!("UID:{}", uid(&e.id)));
        line(&mut out, &format!("DTSTAMP:{}", utc(now)));
        line(&mut out, &format!("DTSTART:{}", utc(e.start_at)));
        line(&mut out, &format!("DTEND:{}", utc(e.end_at)));
        line(&mut out, &format!("SUMMARY:{}", escape(&e.title)));
        if !e.location.is_empty() {
            line(&mut out, &format!("LOCATION:{}", escape(&e.location)));
        }
        if !e.description.is_empty() {
            line(&mut out, &format!("DESCRIPTION:{}", escape(&e.description)));
        }
        line(&mut out, &format!("LAST-MODIFIED:{}", utc(e.updated_at)));
        line(
            &mut out,
            &format!("X-TROUPE-TIMEZONE:{}", escape(&e.timezone)),
        );
        line(&mut out, "END:VEVENT");
    }
    line(&mut out, "END:VCALENDAR");
    out
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
            "DTSTART:20260301T093000Z",
            "DTEND:20260301T103000Z",
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
}
