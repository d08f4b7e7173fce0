//! `troupe.images.v1.ImageService`: uploads (client streaming, or one unary message), lists
//! and fetches, as calls to the `images` service. The size cap is enforced here while the
//! chunks arrive, so an oversized upload is refused before it is buffered whole.

use bytes::{Bytes, BytesMut};
use tonic::{Request, Response, Status, Streaming};
use troupe_actors::images::{self, messages as im};
use troupe_actors::mesh::{Code, MeshError};
use troupe_proto::images as pb;
use troupe_proto::images::image_service_server::ImageService;

use super::context::{is_admin, Context};
use super::error::{invalid, status};
use super::{ask, State};

/// The `ImageService` of one node.
#[derive(Clone)]
pub struct Images {
    state: State,
}

impl Images {
    /// The service over the node's gRPC state.
    pub fn new(state: State) -> Self {
        Self { state }
    }

    /// The client view of a stored image, with its public URL on this node.
    fn image(&self, i: im::Image) -> pb::Image {
        let url = format!(
            "{}/images/{}",
            self.state.config.public_url.trim_end_matches('/'),
            i.id
        );
        pb::Image {
            id: i.id,
            filename: i.filename,
            content_type: i.content_type,
            size: i.size,
            owner: i.owner,
            created_at: i.created_at,
            url,
        }
    }

    fn too_large(&self) -> Status {
        status(images::too_large(self.state.config.max_image_bytes))
    }

    /// Stores a complete upload for the caller.
    async fn store(
        &self,
        ctx: &Context,
        caller: troupe_proto::mesh::Caller,
        filename: String,
        data: Bytes,
    ) -> Result<Response<pb::Image>, Status> {
        let image: im::Image = ask(
            &self.state,
            ctx.call(&images::UPLOAD, im::UploadRequest { filename, data })
                .caller(caller),
        )
        .await?;
        Ok(Response::new(self.image(image)))
    }

    /// Checks an upload's metadata before any bytes are kept.
    fn check_metadata(&self, meta: Option<&pb::ImageMetadata>) -> Result<String, Status> {
        let meta = meta.ok_or_else(|| invalid("the first upload message must carry metadata"))?;
        if meta.size > self.state.config.max_image_bytes as u64 {
            return Err(self.too_large());
        }
        Ok(meta.filename.clone())
    }
}

#[tonic::async_trait]
impl ImageService for Images {
    async fn upload_image(
        &self,
        request: Request<Streaming<pb::UploadImageRequest>>,
    ) -> Result<Response<pb::Image>, Status> {
        let ctx = Context::of(request.metadata(), self.state.request_timeout);
        let caller = ctx.caller(&self.state)?;
        let max = self.state.config.max_image_bytes;
        let mut stream = request.into_inner();
        let first = stream
            .message()
            .await?
            .ok_or_else(|| invalid("empty upload: no messages"))?;
        let filename = self.check_metadata(first.metadata.as_ref())?;
        if first.chunk.len() > max {
            return Err(self.too_large());
        }
        let mut single = Some(first.chunk);
        let mut buf = BytesMut::new();
        while let Some(msg) = stream.message().await? {
            if msg.metadata.is_some() {
                return Err(invalid("metadata is only allowed in the first message"));
            }
            if let Some(first) = single.take() {
                buf.extend_from_slice(&first);
            }
            if buf.len() + msg.chunk.len() > max {
                return Err(self.too_large());
            }
            buf.extend_from_slice(&msg.chunk);
        }
        let data = match single {
            Some(only) => only,
            None => buf.freeze(),
        };
        self.store(&ctx, caller, filename, data).await
    }

    async fn upload_image_unary(
        &self,
        request: Request<pb::UploadImageRequest>,
    ) -> Result<Response<pb::Image>, Status> {
        let ctx = Context::of(request.metadata(), self.state.request_timeout);
        let caller = ctx.caller(&self.state)?;
        let msg = request.into_inner();
        let filename = self.check_metadata(msg.metadata.as_ref())?;
        if msg.chunk.len() > self.state.config.max_image_bytes {
            return Err(self.too_large());
        }
        self.store(&ctx, caller, filename, msg.chunk).await
    }

    async fn list_images(
        &self,
        request: Request<pb::ListImagesRequest>,
    ) -> Result<Response<pb::ListImagesResponse>, Status> {
        let ctx = Context::of(request.metadata(), self.state.request_timeout);
        let caller = ctx.caller(&self.state)?;
        let r = request.into_inner();
        let owner = if r.all {
            if !is_admin(&caller) {
                return Err(status(MeshError::new(
                    Code::PermissionDenied,
                    "listing every user's images is for admins",
                )));
            }
            String::new()
        } else {
            caller.user_id.clone()
        };
        let page: im::ImagePage = ask(
            &self.state,
            ctx.call(
                &images::LIST,
                im::ListRequest {
                    owner,
                    page: r.page,
                    per_page: r.per_page,
                },
            )
            .caller(caller),
        )
        .await?;
        Ok(Response::new(pb::ListImagesResponse {
            items: page.items.into_iter().map(|i| self.image(i)).collect(),
            total: page.total,
            page: page.page,
            per_page: page.per_page,
        }))
    }

    async fn get_image(
        &self,
        request: Request<pb::GetImageRequest>,
    ) -> Result<Response<pb::GetImageResponse>, Status> {
        let ctx = Context::of(request.metadata(), self.state.request_timeout);
        let id = request.into_inner().id;
        let got: im::ImageData =
            ask(&self.state, ctx.call(&images::GET, im::GetRequest { id })).await?;
        let image = got
            .image
            .ok_or_else(|| status(MeshError::internal("image reply without metadata")))?;
        Ok(Response::new(pb::GetImageResponse {
            image: Some(self.image(image)),
            data: got.data,
        }))
    }
}
