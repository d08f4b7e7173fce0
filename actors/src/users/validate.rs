//! Field validation for the `users` service.
//!
//! Field checks answer `Err(message)` for a bad value; a [`Fields`] collects them so a
//! request reports every bad field at once, as
//! `invalid_argument "validation failed"` with details `{"fields": {"<name>": "<message>"}}`.
//! [`Fields`], [`id`] and [`page`] are shared with other services
//! ([`crate::common::validate`]) and re-exported here.

use crate::mesh::MeshError;

pub use crate::common::validate::{id, page, Fields, ID_MAX, PER_PAGE_DEFAULT, PER_PAGE_MAX};

/// Shortest username.
pub const USERNAME_MIN: usize = 3;
/// Longest username.
pub const USERNAME_MAX: usize = 32;
/// Longest email address.
pub const EMAIL_MAX: usize = 254;
/// Shortest password.
pub const PASSWORD_MIN: usize = 8;
/// Longest password.
pub const PASSWORD_MAX: usize = 128;
/// Longest display name.
pub const FULL_NAME_MAX: usize = 100;
/// Most roles a user may have.
pub const ROLES_MAX: usize = 16;
/// Longest role name.
pub const ROLE_MAX: usize = 32;
/// Largest public key, in bytes.
pub const PUBLIC_KEY_MAX: usize = 8 * 1024;
/// Longest key algorithm name.
pub const ALGORITHM_MAX: usize = 32;
/// Longest search query.
pub const QUERY_MAX: usize = 100;

/// 3 to 32 characters of `[A-Za-z0-9_.-]`.
pub fn username(s: &str) -> Result<(), String> {
    let ok = (USERNAME_MIN..=USERNAME_MAX).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "must be {USERNAME_MIN} to {USERNAME_MAX} characters of letters, digits, '_', '.' or '-'"
        ))
    }
}

/// Looks like an email address: at most 254 characters, one `@`, a non-empty local part,
/// a domain with a dot between non-empty labels, no spaces or control characters.
pub fn email(s: &str) -> Result<(), String> {
    let well_formed = || {
        if s.chars().count() > EMAIL_MAX || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return false;
        }
        let Some((local, domain)) = s.split_once('@') else {
            return false;
        };
        !local.is_empty()
            && !domain.contains('@')
            && domain.contains('.')
            && domain.split('.').all(|label| !label.is_empty())
    };
    if well_formed() {
        Ok(())
    } else {
        Err(format!(
            "must be a valid email address of at most {EMAIL_MAX} characters"
        ))
    }
}

/// 8 to 128 characters with at least one letter and one digit.
pub fn password(s: &str) -> Result<(), String> {
    let len = s.chars().count();
    let ok = (PASSWORD_MIN..=PASSWORD_MAX).contains(&len)
        && s.chars().any(char::is_alphabetic)
        && s.chars().any(|c| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "must be {PASSWORD_MIN} to {PASSWORD_MAX} characters with at least one letter and one digit"
        ))
    }
}

/// At most 100 characters, no control characters; may be empty.
pub fn full_name(s: &str) -> Result<(), String> {
    if s.chars().count() <= FULL_NAME_MAX && !s.chars().any(char::is_control) {
        Ok(())
    } else {
        Err(format!(
            "must be at most {FULL_NAME_MAX} characters without control characters"
        ))
    }
}

/// 1 to 16 role names of 1 to 32 characters of `[a-z0-9_-]` (16 names given, duplicates
/// included, as the API's schema counts them). Answers them deduplicated,
/// in their first-seen order; an empty list becomes `["user"]`.
pub fn roles(roles: &[String]) -> Result<Vec<String>, String> {
    if roles.is_empty() {
        return Ok(vec!["user".to_string()]);
    }
    if roles.len() > ROLES_MAX {
        return Err(roles_message());
    }
    let valid = |r: &String| {
        (1..=ROLE_MAX).contains(&r.len())
            && r.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-'))
    };
    let mut out: Vec<String> = Vec::with_capacity(roles.len());
    for r in roles {
        if !valid(r) {
            return Err(roles_message());
        }
        if !out.contains(r) {
            out.push(r.clone());
        }
    }
    if out.len() > ROLES_MAX {
        return Err(roles_message());
    }
    Ok(out)
}

fn roles_message() -> String {
    format!(
        "must be 1 to {ROLES_MAX} roles of 1 to {ROLE_MAX} lowercase letters, digits, '_' or '-'"
    )
}

/// A public key: 1 byte to 8 KiB of text without control characters.
pub fn public_key(s: &str) -> Result<(), String> {
    if !s.is_empty() && s.len() <= PUBLIC_KEY_MAX && !s.chars().any(char::is_control) {
        Ok(())
    } else {
        Err(format!(
            "must be 1 to {PUBLIC_KEY_MAX} bytes without control characters"
        ))
    }
}

/// A key algorithm name: 1 to 32 characters of `[A-Za-z0-9_.-]`.
pub fn algorithm(s: &str) -> Result<(), String> {
    let ok = (1..=ALGORITHM_MAX).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "must be 1 to {ALGORITHM_MAX} characters of letters, digits, '_', '.' or '-'"
        ))
    }
}

/// A login (username or email address): 1 to 254 characters without control characters.
pub fn login(s: &str) -> Result<(), MeshError> {
    if s.is_empty() {
        return Err(MeshError::invalid("login is required"));
    }
    if s.chars().count() > EMAIL_MAX || s.chars().any(char::is_control) {
        return Err(MeshError::invalid("login is malformed"));
    }
    Ok(())
}

/// A search query: 1 to 100 characters without control characters.
pub fn query(s: &str) -> Result<(), MeshError> {
    if s.is_empty() || s.chars().count() > QUERY_MAX || s.chars().any(char::is_control) {
        return Err(MeshError::invalid(format!(
            "query must be 1 to {QUERY_MAX} characters without control characters"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        for ok in ["bob", "a.b-c_d", "ABC123", &"x".repeat(32)] {
            assert!(username(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "ab",
            &"x".repeat(33),
            "has space",
            "bob@example.com",
            "robert'); DROP TABLE users;--",
            "émile",
            "a%b",
        ] {
            assert!(username(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn emails() {
        for ok in [
            "a@b.co",
            "first.last+tag@sub.example.org",
            "ÜSER@example.com",
        ] {
            assert!(email(ok).is_ok(), "{ok}");
        }
        let long = format!("{}@example.com", "x".repeat(250));
        for bad in [
            "",
            "plain",
            "@example.com",
            "a@",
            "a@localhost",
            "a@b@c.com",
            "a b@c.com",
            "a@.com",
            "a@b.",
            "a@b..com",
            long.as_str(),
        ] {
            assert!(email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords() {
        for ok in ["abcdefg1", "pässwörd9", &format!("a1{}", "x".repeat(126))] {
            assert!(password(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "abc1",
            "abcdefgh",
            "12345678",
            &format!("a1{}", "x".repeat(127)),
        ] {
            assert!(password(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn full_names() {
        assert!(full_name("").is_ok());
        assert!(full_name("'; DROP TABLE users; --").is_ok());
        assert!(full_name(&"é".repeat(100)).is_ok());
        assert!(full_name(&"é".repeat(101)).is_err());
        assert!(full_name("nul\0byte").is_err());
    }

    #[test]
    fn roles_default_dedupe_and_reject() {
        assert_eq!(roles(&[]).unwrap(), ["user"]);
        let given = ["user", "admin", "user"].map(String::from);
        assert_eq!(roles(&given).unwrap(), ["user", "admin"]);
        assert!(roles(&["Admin".to_string()]).is_err());
        assert!(roles(&["a,b".to_string()]).is_err());
        assert!(roles(&[String::new()]).is_err());
        let many: Vec<String> = (0..17).map(|i| format!("r{i}")).collect();
        assert!(roles(&many).is_err());
    }

    #[test]
    fn every_bad_field_is_listed() {
        let mut f = Fields::new();
        f.check("username", username("x"));
        f.check("email", email("nope"));
        f.check("password", password("secretpassword1"));
        let e = f.finish().unwrap_err();
        assert_eq!(e.code, crate::mesh::Code::InvalidArgument);
        assert_eq!(e.message, "validation failed");
        let details: serde_json::Value = serde_json::from_str(&e.details).unwrap();
        let fields = details["fields"].as_object().unwrap();
        assert_eq!(
            fields.keys().collect::<Vec<_>>(),
            ["email", "username"],
            "{details}"
        );
        assert!(Fields::new().finish().is_ok());
    }

    #[test]
    fn pages() {
        assert_eq!(page(0, 0).unwrap(), (1, 20));
        assert_eq!(page(3, 100).unwrap(), (3, 100));
        assert!(page(1, 101).is_err());
    }

    #[test]
    fn keys_ids_queries() {
        assert!(public_key("abc").is_ok());
        assert!(public_key("").is_err());
        assert!(public_key(&"k".repeat(8 * 1024 + 1)).is_err());
        assert!(algorithm("x25519").is_ok());
        assert!(algorithm("").is_err());
        assert!(algorithm("rsa 4096").is_err());
        assert!(id("id", "abc").is_ok());
        assert!(id("id", "").is_err());
        assert!(id("id", &"a".repeat(65)).is_err());
        assert!(login("Bob").is_ok());
        assert!(login("").is_err());
        assert!(query("a").is_ok());
        assert!(query("").is_err());
        assert!(query(&"q".repeat(101)).is_err());
    }
}
