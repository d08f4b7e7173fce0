//! [`Who`]: the caller of a request, for services whose rows have an owner.

use troupe_proto::mesh::Caller;

use crate::mesh::{Code, MeshError};

/// Who makes a request, as far as task and todo visibility goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Who {
    /// User id.
    pub user_id: String,
    /// Whether the caller has role `admin`.
    pub admin: bool,
}

impl Who {
    /// The caller of a request; `unauthenticated` without one.
    pub fn of(caller: Option<&Caller>) -> Result<Who, MeshError> {
        match caller {
            Some(c) if !c.user_id.is_empty() => Ok(Who {
                user_id: c.user_id.clone(),
                admin: c.roles.iter().any(|r| r == "admin"),
            }),
            _ => Err(MeshError::new(
                Code::Unauthenticated,
                "a signed-in caller is required",
            )),
        }
    }

    /// Whether this caller may see what `owner_id` owns.
    pub fn may_see(&self, owner_id: &str) -> bool {
        self.admin || self.user_id == owner_id
    }
}
