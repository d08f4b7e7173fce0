//! `[reminders]`: how long before an event or a coaching session its reminder is due, and
//! how often each node's keeper reloads the reminders due soon.

use std::time::Duration;

use super::reader::{between, Reader, Section};

/// `[reminders]` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reminders {
    /// Lead time before an event starts (`event_before_s`; 0 reminds at the start).
    pub event_before: Duration,
    /// Lead time before a coaching booking starts (`booking_before_s`).
    pub booking_before: Duration,
    /// How often the keeper reloads the reminders due soon (`poll_ms`).
    pub poll: Duration,
}

/// Longest lead time: 30 days.
const MAX_BEFORE_S: u64 = 30 * 86_400;

impl Reader<'_> {
    /// Reads `[reminders]`.
    pub(super) fn reminders(&mut self, root: &mut Section<'_>) -> Reminders {
        let mut section = self.section(root, "reminders");
        let event = self.get(
            &mut section,
            "event_before_s",
            Some("TROUPE_REMINDERS_EVENT_BEFORE_S"),
            &between(0, MAX_BEFORE_S),
        );
        let booking = self.get(
            &mut section,
            "booking_before_s",
            Some("TROUPE_REMINDERS_BOOKING_BEFORE_S"),
            &between(0, MAX_BEFORE_S),
        );
        let poll = self.get(
            &mut section,
            "poll_ms",
            Some("TROUPE_REMINDERS_POLL_MS"),
            &between(50, 60_000),
        );
        self.finish(section);
        Reminders {
            event_before: Duration::from_secs(event.unwrap_or(3600)),
            booking_before: Duration::from_secs(booking.unwrap_or(3600)),
            poll: Duration::from_millis(poll.unwrap_or(1000)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::tests::{env, keys};
    use crate::config::{parse, Overrides};

    #[test]
    fn reminders_section_defaults_env_and_bad_values() {
        let base = "[cluster]\ninsecure_plaintext = true\ncookie = \"12345678\"\n[auth]\nkeys = [\"k1:0123456789abcdef0123456789abcdef\"]\n[[nodes]]\nname = \"solo\"\n\
            cluster_addr = \"127.0.0.1:7101\"\nhttp_addr = \"127.0.0.1:7181\"\n\
            grpc_addr = \"127.0.0.1:7191\"\n";
        let config = parse(base, "t", &Overrides::default(), &env(&[])).unwrap();
        assert_eq!(config.reminders.event_before, Duration::from_secs(3600));
        assert_eq!(config.reminders.booking_before, Duration::from_secs(3600));
        assert_eq!(config.reminders.poll, Duration::from_secs(1));
        let text = format!("{base}[reminders]\nevent_before_s = 600\npoll_ms = 200\n");
        let vars = env(&[("TROUPE_REMINDERS_BOOKING_BEFORE_S", "0")]);
        let config = parse(&text, "t", &Overrides::default(), &vars).unwrap();
        assert_eq!(config.reminders.event_before, Duration::from_secs(600));
        assert_eq!(config.reminders.booking_before, Duration::ZERO);
        assert_eq!(config.reminders.poll, Duration::from_millis(200));
        let text = format!(
            "{base}[reminders]\nevent_before_s = -1\nbooking_before_s = 9999999\npoll_ms = 1\nlead = 3\n"
        );
        let errors = parse(&text, "t", &Overrides::default(), &env(&[])).unwrap_err();
        assert_eq!(
            keys(&errors),
            [
                "reminders.event_before_s",
                "reminders.booking_before_s",
                "reminders.poll_ms",
                "reminders.lead"
            ]
        );
    }
}
