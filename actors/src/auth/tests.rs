//! The `auth` service with `users` and `sessions` on a one-node harness
//! ([`crate::mesh::harness`]) over SQLite, and PostgreSQL when `TROUPE_TEST_PG` is set:
//! login, refresh rotation and reuse, logout, and wrong passwords.

use std::time::Duration;

use troupe_proto::mesh::Caller;

use super::ops::{LOGIN, LOGOUT, REFRESH, VERIFY};
use super::token::SigningKey;
use super::*;
use crate::events::Recorder;
use crate::mesh::harness::Harness;
use crate::sessions::Sessions;
use crate::store::tests::on_each_backend;
use crate::users::Users;

/// Cheap PBKDF2, for hashes made under older settings.
const ITERATIONS: u32 = 1000;
/// Cheap argon2id: the scheme nodes use, with small parameters.
const CHEAP_ARGON2: password::Scheme = password::Scheme::Argon2id {
    memory_kib: 64,
    iterations: 1,
    parallelism: 1,
};
const PASSWORD: &str = "password1";

/// A node running `users`, `sessions` and `auth` over one store.
struct Node {
    harness: Harness,
    tokens: Arc<Tokens>,
    revocations: Revocations,
    events: Arc<Recorder>,
}

/// The token issuer of every test node: one key, 15-minute access and one-day refresh
/// tokens.
pub(crate) fn test_tokens() -> Arc<Tokens> {
    let key = SigningKey {
        kid: "k1".into(),
        secret: vec![7; token::MIN_SECRET_LEN],
    };
    Arc::new(
        Tokens::new(
            vec![key],
            Duration::from_secs(900),
            Duration::from_secs(86_400),
            "troupe-test",
        )
        .unwrap(),
    )
}

impl Node {
    async fn start(store: Store) -> Self {
        let builder = Harness::builder();
        let info = builder.info();
        let hasher = Hasher::with(CHEAP_ARGON2).unwrap();
        let tokens = test_tokens();
        let revocations = Revocations::default();
        let events = Arc::new(Recorder::default());
        let users = Users::new(store.clone(), hasher.clone()).on_node(info.clone());
        let sessions = Sessions::start(info.clone(), store.clone(), revocations.clone())
            .await
            .expect("sessions start");
        let auth = Auth::new(
            info,
            store,
            hasher,
            tokens.clone(),
            revocations.clone(),
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
        let harness = builder.start(vec![Arc::new(users), sessions, auth]).await;
        Self {
            harness,
            tokens,
            revocations,
            events,
        }
    }

    fn router(&self) -> &crate::mesh::Router {
        self.harness.router()
    }

    /// Registers a user with a unique name and [`PASSWORD`].
    async fn register(&self) -> um::User {
        let name = format!("ann_{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
        let req = um::RegisterRequest {
            username: name.clone(),
            email: format!("{name}@example.com"),
            password: PASSWORD.into(),
            full_name: "Ann".into(),
        };
        self.router().ask(&users::REGISTER, req).await.unwrap()
    }

    async fn login(&self, login: &str, password: &str) -> Result<TokenPair, MeshError> {
        let req = LoginRequest {
            login: login.into(),
            password: password.into(),
            ip: "10.0.0.9".into(),
            user_agent: "agent/1".into(),
            device: "phone".into(),
        };
        self.router().ask(&LOGIN, req).await
    }

    async fn refresh(&self, refresh_token: &str) -> Result<TokenPair, MeshError> {
        let req = RefreshRequest {
            refresh_token: refresh_token.into(),
        };
        self.router().ask(&REFRESH, req).await
    }

    async fn verify(&self, token: &str) -> Result<VerifyReply, MeshError> {
        let req = VerifyRequest {
            token: token.into(),
        };
        self.router().ask(&VERIFY, req).await
    }

    async fn session(&self, sid: &str) -> sm::SessionInfo {
        let call = sessions::ops::GET.call(()).to(Target::Entity(sid.into()));
        self.router().call(call).await.unwrap()
    }

    async fn sessions_of(&self, user_id: &str) -> Vec<sm::SessionInfo> {
        let by = sm::ByUser {
            user_id: user_id.into(),
            ..Default::default()
        };
        self.router()
            .ask(&sessions::ops::LIST, by)
            .await
            .unwrap()
            .items
    }
}

fn unauthenticated(answer: Result<impl std::fmt::Debug, MeshError>) -> String {
    let err = answer.unwrap_err();
    assert_eq!(err.code, Code::Unauthenticated, "{err}");
    err.message
}

#[tokio::test]
async fn login_answers_verifiable_tokens_of_a_live_session() {
    on_each_backend(|store, _| async move {
        let node = Node::start(store).await;
        let user = node.register().await;
        let pair = node
            .login(&user.username.to_uppercase(), PASSWORD)
            .await
            .unwrap();

        let who = pair.user.clone().unwrap();
        assert_eq!(who.id, user.id);
        assert!(who.password_hash.is_empty());
        assert_eq!(pair.expires_in, 900);
        let claims = node
            .tokens
            .verify(&pair.access_token, TokenKind::Access)
            .unwrap();
        assert_eq!(
            (claims.sub.as_str(), claims.sid.as_str()),
            (user.id.as_str(), pair.session_id.as_str())
        );
        let refresh = node
            .tokens
            .verify(&pair.refresh_token, TokenKind::Refresh)
            .unwrap();
        assert_eq!(refresh.sid, pair.session_id);
        let verified = node.verify(&pair.access_token).await.unwrap();
        assert_eq!(
            (verified.user_id, verified.session_id),
            (user.id.clone(), pair.session_id.clone())
        );

        let session = node.session(&pair.session_id).await;
        assert_eq!(session.user_id, user.id);
        assert!(!session.revoked);
        assert_eq!(
            (
                session.ip.as_str(),
                session.user_agent.as_str(),
                session.device.as_str()
            ),
            ("10.0.0.9", "agent/1", "phone")
        );
        let logged_in: Vec<_> = node
            .events
            .events()
            .into_iter()
            .filter(|e| e.kind == kinds::USER_LOGGED_IN)
            .collect();
        assert_eq!(logged_in.len(), 1);
        assert_eq!(logged_in[0].user_id.as_deref(), Some(user.id.as_str()));
        node.harness.stop().await;
    })
    .await;
}

#[tokio::test]
async fn refresh_rotates_and_a_reused_refresh_token_ends_the_session() {
    on_each_backend(|store, _| async move {
        let node = Node::start(store).await;
        let user = node.register().await;
        let first = node.login(&user.email, PASSWORD).await.unwrap();

        let second = node.refresh(&first.refresh_token).await.unwrap();
        assert_eq!(second.session_id, first.session_id);
        assert_ne!(second.refresh_token, first.refresh_token);
        assert_eq!(second.user.as_ref().unwrap().id, user.id);
        assert!(node.verify(&second.access_token).await.is_ok());
        assert!(!node.session(&first.session_id).await.revoked);

        // The spent token is refused, and its reuse ends the whole session.
        let message = unauthenticated(node.refresh(&first.refresh_token).await);
        assert_eq!(
            message,
            "refresh token already used; the session has been ended"
        );
        assert!(node.session(&first.session_id).await.revoked);
        assert!(node.revocations.is_revoked(&first.session_id));
        // So the rotated pair stops working too.
        let message = unauthenticated(node.refresh(&second.refresh_token).await);
        assert_eq!(message, "session has ended");
        unauthenticated(node.verify(&second.access_token).await);
        node.harness.stop().await;
    })
    .await;
}

#[tokio::test]
async fn logout_ends_the_callers_session() {
    on_each_backend(|store, _| async move {
        let node = Node::start(store).await;
        let user = node.register().await;
        let pair = node.login(&user.username, PASSWORD).await.unwrap();
        let other = node.login(&user.username, PASSWORD).await.unwrap();

        // Without a session there is nothing to end.
        unauthenticated(node.router().ask(&LOGOUT, ()).await);
        let caller = Caller {
            user_id: user.id.clone(),
            roles: user.roles.clone(),
            session_id: pair.session_id.clone(),
        };
        let ended = node
            .router()
            .call(LOGOUT.call(()).caller(caller))
            .await
            .unwrap();
        assert_eq!(
            (ended.id.as_str(), ended.revoked),
            (pair.session_id.as_str(), true)
        );
        assert!(node.revocations.is_revoked(&pair.session_id));
        assert!(node.session(&pair.session_id).await.revoked);
        unauthenticated(node.verify(&pair.access_token).await);
        unauthenticated(node.refresh(&pair.refresh_token).await);

        // The user's other session lives on.
        assert!(!node.revocations.is_revoked(&other.session_id));
        assert!(node.verify(&other.access_token).await.is_ok());
        node.harness.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_wrong_password_is_unauthenticated_and_starts_no_session() {
    on_each_backend(|store, _| async move {
        let node = Node::start(store).await;
        let user = node.register().await;

        let wrong = unauthenticated(node.login(&user.username, "password2").await);
        assert_eq!(wrong, "invalid credentials");
        // An unknown account gets the very same answer.
        let unknown = unauthenticated(node.login("nobody_at_all", PASSWORD).await);
        assert_eq!(unknown, wrong);
        assert!(node.sessions_of(&user.id).await.is_empty());
        assert!(node
            .events
            .events()
            .iter()
            .all(|e| e.kind != kinds::USER_LOGGED_IN));
        // A missing password is a bad request, not a failed login.
        let err = node.login(&user.username, "").await.unwrap_err();
        assert_eq!(err.code, Code::InvalidArgument);
        node.harness.stop().await;
    })
    .await;
}

/// Hashes made under older settings keep working and are replaced at the next login: a
/// PBKDF2 hash becomes an argon2id one of the node's parameters, and the password still
/// logs in afterwards.
#[tokio::test]
async fn a_pbkdf2_hash_is_upgraded_to_argon2id_at_login() {
    on_each_backend(|store, _| async move {
        let node = Node::start(store.clone()).await;
        let user = node.register().await;
        let hash_of = |id: String| {
            let store = store.clone();
            async move {
                sqlx::query_scalar::<_, String>("SELECT password_hash FROM users WHERE id = $1")
                    .bind(id)
                    .fetch_one(store.pool())
                    .await
                    .unwrap()
            }
        };
        assert!(hash_of(user.id.clone())
            .await
            .starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        let old = Hasher::new(ITERATIONS).hash_blocking(PASSWORD).unwrap();
        sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind(&old)
            .bind(&user.id)
            .execute(store.writer())
            .await
            .unwrap();
        // A wrong password changes nothing.
        assert!(node.login(&user.username, "not-it-at-all").await.is_err());
        assert_eq!(hash_of(user.id.clone()).await, old);
        node.login(&user.username, PASSWORD).await.unwrap();
        let new = hash_of(user.id.clone()).await;
        assert!(new.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{new}");
        assert!(Hasher::verify_blocking(&new, PASSWORD));
        node.login(&user.username, PASSWORD).await.unwrap();
        assert_eq!(hash_of(user.id.clone()).await, new, "rehashed only once");
    })
    .await;
}

/// `update_user` as the user behind `pair` (their own profile).
async fn update_own(
    node: &Node,
    user: &um::User,
    pair: &TokenPair,
    req: um::UpdateRequest,
) -> Result<um::User, MeshError> {
    let caller = Caller {
        user_id: user.id.clone(),
        roles: user.roles.clone(),
        session_id: pair.session_id.clone(),
    };
    let req = um::UpdateRequest {
        id: user.id.clone(),
        ..req
    };
    node.router()
        .call(ops::UPDATE_USER.call(req).caller(caller))
        .await
}

#[tokio::test]
async fn a_token_alone_cannot_change_the_password() {
    on_each_backend(|store, _| async move {
        let node = Node::start(store).await;
        let user = node.register().await;
        let stolen = node.login(&user.username, PASSWORD).await.unwrap();

        // No current password: 400 naming the field; a caller's own `reauthenticated` is
        // ignored.
        let err = update_own(
            &node,
            &user,
            &stolen,
            um::UpdateRequest {
                password: Some("taken-over1".into()),
                reauthenticated: true,
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
        assert_eq!(err.code, Code::InvalidArgument, "{err}");
        let details: serde_json::Value = serde_json::from_str(&err.details).unwrap();
        assert_eq!(
            details["fields"],
            serde_json::json!({"current_password": CURRENT_PASSWORD_REQUIRED})
        );
        // A wrong one: refused.
        let err = update_own(
            &node,
            &user,
            &stolen,
            um::UpdateRequest {
                password: Some("taken-over1".into()),
                current_password: Some("guess1234".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
        assert_eq!(
            (err.code, err.message.as_str()),
            (Code::PermissionDenied, "current password is incorrect")
        );
        // An email change without it is refused too.
        let err = update_own(
            &node,
            &user,
            &stolen,
            um::UpdateRequest {
                email: Some("thief@example.com".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
        assert_eq!(err.code, Code::InvalidArgument, "{err}");
        // Nothing changed: the old password still logs in, the email is the same, every
        // session is open.
        let again = node.login(&user.username, PASSWORD).await.unwrap();
        assert_eq!(again.user.unwrap().email, user.email);
        unauthenticated(node.login(&user.username, "taken-over1").await);
        assert!(node.verify(&stolen.access_token).await.is_ok());
        node.harness.stop().await;
    })
    .await;
}

#[tokio::test]
async fn the_current_password_changes_it_and_ends_only_the_other_sessions() {
    on_each_backend(|store, _| async move {
        let node = Node::start(store).await;
        let user = node.register().await;
        let mine = node.login(&user.username, PASSWORD).await.unwrap();
        let other = node.login(&user.username, PASSWORD).await.unwrap();

        let changed = update_own(
            &node,
            &user,
            &mine,
            um::UpdateRequest {
                password: Some("n3w-password".into()),
                current_password: Some(PASSWORD.into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(changed.id, user.id);
        assert!(changed.password_hash.is_empty());

        unauthenticated(node.verify(&other.access_token).await);
        unauthenticated(node.refresh(&other.refresh_token).await);
        assert!(node.session(&other.session_id).await.revoked);
        assert!(node.verify(&mine.access_token).await.is_ok());
        assert!(!node.session(&mine.session_id).await.revoked);
        unauthenticated(node.login(&user.username, PASSWORD).await);
        node.login(&user.username, "n3w-password").await.unwrap();

        // Other fields need no password.
        let renamed = update_own(
            &node,
            &user,
            &mine,
            um::UpdateRequest {
                full_name: Some("Ann B".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(renamed.full_name, "Ann B");
        node.harness.stop().await;
    })
    .await;
}

#[tokio::test]
async fn wrong_current_passwords_count_against_the_login_limit() {
    on_each_backend(|store, _| async move {
        let node = Node::start(store).await;
        let user = node.register().await;
        let stolen = node.login(&user.username, PASSWORD).await.unwrap();
        let mut codes = Vec::new();
        for i in 0..101 {
            let err = update_own(
                &node,
                &user,
                &stolen,
                um::UpdateRequest {
                    password: Some("taken-over1".into()),
                    current_password: Some(format!("guess{i:04}x")),
                    ..Default::default()
                },
            )
            .await
            .unwrap_err();
            codes.push(err.code);
        }
        // The test limit is 100 a minute per account, one of them spent on the login.
        assert_eq!(
            codes
                .iter()
                .filter(|c| **c == Code::PermissionDenied)
                .count(),
            99
        );
        assert!(codes[99..].iter().all(|c| *c == Code::ResourceExhausted));
        node.harness.stop().await;
    })
    .await;
}

fn reset_requests(events: &Recorder, user_id: &str) -> usize {
    events
        .events()
        .iter()
        .filter(|e| {
            e.kind == kinds::PASSWORD_RESET_REQUESTED && e.user_id.as_deref() == Some(user_id)
        })
        .count()
}

/// Issue 23 (account enumeration): `forgot_password` answers the same bytes for an
/// account and for an unknown login; the code goes out after the answer, to the account
/// only.
#[tokio::test]
async fn forgot_password_answers_alike_whether_or_not_the_account_exists() {
    on_each_backend(|store, _| async move {
        let node = Node::start(store).await;
        let user = node.register().await;
        let ask = |login: String| {
            let router = node.router();
            async move {
                router
                    .ask(&ops::FORGOT_PASSWORD, ForgotRequest { login })
                    .await
                    .expect("forgot_password answers")
            }
        };
        let known = ask(user.username.clone()).await;
        let unknown = ask(format!("nobody_{}", uuid::Uuid::new_v4().simple())).await;
        assert_eq!(
            prost::Message::encode_to_vec(&known),
            prost::Message::encode_to_vec(&unknown)
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while reset_requests(&node.events, &user.id) == 0 {
            assert!(std::time::Instant::now() < deadline, "no reset code sent");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(reset_requests(&node.events, &user.id), 1);
        let codes = node
            .events
            .events()
            .iter()
            .filter(|e| e.kind == kinds::PASSWORD_RESET_REQUESTED)
            .count();
        assert_eq!(codes, 1, "nothing sent for the unknown login");
    })
    .await;
}

/// The same, shown on the code path: `forgot_password` answers without waiting for the
/// account lookup at all. With no `users` service to look the account up in, it still
/// answers at once, exactly as for an account (before issue 23 it waited for the lookup,
/// whose time told whether the account exists, and here failed with it).
#[tokio::test]
async fn forgot_password_answers_without_waiting_for_the_account_lookup() {
    let (store, _dir) = crate::store::tests::sqlite().await;
    let builder = Harness::builder();
    let info = builder.info();
    let tokens = test_tokens();
    let events = Arc::new(Recorder::default());
    let codes = codes::Settings::default();
    let auth = Auth::new(
        info,
        store,
        Hasher::with(CHEAP_ARGON2).unwrap(),
        tokens,
        Revocations::default(),
        Arc::new(limits::Limiter::new(limits::Rates::default())),
        Events {
            publisher: events.clone(),
            codes,
        },
    );
    let harness = builder.start(vec![auth]).await;
    let reply: ForgotReply = harness
        .router()
        .ask(
            &ops::FORGOT_PASSWORD,
            ForgotRequest {
                login: "ann".into(),
            },
        )
        .await
        .expect("answered without the lookup");
    assert_eq!(
        reply.expires_in,
        codes.ttl(codes::Purpose::PasswordReset).as_secs()
    );
    assert!(events.events().is_empty());
}
