//! One configured OpenID Connect provider, as the `openidconnect` crate speaks to it:
//! discovery (once, on first use), the authorization URL with PKCE, state and nonce, the
//! code and refresh exchanges at the token endpoint, ID token validation against the
//! provider's key set, userinfo, and the RP-initiated logout URL.
//!
//! The discovery document and the key set (JWKS) are cached for the life of the node. A
//! token signed by a key the cache does not hold makes one refetch of the key set (one at a
//! time per provider; callers that waited on a refetch use its result), so a provider's key
//! rotation is picked up on the first token signed with the new key; a token whose key is
//! still unknown after that is refused. Such tokens come only from the provider's own token
//! endpoint (the callback never accepts an ID token from the browser), so a refetch costs
//! at most one per callback, each of which already cost a token request. A sign-in therefore costs exactly one provider round trip, the token
//! request, once discovery is done.
//!
//! Every failure to reach the provider is [`Code::DeadlineExceeded`] (504) when it did not
//! answer in time and [`Code::Unavailable`] marked [`BAD_GATEWAY`] (502) otherwise; a
//! refused code, token or signature is [`Code::Unauthenticated`] (401).

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreErrorResponseType, CoreIdToken, CoreIdTokenVerifier,
    CoreJsonWebKeySet, CoreJwsSigningAlgorithm, CoreTokenResponse, CoreUserInfoClaims,
};
use openidconnect::{
    AccessToken, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken,
    DiscoveryError, EndSessionUrl, EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl,
    JsonWebKeySetUrl, LogoutRequest, Nonce, OAuth2TokenResponse as _, PkceCodeChallenge,
    PkceCodeVerifier, PostLogoutRedirectUrl, ProviderMetadataWithLogout, RedirectUrl, RefreshToken,
    RequestTokenError, Scope, SignatureVerificationError, StandardErrorResponse, SubjectIdentifier,
    TokenResponse as _, UserInfoError,
};

use super::{http, metrics};
use crate::mesh::{Code, MeshError};

/// The `reason` detail of an [`Code::Unavailable`] error that means "the provider failed":
/// HTTP answers it 502 Bad Gateway rather than 503.
pub const BAD_GATEWAY: &str = "sso_provider_failed";

/// One `[[sso.providers]]` entry.
#[derive(Clone, PartialEq, Eq)]
pub struct Settings {
    /// Name used as `?provider=`.
    pub name: String,
    /// Issuer URL; discovery reads `<issuer>/.well-known/openid-configuration`.
    pub issuer: String,
    /// Troupe's client id at the provider.
    pub client_id: String,
    /// Troupe's client secret at the provider.
    pub client_secret: String,
    /// The callback URL registered at the provider (`.../auth/sso/callback` of any node).
    pub redirect_url: String,
    /// Scopes asked for; `openid` is always asked.
    pub scopes: Vec<String>,
    /// Link a first sign-in to an existing local account with the same email address, if
    /// the provider says it verified the address.
    pub link_verified_email: bool,
    /// Where the provider sends the browser after its logout, if set.
    pub post_logout_redirect_url: Option<String>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("name", &self.name)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("redirect_url", &self.redirect_url)
            .field("scopes", &self.scopes)
            .field("link_verified_email", &self.link_verified_email)
            .field("post_logout_redirect_url", &self.post_logout_redirect_url)
            .finish_non_exhaustive()
    }
}

type Oidc = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// What discovery found, and the cached key set.
struct Discovered {
    client: Oidc,
    issuer: IssuerUrl,
    jwks_uri: JsonWebKeySetUrl,
    algs: Vec<CoreJwsSigningAlgorithm>,
    end_session: Option<EndSessionUrl>,
    keys: RwLock<Keys>,
}

struct Keys {
    set: CoreJsonWebKeySet,
    fetched: Instant,
}

/// The identity a valid ID token asserts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// `iss`.
    pub issuer: String,
    /// `sub`.
    pub subject: String,
    /// `email`, if given.
    pub email: Option<String>,
    /// `email_verified` (absent reads as false).
    pub email_verified: bool,
    /// `name`, if given.
    pub name: Option<String>,
    /// `preferred_username`, if given.
    pub preferred_username: Option<String>,
}

/// Why an ID token was refused.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Refused {
    message: String,
    unknown_key: bool,
}

impl Refused {
    /// Whether the token names a key the key set used does not hold (a refetch may help).
    pub fn unknown_key(&self) -> bool {
        self.unknown_key
    }
}

impl From<Refused> for MeshError {
    fn from(r: Refused) -> Self {
        MeshError::new(Code::Unauthenticated, r.message)
    }
}

/// Validates `token` with `verifier` (signature against its key set and allowed
/// algorithms, issuer, audience, expiry) and, when given, its nonce; answers the identity
/// it asserts. The one check every ID token passes through.
pub fn check(
    token: &CoreIdToken,
    verifier: &CoreIdTokenVerifier<'_>,
    nonce: Option<&Nonce>,
) -> Result<Verified, Refused> {
    let claims = match nonce {
        Some(nonce) => token.claims(verifier, nonce),
        None => token.claims(verifier, |_: Option<&Nonce>| Ok::<(), String>(())),
    };
    let claims = claims.map_err(|e| {
        let unknown_key = matches!(
            e,
            ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey
            )
        );
        let message = match &e {
            ClaimsVerificationError::Expired(_) => "id token expired".to_owned(),
            ClaimsVerificationError::InvalidAudience(_) => {
                "id token audience is not this client".to_owned()
            }
            ClaimsVerificationError::InvalidIssuer(_) => {
                "id token issuer is not the provider".to_owned()
            }
            ClaimsVerificationError::InvalidNonce(_) => {
                "id token nonce does not match the sign-in".to_owned()
            }
            _ if unknown_key => "id token signed by a key the provider does not publish".to_owned(),
            ClaimsVerificationError::SignatureVerification(s) => {
                format!(
                    "id token signature refused: {}",
                    s.to_string().to_lowercase()
                )
            }
            other => format!("id token refused: {}", other.to_string().to_lowercase()),
        };
        Refused {
            message,
            unknown_key,
        }
    })?;
    let text = |s: Option<&str>| s.map(str::to_owned).filter(|s| !s.is_empty());
    Ok(Verified {
        issuer: claims.issuer().as_str().to_owned(),
        subject: claims.subject().as_str().to_owned(),
        email: text(claims.email().map(|e| e.as_str())),
        email_verified: claims.email_verified().unwrap_or(false),
        name: text(claims.name().and_then(|n| n.get(None)).map(|n| n.as_str())),
        preferred_username: text(claims.preferred_username().map(|u| u.as_str())),
    })
}

/// The algorithms an ID token may be signed with: what the provider announces, without
/// `none` and the shared-secret (HMAC) ones; RS256 when it announces nothing else.
fn allowed_algs(announced: &[CoreJwsSigningAlgorithm]) -> Vec<CoreJwsSigningAlgorithm> {
    use CoreJwsSigningAlgorithm as A;
    let algs: Vec<_> = announced
        .iter()
        .filter(|a| !matches!(a, A::None | A::HmacSha256 | A::HmacSha384 | A::HmacSha512))
        .cloned()
        .collect();
    if algs.is_empty() {
        vec![A::RsaSsaPkcs1V15Sha256]
    } else {
        algs
    }
}

/// A verifier for tokens issued to `client_id` by `issuer`, signed by a key of `keys`.
pub fn verifier(
    client_id: &str,
    issuer: IssuerUrl,
    keys: CoreJsonWebKeySet,
    announced: &[CoreJwsSigningAlgorithm],
) -> CoreIdTokenVerifier<'static> {
    CoreIdTokenVerifier::new_public_client(ClientId::new(client_id.to_owned()), issuer, keys)
        .set_allowed_algs(allowed_algs(announced))
}

/// A sign-in's secrets, made by [`Provider::authorize`].
pub struct Authorization {
    /// Where to send the browser.
    pub url: String,
    /// `state`.
    pub state: String,
    /// `nonce`.
    pub nonce: String,
    /// The PKCE verifier (its S256 challenge is in the URL).
    pub pkce_verifier: String,
}

/// What a token request gave.
pub struct Grant {
    /// The validated identity of the ID token (present in every code exchange; in a
    /// refresh only when the provider sends a new ID token).
    pub identity: Option<Verified>,
    /// The ID token as received.
    pub id_token: Option<String>,
    /// Access token.
    pub access_token: String,
    /// Refresh token, if given.
    pub refresh_token: Option<String>,
}

/// One provider.
pub struct Provider {
    settings: Settings,
    http: http::Client,
    discovered: std::sync::OnceLock<Arc<Discovered>>,
    /// Held by the one discovery in flight; callers that waited on it share its outcome.
    discovering: tokio::sync::Mutex<()>,
    /// When the last discovery failed, and why.
    failed: std::sync::Mutex<Option<(Instant, MeshError)>>,
    refetch: tokio::sync::Mutex<()>,
}

impl Provider {
    /// A provider whose every request is bounded by `timeout`; nothing is fetched until
    /// first use, so a node starts whether or not its providers are up.
    pub fn new(settings: Settings, timeout: Duration) -> Self {
        Self {
            settings,
            http: http::Client::new(timeout),
            discovered: std::sync::OnceLock::new(),
            discovering: tokio::sync::Mutex::new(()),
            failed: std::sync::Mutex::new(None),
            refetch: tokio::sync::Mutex::new(()),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The provider's name.
    pub fn name(&self) -> &str {
        &self.settings.name
    }

    fn unreachable(&self, what: &str, e: &http::Error) -> MeshError {
        let name = &self.settings.name;
        match e {
            http::Error::Timeout(d) => MeshError::new(
                Code::DeadlineExceeded,
                format!(
                    "sso provider {name:?} did not answer the {what} within {} ms",
                    d.as_millis()
                ),
            )
            .with_details(serde_json::json!({"provider": name, "reason": "sso_provider_timeout"})),
            http::Error::Transport(m) => self.failed(&format!("{what}: unreachable: {m}")),
        }
    }

    fn failed(&self, what: &str) -> MeshError {
        let name = &self.settings.name;
        MeshError::new(
            Code::Unavailable,
            format!("sso provider {name:?} failed: {}", what.to_lowercase()),
        )
        .with_details(serde_json::json!({"provider": name, "reason": BAD_GATEWAY}))
    }

    /// Discovery, done once. One attempt at a time: callers that waited on an attempt take
    /// its outcome, so a provider that is down costs every waiting caller one timeout, not
    /// one each in turn. A failed attempt is tried again by the next caller.
    async fn discovered(&self) -> Result<Arc<Discovered>, MeshError> {
        if let Some(d) = self.discovered.get() {
            return Ok(d.clone());
        }
        let began = Instant::now();
        let _one = self.discovering.lock().await;
        if let Some(d) = self.discovered.get() {
            return Ok(d.clone());
        }
        if let Some((at, e)) = self.failed.lock().expect("failed lock").clone() {
            if at >= began {
                return Err(e);
            }
        }
        let began = Instant::now();
        let answer = self.discover().await;
        metrics::provider_request(self.name(), "discovery", began, &answer);
        match answer {
            Ok(d) => Ok(self.discovered.get_or_init(|| d).clone()),
            Err(e) => {
                *self.failed.lock().expect("failed lock") = Some((Instant::now(), e.clone()));
                Err(e)
            }
        }
    }

    async fn discover(&self) -> Result<Arc<Discovered>, MeshError> {
        let s = &self.settings;
        let issuer = IssuerUrl::new(s.issuer.clone())
            .map_err(|e| MeshError::internal(format!("sso issuer url: {e}")))?;
        let meta = ProviderMetadataWithLogout::discover_async(issuer, &self.http)
            .await
            .map_err(|e| match e {
                DiscoveryError::Request(e) => self.unreachable("discovery", &e),
                e => self.failed(&format!("discovery: {e}")),
            })?;
        let end_session = meta.additional_metadata().end_session_endpoint.clone();
        let jwks_uri = meta.jwks_uri().clone();
        let algs = meta.id_token_signing_alg_values_supported().clone();
        let set = meta.jwks().clone();
        let issuer = meta.issuer().clone();
        let redirect = RedirectUrl::new(s.redirect_url.clone())
            .map_err(|e| MeshError::internal(format!("sso redirect url: {e}")))?;
        let client = CoreClient::from_provider_metadata(
            meta,
            ClientId::new(s.client_id.clone()),
            Some(ClientSecret::new(s.client_secret.clone())),
        )
        .set_redirect_uri(redirect);
        tracing::info!(provider = %s.name, issuer = %issuer.as_str(), keys = set.keys().len(), "sso provider discovered");
        Ok(Arc::new(Discovered {
            client,
            issuer,
            jwks_uri,
            algs,
            end_session,
            keys: RwLock::new(Keys {
                set,
                fetched: Instant::now(),
            }),
        }))
    }

    /// The issuer, as discovery confirmed it.
    pub async fn issuer(&self) -> Result<String, MeshError> {
        Ok(self.discovered().await?.issuer.as_str().to_owned())
    }

    /// A new sign-in: the authorization URL with a fresh state, nonce and S256 PKCE
    /// challenge, and the secrets the callback will need.
    pub async fn authorize(&self) -> Result<Authorization, MeshError> {
        let d = self.discovered().await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = d.client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for scope in self.settings.scopes.iter().filter(|s| *s != "openid") {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
        Ok(Authorization {
            url: url.to_string(),
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        })
    }

    fn token_error(
        &self,
        what: &str,
        e: RequestTokenError<http::Error, StandardErrorResponse<CoreErrorResponseType>>,
    ) -> MeshError {
        match e {
            RequestTokenError::Request(e) => self.unreachable(what, &e),
            RequestTokenError::ServerResponse(r) => {
                let detail = match r.error_description() {
                    Some(d) => format!("{}: {d}", r.error()),
                    None => r.error().to_string(),
                };
                match r.error() {
                    CoreErrorResponseType::InvalidClient
                    | CoreErrorResponseType::UnauthorizedClient => {
                        self.failed(&format!("{what}: troupe's client was refused ({detail})"))
                    }
                    _ => MeshError::new(
                        Code::Unauthenticated,
                        format!(
                            "the provider refused the {what} ({})",
                            detail.to_lowercase()
                        ),
                    ),
                }
            }
            e => self.failed(&format!("{what}: {e}")),
        }
    }

    /// Exchanges an authorization code (with its PKCE verifier) at the token endpoint and
    /// validates the ID token against `nonce`.
    pub async fn exchange(
        &self,
        code: &str,
        pkce_verifier: &str,
        nonce: &str,
    ) -> Result<Grant, MeshError> {
        let d = self.discovered().await?;
        let request = d
            .client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| self.failed(&format!("token endpoint: {e}")))?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()));
        let began = Instant::now();
        let answer: Result<CoreTokenResponse, MeshError> = request
            .request_async(&self.http)
            .await
            .map_err(|e| self.token_error("authorization code", e));
        metrics::provider_request(self.name(), "token", began, &answer);
        let answer = answer?;
        let token = answer
            .id_token()
            .ok_or_else(|| self.failed("token endpoint: no id token in the answer"))?;
        let identity = self
            .validate(&d, token, Some(&Nonce::new(nonce.to_owned())))
            .await?;
        Ok(Grant {
            identity: Some(identity),
            id_token: Some(token.to_string()),
            access_token: answer.access_token().secret().clone(),
            refresh_token: answer.refresh_token().map(|t| t.secret().clone()),
        })
    }

    /// Spends a refresh token at the token endpoint. A new ID token, if the provider sends
    /// one, is validated and must name `subject`.
    pub async fn refresh(&self, refresh_token: &str, subject: &str) -> Result<Grant, MeshError> {
        let d = self.discovered().await?;
        let token = RefreshToken::new(refresh_token.to_owned());
        let request = d
            .client
            .exchange_refresh_token(&token)
            .map_err(|e| self.failed(&format!("token endpoint: {e}")))?;
        let began = Instant::now();
        let answer: Result<CoreTokenResponse, MeshError> = request
            .request_async(&self.http)
            .await
            .map_err(|e| self.token_error("refresh token", e));
        metrics::provider_request(self.name(), "refresh", began, &answer);
        let answer = answer?;
        let identity = match answer.id_token() {
            Some(t) => Some(self.validate(&d, t, None).await?),
            None => None,
        };
        if identity.as_ref().is_some_and(|i| i.subject != subject) {
            return Err(MeshError::new(
                Code::Unauthenticated,
                "the provider's refreshed id token names another user",
            ));
        }
        Ok(Grant {
            identity,
            id_token: answer.id_token().map(|t| t.to_string()),
            access_token: answer.access_token().secret().clone(),
            refresh_token: answer.refresh_token().map(|t| t.secret().clone()),
        })
    }

    /// Validates `token`, refetching the key set once if it names a key not cached.
    async fn validate(
        &self,
        d: &Discovered,
        token: &CoreIdToken,
        nonce: Option<&Nonce>,
    ) -> Result<Verified, MeshError> {
        match check(token, &self.current_verifier(d), nonce) {
            Err(r) if r.unknown_key() => {
                self.refetch_keys(d, Instant::now()).await?;
                Ok(check(token, &self.current_verifier(d), nonce)?)
            }
            answer => Ok(answer?),
        }
    }

    fn current_verifier(&self, d: &Discovered) -> CoreIdTokenVerifier<'static> {
        let set = d.keys.read().expect("keys lock").set.clone();
        verifier(&self.settings.client_id, d.issuer.clone(), set, &d.algs)
    }

    /// Fetches the key set again, unless a concurrent caller fetched it since `wanted` (one
    /// fetch serves every caller that waited on it).
    async fn refetch_keys(&self, d: &Discovered, wanted: Instant) -> Result<(), MeshError> {
        let _one = self.refetch.lock().await;
        if d.keys.read().expect("keys lock").fetched >= wanted {
            return Ok(());
        }
        let began = Instant::now();
        let set = CoreJsonWebKeySet::fetch_async(&d.jwks_uri, &self.http)
            .await
            .map_err(|e| match e {
                DiscoveryError::Request(e) => self.unreachable("key set", &e),
                e => self.failed(&format!("key set: {e}")),
            });
        metrics::provider_request(self.name(), "jwks", began, &set);
        let set = set?;
        tracing::info!(provider = %self.settings.name, keys = set.keys().len(), "sso key set refetched");
        *d.keys.write().expect("keys lock") = Keys {
            set,
            fetched: Instant::now(),
        };
        Ok(())
    }

    /// The claims of the provider's userinfo endpoint for `access_token`, checked to be
    /// about `subject`, as a JSON object.
    pub async fn user_info(
        &self,
        access_token: &str,
        subject: &str,
    ) -> Result<serde_json::Value, MeshError> {
        let d = self.discovered().await?;
        let request = d
            .client
            .user_info(
                AccessToken::new(access_token.to_owned()),
                Some(SubjectIdentifier::new(subject.to_owned())),
            )
            .map_err(|_| {
                MeshError::new(
                    Code::FailedPrecondition,
                    format!(
                        "sso provider {:?} has no userinfo endpoint",
                        self.settings.name
                    ),
                )
            })?;
        let began = Instant::now();
        let claims: Result<CoreUserInfoClaims, MeshError> =
            request
                .request_async(&self.http)
                .await
                .map_err(|e| match e {
                    UserInfoError::Request(e) => self.unreachable("userinfo request", &e),
                    UserInfoError::Response(status, _, _) if status.as_u16() == 401 => {
                        MeshError::new(
                            Code::Unauthenticated,
                            "the provider no longer accepts this session's access token; refresh it with /auth/sso/refresh",
                        )
                    }
                    e => self.failed(&format!("userinfo: {e}")),
                });
        metrics::provider_request(self.name(), "userinfo", began, &claims);
        let claims = claims?;
        serde_json::to_value(&claims).map_err(|e| MeshError::internal(format!("userinfo: {e}")))
    }

    /// The provider's RP-initiated logout URL (`end_session_endpoint`) with `client_id`,
    /// `id_token_hint` (when given and well-formed) and `post_logout_redirect_uri` (when
    /// configured); `None` when the provider announces no such endpoint.
    pub async fn logout_url(
        &self,
        id_token_hint: Option<&str>,
    ) -> Result<Option<String>, MeshError> {
        let d = self.discovered().await?;
        let Some(end) = d.end_session.clone() else {
            return Ok(None);
        };
        let mut request =
            LogoutRequest::from(end).set_client_id(ClientId::new(self.settings.client_id.clone()));
        if let Some(token) = id_token_hint.and_then(|t| t.parse::<CoreIdToken>().ok()) {
            request = request.set_id_token_hint(&token);
        }
        if let Some(url) = &self.settings.post_logout_redirect_url {
            let url = PostLogoutRedirectUrl::new(url.clone())
                .map_err(|e| MeshError::internal(format!("sso post logout url: {e}")))?;
            request = request.set_post_logout_redirect_uri(url);
        }
        Ok(Some(request.http_get_url().to_string()))
    }
}
