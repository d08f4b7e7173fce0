//! The `users` service's prost messages, written by hand (no `.proto`, no build step).
//!
//! Every op takes one request message and answers one reply message; the table in
//! [`super`] names which.

/// A user as clients see it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct User {
    /// Opaque id (a UUID).
    #[prost(string, tag = "1")]
    pub id: String,
    /// Login name, as registered (case preserved; unique ignoring case).
    #[prost(string, tag = "2")]
    pub username: String,
    /// Email address, as registered (unique ignoring case).
    #[prost(string, tag = "3")]
    pub email: String,
    /// Display name; may be empty.
    #[prost(string, tag = "4")]
    pub full_name: String,
    /// Roles, e.g. `["user", "admin"]`.
    #[prost(string, repeated, tag = "5")]
    pub roles: Vec<String>,
    /// Whether the email address is confirmed.
    #[prost(bool, tag = "6")]
    pub confirmed: bool,
    /// Creation time, RFC 3339 UTC with milliseconds.
    #[prost(string, tag = "7")]
    pub created_at: String,
    /// Last change, RFC 3339 UTC with milliseconds.
    #[prost(string, tag = "8")]
    pub updated_at: String,
    /// Row version, raised by every change (optimistic concurrency).
    #[prost(uint64, tag = "9")]
    pub version: u64,
    /// The PHC password hash. Only `get_by_login` fills it (for the auth service); never
    /// serialize it to a client.
    #[prost(string, tag = "10")]
    pub password_hash: String,
}

/// `register`: self-service sign-up.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RegisterRequest {
    /// 3 to 32 characters of `[A-Za-z0-9_.-]`.
    #[prost(string, tag = "1")]
    pub username: String,
    /// An email address, at most 254 characters.
    #[prost(string, tag = "2")]
    pub email: String,
    /// 8 to 128 characters with at least one letter and one digit.
    #[prost(string, tag = "3")]
    pub password: String,
    /// At most 100 characters; may be empty.
    #[prost(string, tag = "4")]
    pub full_name: String,
}

/// `create`: an admin (or the `sso` service, at a first sign-in) creates a user, choosing
/// roles and confirmation.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CreateRequest {
    /// As in [`RegisterRequest::username`].
    #[prost(string, tag = "1")]
    pub username: String,
    /// As in [`RegisterRequest::email`].
    #[prost(string, tag = "2")]
    pub email: String,
    /// As in [`RegisterRequest::password`].
    #[prost(string, tag = "3")]
    pub password: String,
    /// As in [`RegisterRequest::full_name`].
    #[prost(string, tag = "4")]
    pub full_name: String,
    /// Roles; empty means `["user"]`.
    #[prost(string, repeated, tag = "5")]
    pub roles: Vec<String>,
    /// Whether the email address counts as confirmed.
    #[prost(bool, tag = "6")]
    pub confirmed: bool,
    /// Set by the `sso` service when a first sign-in through this provider creates the
    /// account (the event then says so instead of `created_by_admin`); empty for an admin.
    #[prost(string, tag = "7")]
    pub sso_provider: String,
}

/// `get`: one user by id.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GetRequest {
    /// User id.
    #[prost(string, tag = "1")]
    pub id: String,
}

/// `delete`: remove a user with their sessions, refresh tokens, public key and contacts.
#[derive(Clone, PartialEq, prost::Message)]
pub struct DeleteRequest {
    /// User id.
    #[prost(string, tag = "1")]
    pub id: String,
}

/// `get_by_login`: one user by username or email, ignoring case.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GetByLoginRequest {
    /// A username or an email address.
    #[prost(string, tag = "1")]
    pub login: String,
}

/// A list of roles, so that "no change" and "set to these roles" differ in an update.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RoleList {
    /// Roles.
    #[prost(string, repeated, tag = "1")]
    pub roles: Vec<String>,
}

/// `update`: a partial change; absent fields are left as they are.
#[derive(Clone, PartialEq, prost::Message)]
pub struct UpdateRequest {
    /// User id.
    #[prost(string, tag = "1")]
    pub id: String,
    /// New display name.
    #[prost(string, optional, tag = "2")]
    pub full_name: Option<String>,
    /// New email address.
    #[prost(string, optional, tag = "3")]
    pub email: Option<String>,
    /// New password (hashed before it is stored).
    #[prost(string, optional, tag = "4")]
    pub password: Option<String>,
    /// New roles; only with `as_admin`.
    #[prost(message, optional, tag = "5")]
    pub roles: Option<RoleList>,
    /// Whether the caller is an admin (the protocol layer decides).
    #[prost(bool, tag = "6")]
    pub as_admin: bool,
    /// The version the caller last saw; 0 to update whatever the current version is.
    #[prost(uint64, tag = "7")]
    pub version: u64,
    /// The caller's current password, which a user must give to change their own password
    /// or email (not an admin). Only `auth.update_user` reads it: it checks it against the
    /// stored hash and passes `reauthenticated` on instead, never the password.
    #[prost(string, optional, tag = "8")]
    pub current_password: Option<String>,
    /// Set by `auth.update_user` once `current_password` proved right; without it (or
    /// `as_admin`) `users.update` refuses a password or email change.
    #[prost(bool, tag = "9")]
    pub reauthenticated: bool,
}

/// `list`: one page of all users, oldest first.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ListRequest {
    /// Page number from 1; 0 means 1.
    #[prost(uint32, tag = "1")]
    pub page: u32,
    /// Page size, 1 to 100; 0 means 20.
    #[prost(uint32, tag = "2")]
    pub per_page: u32,
}

/// `search`: users whose username or full name (or email, with `match_email`) contains
/// the query (ignoring case), or whose username starts with it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SearchRequest {
    /// The text to look for, 1 to 100 characters; `%` and `_` match themselves.
    #[prost(string, tag = "1")]
    pub query: String,
    /// Match only usernames starting with the query.
    #[prost(bool, tag = "2")]
    pub prefix_only: bool,
    /// Page number from 1; 0 means 1.
    #[prost(uint32, tag = "3")]
    pub page: u32,
    /// Page size, 1 to 100; 0 means 20.
    #[prost(uint32, tag = "4")]
    pub per_page: u32,
    /// Match emails too. The protocol layer sets it for admins only: anyone else could
    /// learn an address by searching for it.
    #[prost(bool, tag = "5")]
    pub match_email: bool,
}

/// Reply of `list` and `search`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct UserPage {
    /// The users on this page.
    #[prost(message, repeated, tag = "1")]
    pub items: Vec<User>,
    /// How many users match in all.
    #[prost(uint64, tag = "2")]
    pub total: u64,
    /// This page's number.
    #[prost(uint32, tag = "3")]
    pub page: u32,
    /// The page size used.
    #[prost(uint32, tag = "4")]
    pub per_page: u32,
}

/// `set_password`: replace a user's password.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SetPasswordRequest {
    /// User id.
    #[prost(string, tag = "1")]
    pub id: String,
    /// As in [`RegisterRequest::password`].
    #[prost(string, tag = "2")]
    pub password: String,
}

/// `put_key`: store (or replace) a user's public key.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PutKeyRequest {
    /// User id.
    #[prost(string, tag = "1")]
    pub user_id: String,
    /// The key as text (e.g. base64), at most 8 KiB.
    #[prost(string, tag = "2")]
    pub public_key: String,
    /// Key algorithm; empty means `x25519`.
    #[prost(string, tag = "3")]
    pub algorithm: String,
}

/// `get_key`: a user's public key.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GetKeyRequest {
    /// User id.
    #[prost(string, tag = "1")]
    pub user_id: String,
}

/// Reply of `put_key` and `get_key`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PublicKey {
    /// Owner.
    #[prost(string, tag = "1")]
    pub user_id: String,
    /// The key as stored.
    #[prost(string, tag = "2")]
    pub public_key: String,
    /// Key algorithm.
    #[prost(string, tag = "3")]
    pub algorithm: String,
    /// Last change, RFC 3339 UTC with milliseconds.
    #[prost(string, tag = "4")]
    pub updated_at: String,
}

/// `list_contacts`: a user's contacts.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ListContactsRequest {
    /// Whose contacts; empty means the caller's.
    #[prost(string, tag = "1")]
    pub user_id: String,
}

/// One contact: another user, by id and name.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Contact {
    /// The contact's user id.
    #[prost(string, tag = "1")]
    pub user_id: String,
    /// The contact's username.
    #[prost(string, tag = "2")]
    pub username: String,
    /// The contact's display name.
    #[prost(string, tag = "3")]
    pub full_name: String,
    /// When the contact was added, RFC 3339 UTC with milliseconds.
    #[prost(string, tag = "4")]
    pub added_at: String,
}

/// Reply of `list_contacts`, ordered by username.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ContactList {
    /// The contacts.
    #[prost(message, repeated, tag = "1")]
    pub items: Vec<Contact>,
}

/// `ensure_admin`: bootstrap an admin account if no user has this username.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EnsureAdminRequest {
    /// As in [`RegisterRequest::username`].
    #[prost(string, tag = "1")]
    pub username: String,
    /// As in [`RegisterRequest::email`].
    #[prost(string, tag = "2")]
    pub email: String,
    /// As in [`RegisterRequest::password`].
    #[prost(string, tag = "3")]
    pub password: String,
    /// As in [`RegisterRequest::full_name`].
    #[prost(string, tag = "4")]
    pub full_name: String,
}

/// Reply of `ensure_admin`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EnsureAdminReply {
    /// The admin user (new or existing).
    #[prost(message, optional, tag = "1")]
    pub user: Option<User>,
    /// Whether this call created it.
    #[prost(bool, tag = "2")]
    pub created: bool,
}

/// Reply of `db_ping`: one store round trip.
#[derive(Clone, PartialEq, prost::Message)]
pub struct DbPing {
    /// Round trip, microseconds.
    #[prost(uint64, tag = "1")]
    pub latency_us: u64,
    /// `sqlite` or `postgres`.
    #[prost(string, tag = "2")]
    pub backend: String,
}

/// `confirm_registration`: the emailed code confirms the user's email address.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ConfirmRequest {
    /// Username or email.
    #[prost(string, tag = "1")]
    pub login: String,
    /// The code from the registration notification.
    #[prost(string, tag = "2")]
    pub code: String,
}
