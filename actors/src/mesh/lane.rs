//! The re-entrant lane: how a pool never waits on itself.
//!
//! A worker that calls another service waits for the answer while it holds its slot. If that
//! call needs a worker of the caller's own pool (directly, `sessions` -> `sessions`, or
//! through a cycle, `auth` -> `users` -> `auth`, on this node or another), a busy pool can
//! end with every worker waiting on calls that only its own workers could serve: it starves
//! until deadlines fire.
//!
//! The rule: every call made while a worker serves a request carries the *chain* of
//! services whose workers wait on it (a task-local on this node, the envelope's `chain`
//! across nodes). A call into a service that is already in its chain does not take a
//! worker: it runs at once on that service's lane, a task of its own, still bounded by the
//! pool's admission limit (past it: `resource_exhausted` at once, never a wait). Nothing on
//! a chain ever waits for a worker of a pool that is itself waiting, so no cycle of waits
//! can form. Calls from ingress, timers and entity actors carry no chain and use workers as
//! before.
//!
//! Fan-out that needs no answer (revocation notes, cache evictions, presence) is sent with
//! [`super::Router::tell`] and holds no worker at all.

use std::future::Future;

tokio::task_local! {
    static CHAIN: Chain;
}

/// The services waiting on the current request: those outside it, then its own.
#[derive(Clone, Debug)]
struct Chain {
    outer: Vec<String>,
    this: &'static str,
}

/// Runs `fut`, the handling of a request of `service` that arrived with chain `outer`, so
/// that the calls it makes carry `outer` + `service`.
pub fn scope<F: Future>(
    outer: Vec<String>,
    service: &'static str,
    fut: F,
) -> impl Future<Output = F::Output> {
    CHAIN.scope(
        Chain {
            outer,
            this: service,
        },
        fut,
    )
}

/// The chain an outgoing call carries: empty unless it is made while a request is served.
pub fn current() -> Vec<String> {
    CHAIN
        .try_with(|c| {
            let mut chain = Vec::with_capacity(c.outer.len() + 1);
            chain.extend(c.outer.iter().cloned());
            if !chain.iter().any(|s| s == c.this) {
                chain.push(c.this.to_string());
            }
            chain
        })
        .unwrap_or_default()
}

/// Whether a request of `service` with `chain` must run on the lane.
pub fn is_reentrant(chain: &[String], service: &str) -> bool {
    chain.iter().any(|s| s == service)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_chain_grows_along_nested_requests_and_is_empty_outside() {
        assert!(current().is_empty());
        let inner = scope(vec!["auth".into()], "users", async {
            let chain = current();
            assert!(is_reentrant(&chain, "auth"));
            assert!(is_reentrant(&chain, "users"));
            assert!(!is_reentrant(&chain, "sessions"));
            scope(chain, "auth", async { current() }).await
        })
        .await;
        // A service already in the chain is not listed twice.
        assert_eq!(inner, vec!["auth".to_string(), "users".to_string()]);
        assert!(current().is_empty());
    }
}
