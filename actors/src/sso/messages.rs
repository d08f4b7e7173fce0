//! Requests and replies of the `sso` service (prost-encoded in the mesh envelope).

use crate::auth::messages::TokenPair;

/// `login_url`: begin a sign-in with a provider.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LoginUrlRequest {
    /// Provider name from `[[sso.providers]]`; empty means the first one.
    #[prost(string, tag = "1")]
    pub provider: String,
}

/// Where to send the user's browser to sign in.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LoginUrl {
    /// The provider's authorization URL, with state, nonce and PKCE challenge.
    #[prost(string, tag = "1")]
    pub url: String,
    /// The provider's name.
    #[prost(string, tag = "2")]
    pub provider: String,
    /// The `state` the callback must bring back.
    #[prost(string, tag = "3")]
    pub state: String,
    /// Seconds the sign-in may take before its state expires.
    #[prost(uint64, tag = "4")]
    pub expires_in: u64,
}

/// `callback`: the provider's redirect back, with what ingress saw of the client.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CallbackRequest {
    /// `?provider=` if given (it must match the state's); usually empty.
    #[prost(string, tag = "1")]
    pub provider: String,
    /// `?code=`: the authorization code.
    #[prost(string, tag = "2")]
    pub code: String,
    /// `?state=`: the state of `login_url`.
    #[prost(string, tag = "3")]
    pub state: String,
    /// `?iss=` (RFC 9207), when the provider sends it: must be the provider's issuer.
    #[prost(string, tag = "4")]
    pub iss: String,
    /// `?error=`: the provider refused the sign-in (e.g. `access_denied`).
    #[prost(string, tag = "5")]
    pub error: String,
    /// `?error_description=`.
    #[prost(string, tag = "6")]
    pub error_description: String,
    /// Client address.
    #[prost(string, tag = "7")]
    pub ip: String,
    /// User agent.
    #[prost(string, tag = "8")]
    pub user_agent: String,
}

/// A signed-in user's Troupe session.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SignIn {
    /// The Troupe token pair, as a password login gives.
    #[prost(message, optional, tag = "1")]
    pub pair: Option<TokenPair>,
    /// The provider's name.
    #[prost(string, tag = "2")]
    pub provider: String,
    /// Whether this sign-in created the Troupe user.
    #[prost(bool, tag = "3")]
    pub created: bool,
    /// Whether this sign-in linked the provider identity to an existing user (first sign-in
    /// of a known email address, with `link_verified_email`).
    #[prost(bool, tag = "4")]
    pub linked: bool,
}

/// `user_info`: the caller's claims from the provider's userinfo endpoint.
#[derive(Clone, PartialEq, prost::Message)]
pub struct UserInfo {
    /// The provider's name.
    #[prost(string, tag = "1")]
    pub provider: String,
    /// The claims, a JSON object.
    #[prost(string, tag = "2")]
    pub claims_json: String,
}

/// `logout`: end the caller's session; `provider` names whose logout URL to give when the
/// session was not opened by SSO (empty: the first provider).
#[derive(Clone, PartialEq, prost::Message)]
pub struct LogoutRequest {
    /// Provider name; empty means the session's provider, else the first one.
    #[prost(string, tag = "1")]
    pub provider: String,
}

/// The ended session and the provider's RP-initiated logout URL.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LogoutUrl {
    /// The provider's `end_session_endpoint` with `id_token_hint`, `client_id` and
    /// `post_logout_redirect_uri`; empty when the provider has none.
    #[prost(string, tag = "1")]
    pub url: String,
    /// The provider's name.
    #[prost(string, tag = "2")]
    pub provider: String,
    /// The Troupe session that ended.
    #[prost(string, tag = "3")]
    pub session_id: String,
}
