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
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use prost::Message as _;
use ractor::{Actor, ActorRef, ActorStatus};

use crate::mesh::placement::{self, EntityError, EntityHost, EntityHostMsg};
use crate::mesh::{BoxFuture, Call, Code, MeshError, NodeInfo, Op, Request, Service, Target};
use crate::store::time::{now_ms, rfc3339_millis};
use crate::store::Store;

use entity::{SessionEntity, SessionReq};
use messages::{ByUser, HostCounts, Revoked, SessionInfo, SessionList, Start, Touch};

/// Service name.
pub const NAME: &str = "sessions";

/// Op names.
pub mod ops {
    /// Create a session (entity-routed).
    pub const START: &str = "start";
    /// Read a session (entity-routed).
    pub const GET: &str = "get";
    /// Record activity (entity-routed).
    pub const TOUCH: &str = "touch";
    /// End a session (entity-routed) and broadcast the revocation.
    pub const REVOKE: &str = "revoke";
    /// Every session of a user.
    pub const LIST: &str = "list";
    /// End every session of a user.
    pub const REVOKE_USER: &str = "revoke_user";
    /// Record revocations broadcast by another node (node-targeted).
    pub const NOTE_REVOKED: &str = "note_revoked";
    /// This node's session actors: how many are live (node-targeted; for `/dashboard`).
    pub const STATS: &str = "stats";
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
#[derive(Clone, Default)]
pub struct Revocations(Arc<RwLock<HashMap<String, i64>>>);

impl Revocations {
    /// Whether tokens of session `sid` must be refused.
    pub fn is_revoked(&self, sid: &str) -> bool {
        self.0.read().expect("revocations lock").contains_key(sid)
    }

    /// Records a revocation.
    pub fn add(&self, sid: impl Into<String>, expires_at_ms: i64) {
        self.0
            .write()
            .expect("revocations lock")
            .insert(sid.into(), expires_at_ms);
    }

    /// Forgets revocations whose tokens have expired anyway.
    pub fn prune(&self, now_ms: i64) {
        self.0
            .write()
            .expect("revocations lock")
            .retain(|_, exp| *exp > now_ms);
    }

    /// Number of revocations held.
    pub fn len(&self) -> usize {
        self.0.read().expect("revocations lock").len()
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
    host: Mutex<ActorRef<EntityHostMsg<SessionEntity>>>,
    revocations: Revocations,
}

impl Sessions {
    /// Starts the node's session host, the hand-off watcher and the revocation refresher.
    pub async fn start(
        info: Arc<NodeInfo>,
        store: Store,
        revocations: Revocations,
    ) -> anyhow::Result<Arc<Self>> {
        let host = spawn_host(&info, &store).await?;
        let me = Arc::new(Self {
            info,
            store,
            host: Mutex::new(host),
            revocations,
        });
        tokio::spawn(handoff(Arc::downgrade(&me)));
        tokio::spawn(refresh(Arc::downgrade(&me)));
        Ok(me)
    }

    /// The revocation set ingress checks.
    pub fn revocations(&self) -> &Revocations {
        &self.revocations
    }

    /// The entity host, respawned if it died.
    async fn host(&self) -> Result<ActorRef<EntityHostMsg<SessionEntity>>, MeshError> {
        let current = self.host.lock().expect("host lock").clone();
        if current.get_status() == ActorStatus::Running {
            return Ok(current);
        }
        let fresh = spawn_host(&self.info, &self.store)
            .await
            .map_err(|e| MeshError::unavailable(format!("session host restart failed: {e}")))?;
        tracing::warn!("session host was down, restarted it");
        *self.host.lock().expect("host lock") = fresh.clone();
        Ok(fresh)
    }

    async fn host_counts(&self) -> Result<HostCounts, MeshError> {
        let host = self.host().await?;
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
        let host = self.host().await?;
        match placement::request(&host, req.entity.clone(), op, Some(timeout)).await {
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
        }
    }

    async fn start_session(&self, req: &Request) -> Result<store::Row, MeshError> {
        let s = Start::decode(req.payload.clone())?;
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
    async fn revoke(&self, req: &Request) -> Result<store::Row, MeshError> {
        let row = self.entity(req, SessionReq::Revoke).await?;
        self.broadcast(vec![(row.id.clone(), row.expires_at)]).await;
        Ok(row)
    }

    async fn revoke_user(&self, req: &Request) -> Result<SessionList, MeshError> {
        let by = ByUser::decode(req.payload.clone())?;
        let router = self.info.router()?;
        let mut items = Vec::new();
        for row in store::by_user(&self.store, &by.user_id).await? {
            if row.revoked_at > 0 {
                continue;
            }
            let call = Call::new(NAME, ops::REVOKE)
                .to(Target::Entity(row.id.clone()))
                .request_id(req.request_id.clone());
            let bytes = router.call(call).await?;
            items.push(SessionInfo::decode(bytes)?);
        }
        Ok(SessionList { items })
    }

    /// Records revocations here and casts them to every other routable node; a node that
    /// misses the broadcast picks them up from the store within [`REFRESH`].
    async fn broadcast(&self, revoked: Vec<(String, i64)>) {
        for (id, exp) in &revoked {
            self.revocations.add(id.clone(), *exp);
        }
        let Ok(router) = self.info.router() else {
            return;
        };
        let note = Revoked {
            ids: revoked.iter().map(|(id, _)| id.clone()).collect(),
            expires_at_ms: revoked.iter().map(|(_, exp)| *exp).collect(),
        };
        let calls = router
            .members()
            .iter()
            .filter(|m| **m != *self.info.node)
            .map(|m| {
                let call = Call::new(NAME, ops::NOTE_REVOKED)
                    .payload(&note)
                    .to(Target::Node(m.clone()))
                    .timeout(Duration::from_secs(1));
                let router = router.clone();
                async move { router.call(call).await }
            })
            .collect::<Vec<_>>();
        for call in calls {
            if let Err(e) = call.await {
                tracing::warn!(error = %e, "revocation broadcast failed; the store poll will catch up");
            }
        }
    }
}

async fn spawn_host(
    info: &Arc<NodeInfo>,
    store: &Store,
) -> anyhow::Result<ActorRef<EntityHostMsg<SessionEntity>>> {
    let entity = SessionEntity {
        store: store.clone(),
        node: info.node.clone(),
    };
    let (host, _) = Actor::spawn(None, EntityHost::new(entity, IDLE), ()).await?;
    Ok(host)
}

/// Passivates the sessions whose home moved whenever the routable members change.
async fn handoff(me: std::sync::Weak<Sessions>) {
    let mut members = loop {
        let Some(s) = me.upgrade() else { return };
        if let Ok(r) = s.info.router() {
            break r.watch_members();
        }
        drop(s);
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    while members.changed().await.is_ok() {
        let Some(s) = me.upgrade() else { return };
        let list = members.borrow_and_update().to_vec();
        if let Ok(host) = s.host().await {
            let _ = host.cast(EntityHostMsg::Rebalance {
                members: list,
                me: s.info.node.to_string(),
            });
        }
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
        match store::revoked_since(&s.store, since, now).await {
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

fn encode(msg: &impl prost::Message) -> Bytes {
    Bytes::from(msg.encode_to_vec())
}

impl Service for Sessions {
    fn name(&self) -> &'static str {
        NAME
    }

    fn ops(&self) -> &'static [Op] {
        const OPS: &[Op] = &[
            Op::effectful(ops::START),
            Op::idempotent(ops::GET),
            Op::idempotent(ops::TOUCH),
            Op::idempotent(ops::REVOKE),
            Op::idempotent(ops::LIST),
            Op::idempotent(ops::REVOKE_USER),
            Op::idempotent(ops::NOTE_REVOKED),
            Op::idempotent(ops::STATS),
        ];
        OPS
    }

    fn handle(&self, req: Request) -> BoxFuture<'_, Result<Bytes, MeshError>> {
        Box::pin(async move {
            match req.op.as_str() {
                ops::START => Ok(encode(&self.info_of(&self.start_session(&req).await?))),
                ops::GET => Ok(encode(
                    &self.info_of(&self.entity(&req, SessionReq::Get).await?),
                )),
                ops::TOUCH => {
                    let t = Touch::decode(req.payload.clone())?;
                    Ok(encode(
                        &self.info_of(&self.entity(&req, SessionReq::Touch(t)).await?),
                    ))
                }
                ops::REVOKE => Ok(encode(&self.info_of(&self.revoke(&req).await?))),
                ops::LIST => {
                    let by = ByUser::decode(req.payload.clone())?;
                    let rows = store::by_user(&self.store, &by.user_id).await?;
                    Ok(encode(&SessionList {
                        items: rows.iter().map(|r| self.info_of(r)).collect(),
                    }))
                }
                ops::REVOKE_USER => Ok(encode(&self.revoke_user(&req).await?)),
                ops::STATS => Ok(encode(&self.host_counts().await?)),
                ops::NOTE_REVOKED => {
                    let note = Revoked::decode(req.payload.clone())?;
                    for (i, id) in note.ids.into_iter().enumerate() {
                        let exp = note.expires_at_ms.get(i).copied().unwrap_or(i64::MAX);
                        self.revocations.add(id, exp);
                    }
                    Ok(Bytes::new())
                }
                op => Err(MeshError::new(
                    Code::NotFound,
                    format!("sessions has no op {op}"),
                )),
            }
        })
    }
}
