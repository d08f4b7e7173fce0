//! `[events]` (outbox retries), `[mqtt]` (the MQTT bridge), `[smtp]` (the email channel)
//! and `[notifications]` (emailed codes).
//!
//! `[mqtt]` and `[smtp]` are off unless their section (or their host variable,
//! `TROUPE_MQTT_HOST` / `TROUPE_SMTP_HOST`) is given.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use toml::Value;

use super::reader::{
    any, at_least, between, email_like, min_chars, mismatch, name_chars, Reader, Section,
};

/// `[events]` settings: delivery retries of the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Events {
    /// Attempts per delivery before it becomes a dead letter (`max_attempts`).
    pub max_attempts: u32,
    /// Backoff scale (`backoff_base_ms`): attempt `n` waits up to `base * 2^n`.
    pub backoff_base: Duration,
    /// Backoff ceiling (`backoff_max_ms`).
    pub backoff_max: Duration,
    /// Longest one delivery attempt may take (`attempt_timeout_ms`).
    pub attempt_timeout: Duration,
    /// Events the outbox may hold, cluster-wide, before publishing answers 503
    /// (`max_outbox_depth`; `TROUPE_EVENTS_MAX_OUTBOX_DEPTH`).
    pub max_outbox_depth: u64,
    /// Events one node's relay holds (claimed, being delivered) at once (`max_in_flight`).
    pub max_in_flight: u32,
    /// How long a relay's claim on an event lasts unless renewed (`claim_ttl_ms`); a dead
    /// node's events are claimed by a survivor this long after its last renewal.
    pub claim_ttl: Duration,
}

impl Default for Events {
    fn default() -> Self {
        Self {
            max_attempts: 20,
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(30),
            attempt_timeout: Duration::from_secs(10),
            max_outbox_depth: 1_000_000,
            max_in_flight: 4096,
            claim_ttl: Duration::from_secs(10),
        }
    }
}

/// `[mqtt]` settings: the MQTT bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mqtt {
    /// Broker host (`host`, or the host of `url = "mqtt://host:port"`).
    pub host: String,
    /// Broker port (default 1883).
    pub port: u16,
    /// Client id prefix; node name and incarnation are appended (`client_id_prefix`).
    pub client_id_prefix: String,
    /// `[mqtt.topics]`: event kind (exact, or prefix ending in `*`) -> topic; defaults
    /// `user.*` -> `user-registration-events`, `task.*` -> `task-processing-events`.
    pub topics: BTreeMap<String, String>,
    /// Topic of other kinds: this prefix plus the kind (`topic_prefix`).
    pub topic_prefix: String,
    /// Publishes awaiting their PUBACK at once (`inflight`).
    pub inflight: u16,
    /// MQTT keep-alive (`keep_alive_s`).
    pub keep_alive: Duration,
}

/// `[smtp]` settings: the email channel.
#[derive(Clone, PartialEq, Eq)]
pub struct Smtp {
    /// Server host.
    pub host: String,
    /// Server port (default 587).
    pub port: u16,
    /// Login user, if the server wants one.
    pub user: Option<String>,
    /// Login password.
    pub password: Option<String>,
    /// Sender, e.g. `Troupe <noreply@example.com>`.
    pub from: String,
    /// Upgrade with STARTTLS (default true).
    pub starttls: bool,
}

impl fmt::Debug for Smtp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Smtp")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("from", &self.from)
            .field("starttls", &self.starttls)
            .finish()
    }
}

/// `[notifications]` settings: emailed codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notifications {
    /// Lifetime of a registration code (`registration_code_ttl_s`, default one day).
    pub registration_code_ttl: Duration,
    /// Lifetime of a password reset code (`reset_code_ttl_s`, default 15 minutes).
    pub reset_code_ttl: Duration,
    /// Wrong guesses an account has per purpose and window, across codes
    /// (`code_max_failures`, default 5).
    pub code_max_failures: u32,
    /// Codes issued to an account per purpose and window (`code_max_issued`, default 5).
    pub code_max_issued: u32,
    /// The window both code limits count in (`code_window_s`, default one hour).
    pub code_window: Duration,
}

impl Default for Notifications {
    fn default() -> Self {
        Self {
            registration_code_ttl: Duration::from_secs(86_400),
            reset_code_ttl: Duration::from_secs(900),
            code_max_failures: 5,
            code_max_issued: 5,
            code_window: Duration::from_secs(3600),
        }
    }
}

/// A host name or IP: 1-253 characters without spaces, slashes or `:` (except IPv6 in
/// brackets is not supported; use the address itself).
#[allow(clippy::ptr_arg)] // the shape of a `Check<String>`
fn host_name(value: &String) -> Result<(), String> {
    let ok = (1..=253).contains(&value.len())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "expected a host name or IPv4 address, got {value:?}"
        ))
    }
}

/// An MQTT topic to publish to: no wildcards, no leading `$`, 1-256 characters.
fn topic_name(value: &str) -> Result<(), String> {
    if value.is_empty()
        || value.len() > 256
        || value.contains(['+', '#', '\0'])
        || value.starts_with('$')
    {
        Err(format!(
            "expected an MQTT topic without wildcards or a leading '$', got {value:?}"
        ))
    } else {
        Ok(())
    }
}

/// An event kind pattern: a kind, or a prefix ending in `*`.
fn kind_pattern(value: &str) -> Result<(), String> {
    let body = value.strip_suffix('*').unwrap_or(value);
    let ok = (value.len() <= 65)
        && !value.is_empty()
        && body
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "expected an event kind like \"user.registered\" or a prefix like \"user.*\", got {value:?}"
        ))
    }
}

/// Splits `mqtt://host[:port]` (or `tcp://`).
fn mqtt_url(value: &str) -> Result<(String, Option<u16>), String> {
    let rest = value
        .strip_prefix("mqtt://")
        .or_else(|| value.strip_prefix("tcp://"))
        .ok_or_else(|| format!("expected mqtt://host[:port], got {value:?}"))?;
    let rest = rest.trim_end_matches('/');
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (
            h,
            Some(
                p.parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| format!("bad port in {value:?}"))?,
            ),
        ),
        None => (rest, None),
    };
    host_name(&host.to_string())?;
    Ok((host.to_string(), port))
}

impl Reader<'_> {
    /// Reads `[events]`, `[mqtt]`, `[smtp]` and `[notifications]`.
    pub(super) fn event_sections(
        &mut self,
        root: &mut Section<'_>,
    ) -> (Events, Option<Mqtt>, Option<Smtp>, Notifications) {
        let events = self.events(root);
        let mqtt = self.mqtt(root);
        let smtp = self.smtp(root);
        let notifications = self.notifications(root);
        (events, mqtt, smtp, notifications)
    }

    fn events(&mut self, root: &mut Section<'_>) -> Events {
        let mut section = self.section(root, "events");
        let d = Events::default();
        let attempts = self.get(
            &mut section,
            "max_attempts",
            Some("TROUPE_EVENTS_MAX_ATTEMPTS"),
            &between(1, 1000),
        );
        let base = self.get(&mut section, "backoff_base_ms", None, &at_least(1u64));
        let max = self.get(&mut section, "backoff_max_ms", None, &at_least(1u64));
        let timeout = self.get(&mut section, "attempt_timeout_ms", None, &at_least(1u64));
        let depth = self.get(
            &mut section,
            "max_outbox_depth",
            Some("TROUPE_EVENTS_MAX_OUTBOX_DEPTH"),
            &between(1u64, 1_000_000_000),
        );
        let in_flight = self.get(
            &mut section,
            "max_in_flight",
            None,
            &between(1u32, 1_000_000),
        );
        let claim_ttl = self.get(
            &mut section,
            "claim_ttl_ms",
            None,
            &between(500u64, 600_000),
        );
        let base = base.map_or(d.backoff_base, Duration::from_millis);
        let max = max.map_or(d.backoff_max, Duration::from_millis);
        if max < base {
            self.error(
                section.key("backoff_max_ms"),
                format!(
                    "must be at least backoff_base_ms ({}), got {}",
                    base.as_millis(),
                    max.as_millis()
                ),
            );
        }
        self.finish(section);
        Events {
            max_attempts: attempts.unwrap_or(d.max_attempts),
            backoff_base: base,
            backoff_max: max,
            attempt_timeout: timeout.map_or(d.attempt_timeout, Duration::from_millis),
            max_outbox_depth: depth.unwrap_or(d.max_outbox_depth),
            max_in_flight: in_flight.unwrap_or(d.max_in_flight),
            claim_ttl: claim_ttl.map_or(d.claim_ttl, Duration::from_millis),
        }
    }

    fn mqtt(&mut self, root: &mut Section<'_>) -> Option<Mqtt> {
        let present = root.has("mqtt")
            || self.env("TROUPE_MQTT_HOST").is_some()
            || self.env("TROUPE_MQTT_URL").is_some();
        let mut section = self.section(root, "mqtt");
        let url: Option<String> = self.get(&mut section, "url", Some("TROUPE_MQTT_URL"), &any);
        let host = self.get(&mut section, "host", Some("TROUPE_MQTT_HOST"), &host_name);
        let port = self.get(
            &mut section,
            "port",
            Some("TROUPE_MQTT_PORT"),
            &between(1u32, 65_535),
        );
        let prefix = self.get(&mut section, "client_id_prefix", None, &name_chars(""));
        let topic_prefix = self.get(&mut section, "topic_prefix", None, &|v: &String| {
            topic_name(&format!("{v}x"))
        });
        let inflight = self.get(&mut section, "inflight", None, &between(1u32, 65_535));
        let keep_alive = self.get(&mut section, "keep_alive_s", None, &between(1u64, 3600));
        let mut topics = troupe_protocols::mqtt::default_topics();
        let path = section.key("topics");
        match section.take("topics") {
            None => {}
            Some(Value::Table(table)) => {
                for (pattern, topic) in table {
                    let key = format!("{path}.\"{pattern}\"");
                    if let Err(e) = kind_pattern(pattern) {
                        self.error(key.clone(), e);
                        continue;
                    }
                    match topic {
                        Value::String(t) => match topic_name(t) {
                            Ok(()) => {
                                topics.insert(pattern.clone(), t.clone());
                            }
                            Err(e) => self.error(key, e),
                        },
                        other => self.error(key, mismatch("a string", other)),
                    }
                }
            }
            Some(other) => self.error(path, mismatch("a table", other)),
        }
        if !present {
            self.finish(section);
            return None;
        }
        let (url_host, url_port) = match url.as_deref().map(mqtt_url) {
            Some(Ok((h, p))) => (Some(h), p),
            Some(Err(e)) => {
                self.error(section.key("url"), e);
                (None, None)
            }
            None => (None, None),
        };
        let host = host.or(url_host);
        if host.is_none() && url.is_none() {
            self.error(section.key("host"), "missing (set host or url)");
        }
        self.finish(section);
        Some(Mqtt {
            host: host?,
            port: port.map(|p| p as u16).or(url_port).unwrap_or(1883),
            client_id_prefix: prefix.unwrap_or_else(|| "troupe".to_owned()),
            topics,
            topic_prefix: topic_prefix
                .unwrap_or_else(|| troupe_protocols::mqtt::DEFAULT_TOPIC_PREFIX.to_owned()),
            inflight: inflight.map_or(100, |i| i as u16),
            keep_alive: Duration::from_secs(keep_alive.unwrap_or(5)),
        })
    }

    fn smtp(&mut self, root: &mut Section<'_>) -> Option<Smtp> {
        let present = root.has("smtp") || self.env("TROUPE_SMTP_HOST").is_some();
        let mut section = self.section(root, "smtp");
        let host = self.get(&mut section, "host", Some("TROUPE_SMTP_HOST"), &host_name);
        let port = self.get(
            &mut section,
            "port",
            Some("TROUPE_SMTP_PORT"),
            &between(1u32, 65_535),
        );
        let user = self.get(
            &mut section,
            "user",
            Some("TROUPE_SMTP_USER"),
            &min_chars(1),
        );
        let password = self.get(
            &mut section,
            "password",
            Some("TROUPE_SMTP_PASSWORD"),
            &min_chars(1),
        );
        let from = self.get(
            &mut section,
            "from",
            Some("TROUPE_SMTP_FROM"),
            &|v: &String| {
                // `Name <addr>` or a bare address.
                let addr = v
                    .rsplit_once('<')
                    .map_or(v.as_str(), |(_, a)| a.trim_end_matches('>'));
                email_like(&addr.to_string())
            },
        );
        let starttls = self.get(&mut section, "starttls", Some("TROUPE_SMTP_STARTTLS"), &any);
        if !present {
            self.finish(section);
            return None;
        }
        if host.is_none() && !section.has("host") {
            self.error(section.key("host"), "missing");
        }
        if user.is_some() != password.is_some() {
            self.error(
                section.key("password"),
                "user and password go together: give both or neither",
            );
        }
        self.finish(section);
        Some(Smtp {
            host: host?,
            port: port.map_or(587, |p| p as u16),
            user,
            password,
            from: from.unwrap_or_else(|| "Troupe <noreply@troupe.local>".to_owned()),
            starttls: starttls.unwrap_or(true),
        })
    }

    fn notifications(&mut self, root: &mut Section<'_>) -> Notifications {
        let mut section = self.section(root, "notifications");
        let d = Notifications::default();
        let reg = self.get(
            &mut section,
            "registration_code_ttl_s",
            None,
            &between(1u64, 30 * 86_400),
        );
        let reset = self.get(
            &mut section,
            "reset_code_ttl_s",
            None,
            &between(1u64, 86_400),
        );
        let failures = self.get(&mut section, "code_max_failures", None, &between(1u32, 100));
        let issued = self.get(&mut section, "code_max_issued", None, &between(1u32, 1000));
        let window = self.get(
            &mut section,
            "code_window_s",
            None,
            &between(60u64, 7 * 86_400),
        );
        self.finish(section);
        Notifications {
            registration_code_ttl: reg.map_or(d.registration_code_ttl, Duration::from_secs),
            reset_code_ttl: reset.map_or(d.reset_code_ttl, Duration::from_secs),
            code_max_failures: failures.unwrap_or(d.code_max_failures),
            code_max_issued: issued.unwrap_or(d.code_max_issued),
            code_window: window.map_or(d.code_window, Duration::from_secs),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::super::{parse, Config, Overrides};

    const BASE: &str = "[cluster]\ninsecure_plaintext = true\ncookie = \"cookie-123456\"\n[auth]\nkeys = [\"k1:0123456789abcdef0123456789abcdef\"]\n[[nodes]]\nname = \"n1\"\ncluster_addr = \"127.0.0.1:7101\"\nhttp_addr = \"127.0.0.1:7181\"\ngrpc_addr = \"127.0.0.1:7191\"\n";

    fn load(extra: &str, env: &[(&str, &str)]) -> Result<Config, String> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let overrides = Overrides {
            name: Some("n1".into()),
            ..Default::default()
        };
        parse(&format!("{BASE}{extra}"), "test.toml", &overrides, &env).map_err(|e| e.to_string())
    }

    #[test]
    fn mqtt_and_smtp_are_off_by_default() {
        let c = load("", &[]).unwrap();
        assert!(c.mqtt.is_none());
        assert!(c.smtp.is_none());
        assert_eq!(c.events.max_attempts, 20);
    }

    #[test]
    fn mqtt_from_url_with_topics() {
        let c = load(
            "[mqtt]\nurl = \"mqtt://127.0.0.1:1884\"\n[mqtt.topics]\n\"todo.*\" = \"todo-events\"\n",
            &[],
        )
        .unwrap();
        let m = c.mqtt.unwrap();
        assert_eq!((m.host.as_str(), m.port), ("127.0.0.1", 1884));
        assert_eq!(m.topics["todo.*"], "todo-events");
        assert_eq!(m.topics["user.*"], "user-registration-events");
    }

    #[test]
    fn mqtt_from_env() {
        let c = load(
            "",
            &[
                ("TROUPE_MQTT_HOST", "localhost"),
                ("TROUPE_MQTT_PORT", "1999"),
            ],
        )
        .unwrap();
        let m = c.mqtt.unwrap();
        assert_eq!((m.host.as_str(), m.port), ("localhost", 1999));
    }

    #[test]
    fn every_bad_event_setting_is_reported_at_once() {
        let e = load(
            "[events]\nmax_attempts = 0\nbackoff_base_ms = 100\nbackoff_max_ms = 10\n[mqtt]\nport = 0\n[mqtt.topics]\n\"user.*\" = \"a/#\"\n\"Bad\" = \"x\"\n[smtp]\nuser = \"u\"\nfrom = \"nobody\"\nstarttls = \"yes\"\n",
            &[],
        )
        .unwrap_err();
        for key in [
            "events.max_attempts",
            "events.backoff_max_ms",
            "mqtt.port",
            "mqtt.topics.\"user.*\"",
            "mqtt.topics.\"Bad\"",
            "mqtt.host",
            "smtp.host",
            "smtp.password",
            "smtp.from",
            "smtp.starttls",
        ] {
            assert!(e.contains(&format!("{key}:")), "{key} missing from:\n{e}");
        }
    }

    #[test]
    fn code_limits_default_read_and_refuse_bad_values() {
        let c = load("", &[]).unwrap();
        assert_eq!(
            (
                c.notifications.code_max_failures,
                c.notifications.code_max_issued,
                c.notifications.code_window
            ),
            (5, 5, std::time::Duration::from_secs(3600))
        );
        let c = load(
            "[notifications]\ncode_max_failures = 3\ncode_max_issued = 2\ncode_window_s = 600\n",
            &[],
        )
        .unwrap();
        assert_eq!(
            (
                c.notifications.code_max_failures,
                c.notifications.code_max_issued,
                c.notifications.code_window
            ),
            (3, 2, std::time::Duration::from_secs(600))
        );
        let e = load(
            "[notifications]\ncode_max_failures = 0\ncode_max_issued = 0\ncode_window_s = 1\n",
            &[],
        )
        .unwrap_err();
        for key in [
            "notifications.code_max_failures",
            "notifications.code_max_issued",
            "notifications.code_window_s",
        ] {
            assert!(e.contains(&format!("{key}:")), "{key} missing from:\n{e}");
        }
    }

    #[test]
    fn smtp_with_defaults() {
        let c = load(
            "[smtp]\nhost = \"mail.example.com\"\nfrom = \"Troupe <a@example.com>\"\n",
            &[],
        )
        .unwrap();
        let s = c.smtp.unwrap();
        assert_eq!(s.port, 587);
        assert!(s.starttls);
        assert!(!format!("{s:?}").contains("secret"));
    }
}
