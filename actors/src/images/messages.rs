//! The `images` service's prost messages, written by hand like the other services'.

use bytes::Bytes;

/// `upload`: store one image for the caller.
#[derive(Clone, PartialEq, prost::Message)]
pub struct UploadRequest {
    /// The client's file name (cleaned before it is stored).
    #[prost(string, tag = "1")]
    pub filename: String,
    /// The whole image.
    #[prost(bytes = "bytes", tag = "2")]
    pub data: Bytes,
}

/// An image's metadata.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Image {
    /// Opaque id (a UUID).
    #[prost(string, tag = "1")]
    pub id: String,
    /// The cleaned file name.
    #[prost(string, tag = "2")]
    pub filename: String,
    /// The type detected from the bytes, e.g. `image/png`.
    #[prost(string, tag = "3")]
    pub content_type: String,
    /// Size in bytes.
    #[prost(uint64, tag = "4")]
    pub size: u64,
    /// The uploader's user id.
    #[prost(string, tag = "5")]
    pub owner: String,
    /// Upload time, RFC 3339 UTC with milliseconds.
    #[prost(string, tag = "6")]
    pub created_at: String,
}

/// `get`: one image by id.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GetRequest {
    /// Image id.
    #[prost(string, tag = "1")]
    pub id: String,
}

/// Reply of `get`: the metadata and the bytes.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ImageData {
    /// Metadata.
    #[prost(message, optional, tag = "1")]
    pub image: Option<Image>,
    /// The bytes.
    #[prost(bytes = "bytes", tag = "2")]
    pub data: Bytes,
}

/// `list`: one page of images, newest first.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ListRequest {
    /// Whose images; empty = everyone's (the protocol layer allows that to admins only).
    #[prost(string, tag = "1")]
    pub owner: String,
    /// Page number from 1; 0 means 1.
    #[prost(uint32, tag = "2")]
    pub page: u32,
    /// Page size, 1 to 100; 0 means 20.
    #[prost(uint32, tag = "3")]
    pub per_page: u32,
}

/// Reply of `list`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ImagePage {
    /// The images on this page.
    #[prost(message, repeated, tag = "1")]
    pub items: Vec<Image>,
    /// How many images match in all.
    #[prost(uint64, tag = "2")]
    pub total: u64,
    /// This page's number.
    #[prost(uint32, tag = "3")]
    pub page: u32,
    /// The page size used.
    #[prost(uint32, tag = "4")]
    pub per_page: u32,
}
