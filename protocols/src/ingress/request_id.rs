//! Request ids: taken from the client when it sent a usable one, otherwise made here.

/// Longest client-given request id kept; a longer one is replaced.
pub const MAX_LEN: usize = 128;

/// Room for one id made here.
pub type Buf = [u8; uuid::fmt::Hyphenated::LENGTH];

/// A random (v4) UUID, lower-case and hyphenated, encoded straight into `buf` instead of
/// through `Display` into a `String` (HTTP makes a header value of it with no allocation).
pub fn new_id_in(buf: &mut Buf) -> &str {
    uuid::Uuid::new_v4().hyphenated().encode_lower(buf)
}

/// A new id as a `String`.
pub fn new_id() -> String {
    new_id_in(&mut [0u8; uuid::fmt::Hyphenated::LENGTH]).to_string()
}

/// The client's id when it is usable (1 to [`MAX_LEN`] visible ASCII characters), else a
/// new one.
pub fn accept(given: Option<&str>) -> String {
    given
        .filter(|v| !v.is_empty() && v.len() <= MAX_LEN && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(String::from)
        .unwrap_or_else(new_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usable_ids_are_kept_and_others_replaced() {
        assert_eq!(accept(Some("rid-7")), "rid-7");
        for bad in [None, Some(""), Some("a b"), Some(&*"x".repeat(129))] {
            let id = accept(bad);
            assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 4);
        }
        assert_ne!(new_id(), new_id());
    }
}
