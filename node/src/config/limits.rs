//! `[limits]` (rate limits of registrations, refreshes, code requests, directory searches,
//! WebSocket upgrades and gRPC calls) and `[quotas]` (per-user quotas: active tasks,
//! WebSocket connections, chat requests per minute and pending, image bytes). Every rate is counted
//! cluster-wide by the node's `troupe_actors::auth::limits::Limiter`; the login limits stay
//! in `[auth]`.

use super::reader::{between, Reader, Section};

/// `[limits]` settings: attempts per key per minute (with a burst of as many).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Registrations per client address per minute (`register_per_ip_per_minute`, 20).
    pub register_per_ip_per_minute: u32,
    /// Token refreshes per client address per minute (`refresh_per_ip_per_minute`, 120).
    pub refresh_per_ip_per_minute: u32,
    /// Forgot-password requests and code confirmations per client address per minute
    /// (`codes_per_ip_per_minute`, 20).
    pub codes_per_ip_per_minute: u32,
    /// User directory searches per user per minute (`search_per_user_per_minute`, 60).
    pub search_per_user_per_minute: u32,
    /// WebSocket upgrades per client address per minute (`ws_upgrades_per_ip_per_minute`,
    /// 60).
    pub ws_upgrades_per_ip_per_minute: u32,
    /// gRPC calls per client address per minute (`grpc_calls_per_ip_per_minute`, 6,000).
    pub grpc_calls_per_ip_per_minute: u32,
}

/// `[quotas]` settings: what one user may hold or do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quotas {
    /// Tasks pending or running per user (`tasks_active_per_user`, 100).
    pub tasks_active_per_user: u32,
    /// WebSocket connections open per user across the cluster (`ws_connections_per_user`,
    /// 20).
    pub ws_connections_per_user: u32,
    /// Chat requests sent per user per minute (`chat_requests_per_user_per_minute`, 20).
    pub chat_requests_per_user_per_minute: u32,
    /// Chat requests one user has sent that are not answered yet
    /// (`pending_chat_requests_per_user`, 50).
    pub pending_chat_requests_per_user: u32,
    /// Bytes of stored images per user (`image_bytes_per_user`, 256 MiB).
    pub image_bytes_per_user: u64,
}

impl Reader<'_> {
    /// Reads `[limits]`.
    pub(super) fn limits(&mut self, root: &mut Section<'_>) -> Limits {
        let mut section = self.section(root, "limits");
        let mut rate = |reader: &mut Self, key: &str, env: &'static str, default: u32| {
            reader
                .get(&mut section, key, Some(env), &between(1u32, 10_000_000))
                .unwrap_or(default)
        };
        let limits = Limits {
            register_per_ip_per_minute: rate(
                self,
                "register_per_ip_per_minute",
                "TROUPE_LIMITS_REGISTER_PER_IP_PER_MINUTE",
                20,
            ),
            refresh_per_ip_per_minute: rate(
                self,
                "refresh_per_ip_per_minute",
                "TROUPE_LIMITS_REFRESH_PER_IP_PER_MINUTE",
                120,
            ),
            codes_per_ip_per_minute: rate(
                self,
                "codes_per_ip_per_minute",
                "TROUPE_LIMITS_CODES_PER_IP_PER_MINUTE",
                20,
            ),
            search_per_user_per_minute: rate(
                self,
                "search_per_user_per_minute",
                "TROUPE_LIMITS_SEARCH_PER_USER_PER_MINUTE",
                60,
            ),
            ws_upgrades_per_ip_per_minute: rate(
                self,
                "ws_upgrades_per_ip_per_minute",
                "TROUPE_LIMITS_WS_UPGRADES_PER_IP_PER_MINUTE",
                60,
            ),
            grpc_calls_per_ip_per_minute: rate(
                self,
                "grpc_calls_per_ip_per_minute",
                "TROUPE_LIMITS_GRPC_CALLS_PER_IP_PER_MINUTE",
                6000,
            ),
        };
        self.finish(section);
        limits
    }

    /// Reads `[quotas]`.
    pub(super) fn quotas(&mut self, root: &mut Section<'_>) -> Quotas {
        let mut section = self.section(root, "quotas");
        let tasks = self.get(
            &mut section,
            "tasks_active_per_user",
            Some("TROUPE_QUOTAS_TASKS_ACTIVE_PER_USER"),
            &between(1u32, 10_000_000),
        );
        let ws = self.get(
            &mut section,
            "ws_connections_per_user",
            Some("TROUPE_QUOTAS_WS_CONNECTIONS_PER_USER"),
            &between(1u32, 1_000_000),
        );
        let chat = self.get(
            &mut section,
            "chat_requests_per_user_per_minute",
            Some("TROUPE_QUOTAS_CHAT_REQUESTS_PER_USER_PER_MINUTE"),
            &between(1u32, 1_000_000),
        );
        let pending_chat = self.get(
            &mut section,
            "pending_chat_requests_per_user",
            Some("TROUPE_QUOTAS_PENDING_CHAT_REQUESTS_PER_USER"),
            &between(1u32, 1_000_000),
        );
        let images = self.get(
            &mut section,
            "image_bytes_per_user",
            Some("TROUPE_QUOTAS_IMAGE_BYTES_PER_USER"),
            &between(1u64, 1 << 50),
        );
        self.finish(section);
        Quotas {
            tasks_active_per_user: tasks.unwrap_or(100),
            ws_connections_per_user: ws.unwrap_or(20),
            chat_requests_per_user_per_minute: chat.unwrap_or(20),
            pending_chat_requests_per_user: pending_chat
                .unwrap_or(troupe_actors::chat::DEFAULT_MAX_PENDING),
            image_bytes_per_user: images.unwrap_or(256 * 1024 * 1024),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::tests::{env, keys, MINIMAL as BASE};
    use crate::config::{parse, Overrides};

    #[test]
    fn limits_and_quotas_have_defaults_and_take_the_file_and_env() {
        let config = parse(BASE, "t", &Overrides::default(), &env(&[])).unwrap();
        assert_eq!(config.limits.register_per_ip_per_minute, 20);
        assert_eq!(config.limits.grpc_calls_per_ip_per_minute, 6000);
        assert_eq!(config.quotas.tasks_active_per_user, 100);
        assert_eq!(config.quotas.image_bytes_per_user, 256 * 1024 * 1024);
        assert_eq!(config.quotas.pending_chat_requests_per_user, 50);
        let text = format!(
            "{BASE}[limits]\nsearch_per_user_per_minute = 5\n[quotas]\nws_connections_per_user = 2\n"
        );
        let vars = env(&[
            ("TROUPE_QUOTAS_TASKS_ACTIVE_PER_USER", "3"),
            ("TROUPE_QUOTAS_PENDING_CHAT_REQUESTS_PER_USER", "7"),
        ]);
        let config = parse(&text, "t", &Overrides::default(), &vars).unwrap();
        assert_eq!(config.limits.search_per_user_per_minute, 5);
        assert_eq!(config.quotas.ws_connections_per_user, 2);
        assert_eq!(config.quotas.tasks_active_per_user, 3);
        assert_eq!(config.quotas.pending_chat_requests_per_user, 7);
    }

    #[test]
    fn every_bad_limit_and_quota_is_reported_at_once() {
        let text = format!(
            "{BASE}[limits]\nregister_per_ip_per_minute = 0\ngrpc_calls_per_ip_per_minute = \"many\"\nlogins = 3\n\
             [quotas]\ntasks_active_per_user = 0\npending_chat_requests_per_user = 0\nimage_bytes_per_user = -1\n"
        );
        let errors = parse(&text, "t", &Overrides::default(), &env(&[])).unwrap_err();
        assert_eq!(
            keys(&errors),
            [
                "limits.register_per_ip_per_minute",
                "limits.grpc_calls_per_ip_per_minute",
                "limits.logins",
                "quotas.tasks_active_per_user",
                "quotas.pending_chat_requests_per_user",
                "quotas.image_bytes_per_user",
            ]
        );
    }
}
