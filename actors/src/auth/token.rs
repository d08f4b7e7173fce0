//! Access and refresh tokens (JWT through jsonwebtoken).
//!
//! Tokens are HS256 JWTs whose header names the signing key (`kid`). Verification allows
//! exactly one algorithm, HS256: the header is inspected before anything else and every other
//! algorithm (`none`, the other HMAC sizes, RSA, EC, ...) is refused as
//! [`TokenError::WrongAlgorithm`]. Keys rotate by prepending a new one to the key list: the
//! first key signs, every key listed verifies.
//!
//! Expiry is checked with a leeway of [`LEEWAY_SECS`] seconds to absorb clock skew between
//! nodes.

use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::mesh::{Code, MeshError};

/// Shortest accepted HMAC secret, in bytes (the HS256 output size).
pub const MIN_SECRET_LEN: usize = 32;

/// Seconds a token is still accepted after its `exp`, to absorb clock skew between nodes.
pub const LEEWAY_SECS: u64 = 5;

/// The first unix second at which [`Tokens::verify`] refuses a token whose `exp` claim is
/// `exp`: it accepts the token through `exp + LEEWAY_SECS`.
pub fn refused_from(exp: u64) -> u64 {
    exp.saturating_add(LEEWAY_SECS + 1)
}

/// The only algorithm tokens are signed and verified with.
const ALGORITHM: Algorithm = Algorithm::HS256;

/// Longest header segment inspected when the header does not parse (to classify `alg`).
const MAX_RAW_HEADER_LEN: usize = 4096;

/// One HMAC key, named by the `kid` written in the headers of the tokens it signs.
#[derive(Clone)]
pub struct SigningKey {
    /// Key id, written in the token header.
    pub kid: String,
    /// The HMAC secret; at least [`MIN_SECRET_LEN`] bytes.
    pub secret: Vec<u8>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// The claims carried by every token.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Claims {
    /// User id.
    pub sub: String,
    /// Session id.
    pub sid: String,
    /// User name at the time of issue.
    pub username: String,
    /// Roles at the time of issue.
    pub roles: Vec<String>,
    /// Token kind: `"access"` or `"refresh"` (see [`TokenKind::as_str`]).
    pub typ: String,
    /// Unique token id (uuid v4).
    pub jti: String,
    /// Issued at, unix seconds.
    pub iat: u64,
    /// Expires at, unix seconds.
    pub exp: u64,
    /// Issuer.
    pub iss: String,
}

/// What a token is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// Short-lived, presented with every request.
    Access,
    /// Long-lived, only exchanged for new tokens.
    Refresh,
}

impl TokenKind {
    /// The value of the `typ` claim for this kind.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Access => "access",
            TokenKind::Refresh => "refresh",
        }
    }
}

/// Why a token was refused.
#[derive(thiserror::Error, Debug, PartialEq, Eq, Clone, Copy)]
pub enum TokenError {
    /// Not a well-formed token (bad encoding, missing or invalid claims, wrong issuer).
    #[error("malformed token")]
    Malformed,
    /// Past its `exp` (plus [`LEEWAY_SECS`]).
    #[error("token expired")]
    Expired,
    /// The signature does not match the key named by `kid`.
    #[error("bad signature")]
    BadSignature,
    /// The header has no `kid`, or names a key that is not configured.
    #[error("unknown signing key")]
    UnknownKey,
    /// The header's algorithm is not HS256.
    #[error("algorithm not allowed")]
    WrongAlgorithm,
    /// An access token where a refresh token was expected, or the reverse.
    #[error("wrong token kind")]
    WrongKind,
}

impl From<TokenError> for MeshError {
    fn from(e: TokenError) -> Self {
        MeshError::new(Code::Unauthenticated, format!("invalid token: {e}"))
    }
}

/// A session's absolute lifetime unless configured (`[auth] session_max_lifetime_s`).
pub const DEFAULT_SESSION_MAX_LIFETIME: Duration = Duration::from_secs(90 * 24 * 3600);

/// Issues and verifies tokens.
#[derive(Clone, Debug)]
pub struct Tokens {
    /// The first key signs; all of them verify (rotation).
    keys: Vec<SigningKey>,
    access_ttl: Duration,
    refresh_ttl: Duration,
    /// A session's absolute end after its login, however often it is refreshed.
    session_max_lifetime: Duration,
    issuer: String,
}

impl Tokens {
    /// Tokens signed with `keys[0]` and verified with any of `keys`.
    ///
    /// Refuses an empty key list, an empty `kid`, a secret shorter than [`MIN_SECRET_LEN`]
    /// bytes and duplicate `kid`s.
    pub fn new(
        keys: Vec<SigningKey>,
        access_ttl: Duration,
        refresh_ttl: Duration,
        issuer: impl Into<String>,
    ) -> Result<Self, MeshError> {
        if keys.is_empty() {
            return Err(MeshError::invalid("no token signing key configured"));
        }
        for (i, key) in keys.iter().enumerate() {
            if key.kid.is_empty() {
                return Err(MeshError::invalid("token signing key with an empty kid"));
            }
            if key.secret.len() < MIN_SECRET_LEN {
                return Err(MeshError::invalid(format!(
                    "token signing key {:?} is shorter than {MIN_SECRET_LEN} bytes",
                    key.kid
                )));
            }
            if keys[..i].iter().any(|k| k.kid == key.kid) {
                return Err(MeshError::invalid(format!(
                    "duplicate token signing key {:?}",
                    key.kid
                )));
            }
        }
        Ok(Self {
            keys,
            access_ttl,
            refresh_ttl,
            session_max_lifetime: DEFAULT_SESSION_MAX_LIFETIME,
            issuer: issuer.into(),
        })
    }

    /// The same, with sessions ending `lifetime` after their login however often they are
    /// refreshed (default [`DEFAULT_SESSION_MAX_LIFETIME`]).
    pub fn with_session_max_lifetime(self, lifetime: Duration) -> Self {
        Self {
            session_max_lifetime: lifetime,
            ..self
        }
    }

    /// A session's absolute lifetime.
    pub fn session_max_lifetime(&self) -> Duration {
        self.session_max_lifetime
    }

    /// How long access tokens live.
    pub fn access_ttl(&self) -> Duration {
        self.access_ttl
    }

    /// How long refresh tokens live.
    pub fn refresh_ttl(&self) -> Duration {
        self.refresh_ttl
    }

    /// Issues a token of `kind` for a user's session, signed with the active key; returns the
    /// token and its claims.
    pub fn issue(
        &self,
        kind: TokenKind,
        user_id: &str,
        username: &str,
        roles: &[String],
        sid: &str,
    ) -> (String, Claims) {
        let ttl = match kind {
            TokenKind::Access => self.access_ttl,
            TokenKind::Refresh => self.refresh_ttl,
        };
        let iat = jsonwebtoken::get_current_timestamp();
        let claims = Claims {
            sub: user_id.to_string(),
            sid: sid.to_string(),
            username: username.to_string(),
            roles: roles.to_vec(),
            typ: kind.as_str().to_string(),
            jti: uuid::Uuid::new_v4().to_string(),
            iat,
            exp: iat.saturating_add(ttl.as_secs()),
            iss: self.issuer.clone(),
        };
        (self.sign(&claims), claims)
    }

    /// Verifies a token of `kind`: algorithm HS256, known `kid`, signature by that key, not
    /// expired (within [`LEEWAY_SECS`]), our issuer, then the `typ` claim.
    pub fn verify(&self, token: &str, kind: TokenKind) -> Result<Claims, TokenError> {
        let header = match jsonwebtoken::decode_header(token) {
            Ok(header) => header,
            // jsonwebtoken cannot represent some algorithms (`none` among them); tell those
            // apart from plain garbage.
            Err(_) => {
                return Err(match raw_header_alg(token) {
                    Some(alg) if alg != "HS256" => TokenError::WrongAlgorithm,
                    _ => TokenError::Malformed,
                });
            }
        };
        if header.alg != ALGORITHM {
            return Err(TokenError::WrongAlgorithm);
        }
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.keys.iter().find(|k| k.kid == kid))
            .ok_or(TokenError::UnknownKey)?;

        let mut validation = Validation::new(ALGORITHM);
        validation.algorithms = vec![ALGORITHM];
        validation.set_required_spec_claims(&["exp", "iat", "sub", "iss"]);
        validation.set_issuer(&[&self.issuer]);
        validation.validate_exp = true;
        validation.leeway = LEEWAY_SECS;

        let data = jsonwebtoken::decode::<Claims>(
            token,
            &DecodingKey::from_secret(&key.secret),
            &validation,
        )
        .map_err(|e| match e.kind() {
            ErrorKind::InvalidSignature => TokenError::BadSignature,
            ErrorKind::ExpiredSignature => TokenError::Expired,
            ErrorKind::InvalidAlgorithm => TokenError::WrongAlgorithm,
            _ => TokenError::Malformed,
        })?;

        if data.claims.typ != kind.as_str() {
            return Err(TokenError::WrongKind);
        }
        Ok(data.claims)
    }

    /// Signs `claims` with the active key.
    fn sign(&self, claims: &Claims) -> String {
        let key = &self.keys[0];
        let mut header = Header::new(ALGORITHM);
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(&key.secret))
            .expect("signing plain claims with an hmac key cannot fail")
    }
}

/// The `alg` of a token's header, read without jsonwebtoken (which refuses to parse
/// algorithms it does not know, such as `none`); `None` when the header is unreadable.
fn raw_header_alg(token: &str) -> Option<String> {
    let mut parts = token.split('.');
    let (header, _payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || header.len() > MAX_RAW_HEADER_LEN {
        return None;
    }
    // JWTs use the URL-safe alphabet without padding; password-hash's B64 is the standard
    // alphabet without padding.
    let standard: String = header
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    let mut buf = vec![0u8; standard.len() * 3 / 4 + 3];
    let json = password_hash::Encoding::B64
        .decode(&standard, &mut buf)
        .ok()?;
    let header: serde_json::Value = serde_json::from_slice(json).ok()?;
    header.get("alg")?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn key(kid: &str, fill: u8) -> SigningKey {
        SigningKey {
            kid: kid.to_string(),
            secret: vec![fill; MIN_SECRET_LEN],
        }
    }

    fn tokens(keys: Vec<SigningKey>) -> Tokens {
        Tokens::new(keys, HOUR, 24 * HOUR, "troupe").unwrap()
    }

    fn roles() -> Vec<String> {
        vec!["admin".to_string(), "user".to_string()]
    }

    /// The payload segment of a genuine access token.
    fn genuine_payload(t: &Tokens) -> String {
        let (token, _) = t.issue(TokenKind::Access, "u1", "ann", &roles(), "s1");
        token.split('.').nth(1).unwrap().to_string()
    }

    #[test]
    fn issue_then_verify_round_trips_every_claim() {
        let t = tokens(vec![key("k1", 1)]);
        let before = jsonwebtoken::get_current_timestamp();
        let (token, claims) = t.issue(TokenKind::Access, "u1", "ann", &roles(), "s1");

        assert_eq!(claims.sub, "u1");
        assert_eq!(claims.sid, "s1");
        assert_eq!(claims.username, "ann");
        assert_eq!(claims.roles, roles());
        assert_eq!(claims.typ, "access");
        assert_eq!(claims.iss, "troupe");
        assert!(uuid::Uuid::parse_str(&claims.jti).is_ok());
        assert!(claims.iat >= before && claims.iat <= before + 1);
        assert_eq!(claims.exp, claims.iat + HOUR.as_secs());

        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.alg, Algorithm::HS256);
        assert_eq!(header.kid.as_deref(), Some("k1"));

        assert_eq!(t.verify(&token, TokenKind::Access), Ok(claims));
    }

    #[test]
    fn refresh_tokens_use_the_refresh_ttl_and_fresh_ids() {
        let t = tokens(vec![key("k1", 1)]);
        let (token, claims) = t.issue(TokenKind::Refresh, "u1", "ann", &[], "s1");
        assert_eq!(claims.typ, "refresh");
        assert_eq!(claims.exp, claims.iat + t.refresh_ttl().as_secs());
        assert_eq!(t.access_ttl(), HOUR);
        assert_eq!(t.verify(&token, TokenKind::Refresh), Ok(claims.clone()));
        let (_, other) = t.issue(TokenKind::Refresh, "u1", "ann", &[], "s1");
        assert_ne!(other.jti, claims.jti);
    }

    #[test]
    fn expired_token_is_refused() {
        let t = tokens(vec![key("k1", 1)]);
        let (_, mut claims) = t.issue(TokenKind::Access, "u1", "ann", &roles(), "s1");
        claims.iat -= 2 * HOUR.as_secs();
        claims.exp = claims.iat + HOUR.as_secs();
        let token = t.sign(&claims);
        assert_eq!(
            t.verify(&token, TokenKind::Access),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn token_within_the_leeway_is_accepted() {
        let t = tokens(vec![key("k1", 1)]);
        let (_, mut claims) = t.issue(TokenKind::Access, "u1", "ann", &roles(), "s1");
        claims.exp = claims.iat - 1;
        let token = t.sign(&claims);
        assert_eq!(t.verify(&token, TokenKind::Access), Ok(claims));
    }

    #[test]
    fn refused_from_is_the_first_second_verify_refuses() {
        let t = tokens(vec![key("k1", 1)]);
        let (_, mut claims) = t.issue(TokenKind::Access, "u1", "ann", &roles(), "s1");
        let now = jsonwebtoken::get_current_timestamp();
        // Refused from the second after now: still accepted (even if the clock ticks).
        claims.exp = now + 1 - LEEWAY_SECS;
        assert_eq!(refused_from(claims.exp), now + 2);
        assert!(t.verify(&t.sign(&claims), TokenKind::Access).is_ok());
        // Refused from now on.
        claims.exp = now - 1 - LEEWAY_SECS;
        assert_eq!(refused_from(claims.exp), now);
        assert_eq!(
            t.verify(&t.sign(&claims), TokenKind::Access),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn token_signed_with_another_secret_under_the_same_kid_is_refused() {
        let forger = tokens(vec![key("k1", 2)]);
        let (token, _) = forger.issue(TokenKind::Access, "u1", "ann", &roles(), "s1");
        let t = tokens(vec![key("k1", 1)]);
        assert_eq!(
            t.verify(&token, TokenKind::Access),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn tampered_payload_is_refused() {
        let t = tokens(vec![key("k1", 1)]);
        let (token, _) = t.issue(TokenKind::Access, "u1", "ann", &roles(), "s1");
        let (_, mut claims) = t.issue(TokenKind::Access, "u2", "bob", &roles(), "s2");
        claims.roles.push("root".to_string());
        let other = t.sign(&claims);
        let parts: Vec<&str> = token.split('.').collect();
        let other_payload = other.split('.').nth(1).unwrap();
        let spliced = format!("{}.{}.{}", parts[0], other_payload, parts[2]);
        assert_eq!(
            t.verify(&spliced, TokenKind::Access),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn unknown_or_missing_kid_is_refused() {
        let other = tokens(vec![key("k2", 1)]);
        let (token, _) = other.issue(TokenKind::Access, "u1", "ann", &roles(), "s1");
        let t = tokens(vec![key("k1", 1)]);
        assert_eq!(
            t.verify(&token, TokenKind::Access),
            Err(TokenError::UnknownKey)
        );

        let (_, claims) = t.issue(TokenKind::Access, "u1", "ann", &roles(), "s1");
        let no_kid = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(&[1; MIN_SECRET_LEN]),
        )
        .unwrap();
        assert_eq!(
            t.verify(&no_kid, TokenKind::Access),
            Err(TokenError::UnknownKey)
        );
    }

    #[test]
    fn alg_none_token_is_refused() {
        let t = tokens(vec![key("k1", 1)]);
        // {"alg":"none","typ":"JWT","kid":"k1"}
        let header = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIiwia2lkIjoiazEifQ";
        let payload = genuine_payload(&t);
        let token = format!("{header}.{payload}.");
        assert_eq!(
            t.verify(&token, TokenKind::Access),
            Err(TokenError::WrongAlgorithm)
        );
        // Without the trailing dot it is not even a JWT.
        assert!(t
            .verify(&format!("{header}.{payload}"), TokenKind::Access)
            .is_err());
    }

    #[test]
    fn other_algorithms_are_refused_even_with_a_valid_key() {
        let t = tokens(vec![key("k1", 1)]);
        let (_, claims) = t.issue(TokenKind::Access, "u1", "ann", &roles(), "s1");
        for alg in [Algorithm::HS384, Algorithm::HS512] {
            let mut header = Header::new(alg);
            header.kid = Some("k1".to_string());
            let token = jsonwebtoken::encode(
                &header,
                &claims,
                &EncodingKey::from_secret(&[1; MIN_SECRET_LEN]),
            )
            .unwrap();
            assert_eq!(
                t.verify(&token, TokenKind::Access),
                Err(TokenError::WrongAlgorithm),
                "{alg:?}"
            );
        }

        // {"alg":"RS256","typ":"JWT","kid":"k1"}
        let rs256 = format!(
            "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.{}.c2ln",
            genuine_payload(&t)
        );
        assert_eq!(
            t.verify(&rs256, TokenKind::Access),
            Err(TokenError::WrongAlgorithm)
        );
    }

    #[test]
    fn token_of_the_wrong_kind_is_refused() {
        let t = tokens(vec![key("k1", 1)]);
        let (refresh, _) = t.issue(TokenKind::Refresh, "u1", "ann", &roles(), "s1");
        assert_eq!(
            t.verify(&refresh, TokenKind::Access),
            Err(TokenError::WrongKind)
        );
        let (access, _) = t.issue(TokenKind::Access, "u1", "ann", &roles(), "s1");
        assert_eq!(
            t.verify(&access, TokenKind::Refresh),
            Err(TokenError::WrongKind)
        );
    }

    #[test]
    fn token_from_another_issuer_is_refused() {
        let keys = vec![key("k1", 1)];
        let other = Tokens::new(keys.clone(), HOUR, HOUR, "elsewhere").unwrap();
        let (token, _) = other.issue(TokenKind::Access, "u1", "ann", &roles(), "s1");
        assert_eq!(
            tokens(keys).verify(&token, TokenKind::Access),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn garbage_is_malformed() {
        let t = tokens(vec![key("k1", 1)]);
        for garbage in [
            "",
            "garbage",
            "a.b.c",
            "...",
            "a.b.c.d",
            // {"alg":"HS256","typ":"JWT"} then garbage
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.!!!",
        ] {
            assert_eq!(
                t.verify(garbage, TokenKind::Access),
                Err(TokenError::Malformed),
                "{garbage:?}"
            );
        }
    }

    #[test]
    fn genuinely_signed_tokens_with_bad_claims_are_malformed() {
        let t = tokens(vec![key("k1", 1)]);
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("k1".to_string());
        let now = jsonwebtoken::get_current_timestamp();
        for claims in [
            // Missing sid, username, roles, typ, jti.
            serde_json::json!({"sub": "u1", "iat": now, "exp": now + 60, "iss": "troupe"}),
            // Missing exp.
            serde_json::json!({
                "sub": "u1", "sid": "s1", "username": "ann", "roles": [], "typ": "access",
                "jti": "j", "iat": now, "iss": "troupe",
            }),
            // exp is not a number.
            serde_json::json!({
                "sub": "u1", "sid": "s1", "username": "ann", "roles": [], "typ": "access",
                "jti": "j", "iat": now, "exp": "later", "iss": "troupe",
            }),
        ] {
            let token = jsonwebtoken::encode(
                &header,
                &claims,
                &EncodingKey::from_secret(&[1; MIN_SECRET_LEN]),
            )
            .unwrap();
            assert_eq!(
                t.verify(&token, TokenKind::Access),
                Err(TokenError::Malformed),
                "{claims}"
            );
        }
    }

    #[test]
    fn tokens_of_a_retired_active_key_verify_after_rotation() {
        let old = tokens(vec![key("old", 1)]);
        let (old_token, old_claims) = old.issue(TokenKind::Access, "u1", "ann", &roles(), "s1");

        let rotated = tokens(vec![key("new", 2), key("old", 1)]);
        assert_eq!(
            rotated.verify(&old_token, TokenKind::Access),
            Ok(old_claims)
        );
        let (new_token, new_claims) = rotated.issue(TokenKind::Access, "u1", "ann", &roles(), "s1");
        let header = jsonwebtoken::decode_header(&new_token).unwrap();
        assert_eq!(header.kid.as_deref(), Some("new"));
        assert_eq!(
            rotated.verify(&new_token, TokenKind::Access),
            Ok(new_claims)
        );
        // Once the old key is dropped, its tokens stop verifying.
        let dropped = tokens(vec![key("new", 2)]);
        assert_eq!(
            dropped.verify(&old_token, TokenKind::Access),
            Err(TokenError::UnknownKey)
        );
    }

    #[test]
    fn new_refuses_bad_key_sets() {
        let new = |keys| Tokens::new(keys, HOUR, HOUR, "troupe").map(|_| ());
        assert!(new(vec![key("k1", 1)]).is_ok());
        assert!(new(vec![]).is_err());
        assert!(new(vec![key("", 1)]).is_err());
        let short = SigningKey {
            kid: "k1".to_string(),
            secret: vec![1; MIN_SECRET_LEN - 1],
        };
        assert!(new(vec![short]).is_err());
        assert!(new(vec![key("k1", 1), key("k2", 2), key("k1", 3)]).is_err());
        let e = new(vec![]).unwrap_err();
        assert_eq!(e.code, Code::InvalidArgument);
    }

    #[test]
    fn token_errors_become_unauthenticated_mesh_errors() {
        let e = MeshError::from(TokenError::Expired);
        assert_eq!(e.code, Code::Unauthenticated);
        assert_eq!(e.message, "invalid token: token expired");
        assert_eq!(
            MeshError::from(TokenError::BadSignature).message,
            "invalid token: bad signature"
        );
    }

    #[test]
    fn signing_key_debug_hides_the_secret() {
        let k = key("k1", 0xab);
        let shown = format!("{k:?}");
        assert!(shown.contains("k1"));
        assert!(!shown.contains("171"), "{shown}");
    }
}
