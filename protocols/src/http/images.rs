//! `GET /images/:id`: an image's bytes, public-read, with the type detected at upload, so a
//! browser can show it but never sniff it into something else.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use troupe_actors::images::{self, messages as im};
use troupe_actors::mesh::{Call, MeshError};

use super::request_id::Rid;
use super::{ask, ApiError, AppState};

/// The handler.
pub async fn get(
    State(state): State<AppState>,
    Rid(rid): Rid,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let got: im::ImageData = ask(
        &state,
        Call::new(images::NAME, images::GET)
            .request_id(rid)
            .payload(&im::GetRequest { id }),
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
