//! The cluster-wide rate limiter: every limited action (logins, registrations, refreshes,
//! directory searches, WebSocket upgrades, gRPC calls, code requests, chat requests) is
//! counted by one [`Limiter`] per node, on the node that owns `<class>/<key>` (rendezvous
//! hashing, as entities are placed; op `auth.take_limit`), so N nodes do not multiply a
//! limit. A node that cannot reach the owner counts in its own limiter, so an attempt is
//! never let through uncounted ([`take`]).
//!
//! Each class is a keyed GCRA limiter (`governor`) of `per_minute` attempts per key with a
//! burst of as many; a refusal carries the wait, which every protocol answers in its own
//! form (`Retry-After` with 429 over HTTP, `RESOURCE_EXHAUSTED` over gRPC, 429 on a
//! WebSocket upgrade, a SOAP Fault).

use std::num::NonZeroU32;
use std::time::Instant;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::mesh::{Code, MeshError, Router, Target};

use super::messages::{LimitReply, LimitRequest};

/// What a limit counts, and whose attempts (the key).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Class {
    /// Login attempts (and current-password checks) on one account, by lower-cased login.
    LoginAccount,
    /// Login attempts from one client address.
    LoginIp,
    /// Registrations from one client address (every register path, REST and SOAP).
    Register,
    /// Token refreshes from one client address.
    Refresh,
    /// Requests for emailed codes and guesses of them from one client address
    /// (forgot-password and its confirmation).
    Codes,
    /// User directory searches by one user.
    Search,
    /// WebSocket upgrades from one client address.
    WsUpgrade,
    /// gRPC calls from one client address.
    Grpc,
    /// Chat requests sent by one user (the per-user chat request quota).
    Chat,
}

impl Class {
    /// Every class, in the order of [`Rates`]' fields.
    pub const ALL: [Class; 9] = [
        Class::LoginAccount,
        Class::LoginIp,
        Class::Register,
        Class::Refresh,
        Class::Codes,
        Class::Search,
        Class::WsUpgrade,
        Class::Grpc,
        Class::Chat,
    ];

    /// The class's name on the wire and in entity ids.
    pub fn name(self) -> &'static str {
        match self {
            Class::LoginAccount => "login-account",
            Class::LoginIp => "login-ip",
            Class::Register => "register-ip",
            Class::Refresh => "refresh-ip",
            Class::Codes => "codes-ip",
            Class::Search => "search-user",
            Class::WsUpgrade => "ws-ip",
            Class::Grpc => "grpc-ip",
            Class::Chat => "chat-user",
        }
    }

    /// The class named `name`.
    pub fn parse(name: &str) -> Result<Self, MeshError> {
        Class::ALL
            .into_iter()
            .find(|c| c.name() == name)
            .ok_or_else(|| MeshError::invalid(format!("unknown limit class {name:?}")))
    }

    /// The message of a refusal.
    pub fn refusal(self) -> &'static str {
        match self {
            Class::LoginAccount | Class::LoginIp => "too many login attempts, retry later",
            Class::Register => "too many registrations from this address, retry later",
            Class::Refresh => "too many token refreshes from this address, retry later",
            Class::Codes => "too many code requests from this address, retry later",
            Class::Search => "too many searches, retry later",
            Class::WsUpgrade => "too many WebSocket connections from this address, retry later",
            Class::Grpc => "too many gRPC calls from this address, retry later",
            Class::Chat => "chat request quota reached (chat_requests_per_user_per_minute)",
        }
    }
}

/// Attempts allowed per key per minute, by class (config `[auth]` for logins, `[limits]`
/// and `[quotas]` for the rest).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rates {
    /// Logins per account.
    pub login_per_account: u32,
    /// Logins per client address.
    pub login_per_ip: u32,
    /// Registrations per client address.
    pub register_per_ip: u32,
    /// Refreshes per client address.
    pub refresh_per_ip: u32,
    /// Code requests and guesses per client address.
    pub codes_per_ip: u32,
    /// Directory searches per user.
    pub search_per_user: u32,
    /// WebSocket upgrades per client address.
    pub ws_upgrades_per_ip: u32,
    /// gRPC calls per client address.
    pub grpc_calls_per_ip: u32,
    /// Chat requests sent per user.
    pub chat_requests_per_user: u32,
}

impl Default for Rates {
    fn default() -> Self {
        Self {
            login_per_account: 10,
            login_per_ip: 60,
            register_per_ip: 20,
            refresh_per_ip: 120,
            codes_per_ip: 20,
            search_per_user: 60,
            ws_upgrades_per_ip: 60,
            grpc_calls_per_ip: 6000,
            chat_requests_per_user: 20,
        }
    }
}

impl Rates {
    fn of(&self, class: Class) -> u32 {
        match class {
            Class::LoginAccount => self.login_per_account,
            Class::LoginIp => self.login_per_ip,
            Class::Register => self.register_per_ip,
            Class::Refresh => self.refresh_per_ip,
            Class::Codes => self.codes_per_ip,
            Class::Search => self.search_per_user,
            Class::WsUpgrade => self.ws_upgrades_per_ip,
            Class::Grpc => self.grpc_calls_per_ip,
            Class::Chat => self.chat_requests_per_user,
        }
    }
}

/// This node's counts, one keyed limiter per class. The node builds one and shares it
/// between the `auth` service (which counts the keys this node owns) and ingress (which
/// counts here when the owner is out of reach).
pub struct Limiter {
    limiters: Vec<(Class, DefaultKeyedRateLimiter<String>)>,
}

impl Limiter {
    /// A limiter with these rates.
    pub fn new(rates: Rates) -> Self {
        let quota = |n: u32| Quota::per_minute(NonZeroU32::new(n.max(1)).expect("at least one"));
        Self {
            limiters: Class::ALL
                .into_iter()
                .map(|c| (c, RateLimiter::keyed(quota(rates.of(c)))))
                .collect(),
        }
    }

    /// Counts one attempt of `class` by `key` in this node's limiter: 0 when allowed, else
    /// the wait in ms.
    pub fn take_here(&self, class: Class, key: &str) -> u64 {
        let limiter = &self
            .limiters
            .iter()
            .find(|(c, _)| *c == class)
            .expect("a limiter per class")
            .1;
        match limiter.check_key(&key.to_string()) {
            Ok(()) => 0,
            Err(not_until) => {
                let wait = not_until.wait_time_from(governor::clock::Clock::now(
                    &governor::clock::DefaultClock::default(),
                ));
                u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1)
            }
        }
    }

    /// Forgets the keys that are back to a full burst (keyed limiters keep a cell per key).
    pub fn retain_recent(&self) {
        for (_, l) in &self.limiters {
            l.retain_recent();
        }
    }
}

/// Counts one attempt of `class` by `key` where every node counts it: on the node that
/// owns `<class>/<key>`, or in `here` when that node is out of reach (or the mesh is not
/// up yet). Answers 0 when allowed, else the wait in ms.
pub async fn take(
    router: Option<&Router>,
    here: &Limiter,
    class: Class,
    key: &str,
    request_id: &str,
    deadline: Instant,
) -> u64 {
    let Some(router) = router else {
        return here.take_here(class, key);
    };
    let call = super::ops::TAKE_LIMIT
        .call(LimitRequest {
            class: class.name().to_string(),
            key: key.to_string(),
        })
        .to(Target::Entity(format!("{}/{key}", class.name())))
        .request_id(request_id.to_string())
        .timeout(deadline.saturating_duration_since(Instant::now()));
    match router.call::<LimitReply>(call).await {
        Ok(r) => r.retry_after_ms,
        Err(e) => {
            tracing::debug!(class = class.name(), error = %e, "limit owner unreachable, counting here");
            here.take_here(class, key)
        }
    }
}

/// A refusal by a limit, with the wait (rounded up to whole seconds) that ingress answers
/// as `Retry-After`.
pub fn too_many(message: &str, wait_ms: u64) -> MeshError {
    MeshError::new(Code::ResourceExhausted, message)
        .with_details(serde_json::json!({ "retry_after_s": wait_ms.div_ceil(1000) }))
}

/// `Ok` when `wait_ms` is 0, else `ResourceExhausted` with `class`'s message and the
/// details `retry_after_s`, `limit` (the class) and, for a per-user quota, `quota`.
pub fn admit(class: Class, wait_ms: u64) -> Result<(), MeshError> {
    if wait_ms == 0 {
        Ok(())
    } else {
        let mut details = serde_json::json!({
            "retry_after_s": wait_ms.div_ceil(1000), "limit": class.name(),
        });
        if class == Class::Chat {
            details["quota"] = serde_json::Value::from("chat_requests_per_user_per_minute");
        }
        Err(MeshError::new(Code::ResourceExhausted, class.refusal()).with_details(details))
    }
}

/// A per-user quota reached: `ResourceExhausted` whose details name the quota and its
/// value (`{"quota": name, "limit": n}`); `too_large` marks a size quota (HTTP 413
/// rather than 429).
pub fn over_quota(name: &str, limit: u64, too_large: bool) -> MeshError {
    let mut details = serde_json::json!({ "quota": name, "limit": limit });
    if too_large {
        details["reason"] = serde_json::Value::from(OVER_SIZE_QUOTA);
    }
    MeshError::new(
        Code::ResourceExhausted,
        format!("quota {name} reached ({limit})"),
    )
    .with_details(details)
}

/// The `reason` detail of a size quota reached (HTTP 413).
pub const OVER_SIZE_QUOTA: &str = "over_size_quota";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_class_round_trips_and_has_its_own_rate() {
        for c in Class::ALL {
            assert_eq!(Class::parse(c.name()).unwrap(), c);
        }
        assert!(Class::parse("nope").is_err());
        let rates = Rates {
            register_per_ip: 2,
            ..Rates::default()
        };
        let l = Limiter::new(rates);
        assert_eq!(l.take_here(Class::Register, "1.2.3.4"), 0);
        assert_eq!(l.take_here(Class::Register, "1.2.3.4"), 0);
        let wait = l.take_here(Class::Register, "1.2.3.4");
        assert!(wait > 0 && wait <= 30_000, "{wait}");
        // Another key, and another class with the same key, are counted apart.
        assert_eq!(l.take_here(Class::Register, "1.2.3.5"), 0);
        assert_eq!(l.take_here(Class::Refresh, "1.2.3.4"), 0);
    }

    #[test]
    fn refusals_carry_the_wait_and_quotas_name_themselves() {
        assert!(admit(Class::Search, 0).is_ok());
        let e = admit(Class::Search, 1500).unwrap_err();
        assert_eq!(e.code, Code::ResourceExhausted);
        let d: serde_json::Value = serde_json::from_str(&e.details).unwrap();
        assert_eq!(d["retry_after_s"], 2);
        assert_eq!(d["limit"], "search-user");
        let q = over_quota("image_bytes_per_user", 10, true);
        let d: serde_json::Value = serde_json::from_str(&q.details).unwrap();
        assert_eq!(d["quota"], "image_bytes_per_user");
        assert_eq!(d["reason"], OVER_SIZE_QUOTA);
    }
}
