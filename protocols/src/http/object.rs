//! Reading a JSON object body field by field, so a field of the wrong JSON type is reported
//! like any other bad field (`invalid_argument` "validation failed" with
//! `{"fields": {"<name>": "<message>"}}`) instead of as one opaque parse error. Unknown
//! fields are ignored; `null` counts as absent.

use serde_json::{Map, Value};
use troupe_actors::mesh::MeshError;
use troupe_actors::users::validate::Fields;

use super::ApiError;

/// A JSON object being read; collects type errors.
pub struct Object<'a> {
    map: &'a Map<String, Value>,
    fields: Fields,
}

impl<'a> Object<'a> {
    /// The body as an object, or the error that it is not one.
    pub fn new(body: &'a Value) -> Result<Self, ApiError> {
        match body {
            Value::Object(map) => Ok(Self {
                map,
                fields: Fields::new(),
            }),
            _ => Err(MeshError::invalid("request body must be a JSON object").into()),
        }
    }

    fn present(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    /// A string field.
    pub fn string(&mut self, key: &'static str) -> Option<String> {
        match self.present(key)? {
            Value::String(s) => Some(s.clone()),
            _ => {
                self.fields.check(key, Err("must be a string".into()));
                None
            }
        }
    }

    /// A whole-number field.
    pub fn int(&mut self, key: &'static str) -> Option<i64> {
        let v = self.present(key)?;
        // A whole float (`2.0`) is an integer as JSON Schema has it.
        let whole = || {
            v.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= i64::MIN as f64 && *f < i64::MAX as f64)
                .map(|f| f as i64)
        };
        match v.as_i64().or_else(whole) {
            Some(n) => Some(n),
            None => {
                let message = if v.is_number() {
                    "must be a whole number in range"
                } else {
                    "must be a number"
                };
                self.fields.check(key, Err(message.into()));
                None
            }
        }
    }

    /// A boolean field.
    pub fn bool(&mut self, key: &'static str) -> Option<bool> {
        match self.present(key)? {
            Value::Bool(b) => Some(*b),
            _ => {
                self.fields.check(key, Err("must be true or false".into()));
                None
            }
        }
    }

    /// An array field.
    pub fn array(&mut self, key: &'static str) -> Option<&'a Vec<Value>> {
        match self.present(key)? {
            Value::Array(items) => Some(items),
            _ => {
                self.fields.check(key, Err("must be an array".into()));
                None
            }
        }
    }

    /// Records that `key` is bad (a problem found inside it, such as an item of an array).
    pub fn invalid(&mut self, key: &'static str, message: String) {
        self.fields.check(key, Err(message));
    }

    /// Any JSON value, as text.
    pub fn json_text(&self, key: &str) -> Option<String> {
        self.present(key).map(Value::to_string)
    }

    /// `Ok` when every field read had the right type.
    pub fn finish(self) -> Result<(), ApiError> {
        self.fields.finish().map_err(ApiError::from)
    }
}
