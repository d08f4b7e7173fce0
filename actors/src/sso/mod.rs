//! The `sso` service: sign-in through OpenID Connect providers (`[[sso.providers]]`), with
//! the authorization code flow, PKCE (S256), state and nonce.
//!
//! # Ops
//! | op | kind | request | reply |
//! |---|---|---|---|
//! | `login_url` | effectful | [`LoginUrlRequest`] | [`LoginUrl`] |
//! | `callback` | effectful | [`CallbackRequest`] | [`SignIn`] |
//! | `refresh` | effectful | [`RefreshRequest`](crate::auth::messages::RefreshRequest) | [`SignIn`] |
//! | `user_info` | idempotent | none (the caller) | [`UserInfo`] |
//! | `logout` | effectful | [`LogoutRequest`] (the caller) | [`LogoutUrl`] |
//!
//! # The flow
//! 1. `login_url` makes a state, a nonce and a PKCE verifier, stores them in the SQL store
//!    (`sso_logins`, shared by every node) with an expiry, and answers the provider's
//!    authorization URL.
//! 2. The provider sends the browser back to `callback`, on any node. It takes the state's
//!    row in one `DELETE ... RETURNING` (a state works once, cluster-wide), spends the code
//!    at the provider's token endpoint with the verifier, and validates the ID token
//!    (signature from the provider's cached JWKS, issuer, audience, expiry, the stored
//!    nonce) in [`provider::check`]. Only then does anything change: the provider's
//!    `(issuer, sub)` is found in `sso_identities` or linked to a user made from the claims
//!    (or, with `link_verified_email`, to the local account with the same verified email),
//!    and the `auth` service opens a normal session (`auth.open_session`), whose tokens work
//!    on every node and end at logout like a password login's. The provider's tokens stay
//!    server-side in `sso_sessions`, keyed by the session id.
//! 3. `refresh` spends the provider's refresh token (a provider that refuses it ends the
//!    Troupe session), then rotates the Troupe pair through `auth.refresh`; `user_info`
//!    asks the provider's userinfo endpoint with the stored access token; `logout` ends
//!    the session on every node and answers the provider's `end_session_endpoint` URL.
//!
//! A provider that is down answers 502 and a slow one 504, each within `[sso] timeout_ms`
//! ([`http`]); the service has its own workers, so neither holds up password logins.
//!
//! # Layout
//! - this file: the ops ([`ops::Cmd`]), the [`Service`] impl, one method per op, linking;
//! - [`provider`]: one provider: discovery, JWKS, token requests, ID token checks;
//! - [`http`]: the HTTP client the `openidconnect` crate is given (ureq, blocking pool);
//! - [`messages`]: the prost messages;
//! - [`metrics`]: names of the metrics recorded (sign-ins, provider requests);
//! - [`store`]: all SQL.

pub mod http;
pub mod messages;
pub mod metrics;
pub mod provider;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rand::Rng as _;

use crate::auth::messages::{OpenSessionRequest, RefreshRequest, TokenPair};
use crate::auth::token::{TokenKind, Tokens};
use crate::mesh::{BoxFuture, Call, Code, MeshError, NodeInfo, Request, Service, Target};
use crate::sessions;
use crate::store::time::now_ms;
use crate::store::Store;
use crate::users::{self, messages as um, validate};

pub use messages::*;
use ops::Cmd;
use provider::{Provider, Verified};

/// Service name.
pub const NAME: &str = "sso";

/// The ops of `sso`, declared once.
pub mod ops {
    use super::messages::{
        CallbackRequest, LoginUrl, LoginUrlRequest, LogoutRequest, LogoutUrl, SignIn, UserInfo,
    };
    use crate::auth::messages::RefreshRequest;

    crate::ops! {
        /// An op of `sso`, decoded at the service's edge.
        pub enum Cmd for super::NAME {
            /// Begin a sign-in: the provider's authorization URL.
            LoginUrl = LOGIN_URL("login_url", effectful): LoginUrlRequest => LoginUrl,
            /// The provider's redirect back: validate, link, open a session.
            Callback = CALLBACK("callback", effectful): CallbackRequest => SignIn,
            /// Refresh through the provider, then rotate the Troupe pair.
            Refresh = REFRESH("refresh", effectful): RefreshRequest => SignIn,
            /// The caller's claims from the provider's userinfo endpoint.
            UserInfo = USER_INFO("user_info", idempotent): () => UserInfo,
            /// End the caller's session; the provider's logout URL.
            Logout = LOGOUT("logout", effectful): LogoutRequest => LogoutUrl,
        }
    }
}

/// Settings shared by every provider.
#[derive(Clone, Debug)]
pub struct Settings {
    /// How long a begun sign-in may take before its state expires.
    pub state_ttl: Duration,
    /// Bound of every request to a provider.
    pub timeout: Duration,
}

/// The service.
pub struct Sso {
    info: Arc<NodeInfo>,
    store: Store,
    tokens: Arc<Tokens>,
    providers: Vec<Arc<Provider>>,
    settings: Settings,
}

/// A sign-in refused because of what the browser brought (state, code, tokens): 401.
fn refused(message: impl Into<String>) -> MeshError {
    MeshError::new(Code::Unauthenticated, message)
}

impl Sso {
    /// The service over the store with this node's token keys and the configured providers
    /// (the first is the default). Sweeps expired sign-ins and session tokens every minute.
    pub fn new(
        info: Arc<NodeInfo>,
        store: Store,
        tokens: Arc<Tokens>,
        providers: Vec<provider::Settings>,
        settings: Settings,
    ) -> Arc<Self> {
        metrics::describe();
        let providers = providers
            .into_iter()
            .map(|p| Arc::new(Provider::new(p, settings.timeout)))
            .collect();
        let me = Arc::new(Self {
            info,
            store,
            tokens,
            providers,
            settings,
        });
        let weak = Arc::downgrade(&me);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                let Some(me) = weak.upgrade() else { return };
                match store::sweep_expired(&me.store, now_ms()).await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(deleted = n, "swept expired sso rows"),
                    Err(e) => tracing::warn!(error = %e, "sso sweep failed"),
                }
            }
        });
        me
    }

    /// The provider named `name`; the first one when `name` is empty.
    fn provider(&self, name: &str) -> Result<&Arc<Provider>, MeshError> {
        let Some(first) = self.providers.first() else {
            return Err(MeshError::not_found(
                "sso is not configured (no [[sso.providers]])",
            ));
        };
        if name.is_empty() {
            return Ok(first);
        }
        self.providers
            .iter()
            .find(|p| p.name() == name)
            .ok_or_else(|| {
                let known: Vec<&str> = self.providers.iter().map(|p| p.name()).collect();
                MeshError::invalid(format!(
                    "unknown sso provider {name:?}; configured: {}",
                    known.join(", ")
                ))
                .with_details(serde_json::json!({"providers": known}))
            })
    }

    /// Runs `call` through the mesh on behalf of `req`, within what is left of its deadline.
    async fn call<Rep: prost::Message + Default>(
        &self,
        req: &Request,
        call: Call<Rep>,
    ) -> Result<Rep, MeshError> {
        let router = self.info.router()?;
        let left = req
            .deadline
            .saturating_duration_since(std::time::Instant::now());
        router
            .call(call.request_id(req.request_id.clone()).timeout(left))
            .await
    }

    async fn login_url(&self, r: LoginUrlRequest) -> Result<LoginUrl, MeshError> {
        let provider = self.provider(&r.provider)?;
        let auth = provider.authorize().await?;
        let now = now_ms();
        let ttl = self.settings.state_ttl;
        let pending = store::Pending {
            state: auth.state.clone(),
            provider: provider.name().to_owned(),
            nonce: auth.nonce,
            pkce_verifier: auth.pkce_verifier,
            expires_at: now + ttl.as_millis() as i64,
        };
        store::insert_pending(&self.store, &pending, now).await?;
        Ok(LoginUrl {
            url: auth.url,
            provider: provider.name().to_owned(),
            state: auth.state,
            expires_in: ttl.as_secs(),
        })
    }

    /// `callback`, counted in [`metrics::SIGN_INS_TOTAL`] by provider (`unknown` when the
    /// state named none) and outcome.
    async fn callback(&self, req: &Request, r: CallbackRequest) -> Result<SignIn, MeshError> {
        let mut provider = String::from("unknown");
        let answer = self.sign_in(req, r, &mut provider).await;
        let outcome = match &answer {
            Ok(_) => "signed_in",
            Err(e) => e.code.as_str(),
        };
        ::metrics::counter!(metrics::SIGN_INS_TOTAL, "provider" => provider, "outcome" => outcome)
            .increment(1);
        answer
    }

    async fn sign_in(
        &self,
        req: &Request,
        r: CallbackRequest,
        provider_name: &mut String,
    ) -> Result<SignIn, MeshError> {
        if r.state.trim().is_empty() {
            return Err(MeshError::invalid("state is required"));
        }
        // Taken first, whatever else is wrong: a state is spent by its first callback.
        let pending = store::take_pending(&self.store, &r.state)
            .await?
            .ok_or_else(|| refused("unknown or already used sso state"))?;
        provider_name.clone_from(&pending.provider);
        if pending.expires_at < now_ms() {
            return Err(refused("sso state expired; start the sign-in again"));
        }
        if !r.error.is_empty() {
            let why = if r.error_description.is_empty() {
                r.error.clone()
            } else {
                format!("{}: {}", r.error, r.error_description)
            };
            return Err(refused(format!("the provider refused the sign-in ({why})")));
        }
        if !r.provider.is_empty() && r.provider != pending.provider {
            return Err(MeshError::invalid(format!(
                "this sign-in was begun with provider {:?}, not {:?}",
                pending.provider, r.provider
            )));
        }
        if r.code.trim().is_empty() {
            return Err(MeshError::invalid("code is required"));
        }
        let provider = self.provider(&pending.provider)?;
        // RFC 9207: a provider that names itself in the redirect must be this one.
        if !r.iss.is_empty() && r.iss != provider.issuer().await? {
            return Err(refused(
                "the authorization response comes from another issuer",
            ));
        }
        let grant = provider
            .exchange(&r.code, &pending.pkce_verifier, &pending.nonce)
            .await?;
        let identity = grant
            .identity
            .clone()
            .ok_or_else(|| MeshError::internal("code exchange without identity"))?;
        let (user, created, linked) = self.user_for(req, provider, &identity).await?;
        let open = OpenSessionRequest {
            user_id: user.id.clone(),
            ip: r.ip,
            user_agent: r.user_agent,
            device: format!("sso:{}", provider.name()),
            method: format!("sso:{}", provider.name()),
        };
        let pair: TokenPair = self
            .call(req, crate::auth::ops::OPEN_SESSION.call(open))
            .await?;
        let now = now_ms();
        let tokens = store::Tokens {
            session_id: pair.session_id.clone(),
            provider: provider.name().to_owned(),
            user_id: user.id.clone(),
            subject: identity.subject.clone(),
            access_token: grant.access_token,
            refresh_token: grant.refresh_token.unwrap_or_default(),
            id_token: grant.id_token.unwrap_or_default(),
            expires_at: now + self.tokens.refresh_ttl().as_millis() as i64,
        };
        store::put_tokens(&self.store, &tokens, now).await?;
        tracing::info!(provider = %provider.name(), user = %user.id, created, linked, "sso sign-in");
        Ok(SignIn {
            pair: Some(pair),
            provider: provider.name().to_owned(),
            created,
            linked,
        })
    }

    /// The Troupe user of a validated identity: the linked one; else, on a first sign-in,
    /// the local account with the same email (only with `link_verified_email` and a
    /// verified address) or a new user made from the claims. Answers `(user, created,
    /// linked)`.
    async fn user_for(
        &self,
        req: &Request,
        provider: &Provider,
        id: &Verified,
    ) -> Result<(um::User, bool, bool), MeshError> {
        if let Some(user_id) = store::linked_user(&self.store, &id.issuer, &id.subject).await? {
            let get = um::GetRequest {
                id: user_id.clone(),
            };
            match self.call(req, users::GET.call(get)).await {
                Ok(user) => return Ok((user, false, false)),
                // The user was deleted: the identity starts over as a first sign-in.
                Err(e) if e.code == Code::NotFound => {
                    store::unlink(&self.store, &id.issuer, &id.subject).await?;
                }
                Err(e) => return Err(e),
            }
        }
        let email = id.email.clone().ok_or_else(|| {
            MeshError::new(
                Code::FailedPrecondition,
                "the provider gave no email claim; add the \"email\" scope to the provider's scopes",
            )
        })?;
        let existing = self.by_email(req, &email).await?;
        let (user, created, linked) = match existing {
            Some(user) if provider.settings().link_verified_email && id.email_verified => {
                (user, false, true)
            }
            Some(_) => return Err(email_taken(&email)),
            None => match self.create(req, id, &email, provider.name()).await? {
                Some(user) => (user, true, false),
                // Another sign-in registered the address meanwhile.
                None => return Err(email_taken(&email)),
            },
        };
        let link = store::Identity {
            issuer: &id.issuer,
            subject: &id.subject,
            user_id: &user.id,
            provider: provider.name(),
            email: &email,
        };
        let owner = store::link(&self.store, &link, now_ms()).await?;
        if owner != user.id {
            // A concurrent first sign-in of this identity linked it first: use its user,
            // and drop the one made here.
            if created {
                let delete = um::DeleteRequest {
                    id: user.id.clone(),
                };
                if let Err(e) = self.call(req, users::DELETE.call(delete)).await {
                    tracing::warn!(user = %user.id, error = %e, "duplicate sso user not deleted");
                }
            }
            let get = um::GetRequest { id: owner };
            return Ok((self.call(req, users::GET.call(get)).await?, false, false));
        }
        Ok((user, created, linked))
    }

    async fn by_email(&self, req: &Request, email: &str) -> Result<Option<um::User>, MeshError> {
        let get = um::GetByLoginRequest {
            login: email.to_owned(),
        };
        match self.call(req, users::GET_BY_LOGIN.call(get)).await {
            Ok(mut u) => {
                u.password_hash.clear();
                Ok(Some(u))
            }
            Err(e) if e.code == Code::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A new user from the claims: the preferred username (or the email's local part),
    /// with a suffix if taken; a random password nobody knows (a password reset gives the
    /// user one); confirmed if the provider verified the email. `None` if the email was
    /// registered meanwhile.
    async fn create(
        &self,
        req: &Request,
        id: &Verified,
        email: &str,
        provider: &str,
    ) -> Result<Option<um::User>, MeshError> {
        let base = username_base(id, email);
        let full_name: String = id
            .name
            .clone()
            .unwrap_or_default()
            .chars()
            .filter(|c| !c.is_control())
            .take(validate::FULL_NAME_MAX)
            .collect();
        for attempt in 0..4 {
            let username = if attempt == 0 {
                base.clone()
            } else {
                format!("{base}-{:04x}", rand::rng().random::<u16>())
            };
            let create = um::CreateRequest {
                username,
                email: email.to_owned(),
                password: random_password(),
                full_name: full_name.clone(),
                roles: vec!["user".to_owned()],
                confirmed: id.email_verified,
                sso_provider: provider.to_owned(),
            };
            match self.call(req, users::CREATE.call(create)).await {
                Ok(user) => return Ok(Some(user)),
                Err(e) if e.code == Code::AlreadyExists && e.message.contains("email") => {
                    return Ok(None)
                }
                Err(e) if e.code == Code::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(MeshError::new(
            Code::AlreadyExists,
            format!("no free username like {base:?}"),
        ))
    }

    async fn refresh(&self, req: &Request, r: RefreshRequest) -> Result<SignIn, MeshError> {
        let claims = self.tokens.verify(&r.refresh_token, TokenKind::Refresh)?;
        let Some(row) = store::get_tokens(&self.store, &claims.sid).await? else {
            // No provider tokens: an ended session (logout deletes them) or a password one.
            let get = sessions::ops::GET
                .call(())
                .to(Target::Entity(claims.sid.clone()));
            return Err(match self.call(req, get).await {
                Ok(s) if !s.revoked => {
                    MeshError::invalid("not an sso session; refresh it with /auth/refresh")
                }
                Ok(_) => refused("session has ended"),
                Err(e) if matches!(e.code, Code::NotFound | Code::FailedPrecondition) => {
                    refused("session has ended")
                }
                Err(e) => e,
            });
        };
        if row.refresh_token.is_empty() {
            return Err(MeshError::new(
                Code::FailedPrecondition,
                "the provider gave this session no refresh token",
            ));
        }
        let provider = self.provider(&row.provider)?;
        let grant = match provider.refresh(&row.refresh_token, &row.subject).await {
            Ok(grant) => grant,
            Err(e) if e.code == Code::Unauthenticated => {
                // The provider no longer vouches for the user: the session ends here too.
                self.end_session(req, &claims.sid).await;
                store::take_tokens(&self.store, &claims.sid).await?;
                return Err(refused(format!("{}; the session has ended", e.message)));
            }
            Err(e) => return Err(e),
        };
        let now = now_ms();
        let updated = store::Tokens {
            access_token: grant.access_token,
            refresh_token: grant
                .refresh_token
                .unwrap_or_else(|| row.refresh_token.clone()),
            id_token: grant.id_token.unwrap_or_else(|| row.id_token.clone()),
            expires_at: now + self.tokens.refresh_ttl().as_millis() as i64,
            ..row.clone()
        };
        store::put_tokens(&self.store, &updated, now).await?;
        let pair: TokenPair = self.call(req, crate::auth::ops::REFRESH.call(r)).await?;
        Ok(SignIn {
            pair: Some(pair),
            provider: row.provider,
            created: false,
            linked: false,
        })
    }

    fn session_of(req: &Request) -> Result<String, MeshError> {
        req.caller
            .as_ref()
            .map(|c| c.session_id.clone())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| refused("no session"))
    }

    async fn user_info(&self, req: &Request) -> Result<UserInfo, MeshError> {
        let sid = Self::session_of(req)?;
        let row = store::get_tokens(&self.store, &sid)
            .await?
            .ok_or_else(|| MeshError::invalid("not an sso session: no provider user info"))?;
        let provider = self.provider(&row.provider)?;
        let claims = provider.user_info(&row.access_token, &row.subject).await?;
        Ok(UserInfo {
            provider: row.provider,
            claims_json: claims.to_string(),
        })
    }

    async fn end_session(&self, req: &Request, sid: &str) {
        let revoke = sessions::ops::REVOKE
            .call(())
            .to(Target::Entity(sid.to_owned()));
        if let Err(e) = self.call(req, revoke).await {
            tracing::warn!(sid = %sid, error = %e, "sso session not revoked");
        }
    }

    async fn logout(&self, req: &Request, r: LogoutRequest) -> Result<LogoutUrl, MeshError> {
        let sid = Self::session_of(req)?;
        let wanted = if r.provider.is_empty() {
            None
        } else {
            Some(self.provider(&r.provider)?)
        };
        // Ended first: the session is over whatever the provider says.
        let revoke = sessions::ops::REVOKE
            .call(())
            .to(Target::Entity(sid.clone()));
        self.call(req, revoke).await?;
        let row = store::take_tokens(&self.store, &sid).await?;
        let provider = match (&row, wanted) {
            (_, Some(p)) => p,
            (Some(row), None) => self.provider(&row.provider)?,
            (None, None) => self.provider("")?,
        };
        let hint = row
            .as_ref()
            .filter(|row| row.provider == provider.name())
            .map(|row| row.id_token.as_str());
        let url = provider.logout_url(hint).await?.unwrap_or_default();
        Ok(LogoutUrl {
            url,
            provider: provider.name().to_owned(),
            session_id: sid,
        })
    }
}

fn email_taken(email: &str) -> MeshError {
    MeshError::new(
        Code::AlreadyExists,
        format!(
            "an account with email {email:?} already exists; sign in with its password, or \
             set link_verified_email for this provider to link verified addresses"
        ),
    )
}

/// A username from the claims: the preferred username, else the email's local part, kept
/// to the characters and length usernames allow (room left for a `-xxxx` suffix).
fn username_base(id: &Verified, email: &str) -> String {
    let raw = id
        .preferred_username
        .clone()
        .unwrap_or_else(|| email.split('@').next().unwrap_or_default().to_owned());
    let mut name: String = raw
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        .take(validate::USERNAME_MAX - 5)
        .collect();
    while name.len() < validate::USERNAME_MIN {
        name.push_str("user");
    }
    name.truncate(validate::USERNAME_MAX - 5);
    name
}

/// 32 random alphanumerics plus a letter and a digit: meets the password rules, known to
/// nobody.
fn random_password() -> String {
    let mut rng = rand::rng();
    let body: String = (0..32)
        .map(|_| rng.sample(rand::distr::Alphanumeric) as char)
        .collect();
    format!("{body}a1")
}

impl Service for Sso {
    fn name(&self) -> &'static str {
        NAME
    }

    /// A worker waits on the provider for up to the timeout; more workers than cores keep
    /// sign-ins with other providers moving meanwhile.
    fn workers(&self, default: usize) -> usize {
        crate::mesh::service::waiting_pool(default)
    }

    fn handle(&self, req: Request) -> BoxFuture<'_, Result<Bytes, MeshError>> {
        Box::pin(async move {
            match Cmd::parse(&req)? {
                Cmd::LoginUrl(r) => ops::LOGIN_URL.reply(self.login_url(r).await),
                Cmd::Callback(r) => ops::CALLBACK.reply(self.callback(&req, r).await),
                Cmd::Refresh(r) => ops::REFRESH.reply(self.refresh(&req, r).await),
                Cmd::UserInfo(()) => ops::USER_INFO.reply(self.user_info(&req).await),
                Cmd::Logout(r) => ops::LOGOUT.reply(self.logout(&req, r).await),
            }
        })
    }
}

#[cfg(test)]
mod tests;
