//! The ingress core every protocol shares: the node's runtime, `ask` (a mesh call with the
//! request's deadline), `authenticate` (an access token checked on this node), `limit` (one
//! attempt counted by the cluster-wide limiter), `client_ip` (the client behind trusted
//! proxies), request ids and the request metrics' names. REST, SOAP, gRPC and WebSocket each hold one [`Ingress`]
//! and differ only in how they decode requests and how they write answers and errors: each
//! maps [`MeshError`] to its own form in exactly one place (`http::error`, `grpc::error`,
//! `soap::fault`, `ws::close`).
//!
//! # Layout
//! - this file: [`Ingress`];
//! - [`caller`]: [`Caller`], who is calling;
//! - [`request_id`]: ids of requests that came without one;
//! - [`metrics`]: names of the per-protocol request metrics;
//! - [`write_key`]: the idempotency key of a write, put on its effectful calls.

pub mod caller;
pub mod metrics;
pub mod request_id;
pub mod write_key;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use troupe_actors::auth::limits::{self, Class, Limiter};
use troupe_actors::auth::token::{TokenKind, Tokens};
use troupe_actors::mesh::{Call, Code, Mesh, MeshError};
use troupe_actors::sessions::Revocations;

pub use caller::Caller;

/// What every protocol's handlers reach: one per node, shared by all listeners.
pub struct Ingress {
    /// The node's runtime.
    pub mesh: Mesh,
    /// Verifies access tokens locally.
    pub tokens: Arc<Tokens>,
    /// Sessions revoked anywhere in the cluster, as this node knows them.
    pub revocations: Revocations,
    /// Deadline of a request's mesh calls unless the call or the client sets one.
    pub request_timeout: Duration,
    /// This node's counts of the cluster-wide limits (shared with the `auth` service).
    pub limiter: Arc<Limiter>,
    /// Networks of the reverse proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

impl Ingress {
    /// Runs a mesh call with the request deadline (unless the call names its own) and
    /// answers its typed reply.
    pub async fn ask<Rep: prost::Message + Default>(
        &self,
        call: Call<Rep>,
    ) -> Result<Rep, MeshError> {
        let call = if call.has_timeout() {
            call
        } else {
            call.timeout(self.request_timeout)
        };
        // Every write is keyed: the request's key (REST), or one made for this call (SOAP,
        // gRPC, WebSocket frames), so the router may retry it safely.
        let call = if call.is_idempotent() {
            call
        } else {
            match write_key::current()? {
                Some(key) => call.idempotency_key(key),
                None => call.idempotency_key(write_key::made()),
            }
        };
        self.mesh.router().call(call).await
    }

    /// Verifies an access token on this node (no mesh hop): signature, expiry, and the
    /// node's revocation set.
    pub fn authenticate(&self, token: &str) -> Result<Caller, MeshError> {
        let claims = self
            .tokens
            .verify(token, TokenKind::Access)
            .map_err(MeshError::from)?;
        if self.revocations.is_revoked(&claims.sid) {
            return Err(MeshError::new(Code::Unauthenticated, "session has ended"));
        }
        Ok(Caller {
            user_id: claims.sub,
            username: claims.username,
            roles: claims.roles,
            session_id: claims.sid,
            expires_at: claims.exp,
        })
    }

    /// Counts one attempt of `class` by `key` cluster-wide (on the node owning the key,
    /// or here when it is out of reach): `Ok` when allowed, else `ResourceExhausted` with
    /// the wait (`retry_after_s`) and the limit's name.
    pub async fn limit(&self, class: Class, key: &str, request_id: &str) -> Result<(), MeshError> {
        let deadline = Instant::now() + self.request_timeout;
        let wait = limits::take(
            Some(self.mesh.router()),
            &self.limiter,
            class,
            key,
            request_id,
            deadline,
        )
        .await;
        if wait > 0 {
            ::metrics::counter!(LIMITED, "limit" => class.name()).increment(1);
        }
        limits::admit(class, wait)
    }

    /// The client of a request from `peer`: `peer` itself, unless `peer` is a trusted
    /// proxy and `forwarded` (the `X-Forwarded-For` values, in order) names hops; then the
    /// right-most hop that is not itself a trusted proxy (proxies append the address they
    /// saw, so everything left of it may be forged by the client). A hop that is not an
    /// address ends the walk at the last trusted one.
    pub fn client_ip<'a>(&self, peer: IpAddr, forwarded: impl Iterator<Item = &'a str>) -> IpAddr {
        client_ip(&self.trusted_proxies, peer, forwarded)
    }
}

/// Requests refused by a rate limit, by limit (`limit` label).
pub const LIMITED: &str = "troupe_rate_limited_total";

/// [`Ingress::client_ip`] over a list of trusted networks.
pub fn client_ip<'a>(
    trusted: &[ipnet::IpNet],
    peer: IpAddr,
    forwarded: impl Iterator<Item = &'a str>,
) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(&canonical(*ip)));
    if !is_trusted(&peer) {
        return peer;
    }
    let hops: Vec<&str> = forwarded
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Ok(ip) = hop.parse::<IpAddr>() else {
            break;
        };
        client = canonical(ip);
        if !is_trusted(&client) {
            break;
        }
    }
    client
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<ipnet::IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_forwarded_header_from_an_untrusted_peer_is_ignored() {
        let trusted = nets(&["198.18.0.0/15"]);
        let got = client_ip(&trusted, ip("203.0.113.9"), ["1.2.3.4"].into_iter());
        assert_eq!(got, ip("203.0.113.9"));
        // Nothing trusted at all: the peer, whatever the header says.
        let got = client_ip(&[], ip("198.18.0.1"), ["1.2.3.4"].into_iter());
        assert_eq!(got, ip("198.18.0.1"));
    }

    #[test]
    fn behind_trusted_proxies_the_right_most_untrusted_hop_is_the_client() {
        let trusted = nets(&["198.18.0.0/15", "10.0.0.0/8"]);
        // The client forged "6.6.6.6"; the first proxy appended what it saw.
        let got = client_ip(
            &trusted,
            ip("198.18.0.1"),
            ["6.6.6.6, 203.0.113.7", "10.1.1.1"].into_iter(),
        );
        assert_eq!(got, ip("203.0.113.7"));
        // Every hop trusted: the left-most one.
        let got = client_ip(&trusted, ip("198.18.0.1"), ["10.2.2.2"].into_iter());
        assert_eq!(got, ip("10.2.2.2"));
        // No header: the proxy itself.
        let got = client_ip(&trusted, ip("198.18.0.1"), std::iter::empty());
        assert_eq!(got, ip("198.18.0.1"));
        // Garbage stops the walk at the last trusted hop.
        let got = client_ip(&trusted, ip("198.18.0.1"), ["1.2.3.4, junk"].into_iter());
        assert_eq!(got, ip("198.18.0.1"));
        // A v4-mapped peer counts as its v4 address.
        let got = client_ip(
            &trusted,
            ip("::ffff:198.18.0.1"),
            ["203.0.113.8"].into_iter(),
        );
        assert_eq!(got, ip("203.0.113.8"));
    }
}
