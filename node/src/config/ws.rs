//! `[ws]` and `[chat]`: WebSocket connections and chat messages.

use std::time::Duration;

use super::reader::{at_least, between, Reader, Section};
use super::Http;

/// `[ws]` settings, with `[chat] max_message_bytes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ws {
    /// Largest frame (and message) a client may send, in bytes (`max_frame_bytes`).
    pub max_frame_bytes: usize,
    /// Frames waiting for one client before it is closed as too slow (`send_queue`).
    pub send_queue: usize,
    /// A connection without any frame from its client this long is closed (`idle_timeout_s`).
    pub idle_timeout: Duration,
    /// A ping goes out after this long without a frame from the client (`ping_interval_s`).
    pub ping_interval: Duration,
    /// `[chat] max_message_bytes`: the largest accepted message ciphertext.
    pub max_message_bytes: usize,
}

impl Reader<'_> {
    /// Reads `[ws]` and `[chat]`: the ping interval must be shorter than the idle timeout, and
    /// a chat message must fit in an HTTP body (the default cap is 64 KiB, or half the body
    /// limit when that is smaller).
    pub(super) fn ws(&mut self, root: &mut Section<'_>, http: &Http) -> Ws {
        let mut section = self.section(root, "ws");
        let frame_env = Some("TROUPE_WS_MAX_FRAME_BYTES");
        let max_frame = self.get(
            &mut section,
            "max_frame_bytes",
            frame_env,
            &between(1024, 16 * 1024 * 1024),
        );
        let queue_env = Some("TROUPE_WS_SEND_QUEUE");
        let queue = self.get(&mut section, "send_queue", queue_env, &between(1, 65_536));
        let idle_env = Some("TROUPE_WS_IDLE_TIMEOUT_S");
        let idle_s = self.get(
            &mut section,
            "idle_timeout_s",
            idle_env,
            &between(1, 86_400),
        );
        let ping_env = Some("TROUPE_WS_PING_INTERVAL_S");
        let ping_s = self.get(
            &mut section,
            "ping_interval_s",
            ping_env,
            &between(1, 3_600),
        );
        let (idle_s, ping_s) = (idle_s.unwrap_or(60), ping_s.unwrap_or(20));
        if ping_s >= idle_s {
            let message = format!("must be less than idle_timeout_s ({idle_s}), got {ping_s}");
            self.error(section.key("ping_interval_s"), message);
        }
        self.finish(section);
        let mut section = self.section(root, "chat");
        let cap_env = Some("TROUPE_CHAT_MAX_MESSAGE_BYTES");
        let cap = self.get(&mut section, "max_message_bytes", cap_env, &at_least(1));
        // Default: 64 KiB, or half the HTTP body limit when that is smaller.
        let given = cap.is_some();
        let cap = cap.unwrap_or((64 * 1024).min(http.max_body_bytes / 2).max(1));
        if given && cap >= http.max_body_bytes {
            let message = format!(
                "must be less than http.max_body_bytes ({}), got {cap}",
                http.max_body_bytes
            );
            self.error(section.key("max_message_bytes"), message);
        }
        self.finish(section);
        Ws {
            max_frame_bytes: max_frame.unwrap_or(64 * 1024),
            send_queue: queue.unwrap_or(256),
            idle_timeout: Duration::from_secs(idle_s),
            ping_interval: Duration::from_secs(ping_s),
            max_message_bytes: cap,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::parse;
    use crate::config::tests::{env, errors, keys, named, SAMPLE};

    #[test]
    fn ws_and_chat_settings_are_read_and_every_bad_one_reported() {
        let good = format!(
            "{SAMPLE}\n[ws]\nmax_frame_bytes = 2048\nsend_queue = 8\nidle_timeout_s = 30\n\
             ping_interval_s = 5\n[chat]\nmax_message_bytes = 1000\n"
        );
        let config = parse(&good, "t", &named("n1"), &env(&[])).unwrap();
        assert_eq!(config.ws.max_frame_bytes, 2048);
        assert_eq!(config.ws.send_queue, 8);
        assert_eq!(config.ws.idle_timeout, Duration::from_secs(30));
        assert_eq!(config.ws.ping_interval, Duration::from_secs(5));
        assert_eq!(config.ws.max_message_bytes, 1000);
        let vars = env(&[("TROUPE_WS_SEND_QUEUE", "16")]);
        let config = parse(&good, "t", &named("n1"), &vars).unwrap();
        assert_eq!(config.ws.send_queue, 16);
        let defaults = parse(SAMPLE, "t", &named("n1"), &env(&[])).unwrap();
        assert_eq!(defaults.ws.max_message_bytes, 64 * 1024);
        assert!(defaults.ws.ping_interval < defaults.ws.idle_timeout);

        let bad = format!(
            "{SAMPLE}\n[ws]\nmax_frame_bytes = 10\nsend_queue = 0\nidle_timeout_s = 5\n\
             ping_interval_s = 5\nbuffer = 1\n[chat]\nmax_message_bytes = 99999999\n"
        );
        let errors = errors(&bad, &named("n1"), &env(&[]));
        let mut got = keys(&errors);
        got.sort();
        assert_eq!(
            got,
            [
                "chat.max_message_bytes",
                "ws.buffer",
                "ws.max_frame_bytes",
                "ws.ping_interval_s",
                "ws.send_queue"
            ],
            "{errors}"
        );
    }
}
