//! The per-session actor: one per live login session, on the session's home node
//! (rendezvous hashing of the session id over the routable members).
//!
//! It holds the session row in memory (last activity, device, address, user agent,
//! revocation) and writes every change through to the store with a version check, so a
//! session survives the loss of its home node: the new home activates it from the store.
//! If a duplicate activation on another node wrote first (membership churn), the write
//! fails the version check, the actor reloads the row and applies the change again.
//! A session ended by `revoke_user` (one statement for all of a user's sessions, not
//! through the actors) is reloaded once this node's revocation set names it.

use std::sync::Arc;

use crate::mesh::placement::{Entity, EntityError};
use crate::mesh::{Code, MeshError};
use crate::store::time::now_ms;
use crate::store::Store;

use super::messages::Touch;
use super::store::{self, Row};

/// The entity kind.
pub struct SessionEntity {
    /// Where sessions are persisted.
    pub store: Store,
    /// This node's name (reported as `served_by`).
    pub node: Arc<str>,
    /// This node's revocation set: a session it names but the actor holds as live was
    /// ended behind the actor's back (`revoke_user`), and is read again from the store.
    pub revocations: super::Revocations,
}

/// What a session actor is asked to do.
#[derive(Debug)]
pub enum SessionReq {
    /// Answer the current state.
    Get,
    /// Record activity (and optionally new device details).
    Touch(Touch),
    /// End the session; repeated revocations are no-ops.
    Revoke,
}

fn secs_ms(s: u64) -> i64 {
    i64::try_from(s)
        .unwrap_or(i64::MAX / 1000)
        .saturating_mul(1000)
}

/// Applies `req` to `row` at `now`; true when the row changed. A touch of a session past
/// its `expires_at` is refused; a touch that extends (a refresh) moves `expires_at` to
/// `now + extend_ttl_s`, never past `created_at + max_lifetime_s`, and never back.
fn apply(row: &mut Row, req: &SessionReq, now: i64) -> Result<bool, MeshError> {
    match req {
        SessionReq::Get => Ok(false),
        SessionReq::Touch(t) => {
            if row.revoked_at > 0 {
                return Err(MeshError::new(
                    Code::FailedPrecondition,
                    "session has ended",
                ));
            }
            if now >= row.expires_at {
                return Err(MeshError::new(
                    Code::FailedPrecondition,
                    "session has expired",
                ));
            }
            if let Some(ttl_s) = t.extend_ttl_s {
                let wanted = now.saturating_add(secs_ms(ttl_s));
                let end = t
                    .max_lifetime_s
                    .map_or(i64::MAX, |max| row.created_at.saturating_add(secs_ms(max)));
                row.expires_at = row.expires_at.max(wanted.min(end));
            }
            row.last_activity = now.max(row.last_activity);
            if let Some(d) = &t.device {
                row.device = d.clone();
            }
            if let Some(u) = &t.user_agent {
                row.user_agent = u.clone();
            }
            if let Some(m) = &t.metadata {
                row.metadata = m.clone();
            }
            if let Some(ip) = &t.ip {
                row.ip = ip.clone();
            }
            Ok(true)
        }
        SessionReq::Revoke => {
            if row.revoked_at > 0 {
                return Ok(false);
            }
            row.revoked_at = now;
            Ok(true)
        }
    }
}

impl Entity for SessionEntity {
    type State = Row;
    type Request = SessionReq;
    type Reply = Result<Row, MeshError>;
    const KIND: &'static str = "session";

    async fn activate(&self, id: &str) -> Result<Row, EntityError> {
        match store::get(&self.store, id).await {
            Ok(Some(row)) => Ok(row),
            Ok(None) => Err(EntityError::NotFound),
            Err(e) => Err(EntityError::Unavailable(e.message)),
        }
    }

    async fn handle(&self, id: &str, state: &mut Row, req: SessionReq) -> Result<Row, MeshError> {
        if state.revoked_at == 0 && self.revocations.is_revoked(id) {
            *state = store::get(&self.store, id)
                .await?
                .ok_or_else(store::not_found)?;
        }
        for _ in 0..3 {
            let mut next = state.clone();
            if !apply(&mut next, &req, now_ms())? {
                return Ok(state.clone());
            }
            next.version += 1;
            if store::update(&self.store, &next).await? {
                *state = next;
                return Ok(state.clone());
            }
            // Another activation wrote first: start again from the stored row.
            *state = store::get(&self.store, id)
                .await?
                .ok_or_else(store::not_found)?;
        }
        Err(MeshError::unavailable(
            "session is being changed concurrently",
        ))
    }

    async fn passivate(&self, _id: &str, _state: Row) {
        // Every change was written through when it was made.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> Row {
        Row {
            id: "s1".into(),
            user_id: "u1".into(),
            created_at: 1,
            last_activity: 1,
            expires_at: 10_000,
            device: String::new(),
            ip: String::new(),
            user_agent: String::new(),
            metadata: "{}".into(),
            revoked_at: 0,
            version: 1,
        }
    }

    #[test]
    fn touch_records_activity_and_details() {
        let mut r = row();
        let t = Touch {
            device: Some("phone".into()),
            ip: Some("10.0.0.1".into()),
            ..Touch::default()
        };
        assert_eq!(apply(&mut r, &SessionReq::Touch(t), 500), Ok(true));
        assert_eq!(
            (r.last_activity, r.device.as_str(), r.ip.as_str()),
            (500, "phone", "10.0.0.1")
        );
        assert_eq!(r.user_agent, "");
    }

    #[test]
    fn an_expired_session_cannot_be_touched_or_refreshed() {
        let mut r = row();
        let t = Touch {
            extend_ttl_s: Some(60),
            ..Touch::default()
        };
        let err = apply(&mut r, &SessionReq::Touch(t), 10_000).unwrap_err();
        assert_eq!(
            (err.code, err.message.as_str()),
            (Code::FailedPrecondition, "session has expired")
        );
        assert_eq!(r.expires_at, 10_000);
    }

    #[test]
    fn a_refresh_extends_the_session_up_to_its_absolute_end() {
        let mut r = row();
        let refresh = |max: Option<u64>| Touch {
            extend_ttl_s: Some(5),
            max_lifetime_s: max,
            ..Touch::default()
        };
        // Sliding: 5 s from now.
        apply(&mut r, &SessionReq::Touch(refresh(Some(20))), 9_000).unwrap();
        assert_eq!(r.expires_at, 14_000);
        // Capped at created_at (1) + 20 s, however often it is refreshed.
        apply(&mut r, &SessionReq::Touch(refresh(Some(20))), 13_000).unwrap();
        apply(&mut r, &SessionReq::Touch(refresh(Some(20))), 17_000).unwrap();
        assert_eq!(r.expires_at, 20_001);
        let err = apply(&mut r, &SessionReq::Touch(refresh(Some(20))), 20_001).unwrap_err();
        assert_eq!(err.code, Code::FailedPrecondition);
        // A plain touch moves nothing; an extension never shortens.
        let mut r = row();
        apply(&mut r, &SessionReq::Touch(Touch::default()), 500).unwrap();
        assert_eq!(r.expires_at, 10_000);
        apply(&mut r, &SessionReq::Touch(refresh(None)), 600).unwrap();
        assert_eq!(r.expires_at, 10_000);
    }

    #[test]
    fn revoke_is_idempotent_and_ends_touching() {
        let mut r = row();
        assert_eq!(apply(&mut r, &SessionReq::Revoke, 700), Ok(true));
        assert_eq!(r.revoked_at, 700);
        assert_eq!(apply(&mut r, &SessionReq::Revoke, 900), Ok(false));
        assert_eq!(r.revoked_at, 700);
        let err = apply(&mut r, &SessionReq::Touch(Touch::default()), 950).unwrap_err();
        assert_eq!(err.code, Code::FailedPrecondition);
    }
}
