//! The `users` service: accounts, their public keys and contacts.
//!
//! # Ops
//! | op | kind | request | reply |
//! |---|---|---|---|
//! | `register` | effectful | [`RegisterRequest`] | [`User`] |
//! | `create` | effectful | [`CreateRequest`] | [`User`] |
//! | `get` | idempotent | [`GetRequest`] | [`User`] |
//! | `get_by_login` | idempotent | [`GetByLoginRequest`] | [`User`] with `password_hash` |
//! | `get_by_username` | idempotent | [`GetByLoginRequest`] (a username) | [`User`] |
//! | `update` | effectful | [`UpdateRequest`] | [`User`] |
//! | `delete` | effectful | [`DeleteRequest`] | [`User`] (as it was) |
//! | `list` | idempotent | [`ListRequest`] | [`UserPage`] |
//! | `search` | idempotent | [`SearchRequest`] | [`UserPage`] |
//! | `set_password` | effectful | [`SetPasswordRequest`] | [`User`] |
//! | `put_key` | effectful | [`PutKeyRequest`] | [`PublicKey`] |
//! | `get_key` | idempotent | [`GetKeyRequest`] | [`PublicKey`] |
//! | `list_contacts` | idempotent | [`ListContactsRequest`] | [`ContactList`] |
//! | `ensure_admin` | effectful | [`EnsureAdminRequest`] | [`EnsureAdminReply`] |
//! | `confirm_registration` | effectful | [`ConfirmRequest`] | [`User`] |
//! | `db_ping` | idempotent | none | [`DbPing`] |
//! | `evict` | idempotent | [`GetRequest`] | none |
//!
//! `evict` forgets a cached user ([`cache`]); the node that changed the user sends it to
//! every other node and answers the change once they have (at most 500 ms).
//!
//! With events ([`Users::with_events`]), `register` publishes `user.registered` and
//! `user.registration_code` (the emailed confirmation code), `create` (an admin's) publishes
//! `user.registered` with `created_by_admin: true` (with `sso_provider` instead when the
//! `sso` service creates the account at a first sign-in), `update` to a new email publishes
//! `user.email_changed` (mailed to the old address) and `user.registration_code` (to the
//! new one, which is unconfirmed until the code comes back), and `confirm_registration`
//! publishes `user.confirmed`.
//!
//! A `register` under an email in use publishes `user.register_attempted` to the owner
//! instead and answers as a new account would ([`Users::register`]).
//!
//! Bad fields are `invalid_argument` "validation failed" with every bad field listed in
//! the details ([`validate`]); a username or email in use (ignoring case) is
//! `already_exists` "username already taken" / "email already registered" (but see
//! [`Users::register`] for an email); a missing user
//! is `not_found`; database trouble is `unavailable` or `internal` without detail.
//!
//! Authorization is the protocol layer's: it only calls `create`, `list` and the like for
//! admins, and tells `update` whether the caller is one (`as_admin`, needed to change
//! roles).
//!
//! # Layout
//! - this file: the ops ([`Cmd`]), the [`Service`] impl and one typed method per op;
//! - [`messages`]: the prost messages;
//! - [`store`]: all SQL;
//! - [`validate`]: field validation.

pub mod cache;
pub mod messages;
pub mod store;
pub mod validate;

use bytes::Bytes;

pub use messages::*;

use self::store::UserRow;
use self::validate::Fields;
use crate::auth::password::Hasher;
use crate::events::{NewEvent, Staged};
use crate::mesh::{BoxFuture, Code, MeshError, Request, Service, Target};
use crate::store::time::{now_ms, rfc3339_millis};
use crate::store::Store;

/// Longest a change waits for the other nodes to evict the user it changed.
const EVICT_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// Service name.
pub const NAME: &str = "users";

crate::ops! {
    /// An op of `users`, decoded at the service's edge.
    pub enum Cmd for NAME {
        /// A new account with role `user`, unconfirmed.
        Register = REGISTER("register", effectful): RegisterRequest => User,
        /// A new account with the given roles and confirmation (an admin's).
        Create = CREATE("create", effectful): CreateRequest => User,
        /// One user by id.
        Get = GET("get", idempotent): GetRequest => User,
        /// One user by username or email, with the password hash.
        GetByLogin = GET_BY_LOGIN("get_by_login", idempotent): GetByLoginRequest => User,
        /// One user by username, ignoring case (SOAP `LookupUser`).
        GetByUsername = GET_BY_USERNAME("get_by_username", idempotent): GetByLoginRequest => User,
        /// Change the given fields of a user.
        Update = UPDATE("update", effectful): UpdateRequest => User,
        /// Remove a user and everything theirs; answers the user as it was.
        Delete = DELETE("delete", effectful): DeleteRequest => User,
        /// One page of all users, oldest first.
        List = LIST("list", idempotent): ListRequest => UserPage,
        /// Users matching a query, by username.
        Search = SEARCH("search", idempotent): SearchRequest => UserPage,
        /// Replace a user's password.
        SetPassword = SET_PASSWORD("set_password", effectful): SetPasswordRequest => User,
        /// Store or replace a user's public key.
        PutKey = PUT_KEY("put_key", effectful): PutKeyRequest => PublicKey,
        /// A user's public key.
        GetKey = GET_KEY("get_key", idempotent): GetKeyRequest => PublicKey,
        /// A user's contacts (the caller's when no user is named).
        ListContacts = LIST_CONTACTS("list_contacts", idempotent): ListContactsRequest => ContactList,
        /// Create the bootstrap admin unless the username exists.
        EnsureAdmin = ENSURE_ADMIN("ensure_admin", effectful): EnsureAdminRequest => EnsureAdminReply,
        /// Spend a registration code and mark the user confirmed.
        ConfirmRegistration = CONFIRM_REGISTRATION("confirm_registration", effectful): ConfirmRequest => User,
        /// One round trip to the store (`GET /test-db`).
        DbPing = DB_PING("db_ping", idempotent): () => DbPing,
        /// Forget a cached user (told by the node that changed it).
        Evict = EVICT("evict", idempotent): GetRequest => (),
    }
}

/// Read-modify-write attempts of an `update` before giving up on a busy row.
const UPDATE_ATTEMPTS: u32 = 3;

/// Key algorithm when none is given.
pub const DEFAULT_ALGORITHM: &str = "x25519";

/// Roles of a bootstrapped admin.
const ADMIN_ROLES: [&str; 2] = ["user", "admin"];

/// The `users` service.
#[derive(Clone)]
pub struct Users {
    store: Store,
    hasher: Hasher,
    cache: std::sync::Arc<cache::Cache>,
    info: Option<std::sync::Arc<crate::mesh::NodeInfo>>,
    events: Option<UserEvents>,
    reveal_taken_email: bool,
}

/// What the service needs to publish events and issue emailed codes.
#[derive(Clone)]
struct UserEvents {
    publisher: crate::events::Publisher,
    codes: crate::auth::codes::Settings,
}

/// The fields of a user to create.
struct NewUser {
    username: String,
    email: String,
    password: String,
    full_name: String,
    roles: Vec<String>,
    confirmed: bool,
}

impl Users {
    /// The service over `store`, hashing passwords with `hasher`.
    pub fn new(store: Store, hasher: Hasher) -> Self {
        Self {
            store,
            hasher,
            cache: Default::default(),
            info: None,
            events: None,
            reveal_taken_email: false,
        }
    }

    /// Whether `register` answers `already_exists` for an email in use (`[auth]
    /// reveal_taken_email`). Off by default: the answer is a new account's, see
    /// [`Users::register`].
    pub fn reveal_taken_email(mut self, reveal: bool) -> Self {
        self.reveal_taken_email = reveal;
        self
    }

    /// Publishes the account events through `publisher` and issues registration codes
    /// with `codes`.
    pub fn with_events(
        mut self,
        publisher: crate::events::Publisher,
        codes: crate::auth::codes::Settings,
    ) -> Self {
        self.events = Some(UserEvents { publisher, codes });
        self
    }

    /// Nothing staged yet, for this service's publisher (none: nothing is staged).
    fn staged(&self) -> Staged {
        Staged::new(self.events.as_ref().map(|e| &e.publisher))
    }

    /// `confirm_registration`: spends the user's registration code and marks them
    /// confirmed.
    pub async fn confirm_registration(&self, req: ConfirmRequest) -> Result<User, MeshError> {
        use crate::auth::codes;
        let Some(events) = &self.events else {
            return Err(MeshError::unavailable("registration codes are not enabled"));
        };
        validate::login(&req.login)?;
        let row = store::get_by_login(&self.store, &req.login.trim().to_lowercase())
            .await?
            .ok_or_else(codes::bad_code)?;
        if row.confirmed {
            return Err(MeshError::new(
                Code::FailedPrecondition,
                "registration already confirmed",
            ));
        }
        codes::redeem(
            &self.store,
            &row.id,
            codes::Purpose::Registration,
            &req.code,
            &events.codes,
        )
        .await?;
        let mut staged = self.staged();
        staged.add_if_publishing(NewEvent::new(
            crate::events::kinds::USER_CONFIRMED,
            Some(&row.id),
            serde_json::json!({"username": row.username, "email": row.email}),
        ))?;
        let mut tx = self.store.begin().await?;
        store::confirm(&mut *tx, &row.id, now_ms()).await?;
        staged.commit(tx).await?;
        self.changed(&row.id).await;
        Ok(self.row(&row.id).await?.to_user(false))
    }

    /// Broadcasts cache evictions to the other nodes through this node's router.
    pub fn on_node(mut self, info: std::sync::Arc<crate::mesh::NodeInfo>) -> Self {
        self.info = Some(info);
        self
    }

    /// Evicts `id` here and on every other routable node, and waits (at most
    /// [`EVICT_WAIT`]) until they have: a change answered on one node is then read on every
    /// other. A node that does not answer in time is not waited for; the cache TTL bounds
    /// how stale it can read.
    async fn changed(&self, id: &str) {
        self.cache.evict(id);
        let Some(router) = self.info.as_ref().and_then(|i| i.router().ok()) else {
            return;
        };
        let evictions = router
            .members()
            .iter()
            .filter(|m| m.as_str() != router.node())
            .map(|member| {
                let call = EVICT
                    .call(GetRequest { id: id.to_string() })
                    .to(Target::Node(member.clone()))
                    .timeout(EVICT_WAIT);
                let router = router.clone();
                async move {
                    if let Err(e) = router.call(call).await {
                        tracing::debug!(user = %id, error = %e, "a node did not evict a changed user");
                    }
                }
            })
            .collect::<Vec<_>>();
        futures_util::future::join_all(evictions).await;
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// `register`: a new account with role `user`, unconfirmed. The account, its
    /// registration code and their events (`user.registered`, `user.registration_code`)
    /// are written in one transaction.
    ///
    /// A username in use is `already_exists` (usernames are public). An email in use
    /// (ignoring case) under a free username is answered as a new account would be, unless
    /// `reveal_taken_email`: the password is hashed all the same and a user of the same
    /// shape is answered, but nothing is created and the address's owner is told instead
    /// ([`Users::register_attempted`]), so the answer does not tell whether the address
    /// has an account.
    pub async fn register(&self, req: RegisterRequest) -> Result<User, MeshError> {
        let new = NewUser {
            username: req.username,
            email: req.email,
            password: req.password,
            full_name: req.full_name,
            roles: Vec::new(),
            confirmed: false,
        };
        let (roles, taken) = self.check(&new).await?;
        let hidden = taken == Some(store::Taken::Email) && !self.reveal_taken_email;
        if let Some(t) = taken.filter(|_| !hidden) {
            return Err(t.error());
        }
        // Hashed whether or not the account is made: the answer takes as long.
        let row = self.row_of(new, roles).await?;
        if hidden {
            return self.register_attempted(row).await;
        }
        let mut staged = self.staged();
        staged.add_if_publishing(NewEvent::new(
            crate::events::kinds::USER_REGISTERED,
            Some(&row.id),
            serde_json::json!({
                "username": row.username, "email": row.email, "full_name": row.full_name,
            }),
        ))?;
        let mut tx = self.store.begin().await?;
        match store::insert(&mut *tx, &row).await {
            Ok(()) => {}
            // A racing registration took the address after the check.
            Err(e) if e.message == store::Taken::Email.message() && !self.reveal_taken_email => {
                drop(tx);
                return self.register_attempted(row).await;
            }
            Err(e) => return Err(e),
        }
        self.stage_confirmation_code(&mut tx, &row, &mut staged)
            .await?;
        staged.commit(tx).await?;
        Ok(row.to_user(false))
    }

    /// A registration of `attempt`'s address, which another account holds: creates
    /// nothing, tells the owner (`user.register_attempted`, mailed to the payload's `to`,
    /// their address, whatever their preferences) in a transaction of its own, as a new
    /// account's events are, and answers `attempt` as if it had been created.
    async fn register_attempted(&self, attempt: UserRow) -> Result<User, MeshError> {
        let owner = store::get_by_login(&self.store, &attempt.email.to_lowercase()).await?;
        let mut staged = self.staged();
        if let Some(owner) = &owner {
            staged.add_if_publishing(NewEvent::new(
                crate::events::kinds::USER_REGISTER_ATTEMPTED,
                Some(&owner.id),
                serde_json::json!({
                    "username": owner.username, "attempted_username": attempt.username,
                    "to": owner.email,
                }),
            ))?;
        }
        let tx = self.store.begin().await?;
        staged.commit(tx).await?;
        tracing::debug!(owner = ?owner.map(|o| o.id), "registration of a registered address answered alike");
        Ok(attempt.to_user(false))
    }

    /// Issues a registration code for `row`'s (new) address in `conn`'s transaction, and
    /// stages it as `user.registration_code`. An account that had its codes for this
    /// window gets none (logged): its change still stands.
    async fn stage_confirmation_code(
        &self,
        conn: &mut sqlx::AnyConnection,
        row: &UserRow,
        staged: &mut Staged,
    ) -> Result<(), MeshError> {
        let Some(events) = &self.events else {
            return Ok(());
        };
        let purpose = crate::auth::codes::Purpose::Registration;
        let ttl = events.codes.ttl(purpose);
        match crate::auth::codes::issue(conn, &row.id, purpose, &events.codes).await? {
            None => {
                tracing::warn!(user = %row.id, "registration code not issued: too many this window");
            }
            Some(code) => {
                staged.add(NewEvent::new(
                    crate::events::kinds::REGISTRATION_CODE,
                    Some(&row.id),
                    serde_json::json!({
                        "username": row.username, "email": row.email, "code": code,
                        "expires_in": ttl.as_secs(),
                    }),
                ))?;
            }
        }
        Ok(())
    }

    /// `create`: a new account with the given roles and confirmation (an admin's). Publishes
    /// `user.registered` like `register`, marked `created_by_admin`; no registration code
    /// (the admin decides whether the account is confirmed).
    pub async fn create(&self, req: CreateRequest) -> Result<User, MeshError> {
        let row = self
            .prepare(NewUser {
                username: req.username,
                email: req.email,
                password: req.password,
                full_name: req.full_name,
                roles: req.roles,
                confirmed: req.confirmed,
            })
            .await?;
        let mut payload = serde_json::json!({
            "username": row.username, "email": row.email, "full_name": row.full_name,
        });
        if req.sso_provider.is_empty() {
            payload["created_by_admin"] = true.into();
        } else {
            payload["sso_provider"] = req.sso_provider.into();
        }
        let mut staged = self.staged();
        staged.add_if_publishing(NewEvent::new(
            crate::events::kinds::USER_REGISTERED,
            Some(&row.id),
            payload,
        ))?;
        let mut tx = self.store.begin().await?;
        store::insert(&mut *tx, &row).await?;
        staged.commit(tx).await?;
        Ok(row.to_user(false))
    }

    /// [`Users::prepare`]s the row and inserts it, with no event.
    async fn insert(&self, new: NewUser) -> Result<UserRow, MeshError> {
        let row = self.prepare(new).await?;
        store::insert(self.store.writer(), &row).await?;
        Ok(row)
    }

    /// Validates, checks uniqueness and hashes the password: the row to insert.
    async fn prepare(&self, new: NewUser) -> Result<UserRow, MeshError> {
        let (roles, taken) = self.check(&new).await?;
        if let Some(t) = taken {
            return Err(t.error());
        }
        self.row_of(new, roles).await
    }

    /// Validates `new` (every bad field at once) and finds whether its username or email
    /// is in use: its roles, and what is taken. Checked before the (slow) hashing; a
    /// racing insert still fails on the unique indexes and maps to the same messages.
    async fn check(&self, new: &NewUser) -> Result<(Vec<String>, Option<store::Taken>), MeshError> {
        let mut fields = Fields::new();
        fields.check("username", validate::username(&new.username));
        fields.check("email", validate::email(&new.email));
        fields.check("password", validate::password(&new.password));
        fields.check("full_name", validate::full_name(&new.full_name));
        let roles = fields.take("roles", validate::roles(&new.roles));
        fields.finish()?;
        let taken = store::taken(
            &self.store,
            &new.username.to_lowercase(),
            &new.email.to_lowercase(),
        )
        .await?;
        Ok((roles.unwrap_or_default(), taken))
    }

    /// The row of a new user: a fresh id, the password hashed.
    async fn row_of(&self, new: NewUser, roles: Vec<String>) -> Result<UserRow, MeshError> {
        let password_hash = self.hasher.hash(new.password).await?;
        let now = now_ms();
        Ok(UserRow {
            id: uuid::Uuid::new_v4().to_string(),
            username: new.username,
            email: new.email,
            full_name: new.full_name,
            password_hash,
            roles: store::join_roles(&roles),
            confirmed: new.confirmed,
            created_at: now,
            updated_at: now,
            version: 1,
        })
    }

    /// `get`: one user by id.
    pub async fn get(&self, req: GetRequest) -> Result<User, MeshError> {
        if let Some(user) = self.cache.get(&req.id) {
            return Ok(user);
        }
        let user = self.row(&req.id).await?.to_user(false);
        self.cache.put(&user);
        Ok(user)
    }

    async fn row(&self, id: &str) -> Result<UserRow, MeshError> {
        validate::id("id", id)?;
        store::get(&self.store, id)
            .await?
            .ok_or_else(|| MeshError::not_found("user not found"))
    }

    /// `get_by_login`: one user by username or email (ignoring case), with the password
    /// hash.
    pub async fn get_by_login(&self, req: GetByLoginRequest) -> Result<User, MeshError> {
        validate::login(&req.login)?;
        let row = store::get_by_login(&self.store, &req.login.to_lowercase())
            .await?
            .ok_or_else(|| MeshError::not_found("user not found"))?;
        Ok(row.to_user(true))
    }

    /// `get_by_username`: one user by username, ignoring case (one indexed lookup).
    pub async fn get_by_username(&self, req: GetByLoginRequest) -> Result<User, MeshError> {
        validate::username(&req.login).map_err(|m| {
            MeshError::invalid("validation failed")
                .with_details(serde_json::json!({"fields": {"username": m}}))
        })?;
        let lower = req.login.to_lowercase();
        if let Some(user) = self.cache.get_by_username(&lower) {
            return Ok(user);
        }
        let user = store::get_by_username(&self.store, &lower)
            .await?
            .ok_or_else(|| MeshError::not_found("user not found"))?
            .to_user(false);
        self.cache.put(&user);
        Ok(user)
    }

    /// `update`: changes the given fields. Changing roles needs `as_admin`; changing the
    /// password or the email (to another address, not only in other case) needs
    /// `as_admin` or `reauthenticated` (`invalid_argument` naming `current_password`
    /// otherwise). A new email makes the account unconfirmed, sends a confirmation code to
    /// it and tells the old address ([`Users::with_events`]). With a
    /// nonzero `version`, fails as `failed_precondition` unless the user is still at it.
    /// A write that loses a race with another is redone on the fresh row, up to 3 times.
    pub async fn update(&self, req: UpdateRequest) -> Result<User, MeshError> {
        validate::id("id", &req.id)?;
        if req.roles.is_some() && !req.as_admin {
            return Err(MeshError::new(
                Code::PermissionDenied,
                "only an admin may change roles",
            ));
        }
        let mut fields = Fields::new();
        if let Some(full_name) = &req.full_name {
            fields.check("full_name", validate::full_name(full_name));
        }
        if let Some(email) = &req.email {
            fields.check("email", validate::email(email));
        }
        if let Some(password) = &req.password {
            fields.check("password", validate::password(password));
            if !req.as_admin && !req.reauthenticated {
                fields.check(
                    "current_password",
                    Err(crate::auth::CURRENT_PASSWORD_REQUIRED.into()),
                );
            }
        }
        let roles = match &req.roles {
            Some(list) => fields.take("roles", validate::roles(&list.roles)),
            None => None,
        };
        fields.finish()?;

        let nothing = req.full_name.is_none()
            && req.email.is_none()
            && req.password.is_none()
            && roles.is_none();
        let password_hash = match req.password {
            Some(password) => Some(self.hasher.hash(password).await?),
            None => None,
        };

        for _ in 0..UPDATE_ATTEMPTS {
            let current = self.row(&req.id).await?;
            if req.version != 0 && u64::try_from(current.version).ok() != Some(req.version) {
                return Err(MeshError::new(
                    Code::FailedPrecondition,
                    format!(
                        "version mismatch: the user is at version {}",
                        current.version
                    ),
                ));
            }
            if nothing {
                return Ok(current.to_user(false));
            }
            // Another address, not the same one in other case (emails are unique ignoring
            // case): it needs the current password and a new confirmation.
            let new_email = req
                .email
                .as_ref()
                .filter(|e| e.to_lowercase() != current.email.to_lowercase());
            if new_email.is_some() && !req.as_admin && !req.reauthenticated {
                return Err(MeshError::invalid("validation failed")
                    .with_details(serde_json::json!({"fields": {
                        "current_password": crate::auth::CURRENT_PASSWORD_REQUIRED}})));
            }
            let mut next = current.clone();
            if let Some(full_name) = &req.full_name {
                next.full_name.clone_from(full_name);
            }
            if let Some(email) = &req.email {
                next.email.clone_from(email);
            }
            if new_email.is_some() {
                next.confirmed = false;
            }
            if let Some(hash) = &password_hash {
                next.password_hash.clone_from(hash);
            }
            if let Some(roles) = &roles {
                next.roles = store::join_roles(roles);
            }
            next.updated_at = now_ms().max(current.updated_at);
            // A new address: the new one gets a confirmation code, and the old one is told
            // (`user.email_changed`, mailed to `to`), in the change's transaction.
            let mut staged = self.staged();
            if new_email.is_some() {
                staged.add_if_publishing(NewEvent::new(
                    crate::events::kinds::USER_EMAIL_CHANGED,
                    Some(&next.id),
                    serde_json::json!({
                        "username": next.username, "old_email": current.email,
                        "new_email": next.email, "to": current.email,
                    }),
                ))?;
            }
            let mut tx = self.store.begin().await?;
            if store::update_if_version(&mut *tx, &next, current.version).await? {
                if new_email.is_some() {
                    self.stage_confirmation_code(&mut tx, &next, &mut staged)
                        .await?;
                }
                staged.commit(tx).await?;
                next.version = current.version + 1;
                self.changed(&req.id).await;
                return Ok(next.to_user(false));
            }
            drop(tx);
            tracing::debug!(user = %req.id, "update lost a race, retrying");
        }
        Err(MeshError::new(
            Code::FailedPrecondition,
            "the user is being changed concurrently, try again",
        ))
    }

    /// `delete`: removes the user with their sessions, refresh tokens, public key and
    /// contacts; answers the user as it was.
    pub async fn delete(&self, req: DeleteRequest) -> Result<User, MeshError> {
        validate::id("id", &req.id)?;
        let row = store::delete(&self.store, &req.id)
            .await?
            .ok_or_else(|| MeshError::not_found("user not found"))?;
        self.changed(&req.id).await;
        Ok(row.to_user(false))
    }

    /// `list`: one page of all users, oldest first.
    pub async fn list(&self, req: ListRequest) -> Result<UserPage, MeshError> {
        let (page, per_page) = validate::page(req.page, req.per_page)?;
        let (limit, offset) = crate::common::validate::limit_offset(page, per_page);
        let (rows, total) = store::list(&self.store, limit, offset).await?;
        Ok(user_page(&rows, total, page, per_page))
    }

    /// `search`: users whose username or full name (or email, with `match_email`) contains
    /// the query (or whose username starts with it, with `prefix_only`), ignoring case, by
    /// username.
    pub async fn search(&self, req: SearchRequest) -> Result<UserPage, MeshError> {
        validate::query(&req.query)?;
        let (page, per_page) = validate::page(req.page, req.per_page)?;
        let (limit, offset) = crate::common::validate::limit_offset(page, per_page);
        let query = req.query.to_lowercase();
        let pattern = if req.prefix_only {
            store::like_prefix(&query)
        } else {
            store::like_contains(&query)
        };
        let (rows, total) = store::search(
            &self.store,
            &pattern,
            req.prefix_only,
            req.match_email,
            limit,
            offset,
        )
        .await?;
        Ok(user_page(&rows, total, page, per_page))
    }

    /// `set_password`: replaces the user's password.
    pub async fn set_password(&self, req: SetPasswordRequest) -> Result<User, MeshError> {
        validate::id("id", &req.id)?;
        let mut fields = Fields::new();
        fields.check("password", validate::password(&req.password));
        fields.finish()?;
        let hash = self.hasher.hash(req.password).await?;
        let row = store::set_password(&self.store, &req.id, &hash, now_ms())
            .await?
            .ok_or_else(|| MeshError::not_found("user not found"))?;
        self.changed(&req.id).await;
        Ok(row.to_user(false))
    }

    /// `put_key`: stores or replaces the user's public key.
    pub async fn put_key(&self, req: PutKeyRequest) -> Result<PublicKey, MeshError> {
        validate::id("user_id", &req.user_id)?;
        let algorithm = if req.algorithm.is_empty() {
            DEFAULT_ALGORITHM.to_string()
        } else {
            req.algorithm
        };
        let mut fields = Fields::new();
        fields.check("public_key", validate::public_key(&req.public_key));
        fields.check("algorithm", validate::algorithm(&algorithm));
        fields.finish()?;
        let now = now_ms();
        if !store::put_key(&self.store, &req.user_id, &req.public_key, &algorithm, now).await? {
            return Err(MeshError::not_found("user not found"));
        }
        Ok(PublicKey {
            user_id: req.user_id,
            public_key: req.public_key,
            algorithm,
            updated_at: rfc3339_millis(now),
        })
    }

    /// `get_key`: the user's public key.
    pub async fn get_key(&self, req: GetKeyRequest) -> Result<PublicKey, MeshError> {
        validate::id("user_id", &req.user_id)?;
        store::get_key(&self.store, &req.user_id)
            .await?
            .ok_or_else(|| MeshError::not_found("no public key for this user"))
    }

    /// `evict`: forgets a cached user (told by the node that changed it).
    pub fn evict(&self, req: GetRequest) {
        self.cache.evict(&req.id);
    }

    /// `db_ping`: one round trip to the store.
    pub async fn db_ping(&self) -> Result<DbPing, MeshError> {
        let latency = self.store.ping().await?;
        Ok(DbPing {
            latency_us: latency.as_micros() as u64,
            backend: self.store.backend().as_str().to_string(),
        })
    }

    /// `list_contacts`: the contacts of `user_id`, by username.
    pub async fn list_contacts(&self, user_id: &str) -> Result<ContactList, MeshError> {
        validate::id("user_id", user_id)?;
        let items = store::contacts(&self.store, user_id).await?;
        Ok(ContactList { items })
    }

    /// `ensure_admin`: creates the admin (roles `user,admin`, confirmed) unless a user
    /// with that username exists, in which case nothing changes. Safe to run from every
    /// node at once.
    pub async fn ensure_admin(
        &self,
        req: EnsureAdminRequest,
    ) -> Result<EnsureAdminReply, MeshError> {
        let mut fields = Fields::new();
        fields.check("username", validate::username(&req.username));
        fields.finish()?;
        let username_lower = req.username.to_lowercase();
        if let Some(row) = store::get_by_username(&self.store, &username_lower).await? {
            return Ok(EnsureAdminReply {
                user: Some(row.to_user(false)),
                created: false,
            });
        }
        let created = self
            .insert(NewUser {
                username: req.username,
                email: req.email,
                password: req.password,
                full_name: req.full_name,
                roles: ADMIN_ROLES.map(String::from).to_vec(),
                confirmed: true,
            })
            .await;
        match created {
            Ok(row) => {
                tracing::info!(user = %row.id, username = %row.username, "admin user created");
                Ok(EnsureAdminReply {
                    user: Some(row.to_user(false)),
                    created: true,
                })
            }
            // Another node created it in the meantime.
            Err(e) if e.code == Code::AlreadyExists => {
                match store::get_by_username(&self.store, &username_lower).await? {
                    Some(row) => Ok(EnsureAdminReply {
                        user: Some(row.to_user(false)),
                        created: false,
                    }),
                    None => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }
}

impl Service for Users {
    fn name(&self) -> &'static str {
        NAME
    }

    fn handle(&self, req: Request) -> BoxFuture<'_, Result<Bytes, MeshError>> {
        Box::pin(async move {
            match Cmd::parse(&req)? {
                Cmd::Register(r) => REGISTER.reply(self.register(r).await),
                Cmd::Create(r) => CREATE.reply(self.create(r).await),
                Cmd::Get(r) => GET.reply(self.get(r).await),
                Cmd::GetByLogin(r) => GET_BY_LOGIN.reply(self.get_by_login(r).await),
                Cmd::GetByUsername(r) => GET_BY_USERNAME.reply(self.get_by_username(r).await),
                Cmd::Update(r) => UPDATE.reply(self.update(r).await),
                Cmd::Delete(r) => DELETE.reply(self.delete(r).await),
                Cmd::List(r) => LIST.reply(self.list(r).await),
                Cmd::Search(r) => SEARCH.reply(self.search(r).await),
                Cmd::SetPassword(r) => SET_PASSWORD.reply(self.set_password(r).await),
                Cmd::PutKey(r) => PUT_KEY.reply(self.put_key(r).await),
                Cmd::GetKey(r) => GET_KEY.reply(self.get_key(r).await),
                Cmd::ListContacts(r) => {
                    // An empty user id means the caller's contacts.
                    let caller = req.caller.as_ref().map(|c| c.user_id.as_str());
                    let user_id = match r.user_id.as_str() {
                        "" => caller.unwrap_or_default(),
                        named => named,
                    };
                    LIST_CONTACTS.reply(self.list_contacts(user_id).await)
                }
                Cmd::EnsureAdmin(r) => ENSURE_ADMIN.reply(self.ensure_admin(r).await),
                Cmd::ConfirmRegistration(r) => {
                    CONFIRM_REGISTRATION.reply(self.confirm_registration(r).await)
                }
                Cmd::DbPing(()) => DB_PING.reply(self.db_ping().await),
                Cmd::Evict(r) => {
                    self.evict(r);
                    EVICT.reply(Ok(()))
                }
            }
        })
    }
}

fn user_page(rows: &[UserRow], total: i64, page: u32, per_page: u32) -> UserPage {
    UserPage {
        items: rows.iter().map(|r| r.to_user(false)).collect(),
        total: u64::try_from(total).unwrap_or_default(),
        page,
        per_page,
    }
}

#[cfg(test)]
mod tests;
