//! The `auth` service: login, token rotation, logout, token verification, and the user
//! changes that need the current password or must end sessions (password and email
//! changes, deletion).
//!
//! # Layout
//! - [`password`]: argon2id and PBKDF2-HMAC-SHA256 in PHC format, hashed on one thread per core.
//! - [`token`]: JWT access and refresh tokens with an algorithm allow-list and `kid`s.
//! - [`messages`]: requests and replies.
//! - [`store`]: the SQL of table `refresh_tokens` (single-use rotation).
//! - [`codes`]: emailed one-time codes (registration confirmation, password reset).
//! - [`limits`]: the cluster-wide rate limiter every limited class and quota shares.
//!
//! `open_session` gives a user the `sso` service has signed in through an OpenID Connect
//! provider the same session and token pair a login gives.
//!
//! Login publishes `user.logged_in`; `forgot_password` issues a reset code and publishes it
//! as `password.reset_requested` (the notifications service delivers it);
//! `confirm_forgot_password` spends the code, sets the password, ends every session of the
//! user and publishes `password.reset`.
//!
//! It calls the `users` service for accounts and the `sessions` service for the per-session
//! actors, through the mesh like any client. Login attempts are rate-limited per account and
//! per client address cluster-wide, by the node's shared [`limits::Limiter`]; op
//! `take_limit` counts the keys this node owns for every limited class (registrations,
//! refreshes, searches, WebSocket upgrades, gRPC calls, code and chat requests), which
//! ingress asks through [`limits::take`].

pub mod codes;
pub mod limits;
pub mod messages;
pub mod password;
pub mod store;
pub mod token;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::events::{kinds, NewEvent, Publisher, Staged};
use crate::mesh::{BoxFuture, Call, Code, MeshError, NodeInfo, Request, Service, Target};
use crate::sessions::{self, messages as sm, Revocations};
use crate::store::Store;
use crate::users::{self, messages as um};

use limits::{too_many, Class as LimitClass, Limiter};
use messages::*;
use ops::Cmd;
use password::Hasher;
use token::{TokenKind, Tokens};

/// Service name.
pub const NAME: &str = "auth";

/// The ops of `auth`, declared once.
pub mod ops {
    use super::messages::{
        DeleteUserRequest, ForgotReply, ForgotRequest, LimitReply, LimitRequest, LoginRequest,
        OpenSessionRequest, RefreshRequest, ResetRequest, SetPasswordRequest, TokenPair,
        VerifyReply, VerifyRequest,
    };
    use crate::sessions::messages::SessionInfo;
    use crate::users::messages::{UpdateRequest, User};

    crate::ops! {
        /// An op of `auth`, decoded at the service's edge.
        pub enum Cmd for super::NAME {
            /// Username/email + password -> token pair and a new session.
            Login = LOGIN("login", effectful): LoginRequest => TokenPair,
            /// Refresh token -> new token pair (the old refresh token is spent).
            Refresh = REFRESH("refresh", effectful): RefreshRequest => TokenPair,
            /// End the caller's session.
            Logout = LOGOUT("logout", idempotent): () => SessionInfo,
            /// Check an access token.
            Verify = VERIFY("verify", idempotent): VerifyRequest => VerifyReply,
            /// Set a user's password and end their sessions.
            SetPassword = SET_PASSWORD("set_password", effectful): SetPasswordRequest => User,
            /// Delete a user and end their sessions.
            DeleteUser = DELETE_USER("delete_user", effectful): DeleteUserRequest => User,
            /// Update a user; a user's own password or email change needs their current
            /// password, and a password change ends their other sessions.
            UpdateUser = UPDATE_USER("update_user", effectful): UpdateRequest => User,
            /// Issue a password reset code.
            ForgotPassword = FORGOT_PASSWORD("forgot_password", effectful): ForgotRequest => ForgotReply,
            /// Reset a password with a code; ends the user's sessions.
            ConfirmForgotPassword = CONFIRM_FORGOT_PASSWORD("confirm_forgot_password", effectful): ResetRequest => User,
            /// Username/email + password -> the user, without a session (gRPC `ValidateUser`).
            Check = CHECK("check", idempotent): LoginRequest => User,
            /// A session for a user authenticated elsewhere (the `sso` service, once the
            /// provider's ID token is valid): the same token pair a login gives. Only
            /// services call it; no ingress route does.
            OpenSession = OPEN_SESSION("open_session", effectful): OpenSessionRequest => TokenPair,
            /// Count one login attempt of a class and key on the key's home node
            /// (entity-routed by `<class>/<key>`): the login limits hold cluster-wide.
            TakeLimit = TAKE_LIMIT("take_limit", effectful): LimitRequest => LimitReply,
        }
    }
}

/// How the service publishes events and issues emailed codes.
#[derive(Clone)]
pub struct Events {
    /// The node's publisher.
    pub publisher: Publisher,
    /// Code lifetimes and limits.
    pub codes: codes::Settings,
}

/// The service.
pub struct Auth {
    /// This service, for the work it runs after answering (`forgot_password`).
    me: std::sync::Weak<Auth>,
    info: Arc<NodeInfo>,
    store: Store,
    hasher: Hasher,
    tokens: Arc<Tokens>,
    revocations: Revocations,
    limiter: Arc<Limiter>,
    events: Publisher,
    codes: codes::Settings,
}

/// How long the delivery of a reset code, which runs after `forgot_password` answered,
/// may take.
const RESET_DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);

/// Password hashes replaced at login by one of the current scheme.
pub const REHASHED: &str = "troupe_password_rehashed_total";

/// The field error when a password or email change lacks the current password.
pub const CURRENT_PASSWORD_REQUIRED: &str = "required to change the password or email";

/// The one answer to every failed login, whatever failed.
fn bad_credentials() -> MeshError {
    MeshError::new(Code::Unauthenticated, "invalid credentials")
}

impl Auth {
    /// The service over the store, with this node's hasher, token keys and revocation set.
    pub fn new(
        info: Arc<NodeInfo>,
        store: Store,
        hasher: Hasher,
        tokens: Arc<Tokens>,
        revocations: Revocations,
        limiter: Arc<Limiter>,
        events: Events,
    ) -> Arc<Self> {
        let me = Arc::new_cyclic(|me| Self {
            me: me.clone(),
            info,
            store,
            hasher,
            tokens,
            revocations,
            limiter,
            events: events.publisher,
            codes: events.codes,
        });
        // Housekeeping: keyed limiters keep a cell per key, so forget the idle ones; and
        // delete refresh tokens past their expiry, which can never be spent again.
        let weak = Arc::downgrade(&me);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                let Some(me) = weak.upgrade() else { return };
                me.limiter.retain_recent();
                match store::sweep_expired(&me.store, crate::store::time::now_ms()).await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(deleted = n, "swept expired refresh tokens"),
                    Err(e) => tracing::warn!(error = %e, "refresh token sweep failed"),
                }
            }
        });
        me
    }

    /// Runs `call` through the mesh on behalf of `req`: same request id, within what is
    /// left of its deadline.
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

    async fn login(&self, req: &Request, login: LoginRequest) -> Result<TokenPair, MeshError> {
        let user = self.credentials(req, &login).await?;
        self.open_session(req, user, &login.ip, &login.user_agent, &login.device, None)
            .await
    }

    /// `open_session`: a session for a user the caller authenticated (SSO), opened and
    /// announced exactly as a password login's.
    async fn open_sso_session(
        &self,
        req: &Request,
        r: OpenSessionRequest,
    ) -> Result<TokenPair, MeshError> {
        let get = um::GetRequest {
            id: r.user_id.clone(),
        };
        let user = self.call(req, users::GET.call(get)).await?;
        self.open_session(req, user, &r.ip, &r.user_agent, &r.device, Some(&r.method))
            .await
    }

    /// `check`: the user a login and password belong to, without starting a session (gRPC
    /// `ValidateUser`); rate-limited like a login.
    async fn check(&self, req: &Request, login: LoginRequest) -> Result<um::User, MeshError> {
        let mut user = self.credentials(req, &login).await?;
        user.password_hash.clear();
        Ok(user)
    }

    /// The account `login` names if `login.password` is its password (with its hash).
    async fn credentials(
        &self,
        req: &Request,
        login: &LoginRequest,
    ) -> Result<um::User, MeshError> {
        if login.login.trim().is_empty() || login.password.is_empty() {
            return Err(
                MeshError::invalid("username or email, and password, are required")
                    .with_details(serde_json::json!({"fields": {
                    "login": "required", "password": "required"}})),
            );
        }
        let account = login.login.trim().to_lowercase();
        let mut wait_ms = self.take(req, LimitClass::LoginAccount, &account).await;
        if wait_ms == 0 && !login.ip.is_empty() {
            wait_ms = self.take(req, LimitClass::LoginIp, &login.ip).await;
        }
        if wait_ms > 0 {
            return Err(too_many("too many login attempts, retry later", wait_ms));
        }
        let user = self.find(req, &login.login).await?;
        // Unknown users cost a hash too, so timing does not tell whether an account exists.
        let ok = self
            .hasher
            .verify(
                user.as_ref().map(|u| u.password_hash.clone()),
                login.password.clone(),
            )
            .await;
        match user {
            Some(u) if ok => {
                if self.hasher.needs_rehash(&u.password_hash) {
                    self.rehash(req, &u.id, &login.password).await;
                }
                Ok(u)
            }
            _ => Err(bad_credentials()),
        }
    }

    /// Counts one attempt of `class` by `key` where every node counts it
    /// ([`limits::take`]): 0 when allowed, else the wait in ms.
    async fn take(&self, req: &Request, class: LimitClass, key: &str) -> u64 {
        limits::take(
            self.info.router().ok(),
            &self.limiter,
            class,
            key,
            &req.request_id,
            req.deadline,
        )
        .await
    }

    /// Replaces a hash made under older settings (PBKDF2, or other argon2id parameters)
    /// with one of the current scheme, from the password just verified. A failure only
    /// leaves the old hash, which still verifies.
    async fn rehash(&self, req: &Request, user_id: &str, password: &str) {
        let set = um::SetPasswordRequest {
            id: user_id.to_string(),
            password: password.to_string(),
        };
        match self.call(req, users::SET_PASSWORD.call(set)).await {
            Ok(_) => metrics::counter!(REHASHED).increment(1),
            Err(e) => tracing::info!(user = %user_id, error = %e, "password hash not upgraded"),
        }
    }

    /// Publishes an event; a failure is logged (the change it reports is already made).
    async fn publish(&self, kind: &str, user_id: &str, payload: serde_json::Value) {
        if let Err(e) = self
            .events
            .publish(NewEvent::new(kind, Some(user_id), payload))
            .await
        {
            tracing::error!(user = %user_id, kind, error = %e, "event not published");
        }
    }

    /// The account named by a login, if any.
    async fn find(&self, req: &Request, login: &str) -> Result<Option<um::User>, MeshError> {
        let by_login = um::GetByLoginRequest {
            login: login.trim().to_string(),
        };
        match self.call(req, users::GET_BY_LOGIN.call(by_login)).await {
            Ok(u) => Ok(Some(u)),
            Err(e) if e.code == Code::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `forgot_password`: answers at once, the same answer after the same work whether or
    /// not the account exists (or is past its code limit): the lookup, the code and the
    /// mail run after the answer ([`Auth::send_reset_code`]), so neither the answer nor its
    /// timing tells who has an account.
    fn forgot_password(&self, req: &Request, r: ForgotRequest) -> Result<ForgotReply, MeshError> {
        if r.login.trim().is_empty() {
            return Err(MeshError::invalid("username or email is required"));
        }
        match self.me.upgrade() {
            Some(me) => {
                let mut detached = req.clone();
                detached.deadline = std::time::Instant::now() + RESET_DELIVERY_TIMEOUT;
                detached.chain.clear();
                tokio::spawn(async move {
                    if let Err(e) = me.send_reset_code(&detached, &r.login).await {
                        tracing::warn!(request_id = %detached.request_id, error = %e, "reset code not sent");
                    }
                });
            }
            None => tracing::warn!("auth service is stopping; reset code not sent"),
        }
        Ok(self.forgot_reply())
    }

    /// The one answer of `forgot_password`.
    fn forgot_reply(&self) -> ForgotReply {
        ForgotReply {
            expires_in: self.codes.ttl(codes::Purpose::PasswordReset).as_secs(),
        }
    }

    /// Issues a reset code to the account `login` names and publishes it for delivery;
    /// nothing for an unknown account or one that asked for too many codes this window.
    async fn send_reset_code(&self, req: &Request, login: &str) -> Result<(), MeshError> {
        let purpose = codes::Purpose::PasswordReset;
        let Some(user) = self.find(req, login).await? else {
            return Ok(());
        };
        // The code and its event (the mail) are written in one transaction.
        let mut tx = self.store.begin().await?;
        let Some(code) = codes::issue(&mut *tx, &user.id, purpose, &self.codes).await? else {
            return Ok(());
        };
        let mut staged = Staged::new(Some(&self.events));
        staged.add(NewEvent::new(
            kinds::PASSWORD_RESET_REQUESTED,
            Some(&user.id),
            serde_json::json!({
                "username": user.username, "email": user.email, "code": code,
                "expires_in": self.codes.ttl(purpose).as_secs(),
            }),
        ))?;
        staged.commit(tx).await
    }

    async fn confirm_forgot_password(
        &self,
        req: &Request,
        r: ResetRequest,
    ) -> Result<um::User, MeshError> {
        if r.login.trim().is_empty() || r.code.trim().is_empty() {
            return Err(MeshError::invalid(
                "username or email, code and new password are required",
            ));
        }
        // Checked before the code is spent, so a refused password leaves the code usable.
        let mut fields = crate::users::validate::Fields::new();
        fields.check("password", crate::users::validate::password(&r.password));
        fields.finish()?;
        let user = self
            .find(req, &r.login)
            .await?
            .ok_or_else(codes::bad_code)?;
        codes::redeem(
            &self.store,
            &user.id,
            codes::Purpose::PasswordReset,
            &r.code,
            &self.codes,
        )
        .await?;
        let set = um::SetPasswordRequest {
            id: user.id.clone(),
            password: r.password,
        };
        let user = self.call(req, users::SET_PASSWORD.call(set)).await?;
        self.end_sessions(req, &user.id).await?;
        let payload = serde_json::json!({"username": user.username, "email": user.email});
        self.publish(kinds::PASSWORD_RESET, &user.id, payload).await;
        Ok(user)
    }

    async fn open_session(
        &self,
        req: &Request,
        mut user: um::User,
        ip: &str,
        user_agent: &str,
        device: &str,
        method: Option<&str>,
    ) -> Result<TokenPair, MeshError> {
        user.password_hash.clear();
        let sid = uuid::Uuid::new_v4().to_string();
        // `user.logged_in` is written with the session's refresh token (refused, and no
        // session opened, when the outbox is full).
        let mut payload = serde_json::json!({
            "username": user.username, "ip": ip, "user_agent": user_agent, "session_id": sid,
        });
        if let Some(method) = method {
            payload["method"] = method.into();
        }
        let mut staged = Staged::new(Some(&self.events));
        staged.add(NewEvent::new(
            kinds::USER_LOGGED_IN,
            Some(&user.id),
            payload,
        ))?;
        let start = sm::Start {
            user_id: user.id.clone(),
            device: device.to_string(),
            ip: ip.to_string(),
            user_agent: user_agent.to_string(),
            metadata: "{}".into(),
            ttl_s: self.tokens.refresh_ttl().as_secs(),
        };
        let call = sessions::ops::START
            .call(start)
            .to(Target::Entity(sid.clone()));
        self.call(req, call).await?;
        self.pair(user, sid, staged).await
    }

    /// Issues the token pair of session `sid`, writing its refresh token and `staged` in
    /// one transaction.
    async fn pair(
        &self,
        user: um::User,
        sid: String,
        staged: Staged,
    ) -> Result<TokenPair, MeshError> {
        let (access, _) = self.tokens.issue(
            TokenKind::Access,
            &user.id,
            &user.username,
            &user.roles,
            &sid,
        );
        let (refresh, claims) = self.tokens.issue(
            TokenKind::Refresh,
            &user.id,
            &user.username,
            &user.roles,
            &sid,
        );
        let mut tx = self.store.begin().await?;
        store::insert(
            &mut *tx,
            &claims.jti,
            &sid,
            &user.id,
            claims.exp as i64 * 1000,
        )
        .await?;
        staged.commit(tx).await?;
        Ok(TokenPair {
            access_token: access,
            refresh_token: refresh,
            expires_in: self.tokens.access_ttl().as_secs(),
            session_id: sid,
            user: Some(user),
        })
    }

    async fn refresh(&self, req: &Request, r: RefreshRequest) -> Result<TokenPair, MeshError> {
        let claims = self.tokens.verify(&r.refresh_token, TokenKind::Refresh)?;
        if self.revocations.is_revoked(&claims.sid) {
            return Err(MeshError::new(Code::Unauthenticated, "session has ended"));
        }
        // A refresh keeps the session a refresh lifetime from now, never past its
        // absolute end; a session past its end answers "ended".
        let touch = sessions::ops::TOUCH
            .call(sm::Touch {
                extend_ttl_s: Some(self.tokens.refresh_ttl().as_secs()),
                max_lifetime_s: Some(self.tokens.session_max_lifetime().as_secs()),
                ..sm::Touch::default()
            })
            .to(Target::Entity(claims.sid.clone()));
        let session = self.call(req, touch).await.map_err(|e| match e.code {
            Code::NotFound | Code::FailedPrecondition => {
                MeshError::new(Code::Unauthenticated, "session has ended")
            }
            _ => e,
        })?;
        let get = um::GetRequest {
            id: session.user_id.clone(),
        };
        let user = self
            .call(req, users::GET.call(get))
            .await
            .map_err(|e| match e.code {
                Code::NotFound => MeshError::new(Code::Unauthenticated, "user no longer exists"),
                _ => e,
            })?;
        // Spent only once the session and user answered: a refresh that fails on the way
        // (a session home unavailable, e.g. on the losing side of a split) changes nothing
        // and the same token works again.
        if !store::spend(&self.store, &claims.jti).await? {
            // A refresh token used twice was stolen or replayed: end the whole session.
            tracing::warn!(sid = %claims.sid, "refresh token reused, revoking its session");
            let revoke = sessions::ops::REVOKE
                .call(())
                .to(Target::Entity(claims.sid.clone()));
            if let Err(e) = self.call(req, revoke).await {
                tracing::warn!(sid = %claims.sid, error = %e, "reused refresh token's session not revoked");
            }
            return Err(MeshError::new(
                Code::Unauthenticated,
                "refresh token already used; the session has been ended",
            ));
        }
        self.pair(user, claims.sid, Staged::new(None)).await
    }

    fn verify(&self, v: VerifyRequest) -> Result<VerifyReply, MeshError> {
        let claims = self.tokens.verify(&v.token, TokenKind::Access)?;
        if self.revocations.is_revoked(&claims.sid) {
            return Err(MeshError::new(Code::Unauthenticated, "session has ended"));
        }
        Ok(VerifyReply {
            user_id: claims.sub,
            username: claims.username,
            roles: claims.roles,
            session_id: claims.sid,
            expires_at: claims.exp,
        })
    }

    async fn logout(&self, req: &Request) -> Result<sm::SessionInfo, MeshError> {
        let sid = req
            .caller
            .as_ref()
            .map(|c| c.session_id.clone())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| MeshError::new(Code::Unauthenticated, "no session to end"))?;
        let revoke = sessions::ops::REVOKE.call(()).to(Target::Entity(sid));
        self.call(req, revoke).await
    }

    async fn end_sessions(&self, req: &Request, user_id: &str) -> Result<(), MeshError> {
        self.end_sessions_but(req, user_id, "").await
    }

    /// Ends every session of `user_id` but `keep` (empty: every one).
    async fn end_sessions_but(
        &self,
        req: &Request,
        user_id: &str,
        keep: &str,
    ) -> Result<(), MeshError> {
        let by = sm::ByUser {
            user_id: user_id.to_string(),
            keep: keep.to_string(),
        };
        self.call(req, sessions::ops::REVOKE_USER.call(by)).await?;
        Ok(())
    }

    /// Whether `password` is the current password of user `id`. Guesses count against the
    /// same per-account limit as logins, so a stolen token is no password oracle.
    async fn current_password_is(
        &self,
        req: &Request,
        id: &str,
        password: String,
    ) -> Result<bool, MeshError> {
        let get = um::GetRequest { id: id.to_string() };
        let user = self.call(req, users::GET.call(get)).await?;
        let wait_ms = self
            .take(req, LimitClass::LoginAccount, &user.username.to_lowercase())
            .await;
        if wait_ms > 0 {
            return Err(too_many("too many password attempts, retry later", wait_ms));
        }
        let Some(user) = self.find(req, &user.username).await? else {
            return Err(MeshError::not_found("user not found"));
        };
        Ok(self.hasher.verify(Some(user.password_hash), password).await)
    }

    async fn set_password(
        &self,
        req: &Request,
        r: SetPasswordRequest,
    ) -> Result<um::User, MeshError> {
        let set = um::SetPasswordRequest {
            id: r.user_id.clone(),
            password: r.password,
        };
        let user = self.call(req, users::SET_PASSWORD.call(set)).await?;
        self.end_sessions(req, &r.user_id).await?;
        Ok(user)
    }

    /// `update_user`: a user changing their own profile must give their current password
    /// to change the password or email (`users.update` decides whether the email changes);
    /// an admin need not. A password change ends the user's sessions: every one after an
    /// admin's change, every one but the caller's own after the user's.
    async fn update_user(
        &self,
        req: &Request,
        mut r: um::UpdateRequest,
    ) -> Result<um::User, MeshError> {
        let changes_password = r.password.is_some();
        // Only this op vouches for the password; whatever a caller set is ignored.
        r.reauthenticated = false;
        let current = r.current_password.take().filter(|p| !p.is_empty());
        if !r.as_admin {
            let mut fields = crate::users::validate::Fields::new();
            if changes_password && current.is_none() {
                fields.check("current_password", Err(CURRENT_PASSWORD_REQUIRED.into()));
            }
            if let Some(password) = &r.password {
                fields.check("password", crate::users::validate::password(password));
            }
            fields.finish()?;
            if let Some(current) = current {
                if !self.current_password_is(req, &r.id, current).await? {
                    return Err(MeshError::new(
                        Code::PermissionDenied,
                        "current password is incorrect",
                    ));
                }
                r.reauthenticated = true;
            }
        }
        let keep = req
            .caller
            .as_ref()
            .filter(|c| !r.as_admin && c.user_id == r.id)
            .map(|c| c.session_id.clone())
            .unwrap_or_default();
        let id = r.id.clone();
        let user = self.call(req, users::UPDATE.call(r)).await?;
        if changes_password {
            self.end_sessions_but(req, &id, &keep).await?;
        }
        Ok(user)
    }

    async fn delete_user(
        &self,
        req: &Request,
        r: DeleteUserRequest,
    ) -> Result<um::User, MeshError> {
        // End the sessions first: their tokens must stop working before the account goes.
        self.end_sessions(req, &r.user_id).await?;
        let delete = um::DeleteRequest { id: r.user_id };
        self.call(req, users::DELETE.call(delete)).await
    }
}

impl Service for Auth {
    fn name(&self) -> &'static str {
        NAME
    }

    /// A login holds its worker while the password is verified on a hashing thread; more
    /// workers than cores keep every core hashing.
    fn workers(&self, default: usize) -> usize {
        crate::mesh::service::waiting_pool(default)
    }

    fn handle(&self, req: Request) -> BoxFuture<'_, Result<Bytes, MeshError>> {
        Box::pin(async move {
            match Cmd::parse(&req)? {
                Cmd::Login(r) => ops::LOGIN.reply(self.login(&req, r).await),
                Cmd::Refresh(r) => ops::REFRESH.reply(self.refresh(&req, r).await),
                Cmd::Logout(()) => ops::LOGOUT.reply(self.logout(&req).await),
                Cmd::Verify(r) => ops::VERIFY.reply(self.verify(r)),
                Cmd::SetPassword(r) => ops::SET_PASSWORD.reply(self.set_password(&req, r).await),
                Cmd::DeleteUser(r) => ops::DELETE_USER.reply(self.delete_user(&req, r).await),
                Cmd::UpdateUser(r) => ops::UPDATE_USER.reply(self.update_user(&req, r).await),
                Cmd::ForgotPassword(r) => ops::FORGOT_PASSWORD.reply(self.forgot_password(&req, r)),
                Cmd::ConfirmForgotPassword(r) => {
                    ops::CONFIRM_FORGOT_PASSWORD.reply(self.confirm_forgot_password(&req, r).await)
                }
                Cmd::Check(r) => ops::CHECK.reply(self.check(&req, r).await),
                Cmd::OpenSession(r) => {
                    ops::OPEN_SESSION.reply(self.open_sso_session(&req, r).await)
                }
                Cmd::TakeLimit(r) => {
                    ops::TAKE_LIMIT.reply(LimitClass::parse(&r.class).map(|class| LimitReply {
                        retry_after_ms: self.limiter.take_here(class, &r.key),
                    }))
                }
            }
        })
    }
}

#[cfg(test)]
pub(crate) mod tests;
