//! Per-user quotas counted in the store (`[quotas]`: active tasks, image bytes): the count
//! and the write that would pass it must be one atomic step on every backend, or requests
//! of one user racing each other each see the same count and all get in.
//!
//! Each service writes with one statement that inserts only while the user is under the
//! quota (`INSERT ... SELECT ... WHERE (SELECT COUNT(*) ...) < $limit`), inside a
//! transaction that first takes the user's lock for that quota ([`hold`]):
//! - SQLite runs one write transaction at a time per file (every node of a local cluster
//!   shares it), so the statement's count is always current and [`hold`] has nothing to do.
//! - PostgreSQL (read committed) would let two transactions count at once and insert both.
//!   [`hold`] takes a transaction-scoped advisory lock keyed by quota and user
//!   (`pg_advisory_xact_lock(hashtext(quota), hashtext(user))`): the next writer of that
//!   user waits for the commit, and its statement, which takes its snapshot after the
//!   wait, counts the committed row. Other users (and other quotas) do not wait, but for
//!   the rare pair whose keys collide, which only waits. Nothing to clean up: the lock ends
//!   with the transaction, also when its connection dies.

use crate::mesh::MeshError;
use crate::store::{db_error, Backend};

/// Holds `user_id`'s lock for `quota` until the end of the transaction `tx` (see the
/// module doc): call it first in the transaction that counts and writes.
pub async fn hold(
    tx: &mut sqlx::AnyConnection,
    backend: Backend,
    quota: &str,
    user_id: &str,
) -> Result<(), MeshError> {
    if backend != Backend::Postgres {
        return Ok(());
    }
    // The lock function returns `void`, which the `Any` driver cannot decode: the
    // statement answers a constant instead (the lock call is volatile, so it is run).
    sqlx::query("SELECT 1 FROM (SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))) AS held")
        .bind(quota)
        .bind(user_id)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
    Ok(())
}
