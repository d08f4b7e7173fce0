//! Tests of the ID token checks (with tokens signed here, by a key in the verifier's key set
//! and by one outside it), of the store's single-use sign-ins and links, and of the names
//! and passwords given to users made from claims. The whole flow against a real provider
//! is tests/sso.rs.

use chrono::{Duration as Span, Utc};
use openidconnect::core::{
    CoreIdToken, CoreIdTokenClaims, CoreJsonWebKeySet, CoreJwsSigningAlgorithm,
    CoreRsaPrivateSigningKey,
};
use openidconnect::{
    Audience, EmptyAdditionalClaims, EndUserEmail, EndUserUsername, IssuerUrl, JsonWebKeyId, Nonce,
    PrivateSigningKey as _, StandardClaims, SubjectIdentifier,
};

use super::provider::{check, verifier, Verified};
use super::store::{self, Identity, Pending};
use super::*;
use crate::store::tests::on_each_backend;

const ISSUER: &str = "https://id.example.org";
const CLIENT: &str = "troupe";

fn key(pem: &str, kid: &str) -> CoreRsaPrivateSigningKey {
    CoreRsaPrivateSigningKey::from_pem(pem, Some(JsonWebKeyId::new(kid.into()))).expect("pem")
}

fn published() -> CoreRsaPrivateSigningKey {
    key(include_str!("testdata/published.pem"), "k1")
}

fn unpublished() -> CoreRsaPrivateSigningKey {
    key(include_str!("testdata/unpublished.pem"), "k2")
}

/// A token as a provider would sign it, changed by `edit`.
struct Draft {
    issuer: &'static str,
    audience: &'static str,
    expires_in: Span,
    nonce: Option<&'static str>,
    key: CoreRsaPrivateSigningKey,
}

impl Draft {
    fn good() -> Self {
        Self {
            issuer: ISSUER,
            audience: CLIENT,
            expires_in: Span::minutes(5),
            nonce: Some("n-123"),
            key: published(),
        }
    }

    fn sign(self) -> CoreIdToken {
        let now = Utc::now();
        let standard = StandardClaims::new(SubjectIdentifier::new("sub-1".into()))
            .set_email(Some(EndUserEmail::new("ann@example.org".into())))
            .set_email_verified(Some(true))
            .set_preferred_username(Some(EndUserUsername::new("ann".into())));
        let claims = CoreIdTokenClaims::new(
            IssuerUrl::new(self.issuer.into()).unwrap(),
            vec![Audience::new(self.audience.into())],
            now + self.expires_in,
            now - Span::minutes(1),
            standard,
            EmptyAdditionalClaims {},
        )
        .set_nonce(self.nonce.map(|n| Nonce::new(n.into())));
        CoreIdToken::new(
            claims,
            &self.key,
            CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
            None,
            None,
        )
        .expect("sign")
    }
}

fn checked(token: CoreIdToken, nonce: Option<&str>) -> Result<Verified, String> {
    let keys = CoreJsonWebKeySet::new(vec![published().as_verification_key()]);
    let v = verifier(
        CLIENT,
        IssuerUrl::new(ISSUER.into()).unwrap(),
        keys,
        &[CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256],
    );
    let nonce = nonce.map(|n| Nonce::new(n.into()));
    check(&token, &v, nonce.as_ref()).map_err(|e| e.to_string())
}

#[test]
fn a_valid_id_token_gives_its_identity() {
    let id = checked(Draft::good().sign(), Some("n-123")).expect("valid");
    assert_eq!(id.issuer, ISSUER);
    assert_eq!(id.subject, "sub-1");
    assert_eq!(id.email.as_deref(), Some("ann@example.org"));
    assert!(id.email_verified);
    assert_eq!(id.preferred_username.as_deref(), Some("ann"));
    assert_eq!(id.name, None);
}

#[test]
fn an_id_token_for_another_client_is_refused() {
    let token = Draft {
        audience: "someone-else",
        ..Draft::good()
    };
    let e = checked(token.sign(), Some("n-123")).unwrap_err();
    assert_eq!(e, "id token audience is not this client");
}

#[test]
fn an_id_token_from_another_issuer_is_refused() {
    let token = Draft {
        issuer: "https://evil.example.org",
        ..Draft::good()
    };
    let e = checked(token.sign(), Some("n-123")).unwrap_err();
    assert_eq!(e, "id token issuer is not the provider");
}

#[test]
fn an_expired_id_token_is_refused() {
    let token = Draft {
        expires_in: Span::seconds(-5),
        ..Draft::good()
    };
    let e = checked(token.sign(), Some("n-123")).unwrap_err();
    assert_eq!(e, "id token expired");
}

#[test]
fn an_id_token_signed_by_an_unpublished_key_is_refused_as_unknown() {
    let token = Draft {
        key: unpublished(),
        ..Draft::good()
    };
    let keys = CoreJsonWebKeySet::new(vec![published().as_verification_key()]);
    let v = verifier(
        CLIENT,
        IssuerUrl::new(ISSUER.into()).unwrap(),
        keys,
        &[CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256],
    );
    let nonce = Nonce::new("n-123".into());
    let e = check(&token.sign(), &v, Some(&nonce)).unwrap_err();
    assert!(e.unknown_key(), "{e}");
    assert_eq!(
        e.to_string(),
        "id token signed by a key the provider does not publish"
    );
}

#[test]
fn an_id_token_with_another_or_no_nonce_is_refused() {
    let e = checked(Draft::good().sign(), Some("n-456")).unwrap_err();
    assert_eq!(e, "id token nonce does not match the sign-in");
    let token = Draft {
        nonce: None,
        ..Draft::good()
    };
    let e = checked(token.sign(), Some("n-123")).unwrap_err();
    assert_eq!(e, "id token nonce does not match the sign-in");
    // A refresh's ID token is checked without a nonce.
    let token = Draft {
        nonce: None,
        ..Draft::good()
    };
    assert!(checked(token.sign(), None).is_ok());
}

#[test]
fn a_token_signed_with_a_secret_is_refused_even_with_the_alg_announced() {
    // `HS256` announced by the provider is still not allowed: only asymmetric keys sign.
    let keys = CoreJsonWebKeySet::new(vec![published().as_verification_key()]);
    let v = verifier(
        CLIENT,
        IssuerUrl::new(ISSUER.into()).unwrap(),
        keys,
        &[CoreJwsSigningAlgorithm::HmacSha256],
    );
    let nonce = Nonce::new("n-123".into());
    // Falls back to RS256 only, which the good token uses.
    assert!(check(&Draft::good().sign(), &v, Some(&nonce)).is_ok());
}

#[tokio::test]
async fn a_state_is_taken_once() {
    on_each_backend(|store, _| async move {
        let state = uuid::Uuid::new_v4().to_string();
        let now = now_ms();
        let p = Pending {
            state: state.clone(),
            provider: "corp".into(),
            nonce: "n".into(),
            pkce_verifier: "v".into(),
            expires_at: now + 60_000,
        };
        store::insert_pending(&store, &p, now).await.unwrap();
        // Two takers racing: exactly one gets the row.
        let (a, b) = tokio::join!(
            store::take_pending(&store, &state),
            store::take_pending(&store, &state)
        );
        let got: Vec<Pending> = [a.unwrap(), b.unwrap()].into_iter().flatten().collect();
        assert_eq!(got, vec![p]);
        assert_eq!(store::take_pending(&store, &state).await.unwrap(), None);
        assert_eq!(
            store::take_pending(&store, "never-issued").await.unwrap(),
            None
        );
    })
    .await;
}

#[tokio::test]
async fn expired_states_and_session_tokens_are_swept() {
    on_each_backend(|store, _| async move {
        let now = now_ms();
        let old = Pending {
            state: uuid::Uuid::new_v4().to_string(),
            provider: "corp".into(),
            nonce: "n".into(),
            pkce_verifier: "v".into(),
            expires_at: now - 1,
        };
        let live = Pending {
            state: uuid::Uuid::new_v4().to_string(),
            expires_at: now + 60_000,
            ..old.clone()
        };
        store::insert_pending(&store, &old, now).await.unwrap();
        store::insert_pending(&store, &live, now).await.unwrap();
        let sid = uuid::Uuid::new_v4().to_string();
        let tokens = store::Tokens {
            session_id: sid.clone(),
            provider: "corp".into(),
            user_id: "u".into(),
            subject: "s".into(),
            access_token: "at".into(),
            refresh_token: "rt".into(),
            id_token: "it".into(),
            expires_at: now - 1,
        };
        store::put_tokens(&store, &tokens, now).await.unwrap();
        store::sweep_expired(&store, now).await.unwrap();
        assert_eq!(store::take_pending(&store, &old.state).await.unwrap(), None);
        assert_eq!(store::get_tokens(&store, &sid).await.unwrap(), None);
        assert_eq!(
            store::take_pending(&store, &live.state).await.unwrap(),
            Some(live)
        );
    })
    .await;
}

#[tokio::test]
async fn an_identity_links_to_the_first_user_only() {
    on_each_backend(|store, _| async move {
        let subject = uuid::Uuid::new_v4().to_string();
        let first = Identity {
            issuer: ISSUER,
            subject: &subject,
            user_id: "user-a",
            provider: "corp",
            email: "a@example.org",
        };
        assert_eq!(store::link(&store, &first, 1).await.unwrap(), "user-a");
        let second = Identity {
            user_id: "user-b",
            ..first.clone()
        };
        assert_eq!(store::link(&store, &second, 2).await.unwrap(), "user-a");
        assert_eq!(
            store::linked_user(&store, ISSUER, &subject).await.unwrap(),
            Some("user-a".to_owned())
        );
        store::unlink(&store, ISSUER, &subject).await.unwrap();
        assert_eq!(
            store::linked_user(&store, ISSUER, &subject).await.unwrap(),
            None
        );
    })
    .await;
}

#[tokio::test]
async fn session_tokens_are_replaced_and_taken_once() {
    on_each_backend(|store, _| async move {
        let sid = uuid::Uuid::new_v4().to_string();
        let mut t = store::Tokens {
            session_id: sid.clone(),
            provider: "corp".into(),
            user_id: "u".into(),
            subject: "s".into(),
            access_token: "at-1".into(),
            refresh_token: "rt-1".into(),
            id_token: "it-1".into(),
            expires_at: now_ms() + 60_000,
        };
        store::put_tokens(&store, &t, 1).await.unwrap();
        t.access_token = "at-2".into();
        t.refresh_token = "rt-2".into();
        store::put_tokens(&store, &t, 2).await.unwrap();
        assert_eq!(
            store::get_tokens(&store, &sid).await.unwrap(),
            Some(t.clone())
        );
        assert_eq!(store::take_tokens(&store, &sid).await.unwrap(), Some(t));
        assert_eq!(store::take_tokens(&store, &sid).await.unwrap(), None);
    })
    .await;
}

fn identity(preferred: Option<&str>) -> Verified {
    Verified {
        issuer: ISSUER.into(),
        subject: "s".into(),
        email: Some("x@example.org".into()),
        email_verified: true,
        name: None,
        preferred_username: preferred.map(str::to_owned),
    }
}

#[test]
fn usernames_from_claims_are_valid_usernames() {
    let name = |p: Option<&str>, email: &str| username_base(&identity(p), email);
    assert_eq!(name(Some("ann"), "a@example.org"), "ann");
    assert_eq!(name(None, "bob.smith@example.org"), "bob.smith");
    assert_eq!(name(Some("ünï cödé"), "a@example.org"), "ncd");
    assert_eq!(name(Some("éé"), "a@example.org"), "user");
    assert_eq!(name(Some("x"), "a@example.org"), "xuser");
    let long = name(Some(&"a".repeat(80)), "a@example.org");
    assert_eq!(long.len(), validate::USERNAME_MAX - 5);
    for n in [long, name(Some("x"), "a@example.org")] {
        assert!(validate::username(&n).is_ok(), "{n}");
        assert!(validate::username(&format!("{n}-beef")).is_ok(), "{n}");
    }
}

#[test]
fn the_random_password_meets_the_rules_and_differs_each_time() {
    let (a, b) = (random_password(), random_password());
    assert!(validate::password(&a).is_ok());
    assert_ne!(a, b);
    assert_eq!(a.len(), 34);
}

/// The service with `users`, `sessions` and `auth` on a one-node harness, with a provider
/// that is never reached (the cases here end before any request to it, or fail to reach
/// it): what the callback and refresh decide on their own.
mod service {
    use std::sync::Arc;
    use std::time::Duration;

    use troupe_proto::mesh::Caller;

    use super::super::*;
    use crate::auth::messages::{LoginRequest, OpenSessionRequest, RefreshRequest, VerifyRequest};
    use crate::auth::password::Hasher;
    use crate::auth::{codes, limits, Auth, Events};
    use crate::events::Recorder;
    use crate::mesh::harness::Harness;
    use crate::sessions::{Revocations, Sessions};
    use crate::store::tests::on_each_backend;
    use crate::users::Users;

    struct Node {
        harness: Harness,
        events: Arc<Recorder>,
        store: Store,
    }

    async fn start(store: Store, providers: Vec<provider::Settings>) -> Node {
        let builder = Harness::builder();
        let info = builder.info();
        let hasher = Hasher::new(1000);
        let tokens = crate::auth::tests::test_tokens();
        let revocations = Revocations::default();
        let events = Arc::new(Recorder::default());
        let users = Users::new(store.clone(), hasher.clone()).on_node(info.clone());
        let sessions = Sessions::start(info.clone(), store.clone(), revocations.clone())
            .await
            .expect("sessions start");
        let auth = Auth::new(
            info.clone(),
            store.clone(),
            hasher,
            tokens.clone(),
            revocations,
            Arc::new(limits::Limiter::new(limits::Rates {
                login_per_account: 100,
                login_per_ip: 100,
                ..limits::Rates::default()
            })),
            Events {
                publisher: events.clone(),
                codes: codes::Settings::default(),
            },
        );
        let settings = Settings {
            state_ttl: Duration::from_secs(60),
            // A refused connection fails at once; the bound only has to outlast a loaded
            // machine's wait for a blocking thread (500 ms once answered 504, not 502).
            timeout: Duration::from_secs(10),
        };
        let sso = Sso::new(info, store.clone(), tokens, providers, settings);
        let harness = builder
            .start(vec![Arc::new(users), sessions, auth, sso])
            .await;
        Node {
            harness,
            events,
            store,
        }
    }

    /// A provider on a port nothing listens on: port 1, which only root could bind (a
    /// port freed by another test's listener may be taken again meanwhile).
    fn nowhere(name: &str) -> provider::Settings {
        provider::Settings {
            name: name.into(),
            issuer: "http://127.0.0.1:1".into(),
            client_id: "troupe".into(),
            client_secret: "s".into(),
            redirect_url: "http://127.0.0.1:1/auth/sso/callback".into(),
            scopes: vec!["openid".into(), "email".into()],
            link_verified_email: false,
            post_logout_redirect_url: None,
        }
    }

    fn pending(state: &str, expires_at: i64) -> store::Pending {
        store::Pending {
            state: state.into(),
            provider: "corp".into(),
            nonce: "n".into(),
            pkce_verifier: "v".into(),
            expires_at,
        }
    }

    fn callback(state: &str) -> CallbackRequest {
        CallbackRequest {
            code: "c".into(),
            state: state.into(),
            ..CallbackRequest::default()
        }
    }

    #[tokio::test]
    async fn an_expired_or_refused_sign_in_spends_its_state_and_creates_nothing() {
        on_each_backend(|store, _| async move {
            let node = start(store, vec![nowhere("corp")]).await;
            let router = node.harness.router();
            let now = now_ms();
            let old = uuid::Uuid::new_v4().to_string();
            store::insert_pending(&node.store, &pending(&old, now - 1), now - 60_000)
                .await
                .unwrap();
            let e = router
                .ask(&ops::CALLBACK, callback(&old))
                .await
                .unwrap_err();
            // The node's own sweeper (or, on a shared database, another test's) may delete
            // the expired state first: then it is unknown, refused all the same.
            let expired = "sso state expired; start the sign-in again";
            let swept = e.message == "unknown or already used sso state";
            assert_eq!(e.code, Code::Unauthenticated);
            assert!(e.message == expired || swept, "{}", e.message);
            let e = router
                .ask(&ops::CALLBACK, callback(&old))
                .await
                .unwrap_err();
            assert_eq!(e.message, "unknown or already used sso state");

            let denied = uuid::Uuid::new_v4().to_string();
            store::insert_pending(&node.store, &pending(&denied, now + 60_000), now)
                .await
                .unwrap();
            let req = CallbackRequest {
                error: "access_denied".into(),
                ..callback(&denied)
            };
            let e = router.ask(&ops::CALLBACK, req).await.unwrap_err();
            assert_eq!(
                (e.code, e.message.as_str()),
                (
                    Code::Unauthenticated,
                    "the provider refused the sign-in (access_denied)"
                )
            );
            assert_eq!(
                store::take_pending(&node.store, &denied).await.unwrap(),
                None
            );

            // A provider that cannot be reached: 502, the state spent all the same.
            let down = uuid::Uuid::new_v4().to_string();
            store::insert_pending(&node.store, &pending(&down, now + 60_000), now)
                .await
                .unwrap();
            let e = router
                .ask(&ops::CALLBACK, callback(&down))
                .await
                .unwrap_err();
            assert_eq!(e.code, Code::Unavailable, "{e:?}");
            assert!(e.details.contains(provider::BAD_GATEWAY), "{e:?}");
            assert!(
                node.events.events().is_empty(),
                "{:?}",
                node.events.events()
            );
            node.harness.stop().await;
        })
        .await;
    }

    #[tokio::test]
    async fn without_providers_sso_is_not_found_and_an_unknown_one_is_invalid() {
        on_each_backend(|store, _| async move {
            let none = start(store.clone(), vec![]).await;
            let e = none
                .harness
                .router()
                .ask(&ops::LOGIN_URL, LoginUrlRequest::default())
                .await
                .unwrap_err();
            assert_eq!(
                (e.code, e.message.as_str()),
                (
                    Code::NotFound,
                    "sso is not configured (no [[sso.providers]])"
                )
            );
            none.harness.stop().await;
            let node = start(store, vec![nowhere("corp"), nowhere("other")]).await;
            let req = LoginUrlRequest {
                provider: "nope".into(),
            };
            let e = node
                .harness
                .router()
                .ask(&ops::LOGIN_URL, req)
                .await
                .unwrap_err();
            assert_eq!(
                (e.code, e.message.as_str()),
                (
                    Code::InvalidArgument,
                    "unknown sso provider \"nope\"; configured: corp, other"
                )
            );
            node.harness.stop().await;
        })
        .await;
    }

    #[tokio::test]
    async fn open_session_gives_a_login_pair_and_sso_refresh_refuses_other_sessions() {
        on_each_backend(|store, _| async move {
            let node = start(store, vec![nowhere("corp")]).await;
            let router = node.harness.router();
            let name = format!("sso_{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
            let register = um::RegisterRequest {
                username: name.clone(),
                email: format!("{name}@example.com"),
                password: "password1".into(),
                full_name: String::new(),
            };
            let user: um::User = router.ask(&users::REGISTER, register).await.unwrap();
            let open = OpenSessionRequest {
                user_id: user.id.clone(),
                ip: "10.0.0.1".into(),
                user_agent: "agent/1".into(),
                device: "sso:corp".into(),
                method: "sso:corp".into(),
            };
            let pair = router
                .ask(&crate::auth::ops::OPEN_SESSION, open)
                .await
                .unwrap();
            let verified = router
                .ask(
                    &crate::auth::ops::VERIFY,
                    VerifyRequest {
                        token: pair.access_token.clone(),
                    },
                )
                .await
                .unwrap();
            assert_eq!(
                (verified.user_id.as_str(), verified.session_id.as_str()),
                (user.id.as_str(), pair.session_id.as_str())
            );
            let logged_in: Vec<_> = node
                .events
                .events()
                .into_iter()
                .filter(|e| e.kind == crate::events::kinds::USER_LOGGED_IN)
                .collect();
            assert_eq!(logged_in.len(), 1);
            assert_eq!(logged_in[0].payload["method"], "sso:corp");

            // A session without provider tokens is not refreshed through a provider.
            let refresh = RefreshRequest {
                refresh_token: pair.refresh_token.clone(),
            };
            let e = router
                .ask(&ops::REFRESH, refresh.clone())
                .await
                .unwrap_err();
            assert_eq!(
                (e.code, e.message.as_str()),
                (
                    Code::InvalidArgument,
                    "not an sso session; refresh it with /auth/refresh"
                )
            );
            // Ended: refused as such.
            let caller = Caller {
                user_id: user.id.clone(),
                roles: user.roles.clone(),
                session_id: pair.session_id.clone(),
            };
            router
                .call(crate::auth::ops::LOGOUT.call(()).caller(caller))
                .await
                .unwrap();
            let e = router.ask(&ops::REFRESH, refresh).await.unwrap_err();
            assert_eq!(
                (e.code, e.message.as_str()),
                (Code::Unauthenticated, "session has ended")
            );
            // A password login is untouched by all this.
            let login = LoginRequest {
                login: name,
                password: "password1".into(),
                ..LoginRequest::default()
            };
            router.ask(&crate::auth::ops::LOGIN, login).await.unwrap();
            node.harness.stop().await;
        })
        .await;
    }
}
