//! Requests and replies of the `auth` service (prost-encoded in the mesh envelope).

use crate::users::messages::User;

/// `login`: username or email plus password, with what ingress saw of the client.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LoginRequest {
    /// Username or email.
    #[prost(string, tag = "1")]
    pub login: String,
    /// Password.
    #[prost(string, tag = "2")]
    pub password: String,
    /// Client address.
    #[prost(string, tag = "3")]
    pub ip: String,
    /// User agent.
    #[prost(string, tag = "4")]
    pub user_agent: String,
    /// Device label.
    #[prost(string, tag = "5")]
    pub device: String,
}

/// An access/refresh token pair for one session.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TokenPair {
    /// Bearer token for requests.
    #[prost(string, tag = "1")]
    pub access_token: String,
    /// Single-use token for `refresh`.
    #[prost(string, tag = "2")]
    pub refresh_token: String,
    /// Seconds until the access token expires.
    #[prost(uint64, tag = "3")]
    pub expires_in: u64,
    /// Session id (the `sid` claim).
    #[prost(string, tag = "4")]
    pub session_id: String,
    /// The user (never with a password hash).
    #[prost(message, optional, tag = "5")]
    pub user: Option<User>,
}

/// `refresh`: rotate a token pair.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RefreshRequest {
    /// The refresh token.
    #[prost(string, tag = "1")]
    pub refresh_token: String,
}

/// `verify`: check an access token.
#[derive(Clone, PartialEq, prost::Message)]
pub struct VerifyRequest {
    /// The access token.
    #[prost(string, tag = "1")]
    pub token: String,
}

/// What a valid access token says.
#[derive(Clone, PartialEq, prost::Message)]
pub struct VerifyReply {
    /// User id.
    #[prost(string, tag = "1")]
    pub user_id: String,
    /// Username.
    #[prost(string, tag = "2")]
    pub username: String,
    /// Roles.
    #[prost(string, repeated, tag = "3")]
    pub roles: Vec<String>,
    /// Session id.
    #[prost(string, tag = "4")]
    pub session_id: String,
    /// Expiry, unix seconds.
    #[prost(uint64, tag = "5")]
    pub expires_at: u64,
}

/// `set_password`: a new password for a user; every session of the user ends.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SetPasswordRequest {
    /// User id.
    #[prost(string, tag = "1")]
    pub user_id: String,
    /// New password.
    #[prost(string, tag = "2")]
    pub password: String,
}

/// `delete_user`: delete a user after ending every session.
#[derive(Clone, PartialEq, prost::Message)]
pub struct DeleteUserRequest {
    /// User id.
    #[prost(string, tag = "1")]
    pub user_id: String,
}

/// `forgot_password`: send a reset code to the account's owner.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ForgotRequest {
    /// Username or email.
    #[prost(string, tag = "1")]
    pub login: String,
}

/// Reply of `forgot_password`: the same whether or not the account exists.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ForgotReply {
    /// Seconds the code works.
    #[prost(uint64, tag = "1")]
    pub expires_in: u64,
}

/// `confirm_forgot_password`: the emailed code and the new password.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ResetRequest {
    /// Username or email.
    #[prost(string, tag = "1")]
    pub login: String,
    /// The code from the reset notification.
    #[prost(string, tag = "2")]
    pub code: String,
    /// The new password.
    #[prost(string, tag = "3")]
    pub password: String,
}

/// `open_session`: a session for a user another service has authenticated (SSO, after the
/// provider's ID token was validated), with what ingress saw of the client.
#[derive(Clone, PartialEq, prost::Message)]
pub struct OpenSessionRequest {
    /// User id.
    #[prost(string, tag = "1")]
    pub user_id: String,
    /// Client address.
    #[prost(string, tag = "2")]
    pub ip: String,
    /// User agent.
    #[prost(string, tag = "3")]
    pub user_agent: String,
    /// Device label.
    #[prost(string, tag = "4")]
    pub device: String,
    /// How the user was authenticated, for the `user.logged_in` event (e.g. `sso:corp`).
    #[prost(string, tag = "5")]
    pub method: String,
}

/// `take_limit`: one attempt of `class` (`login-account`, `login-ip`) by `key`, counted on
/// the node that owns `<class>/<key>`, so every node of the cluster shares one count.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LimitRequest {
    /// What is limited.
    #[prost(string, tag = "1")]
    pub class: String,
    /// Whose attempts: an account name or a client address.
    #[prost(string, tag = "2")]
    pub key: String,
}

/// The answer to [`LimitRequest`].
#[derive(Clone, PartialEq, prost::Message)]
pub struct LimitReply {
    /// 0: allowed (and counted); otherwise how long until the next attempt is allowed.
    #[prost(uint64, tag = "1")]
    pub retry_after_ms: u64,
}
