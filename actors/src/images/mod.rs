//! The `images` service: sanitized image uploads kept in the SQL store.
//!
//! # Ops
//! | op | kind | request | reply |
//! |---|---|---|---|
//! | `upload` | effectful | [`UploadRequest`] (owner = the caller) | [`Image`] |
//! | `get` | idempotent | [`GetRequest`] | [`ImageData`] |
//! | `list` | idempotent | [`ListRequest`] | [`ImagePage`] |
//!
//! An upload is refused with `unauthenticated` without a caller, `invalid_argument` when it
//! is empty or its bytes are not a PNG, JPEG, GIF or WebP ([`sniff`]), and
//! `resource_exhausted` when it is larger than the configured cap. The stored type is the
//! detected one; the file name is cleaned ([`sniff::clean_filename`]). A missing image is
//! `not_found`.
//!
//! Who may list whose images is the protocol layer's call (it passes the caller's id, or an
//! empty owner for an admin's "all"); reading one image is public.
//!
//! # Layout
//! - this file: the ops ([`Cmd`]), the [`Service`] impl and one typed method per op;
//! - [`messages`]: the prost messages;
//! - [`sniff`]: type detection and file name cleaning;
//! - [`store`]: all SQL.

pub mod messages;
pub mod sniff;
pub mod store;

use bytes::Bytes;

pub use messages::*;

use self::store::ImageRow;
use crate::mesh::{BoxFuture, Code, MeshError, Request, Service};
use crate::store::time::now_ms;
use crate::store::Store;
use crate::users::validate;

/// Service name.
pub const NAME: &str = "images";

crate::ops! {
    /// An op of `images`, decoded at the service's edge.
    pub enum Cmd for NAME {
        /// Store one image owned by the caller.
        Upload = UPLOAD("upload", effectful): UploadRequest => Image,
        /// One image with its bytes.
        Get = GET("get", idempotent): GetRequest => ImageData,
        /// One page of an owner's (or everyone's) images, newest first.
        List = LIST("list", idempotent): ListRequest => ImagePage,
    }
}

/// Default cap on an image's size.
pub const DEFAULT_MAX_BYTES: usize = 5 * 1024 * 1024;

/// The per-user quota on the bytes of one's images (`[quotas] image_bytes_per_user`).
pub const QUOTA: &str = "image_bytes_per_user";

/// The `images` service.
#[derive(Clone)]
pub struct Images {
    store: Store,
    max_bytes: usize,
    quota_bytes: u64,
}

/// The error for an image over the cap.
pub fn too_large(max_bytes: usize) -> MeshError {
    MeshError::new(
        Code::ResourceExhausted,
        format!("image too large: the limit is {max_bytes} bytes"),
    )
}

impl Images {
    /// The service over `store`, refusing images larger than `max_bytes`.
    pub fn new(store: Store, max_bytes: usize) -> Self {
        Self {
            store,
            max_bytes,
            quota_bytes: u64::MAX,
        }
    }

    /// The same, with at most `bytes` of images per owner (`[quotas] image_bytes_per_user`).
    pub fn with_quota(mut self, bytes: u64) -> Self {
        self.quota_bytes = bytes;
        self
    }

    /// `upload`: checks, sanitizes and stores one image owned by `owner`.
    pub async fn upload(&self, owner: &str, req: UploadRequest) -> Result<Image, MeshError> {
        if owner.is_empty() {
            return Err(MeshError::new(
                Code::Unauthenticated,
                "uploading needs an authenticated caller",
            ));
        }
        if req.data.is_empty() {
            return Err(MeshError::invalid("the image is empty"));
        }
        if req.data.len() > self.max_bytes {
            return Err(too_large(self.max_bytes));
        }
        let kind = sniff::detect(&req.data).ok_or_else(|| {
            MeshError::invalid("not an image: only PNG, JPEG, GIF and WebP are accepted")
        })?;
        let row = ImageRow {
            id: uuid::Uuid::new_v4().to_string(),
            owner: owner.to_string(),
            filename: sniff::clean_filename(&req.filename, kind),
            content_type: kind.mime().to_string(),
            size: i64::try_from(req.data.len()).unwrap_or(i64::MAX),
            created_at: now_ms(),
        };
        if !store::insert(&self.store, &row, &req.data, self.quota_bytes).await? {
            return Err(crate::auth::limits::over_quota(
                QUOTA,
                self.quota_bytes,
                true,
            ));
        }
        tracing::debug!(image = %row.id, owner, size = row.size, "image stored");
        Ok(row.to_image())
    }

    /// `get`: one image with its bytes.
    pub async fn get(&self, req: GetRequest) -> Result<ImageData, MeshError> {
        validate::id("id", &req.id)?;
        let (row, data) = store::get(&self.store, &req.id)
            .await?
            .ok_or_else(|| MeshError::not_found("image not found"))?;
        Ok(ImageData {
            image: Some(row.to_image()),
            data,
        })
    }

    /// `list`: one page of an owner's (or everyone's) images, newest first.
    pub async fn list(&self, req: ListRequest) -> Result<ImagePage, MeshError> {
        let (page, per_page) = validate::page(req.page, req.per_page)?;
        let (limit, offset) = crate::common::validate::limit_offset(page, per_page);
        let owner = Some(req.owner.as_str()).filter(|o| !o.is_empty());
        let (rows, total) = store::list(&self.store, owner, limit, offset).await?;
        Ok(ImagePage {
            items: rows.iter().map(ImageRow::to_image).collect(),
            total: u64::try_from(total).unwrap_or_default(),
            page,
            per_page,
        })
    }
}

impl Service for Images {
    fn name(&self) -> &'static str {
        NAME
    }

    fn handle(&self, req: Request) -> BoxFuture<'_, Result<Bytes, MeshError>> {
        Box::pin(async move {
            match Cmd::parse(&req)? {
                Cmd::Upload(u) => {
                    let owner = req.caller.as_ref().map(|c| c.user_id.as_str());
                    UPLOAD.reply(self.upload(owner.unwrap_or_default(), u).await)
                }
                Cmd::Get(g) => GET.reply(self.get(g).await),
                Cmd::List(l) => LIST.reply(self.list(l).await),
            }
        })
    }
}

#[cfg(test)]
mod tests;
