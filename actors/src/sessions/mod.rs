//! The `sessions` service: one actor per login session, placed on the session's home node.
//!
//! # Layout
//! - [`entity`]: the per-session actor ([`entity::SessionEntity`]), activated on demand from
//!   the store, passivated when idle, handed off when membership changes.
//! - [`messages`]: requests and replies.
//! - [`store`]: the SQL of table `sessions`.
//! - [`Revocations`]: the node-local set of revoked session ids that ingress checks on every
//!   authenticated request. It is filled by a broadcast from the node that revoked a session
//!   and, as a backstop for a missed broadcast, by polling the store twice a second.
//!
//! Ops that name one session (`start`, `get`, `touch`, `revoke`) are routed by the mesh to
//! the session's home node (`Target::Entity(session id)`); the others run anywhere.

pub mod entity;
pub mod messages;
pub mod store;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;

use crate::mesh::placement::{EntityError, EntityHostMsg, Hosted};
use crate::mesh::{BoxFuture, MeshError, NodeInfo, Request, Service, Target};
use crate::store::time::{now_ms, rfc3339_millis};
use crate::store::Store;

use entity::{SessionEntity, SessionReq};
use messages::{ByUser, HostCounts, Revoked, SessionInfo, SessionList, Start};
use ops::Cmd;

/// Service name.
pub const NAME: &str = "sessions";

/// The ops of `sessions`, declared once.
pub mod ops {
    use super::messages::{ByUser, HostCounts, Revoked, SessionInfo, SessionList, Start, Touch};

    crate::ops! {
        /// An op of `sessions`, decoded at the service's edge.
        pub enum Cmd for super::NAME {
            /// Create a session (entity-routed).
            Start = START("start", effectful): Start => SessionInfo,
            /// Read a session (entity-routed).
            Get = GET("get", idempotent): () => SessionInfo,
            /// Record activity (entity-routed).
            Touch = TOUCH("touch", idempotent): Touch => SessionInfo,
            /// End a session (entity-routed) and tell every node.
            Revoke = REVOKE("revoke", idempotent): () => SessionInfo,
            /// Every session of a user.
            List = LIST("list", idempotent): ByUser => SessionList,
            /// End every session of a user (but the one `keep` names) and tell every node.
            RevokeUser = REVOKE_USER("revoke_user", idempotent): ByUser => SessionList,
            /// Record revocations told by another node (node-targeted, sent with `tell`).
            NoteRevoked = NOTE_REVOKED("note_revoked", idempotent): Revoked => (),
            /// This node's session actors: how many are live (node-targeted; `/dashboard`).
            Stats = STATS("stats", idempotent): () => HostCounts,
        }
    }
}

/// Idle session actors are passivated after this long (their state is in the store).
const IDLE: Duration = Duration::from_secs(300);
/// How often the revocation set is refreshed from the store.
const REFRESH: Duration = Duration::from_millis(500);
/// Refresh ticks between two sweeps of expired sessions (10 minutes).
const SWEEP_EVERY: u32 = 1200;
/// How long an expired session stays in the store, so `last-connection` still answers.
const RETAIN_EXPIRED_MS: i64 = 30 * 24 * 3600 * 1000;

/// Revoked session ids known to this node, with the time their tokens expire anyway.
///
/// A revocation is kept until the session's end or until the last access token minted
/// before it can have expired (`token_lifetime` after it was recorded), whichever is
/// later: a session revoked after its own end may still have access tokens that work.
#[derive(Clone, Default)]
pub struct Revocations {
    held: Arc<RwLock<HashMap<String, i64>>>,
    token_lifetime_ms: i64,
}

impl Revocations {
    /// An empty set whose entries outlive every access token (`token_lifetime`: the
    /// access tokens' lifetime).
    pub fn new(token_lifetime: Duration) -> Self {
        Self {
            held: Arc::default(),
            token_lifetime_ms: i64::try_from(token_lifetime.as_millis()).unwrap_or(i64::MAX),
        }
    }

    /// How long after a revocation an access token minted before it may still be valid.
    pub fn token_lifetime_ms(&self) -> i64 {
        self.token_lifetime_ms
    }

    /// Whether tokens of session `sid` must be refused.
    pub fn is_revoked(&self, sid: &str) -> bool {
        self.held
            .read()
            .expect("revocations lock")
            .contains_key(sid)
    }

    /// Records a revocation of a session ending at `expires_at_ms`.
    pub fn add(&self, sid: impl Into<String>, expires_at_ms: i64) {
        let keep_until = expires_at_ms.max(now_ms().saturating_add(self.token_lifetime_ms));
        let mut held = self.held.write().expect("revocations lock");
        let entry = held.entry(sid.into()).or_insert(keep_until);
        *entry = (*entry).max(keep_until);
    }

    /// Forgets revocations whose tokens have expired anyway.
    pub fn prune(&self, now_ms: i64) {
        self.held
            .write()
            .expect("revocations lock")
            .retain(|_, exp| *exp > now_ms);
    }

    /// Number of revocations held.
    pub fn len(&self) -> usize {
        self.held.read().expect("revocations lock").len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The service.
pub struct Sessions {
    info: Arc<NodeInfo>,
    store: Store,
    hosted: Arc<Hosted<SessionEntity>>,
    revocations: Revocations,
}

impl Sessions {
    /// Starts the node's session host, the hand-off watcher and the revocation refresher.
    pub async fn start(
        info: Arc<NodeInfo>,
        store: Store,
        revocations: Revocations,
    ) -> anyhow::Result<Arc<Self>> {
        let entity = SessionEntity {
            store: store.clone(),
            node: info.node.clone(),
            revocations: revocations.clone(),
        };
        let hosted = Hosted::start(info.clone(), entity, IDLE).await?;
        let me = Arc::new(Self {
            info,
            store,
            hosted,
            revocations,
        });
        tokio::spawn(refresh(Arc::downgrade(&me)));
        Ok(me)
    }

    /// The revocation set ingress checks.
    pub fn revocations(&self) -> &Revocations {
        &self.revocations
    }

    async fn host_counts(&self) -> Result<HostCounts, MeshError> {
        let host = self.hosted.host().await?;
        let stats = ractor::call!(host, EntityHostMsg::Stats)
            .map_err(|e| MeshError::unavailable(format!("session host: {e}")))?;
        Ok(HostCounts {
            active: stats.active as u64,
        })
    }

    async fn entity(&self, req: &Request, op: SessionReq) -> Result<store::Row, MeshError> {
        if req.entity.is_empty() {
            return Err(MeshError::invalid("session id missing"));
        }
        let timeout = req
            .deadline
            .saturating_duration_since(std::time::Instant::now());
        match self.hosted.request(&req.entity, op, Some(timeout)).await {
            Ok(answer) => answer,
            Err(EntityError::NotFound) => Err(store::not_found()),
            Err(EntityError::Timeout) => Err(MeshError::deadline()),
            Err(EntityError::Unavailable(why)) => Err(MeshError::unavailable(why)),
        }
    }

    fn info_of(&self, row: &store::Row) -> SessionInfo {
        SessionInfo {
            id: row.id.clone(),
            user_id: row.user_id.clone(),
            created_at: rfc3339_millis(row.created_at),
            last_activity: rfc3339_millis(row.last_activity),
            expires_at: rfc3339_millis(row.expires_at),
            device: row.device.clone(),
            ip: row.ip.clone(),
            user_agent: row.user_agent.clone(),
            metadata: row.metadata.clone(),
            revoked: row.revoked_at > 0,
            served_by: self.info.node.to_string(),
            version: row.version as u64,
            last_activity_ms: row.last_activity,
            expires_at_ms: row.expires_at,
        }
    }

    async fn start_session(&self, req: &Request, s: Start) -> Result<store::Row, MeshError> {
        if req.entity.is_empty() || s.user_id.is_empty() {
            return Err(MeshError::invalid("session id and user id are required"));
        }
        let now = now_ms();
        let row = store::Row {
            id: req.entity.clone(),
            user_id: s.user_id,
            created_at: now,
            last_activity: now,
            expires_at: now + (s.ttl_s.max(1) as i64) * 1000,
            device: s.device,
            ip: s.ip,
            user_agent: s.user_agent,
            metadata: if s.metadata.is_empty() {
                "{}".into()
            } else {
                s.metadata
            },
            revoked_at: 0,
            version: 1,
        };
        store::insert(&self.store, &row).await?;
        // The session actor is activated from this row on first use.
        Ok(row)
    }

    /// Ends one session and tells every node.
    async fn revoke(&self, req: &Request) -> Result<SessionInfo, MeshError> {
        let row = self.entity(req, SessionReq::Revoke).await?;
        self.broadcast(&[(row.id.clone(), row.expires_at)]);
        Ok(self.info_of(&row))
    }

    /// Ends every live session of a user but `by.keep` (if named), however many, in one
    /// statement ([`store::revoke_all_of`]), then one note to every node with all of them.
    ///
    /// The session actors are not asked: one that is live holds the row from before, and
    /// reloads it from the store when this node's revocation set names it (see
    /// [`SessionEntity`]) or when its next write fails the version check.
    async fn revoke_user(&self, by: ByUser) -> Result<SessionList, MeshError> {
        // Every session not revoked yet but `keep`, unless it ended so long ago that no
        // token of it can still work.
        let now = now_ms();
        let since = now.saturating_sub(self.revocations.token_lifetime_ms());
        let mut revoked =
            store::revoke_all_of(&self.store, &by.user_id, &by.keep, since, now).await?;
        revoked.sort_by(|a, b| a.id.cmp(&b.id));
        let ids: Vec<(String, i64)> = revoked
            .iter()
            .map(|r| (r.id.clone(), r.expires_at))
            .collect();
        self.broadcast(&ids);
        Ok(SessionList {
            items: revoked.iter().map(|r| self.info_of(r)).collect(),
        })
    }

    /// Records revocations here and tells every other routable node, without waiting: a
    /// node that misses the note picks them up from the store within [`REFRESH`].
    fn broadcast(&self, revoked: &[(String, i64)]) {
        if revoked.is_empty() {
            return;
        }
        for (id, exp) in revoked {
            self.revocations.add(id.clone(), *exp);
        }
        let Ok(router) = self.info.router() else {
            return;
        };
        let note = Revoked {
            ids: revoked.iter().map(|(id, _)| id.clone()).collect(),
            expires_at_ms: revoked.iter().map(|(_, exp)| *exp).collect(),
        };
        for member in router.members().iter().filter(|m| **m != *self.info.node) {
            let call = ops::NOTE_REVOKED
                .call(note.clone())
                .to(Target::Node(member.clone()))
                .timeout(Duration::from_secs(1));
            router.tell(call);
        }
    }

    fn note_revoked(&self, note: Revoked) {
        for (i, id) in note.ids.into_iter().enumerate() {
            let exp = note.expires_at_ms.get(i).copied().unwrap_or(i64::MAX);
            self.revocations.add(id, exp);
        }
    }

    async fn list(&self, by: ByUser) -> Result<SessionList, MeshError> {
        let rows = store::by_user(&self.store, &by.user_id).await?;
        Ok(SessionList {
            items: rows.iter().map(|r| self.info_of(r)).collect(),
        })
    }
}

/// Keeps the revocation set in step with the store.
async fn refresh(me: std::sync::Weak<Sessions>) {
    let mut since = 0i64;
    let mut tick = tokio::time::interval(REFRESH);
    let mut ticks = 0u32;
    loop {
        tick.tick().await;
        let Some(s) = me.upgrade() else { return };
        let now = now_ms();
        ticks = ticks.wrapping_add(1);
        if ticks.is_multiple_of(SWEEP_EVERY) {
            match store::sweep_expired(&s.store, now - RETAIN_EXPIRED_MS).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(deleted = n, "swept expired sessions"),
                Err(e) => tracing::warn!(error = %e, "session sweep failed"),
            }
        }
        let tokens_end = now.saturating_sub(s.revocations.token_lifetime_ms());
        match store::revoked_since(&s.store, since, now, tokens_end).await {
            Ok(rows) => {
                for (id, exp) in rows {
                    s.revocations.add(id, exp);
                }
                // Overlap the next window a little: clocks of writers differ slightly.
                since = now - 5_000;
                s.revocations.prune(now);
            }
            Err(e) => tracing::warn!(error = %e, "revocation refresh failed"),
        }
    }
}

impl Service for Sessions {
    fn name(&self) -> &'static str {
        NAME
    }

    fn handle(&self, req: Request) -> BoxFuture<'_, Result<Bytes, MeshError>> {
        Box::pin(async move {
            match Cmd::parse(&req)? {
                Cmd::Start(s) => {
                    let row = self.start_session(&req, s).await;
                    ops::START.reply(row.map(|r| self.info_of(&r)))
                }
                Cmd::Get(()) => {
                    let row = self.entity(&req, SessionReq::Get).await;
                    ops::GET.reply(row.map(|r| self.info_of(&r)))
                }
                Cmd::Touch(t) => {
                    let row = self.entity(&req, SessionReq::Touch(t)).await;
                    ops::TOUCH.reply(row.map(|r| self.info_of(&r)))
                }
                Cmd::Revoke(()) => ops::REVOKE.reply(self.revoke(&req).await),
                Cmd::List(by) => ops::LIST.reply(self.list(by).await),
                Cmd::RevokeUser(by) => ops::REVOKE_USER.reply(self.revoke_user(by).await),
                Cmd::NoteRevoked(note) => {
                    self.note_revoked(note);
                    ops::NOTE_REVOKED.reply(Ok(()))
                }
                Cmd::Stats(()) => ops::STATS.reply(self.host_counts().await),
            }
        })
    }
}

#[cfg(test)]
mod tests;
