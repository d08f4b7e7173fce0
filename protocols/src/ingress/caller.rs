//! Who is calling: the user behind a valid access token, as every protocol sees them.

use troupe_actors::mesh::{Code, MeshError};
use troupe_proto::mesh as pb;

/// An authenticated user: a valid access token whose session is not revoked.
#[derive(Clone, Debug)]
pub struct Caller {
    /// User id.
    pub user_id: String,
    /// Username.
    pub username: String,
    /// Roles.
    pub roles: Vec<String>,
    /// Session id.
    pub session_id: String,
    /// When the access token expires (its `exp` claim), unix seconds. This node accepts the
    /// token until [`LEEWAY_SECS`](troupe_actors::auth::token::LEEWAY_SECS) later; an open
    /// WebSocket closes then.
    pub expires_at: u64,
}

impl Caller {
    /// Whether the caller has role `admin`.
    pub fn is_admin(&self) -> bool {
        self.roles.iter().any(|r| r == "admin")
    }

    /// The caller as carried in mesh envelopes.
    pub fn to_proto(&self) -> pb::Caller {
        pb::Caller {
            user_id: self.user_id.clone(),
            roles: self.roles.clone(),
            session_id: self.session_id.clone(),
        }
    }

    /// Allows acting on `user_id`'s resources: the owner or an admin.
    pub fn may_act_for(&self, user_id: &str) -> Result<(), MeshError> {
        if self.user_id == user_id || self.is_admin() {
            Ok(())
        } else {
            Err(MeshError::new(Code::PermissionDenied, "not your resource"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(roles: &[&str]) -> Caller {
        Caller {
            user_id: "u1".into(),
            username: "ann".into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            session_id: "s1".into(),
            expires_at: 0,
        }
    }

    #[test]
    fn owners_and_admins_may_act_for_a_user() {
        assert!(caller(&[]).may_act_for("u1").is_ok());
        let err = caller(&["user"]).may_act_for("u2").unwrap_err();
        assert_eq!(err.code, Code::PermissionDenied);
        assert!(caller(&["admin"]).may_act_for("u2").is_ok());
        assert_eq!(caller(&["admin"]).to_proto().session_id, "s1");
    }
}
