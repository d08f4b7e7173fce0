//! A JSON body extractor whose rejections (bad syntax, wrong types, wrong content type, too
//! large) are [`ApiError`]s in the contract's form.
//!
//! JSON has one number type, and JSON Schema's `integer` is "a number with a zero
//! fractional part", so `2.0` is an integer as the contract has it; serde reads only `2`
//! into an integer field. A body that fails to decode is therefore decoded once more with
//! its whole floats (`2.0`, `1e3`) written as integers, and refused only if that fails too.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::HeaderMap;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde_json::{Number, Value};
use troupe_actors::mesh::MeshError;

use super::ApiError;

/// Like `axum::Json`, with API-shaped rejections.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !json_content_type(req.headers()) {
            return Err(MeshError::invalid(
                "expected request with `content-type: application/json`",
            )
            .into());
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(JsonRejection::from)?;
        match axum::Json::<T>::from_bytes(&bytes) {
            Ok(axum::Json(v)) => Ok(Json(v)),
            Err(e) => match with_whole_floats_as_integers(&bytes) {
                Some(v) => Ok(Json(v)),
                None => Err(e.into()),
            },
        }
    }
}

/// `bytes` decoded as `T` the way [`Json`] decodes a body (whole floats read as integers).
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, serde_json::Error> {
    serde_json::from_slice(bytes).or_else(|e| with_whole_floats_as_integers(bytes).ok_or(e))
}

/// Whether the request says its body is JSON: `application/json` or `application/*+json`,
/// as axum has it.
fn json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    let Some((ty, subtype)) = essence.split_once('/') else {
        return false;
    };
    ty.eq_ignore_ascii_case("application")
        && (subtype.eq_ignore_ascii_case("json")
            || subtype.len() > 5 && subtype[subtype.len() - 5..].eq_ignore_ascii_case("+json"))
}

/// `bytes` decoded as `T` after writing every whole float that fits an `i64` or `u64` as
/// an integer; `None` when it is not JSON, has no such float, or still does not decode.
fn with_whole_floats_as_integers<T: DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    let mut value: Value = serde_json::from_slice(bytes).ok()?;
    if !integers(&mut value) {
        return None;
    }
    serde_json::from_value(value).ok()
}

/// Writes the whole floats in `v` as integers; whether there were any.
fn integers(v: &mut Value) -> bool {
    match v {
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            let whole = if f.fract() != 0.0 || !f.is_finite() {
                None
            } else if f >= 0.0 && f < u64::MAX as f64 {
                Some(Number::from(f as u64))
            } else if f < 0.0 && f >= i64::MIN as f64 {
                Some(Number::from(f as i64))
            } else {
                None
            };
            match whole {
                Some(i) => {
                    *n = i;
                    true
                }
                None => false,
            }
        }
        Value::Array(items) => all_integers(items.iter_mut()),
        Value::Object(map) => all_integers(map.values_mut()),
        _ => false,
    }
}

/// [`integers`] of every value (not stopping at the first one that had a whole float).
fn all_integers<'a>(values: impl Iterator<Item = &'a mut Value>) -> bool {
    let mut any = false;
    for v in values {
        any |= integers(v);
    }
    any
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Page {
        page: u32,
        rate: Option<f64>,
    }

    #[test]
    fn whole_floats_are_integers() {
        let p: Page = with_whole_floats_as_integers(br#"{"page": 2.0, "rate": 1.5}"#).unwrap();
        assert_eq!(
            p,
            Page {
                page: 2,
                rate: Some(1.5)
            }
        );
        assert!(with_whole_floats_as_integers::<Page>(br#"{"page": 2.5}"#).is_none());
        assert!(with_whole_floats_as_integers::<Page>(br#"{"page": -1.0}"#).is_none());
    }

    #[test]
    fn json_content_types() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(CONTENT_TYPE, v.parse().unwrap());
            json_content_type(&h)
        };
        assert!(with("application/json"));
        assert!(with("application/json; charset=utf-8"));
        assert!(with("application/problem+json"));
        assert!(!with("text/plain"));
        assert!(!with("application/jsonx"));
        assert!(!json_content_type(&HeaderMap::new()));
    }
}
