//! `GET /images/:id`: an image's bytes, public-read, with the type detected at upload, so a
//! browser can show it but never sniff it into something else.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use troupe_actors::images::{self, messages as im};
use troupe_actors::mesh::MeshError;

use super::openapi::ErrorBody;
use super::request_id::Rid;
use super::{ask, ApiError, AppState};

/// `GET /images/:id`: a stored image.
#[utoipa::path(
    get,
    path = "/images/{id}",
    tag = "images",
    description = "An image's bytes, public (no credential). The type is the one detected from \
        the bytes at upload (PNG, JPEG, GIF or WebP), never the uploader's word; the reply \
        carries `Content-Disposition: inline` with the stored file name, \
        `X-Content-Type-Options: nosniff`, a sandboxing `Content-Security-Policy`, and may be \
        cached for a day (`Cache-Control: public, max-age=86400, immutable`).",
    params(("id" = String, Path, description = "The image's id", min_length = 1, max_length = 64, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")),
    responses(
        (status = 200, description = "The image's bytes (binary), with its detected type as `Content-Type`",
            content(
                ("image/png"),
                ("image/jpeg"),
                ("image/gif"),
                ("image/webp"),
            ),
            headers(
                ("Content-Disposition" = String, description = "`inline; filename=\"<stored file name>\"`"),
                ("Cache-Control" = String, description = "`public, max-age=86400, immutable`"),
            )
        ),
        (status = 404, description = "No such image", body = ErrorBody),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    Rid(rid): Rid,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let got: im::ImageData = ask(
        &state,
        images::GET.call(im::GetRequest { id }).request_id(rid),
    )
    .await?;
    let image = got
        .image
        .ok_or_else(|| MeshError::internal("image reply without metadata"))?;
    let disposition = format!("inline; filename=\"{}\"", image.filename);
    Ok((
        [
            (header::CONTENT_TYPE, image.content_type),
            (header::CONTENT_DISPOSITION, disposition),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
            (
                header::CACHE_CONTROL,
                "public, max-age=86400, immutable".to_string(),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; sandbox".to_string(),
            ),
        ],
        got.data,
    )
        .into_response())
}
