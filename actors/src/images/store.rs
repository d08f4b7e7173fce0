//! All SQL of the `images` service: table `images` (metadata plus the bytes as a blob:
//! `BYTEA`, which PostgreSQL stores as such and SQLite keeps as a BLOB value).
//!
//! Lists never read the `data` column.

use bytes::Bytes;
use sqlx::any::AnyRow;
use sqlx::Row as _;

use super::messages::Image;
use crate::common::quota;
use crate::mesh::MeshError;
use crate::store::time::rfc3339_millis;
use crate::store::{db_error, Store};

/// The metadata columns, in [`ImageRow::from_row`] order.
const COLUMNS: &str = "id, owner, filename, content_type, size, created_at";

/// One row of `images` without its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRow {
    /// Id.
    pub id: String,
    /// Uploader's user id.
    pub owner: String,
    /// Cleaned file name.
    pub filename: String,
    /// Detected MIME type.
    pub content_type: String,
    /// Size in bytes.
    pub size: i64,
    /// Upload time, unix ms.
    pub created_at: i64,
}

impl ImageRow {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            owner: row.try_get("owner")?,
            filename: row.try_get("filename")?,
            content_type: row.try_get("content_type")?,
            size: row.try_get("size")?,
            created_at: row.try_get("created_at")?,
        })
    }

    /// The client view.
    pub fn to_image(&self) -> Image {
        Image {
            id: self.id.clone(),
            filename: self.filename.clone(),
            content_type: self.content_type.clone(),
            size: u64::try_from(self.size).unwrap_or_default(),
            owner: self.owner.clone(),
            created_at: rfc3339_millis(self.created_at),
        }
    }
}

/// Inserts an image with its bytes in one statement, unless its owner's images would then
/// take more than `quota` bytes (the sum and the insert are one statement). Whether it was
/// inserted.
///
/// The statement runs in a transaction holding the owner's lock for the quota
/// ([`quota::hold`]), so uploads of one owner racing each other, on any node and either
/// backend, are counted one after the other: the quota is exact.
pub async fn insert(
    store: &Store,
    row: &ImageRow,
    data: &[u8],
    quota: u64,
) -> Result<bool, MeshError> {
    let mut tx = store.begin().await?;
    quota::hold(&mut tx, store.backend(), super::QUOTA, &row.owner).await?;
    let done = sqlx::query(
        "INSERT INTO images (id, owner, filename, content_type, size, created_at, data) \
         SELECT $1, $2, $3, $4, $5, $6, $7 \
         WHERE (SELECT COALESCE(SUM(size), 0) FROM images WHERE owner = $2) + $5 <= $8",
    )
    .bind(&row.id)
    .bind(&row.owner)
    .bind(&row.filename)
    .bind(&row.content_type)
    .bind(row.size)
    .bind(row.created_at)
    .bind(data)
    .bind(i64::try_from(quota).unwrap_or(i64::MAX))
    .execute(&mut *tx)
    .await
    .map_err(db_error)?;
    tx.commit().await.map_err(db_error)?;
    Ok(done.rows_affected() == 1)
}

/// One image with its bytes.
pub async fn get(store: &Store, id: &str) -> Result<Option<(ImageRow, Bytes)>, MeshError> {
    let sql = format!("SELECT {COLUMNS}, data FROM images WHERE id = $1");
    let row = sqlx::query(&sql)
        .bind(id)
        .fetch_optional(store.pool())
        .await
        .map_err(db_error)?;
    row.map(|row| {
        let data: Vec<u8> = row.try_get("data")?;
        Ok((ImageRow::from_row(&row)?, Bytes::from(data)))
    })
    .transpose()
    .map_err(db_error)
}

/// One page of images, newest first: `owner`'s, or everyone's when `owner` is `None`; and
/// how many match.
pub async fn list(
    store: &Store,
    owner: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<ImageRow>, i64), MeshError> {
    let (filter, count_sql) = match owner {
        Some(_) => (
            "WHERE owner = $3",
            "SELECT COUNT(*) FROM images WHERE owner = $1",
        ),
        None => ("", "SELECT COUNT(*) FROM images"),
    };
    let mut count = sqlx::query(count_sql);
    if let Some(owner) = owner {
        count = count.bind(owner);
    }
    let total: i64 = count
        .fetch_one(store.pool())
        .await
        .and_then(|row| row.try_get(0))
        .map_err(db_error)?;
    let sql = format!(
        "SELECT {COLUMNS} FROM images {filter} ORDER BY created_at DESC, id LIMIT $1 OFFSET $2"
    );
    let mut query = sqlx::query(&sql).bind(limit).bind(offset);
    if let Some(owner) = owner {
        query = query.bind(owner);
    }
    let rows = query.fetch_all(store.pool()).await.map_err(db_error)?;
    let rows = rows
        .iter()
        .map(ImageRow::from_row)
        .collect::<Result<_, _>>()
        .map_err(db_error)?;
    Ok((rows, total))
}
