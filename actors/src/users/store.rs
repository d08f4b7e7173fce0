//! All SQL of the `users` service.
//!
//! Queries use `$N` placeholders and only `TEXT`/`BIGINT` columns (see [`crate::store`]).
//! User input only ever travels as bound parameters; `LIKE` patterns are escaped with
//! [`like_contains`] / [`like_prefix`] so `%` and `_` match themselves.

use sqlx::any::AnyRow;
use sqlx::Row as _;

use super::messages::{Contact, PublicKey, User};
use crate::mesh::MeshError;
use crate::store::time::rfc3339_millis;
use crate::store::{db_error, Store};

/// The `users` columns every user query selects, in [`UserRow`] order.
const COLUMNS: &str = "id, username, email, full_name, password_hash, roles, confirmed, \
                       created_at, updated_at, version";

/// One row of `users`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRow {
    /// Id.
    pub id: String,
    /// Username, case preserved.
    pub username: String,
    /// Email, case preserved.
    pub email: String,
    /// Display name.
    pub full_name: String,
    /// PHC password hash.
    pub password_hash: String,
    /// Roles, comma separated.
    pub roles: String,
    /// Whether the email is confirmed.
    pub confirmed: bool,
    /// Creation time, unix ms.
    pub created_at: i64,
    /// Last change, unix ms.
    pub updated_at: i64,
    /// Row version.
    pub version: i64,
}

impl UserRow {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            username: row.try_get("username")?,
            email: row.try_get("email")?,
            full_name: row.try_get("full_name")?,
            password_hash: row.try_get("password_hash")?,
            roles: row.try_get("roles")?,
            confirmed: row.try_get::<i64, _>("confirmed")? != 0,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            version: row.try_get("version")?,
        })
    }

    /// The roles as a list.
    pub fn role_list(&self) -> Vec<String> {
        split_roles(&self.roles)
    }

    /// The client view; the password hash only when `with_hash`.
    pub fn to_user(&self, with_hash: bool) -> User {
        User {
            id: self.id.clone(),
            username: self.username.clone(),
            email: self.email.clone(),
            full_name: self.full_name.clone(),
            roles: self.role_list(),
            confirmed: self.confirmed,
            created_at: rfc3339_millis(self.created_at),
            updated_at: rfc3339_millis(self.updated_at),
            version: u64::try_from(self.version).unwrap_or_default(),
            password_hash: if with_hash {
                self.password_hash.clone()
            } else {
                String::new()
            },
        }
    }
}

/// Roles as stored: comma separated.
pub fn join_roles(roles: &[String]) -> String {
    roles.join(",")
}

/// Roles from their stored form.
pub fn split_roles(roles: &str) -> Vec<String> {
    roles
        .split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(String::from)
        .collect()
}

/// Escapes `\`, `%` and `_` for a `LIKE ... ESCAPE '\'` pattern.
fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A `LIKE` pattern matching text that contains `s` literally.
pub fn like_contains(s: &str) -> String {
    format!("%{}%", like_escape(s))
}

/// A `LIKE` pattern matching text that starts with `s` literally.
pub fn like_prefix(s: &str) -> String {
    format!("{}%", like_escape(s))
}

/// Inserts a new user (version 1) in one statement. A duplicate username or email is
/// [`crate::mesh::Code::AlreadyExists`].
pub async fn insert<'e>(
    db: impl sqlx::Executor<'e, Database = sqlx::Any>,
    u: &UserRow,
) -> Result<(), MeshError> {
    sqlx::query(
        "INSERT INTO users (id, username, username_lower, email, email_lower, full_name, \
         password_hash, roles, confirmed, created_at, updated_at, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&u.id)
    .bind(&u.username)
    .bind(u.username.to_lowercase())
    .bind(&u.email)
    .bind(u.email.to_lowercase())
    .bind(&u.full_name)
    .bind(&u.password_hash)
    .bind(&u.roles)
    .bind(i64::from(u.confirmed))
    .bind(u.created_at)
    .bind(u.updated_at)
    .bind(u.version)
    .execute(db)
    .await
    .map_err(db_error)?;
    Ok(())
}

/// A unique field of a new user that another account holds already (ignoring case).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Taken {
    /// The username.
    Username,
    /// The email address.
    Email,
}

impl Taken {
    /// The client message, the same as a unique violation's ([`db_error`]).
    pub fn message(self) -> &'static str {
        match self {
            Taken::Username => "username already taken",
            Taken::Email => "email already registered",
        }
    }

    /// The `already_exists` error naming the field.
    pub fn error(self) -> MeshError {
        MeshError::new(crate::mesh::Code::AlreadyExists, self.message())
    }
}

/// Which of a username and an email (both lowercased) is in use already; the username
/// first when both are.
pub async fn taken(
    store: &Store,
    username_lower: &str,
    email_lower: &str,
) -> Result<Option<Taken>, MeshError> {
    let rows = sqlx::query(
        "SELECT username_lower, email_lower FROM users \
         WHERE username_lower = $1 OR email_lower = $2",
    )
    .bind(username_lower)
    .bind(email_lower)
    .fetch_all(store.pool())
    .await
    .map_err(db_error)?;
    let mut email_taken = false;
    for row in &rows {
        let u: String = row.try_get(0).map_err(db_error)?;
        if u == username_lower {
            return Ok(Some(Taken::Username));
        }
        email_taken = true;
    }
    Ok(email_taken.then_some(Taken::Email))
}

/// One user by id.
pub async fn get(store: &Store, id: &str) -> Result<Option<UserRow>, MeshError> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE id = $1");
    fetch_user(store, &sql, id).await
}

/// One user by lowercased username.
pub async fn get_by_username(
    store: &Store,
    username_lower: &str,
) -> Result<Option<UserRow>, MeshError> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE username_lower = $1");
    fetch_user(store, &sql, username_lower).await
}

/// One user by lowercased username or email. Usernames cannot contain `@` and emails
/// must, so at most one row matches.
pub async fn get_by_login(store: &Store, login_lower: &str) -> Result<Option<UserRow>, MeshError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM users WHERE username_lower = $1 OR email_lower = $1 \
         ORDER BY created_at, id LIMIT 1"
    );
    fetch_user(store, &sql, login_lower).await
}

async fn fetch_user(store: &Store, sql: &str, arg: &str) -> Result<Option<UserRow>, MeshError> {
    sqlx::query(sql)
        .bind(arg)
        .fetch_optional(store.pool())
        .await
        .and_then(|row| row.as_ref().map(UserRow::from_row).transpose())
        .map_err(db_error)
}

/// Writes `next`'s mutable fields (email, full name, password hash, roles, updated_at,
/// confirmed) if the row is still at `version`, raising the version by one. False when
/// the row changed (or vanished) since it was read.
pub async fn update_if_version<'e>(
    db: impl sqlx::Executor<'e, Database = sqlx::Any>,
    next: &UserRow,
    version: i64,
) -> Result<bool, MeshError> {
    let done = sqlx::query(
        "UPDATE users SET email = $1, email_lower = $2, full_name = $3, password_hash = $4, \
         roles = $5, updated_at = $6, confirmed = $7, version = version + 1 \
         WHERE id = $8 AND version = $9",
    )
    .bind(&next.email)
    .bind(next.email.to_lowercase())
    .bind(&next.full_name)
    .bind(&next.password_hash)
    .bind(&next.roles)
    .bind(next.updated_at)
    .bind(i64::from(next.confirmed))
    .bind(&next.id)
    .bind(version)
    .execute(db)
    .await
    .map_err(db_error)?;
    Ok(done.rows_affected() == 1)
}

/// Replaces a password hash; the updated user, or `None` if there is no such user.
pub async fn set_password(
    store: &Store,
    id: &str,
    password_hash: &str,
    now: i64,
) -> Result<Option<UserRow>, MeshError> {
    let sql = format!(
        "UPDATE users SET password_hash = $1, updated_at = $2, version = version + 1 \
         WHERE id = $3 RETURNING {COLUMNS}"
    );
    sqlx::query(&sql)
        .bind(password_hash)
        .bind(now)
        .bind(id)
        .fetch_optional(store.writer())
        .await
        .and_then(|row| row.as_ref().map(UserRow::from_row).transpose())
        .map_err(db_error)
}

/// Deletes a user with their refresh tokens, public key and contacts (both directions) in
/// one transaction, and marks their sessions revoked (the rows stay until they expire, so
/// every node's revocation poll sees them); the deleted user, or `None` if there was none.
pub async fn delete(store: &Store, id: &str) -> Result<Option<UserRow>, MeshError> {
    let mut tx = store.writer().begin().await.map_err(db_error)?;
    // Write first, so an SQLite transaction takes the write lock before it reads.
    let sql = format!("DELETE FROM users WHERE id = $1 RETURNING {COLUMNS}");
    let row = sqlx::query(&sql)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .and_then(|row| row.as_ref().map(UserRow::from_row).transpose())
        .map_err(db_error)?;
    let Some(row) = row else {
        tx.rollback().await.map_err(db_error)?;
        return Ok(None);
    };
    sqlx::query("UPDATE sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at = 0")
        .bind(id)
        .bind(crate::store::time::now_ms())
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
    for sql in [
        "DELETE FROM refresh_tokens WHERE user_id = $1",
        "DELETE FROM public_keys WHERE user_id = $1",
        "DELETE FROM contacts WHERE user_id = $1 OR contact_id = $1",
    ] {
        sqlx::query(sql)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
    }
    tx.commit().await.map_err(db_error)?;
    Ok(Some(row))
}

/// One page of all users by creation time, and how many users there are.
pub async fn list(
    store: &Store,
    limit: i64,
    offset: i64,
) -> Result<(Vec<UserRow>, i64), MeshError> {
    let total: i64 = sqlx::query("SELECT COUNT(*) FROM users")
        .fetch_one(store.pool())
        .await
        .and_then(|row| row.try_get(0))
        .map_err(db_error)?;
    let sql = format!("SELECT {COLUMNS} FROM users ORDER BY created_at, id LIMIT $1 OFFSET $2");
    let rows = sqlx::query(&sql)
        .bind(limit)
        .bind(offset)
        .fetch_all(store.pool())
        .await
        .map_err(db_error)?;
    Ok((users(&rows)?, total))
}

/// One page of the users matching an escaped `LIKE` pattern (see [`like_contains`],
/// [`like_prefix`]) by username, and how many match. With `prefix_only` only usernames
/// are matched; otherwise usernames, emails and lowercased full names.
pub async fn search(
    store: &Store,
    pattern: &str,
    prefix_only: bool,
    match_email: bool,
    limit: i64,
    offset: i64,
) -> Result<(Vec<UserRow>, i64), MeshError> {
    let filter = if prefix_only {
        "username_lower LIKE $1 ESCAPE '\\'"
    } else if match_email {
        "(username_lower LIKE $1 ESCAPE '\\' OR email_lower LIKE $1 ESCAPE '\\' \
         OR lower(full_name) LIKE $1 ESCAPE '\\')"
    } else {
        "(username_lower LIKE $1 ESCAPE '\\' OR lower(full_name) LIKE $1 ESCAPE '\\')"
    };
    let total: i64 = sqlx::query(&format!("SELECT COUNT(*) FROM users WHERE {filter}"))
        .bind(pattern)
        .fetch_one(store.pool())
        .await
        .and_then(|row| row.try_get(0))
        .map_err(db_error)?;
    let sql = format!(
        "SELECT {COLUMNS} FROM users WHERE {filter} \
         ORDER BY username_lower, id LIMIT $2 OFFSET $3"
    );
    let rows = sqlx::query(&sql)
        .bind(pattern)
        .bind(limit)
        .bind(offset)
        .fetch_all(store.pool())
        .await
        .map_err(db_error)?;
    Ok((users(&rows)?, total))
}

fn users(rows: &[AnyRow]) -> Result<Vec<UserRow>, MeshError> {
    rows.iter()
        .map(UserRow::from_row)
        .collect::<Result<_, _>>()
        .map_err(db_error)
}

/// Stores or replaces a user's public key in one statement; false when there is no
/// such user.
pub async fn put_key(
    store: &Store,
    user_id: &str,
    public_key: &str,
    algorithm: &str,
    now: i64,
) -> Result<bool, MeshError> {
    let done = sqlx::query(
        "INSERT INTO public_keys (user_id, public_key, algorithm, updated_at) \
         SELECT id, $2, $3, $4 FROM users WHERE id = $1 \
         ON CONFLICT (user_id) DO UPDATE SET public_key = excluded.public_key, \
         algorithm = excluded.algorithm, updated_at = excluded.updated_at",
    )
    .bind(user_id)
    .bind(public_key)
    .bind(algorithm)
    .bind(now)
    .execute(store.writer())
    .await
    .map_err(db_error)?;
    Ok(done.rows_affected() > 0)
}

/// A user's public key, if stored.
pub async fn get_key(store: &Store, user_id: &str) -> Result<Option<PublicKey>, MeshError> {
    let row = sqlx::query(
        "SELECT user_id, public_key, algorithm, updated_at FROM public_keys WHERE user_id = $1",
    )
    .bind(user_id)
    .fetch_optional(store.pool())
    .await
    .map_err(db_error)?;
    row.map(|row| {
        Ok(PublicKey {
            user_id: row.try_get("user_id")?,
            public_key: row.try_get("public_key")?,
            algorithm: row.try_get("algorithm")?,
            updated_at: rfc3339_millis(row.try_get("updated_at")?),
        })
    })
    .transpose()
    .map_err(db_error)
}

/// The users `user_id` has as contacts, by username.
pub async fn contacts(store: &Store, user_id: &str) -> Result<Vec<Contact>, MeshError> {
    let rows = sqlx::query(
        "SELECT c.contact_id, u.username, u.full_name, c.created_at \
         FROM contacts c JOIN users u ON u.id = c.contact_id \
         WHERE c.user_id = $1 ORDER BY u.username_lower, c.contact_id",
    )
    .bind(user_id)
    .fetch_all(store.pool())
    .await
    .map_err(db_error)?;
    rows.iter()
        .map(|row| {
            Ok(Contact {
                user_id: row.try_get(0)?,
                username: row.try_get(1)?,
                full_name: row.try_get(2)?,
                added_at: rfc3339_millis(row.try_get(3)?),
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(db_error)
}

/// Marks an unconfirmed user confirmed; false when the user is missing or confirmed
/// already.
pub async fn confirm<'e>(
    db: impl sqlx::Executor<'e, Database = sqlx::Any>,
    id: &str,
    now: i64,
) -> Result<bool, MeshError> {
    let done = sqlx::query(
        "UPDATE users SET confirmed = 1, updated_at = $1, version = version + 1 \
         WHERE id = $2 AND confirmed = 0",
    )
    .bind(now)
    .bind(id)
    .execute(db)
    .await
    .map_err(db_error)?;
    Ok(done.rows_affected() == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_contains("50%_off"), r"%50\%\_off%");
        assert_eq!(like_prefix(r"a\b"), r"a\\b%");
        assert_eq!(like_contains("plain"), "%plain%");
    }

    #[test]
    fn roles_round_trip_through_their_stored_form() {
        let roles = vec!["user".to_string(), "admin".to_string()];
        assert_eq!(join_roles(&roles), "user,admin");
        assert_eq!(split_roles("user,admin"), roles);
        assert_eq!(split_roles(""), Vec::<String>::new());
        assert_eq!(split_roles("user, admin,"), roles);
    }
}
