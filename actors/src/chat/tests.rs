//! The `chat` service with `users` and `hub` on a one-node harness ([`crate::mesh::harness`])
//! over SQLite, and PostgreSQL when `TROUPE_TEST_PG` is set: contacts, messages between
//! them (stored, listed, delivered live), and what is refused.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use troupe_proto::mesh::Caller;

use super::*;
use crate::auth::password::Hasher;
use crate::hub::{CloseReason, Connection, ConnectionHub, Hub, Outlet};
use crate::mesh::harness::Harness;
use crate::mesh::{Call, Op};
use crate::sessions::Revocations;
use crate::store::tests::on_each_backend;
use crate::users::{self, Users};

/// Largest ciphertext the service takes in these tests.
const MAX_BYTES: usize = 64;

/// A node running `users`, `hub` and `chat` over one store.
struct Node {
    harness: Harness,
    hub: Arc<ConnectionHub>,
}

/// A live connection that records the frames it is given.
#[derive(Default)]
struct Socket {
    frames: Mutex<Vec<serde_json::Value>>,
}

impl Outlet for Socket {
    fn push(&self, frame: &Bytes) -> bool {
        let v = serde_json::from_slice(frame).expect("frames are json");
        self.frames.lock().unwrap().push(v);
        true
    }

    fn close(&self, _why: CloseReason) {}
}

impl Socket {
    /// The ids of the `message` frames received.
    fn message_ids(&self) -> Vec<String> {
        self.frames
            .lock()
            .unwrap()
            .iter()
            .filter(|f| f["type"] == "message")
            .map(|f| f["id"].as_str().unwrap_or_default().to_string())
            .collect()
    }
}

impl Node {
    async fn start(store: Store) -> Self {
        Self::start_with(store, DEFAULT_MAX_PENDING).await
    }

    /// A node whose senders may have `max_pending` chat requests pending.
    async fn start_with(store: Store, max_pending: u32) -> Self {
        let builder = Harness::builder();
        let info = builder.info();
        let hub = ConnectionHub::start(info.clone(), Revocations::default());
        let services: Vec<Arc<dyn Service>> = vec![
            Arc::new(Users::new(store.clone(), Hasher::new(1000)).on_node(info.clone())),
            Arc::new(Hub::new(hub.clone())),
            Arc::new(Chat::new(info, store, MAX_BYTES).with_pending_quota(max_pending)),
        ];
        Self {
            harness: builder.start(services).await,
            hub,
        }
    }

    /// Registers a user with a unique name; their id.
    async fn user(&self) -> String {
        let name = format!("u_{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
        let req = users::RegisterRequest {
            username: name.clone(),
            email: format!("{name}@example.com"),
            password: "password1".into(),
            full_name: String::new(),
        };
        self.harness
            .router()
            .ask(&users::REGISTER, req)
            .await
            .unwrap()
            .id
    }

    /// Runs `op` for `me`.
    async fn call<Req, Rep>(&self, me: &str, op: &Op<Req, Rep>, req: Req) -> Result<Rep, MeshError>
    where
        Req: prost::Message + Default,
        Rep: prost::Message + Default,
    {
        let call: Call<Rep> = op.call(req).caller(Caller {
            user_id: me.to_string(),
            roles: vec!["user".into()],
            session_id: format!("s-{me}"),
        });
        self.harness.router().call(call).await
    }

    /// Makes `a` and `b` contacts: `a` asks, `b` accepts.
    async fn befriend(&self, a: &str, b: &str) {
        let asked = SendRequest {
            to_user_id: b.to_string(),
            username: String::new(),
        };
        let request = self.call(a, &SEND_REQUEST, asked).await.unwrap();
        assert_eq!(request.status, store::PENDING);
        let incoming = self.call(b, &INCOMING, ()).await.unwrap();
        assert_eq!(incoming.items, vec![request.clone()]);
        let accepted = self
            .call(b, &ACCEPT, AcceptRequest { id: request.id })
            .await
            .unwrap();
        assert_eq!(accepted.status, store::ACCEPTED);
    }

    async fn send(&self, from: &str, to: &str, text: &str) -> Result<ChatMessage, MeshError> {
        let m = SendMessage {
            recipient_id: to.to_string(),
            ciphertext: text.to_string(),
            nonce: "n".into(),
        };
        self.call(from, &SEND_MESSAGE, m).await
    }

    async fn conversation(&self, me: &str, with: &str) -> MessagePage {
        let req = ListMessages {
            with: with.to_string(),
            ..ListMessages::default()
        };
        self.call(me, &CONVERSATION, req).await.unwrap()
    }

    async fn all_messages(&self, me: &str) -> MessagePage {
        self.call(me, &LIST_MESSAGES, ListMessages::default())
            .await
            .unwrap()
    }

    /// Opens a recorded live connection of `user` on this node.
    fn connect(&self, user: &str) -> Arc<Socket> {
        let socket = Arc::new(Socket::default());
        self.hub.register(Arc::new(Connection {
            id: self.hub.next_id(),
            user_id: user.to_string(),
            username: user.to_string(),
            session_id: format!("s-{user}"),
            since_ms: crate::hub::since_now(),
            outlet: socket.clone(),
        }));
        socket
    }
}

fn ids(page: &MessagePage) -> Vec<String> {
    page.items.iter().map(|m| m.id.clone()).collect()
}

#[tokio::test]
async fn contacts_message_each_other_and_each_message_is_listed_once_in_order() {
    on_each_backend(|store, _| async move {
        let node = Node::start(store).await;
        let (ann, bob) = (node.user().await, node.user().await);
        node.befriend(&ann, &bob).await;
        let bob_socket = node.connect(&bob);

        let m1 = node.send(&ann, &bob, "one").await.unwrap();
        let m2 = node.send(&bob, &ann, "two").await.unwrap();
        let m3 = node.send(&ann, &bob, "three").await.unwrap();
        assert_eq!(
            (
                m1.sender_id.as_str(),
                m1.recipient_id.as_str(),
                m1.ciphertext.as_str()
            ),
            (ann.as_str(), bob.as_str(), "one")
        );

        let sent = vec![m1.id.clone(), m2.id.clone(), m3.id.clone()];
        for (me, other) in [(&ann, &bob), (&bob, &ann)] {
            let page = node.conversation(me, other).await;
            assert_eq!(ids(&page), sent, "conversation of {me}, oldest first");
            assert_eq!(page.total, 3);
            assert_eq!(page.items, vec![m1.clone(), m2.clone(), m3.clone()]);
            // All of one's messages: newest first.
            let all = node.all_messages(me).await;
            assert_eq!(ids(&all), sent.iter().rev().cloned().collect::<Vec<_>>());
        }

        // Bob's live connection got each message to him once.
        let deadline = Instant::now() + Duration::from_secs(5);
        while bob_socket.message_ids().len() < 2 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let mut live = bob_socket.message_ids();
        live.sort();
        assert_eq!(live, vec![m1.id.clone(), m3.id.clone()]);
        node.harness.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_message_to_a_non_contact_is_refused() {
    on_each_backend(|store, _| async move {
        let node = Node::start(store).await;
        let (ann, bob) = (node.user().await, node.user().await);

        let refused = node.send(&ann, &bob, "hi").await.unwrap_err();
        assert_eq!(refused.code, Code::PermissionDenied);
        assert_eq!(refused.message, "the recipient is not one of your contacts");
        // A pending request does not make a contact yet.
        let asked = SendRequest {
            to_user_id: bob.clone(),
            username: String::new(),
        };
        node.call(&ann, &SEND_REQUEST, asked).await.unwrap();
        let refused = node.send(&ann, &bob, "hi").await.unwrap_err();
        assert_eq!(refused.code, Code::PermissionDenied);
        // Nobody at all is not found.
        let nobody = uuid::Uuid::new_v4().to_string();
        let missing = node.send(&ann, &nobody, "hi").await.unwrap_err();
        assert_eq!(missing.code, Code::NotFound);

        assert_eq!(node.conversation(&ann, &bob).await.total, 0);
        assert_eq!(node.all_messages(&bob).await.total, 0);
        node.harness.stop().await;
    })
    .await;
}

#[tokio::test]
async fn bad_messages_are_refused_and_change_nothing() {
    on_each_backend(|store, _| async move {
        let node = Node::start(store).await;
        let (ann, bob) = (node.user().await, node.user().await);
        node.befriend(&ann, &bob).await;

        let empty = node.send(&ann, &bob, "").await.unwrap_err();
        assert_eq!(empty.code, Code::InvalidArgument);
        assert_eq!(empty.message, "ciphertext is required");
        let nobody = node.send(&ann, "", "hi").await.unwrap_err();
        assert_eq!(nobody.code, Code::InvalidArgument);
        // One byte over the cap is `resource_exhausted`, as the service documents.
        let too_large = node
            .send(&ann, &bob, &"x".repeat(MAX_BYTES + 1))
            .await
            .unwrap_err();
        assert_eq!(too_large.code, Code::ResourceExhausted);
        assert_eq!(too_large.message, TOO_LARGE);
        let long_nonce = SendMessage {
            recipient_id: bob.clone(),
            ciphertext: "hi".into(),
            nonce: "n".repeat(NONCE_MAX + 1),
        };
        let err = node
            .call(&ann, &SEND_MESSAGE, long_nonce)
            .await
            .unwrap_err();
        assert_eq!(err.code, Code::InvalidArgument);
        // Without a caller nothing is done for anyone.
        let anonymous = SEND_MESSAGE.call(SendMessage {
            recipient_id: bob.clone(),
            ciphertext: "hi".into(),
            nonce: String::new(),
        });
        let err = node.harness.router().call(anonymous).await.unwrap_err();
        assert_eq!(err.code, Code::Unauthenticated);

        assert_eq!(node.conversation(&ann, &bob).await.total, 0);
        assert_eq!(node.all_messages(&ann).await.total, 0);
        assert_eq!(node.all_messages(&bob).await.total, 0);
        // Exactly at the cap is fine.
        let full = node.send(&ann, &bob, &"x".repeat(MAX_BYTES)).await.unwrap();
        assert_eq!(ids(&node.conversation(&bob, &ann).await), vec![full.id]);
        node.harness.stop().await;
    })
    .await;
}

/// Issue 23, `[quotas] pending_chat_requests_per_user`, the attack: one sender races 24
/// requests to as many users over two nodes at once, for a quota of 5. Exactly 5 are
/// stored, the others refused naming the quota; an accepted request frees a place.
#[tokio::test]
async fn racing_requests_of_one_sender_admit_exactly_the_pending_quota() {
    on_each_backend(|store, _| async move {
        let a = Node::start_with(store.clone(), 5).await;
        let b = Node::start_with(store.clone(), 5).await;
        let sender = a.user().await;
        let mut targets = Vec::new();
        for _ in 0..24 {
            targets.push(a.user().await);
        }
        let ask = |to: &str| SendRequest {
            to_user_id: to.to_string(),
            username: String::new(),
        };
        let sends = targets.iter().enumerate().map(|(i, to)| {
            let node = if i % 2 == 0 { &a } else { &b };
            node.call(&sender, &SEND_REQUEST, ask(to))
        });
        let answers = futures_util::future::join_all(sends).await;
        let mut admitted = Vec::new();
        for answer in answers {
            match answer {
                Ok(r) => admitted.push(r),
                Err(e) => {
                    assert_eq!(e.code, Code::ResourceExhausted, "{e:?}");
                    let d: serde_json::Value = serde_json::from_str(&e.details).unwrap();
                    assert_eq!(
                        (d["quota"].as_str(), d["limit"].as_u64()),
                        (Some(QUOTA), Some(5))
                    );
                }
            }
        }
        assert_eq!(admitted.len(), 5, "requests admitted");
        let pending = |store: Store, who: String| async move {
            sqlx::query(
                "SELECT COUNT(*) FROM chat_requests WHERE from_user_id = $1 AND status = $2",
            )
            .bind(who)
            .bind(store::PENDING)
            .fetch_one(store.pool())
            .await
            .map(|row| sqlx::Row::get::<i64, _>(&row, 0))
            .unwrap()
        };
        assert_eq!(
            pending(store.clone(), sender.clone()).await,
            5,
            "requests stored"
        );

        // Another sender is not affected; an accepted request frees one place, once.
        let other = b.user().await;
        b.call(&other, &SEND_REQUEST, ask(&targets[0]))
            .await
            .unwrap();
        let first = &admitted[0];
        b.call(
            &first.to_user_id,
            &ACCEPT,
            AcceptRequest {
                id: first.id.clone(),
            },
        )
        .await
        .unwrap();
        let unasked: Vec<&String> = targets
            .iter()
            .filter(|t| !admitted.iter().any(|r| &r.to_user_id == *t))
            .collect();
        a.call(&sender, &SEND_REQUEST, ask(unasked[0]))
            .await
            .unwrap();
        let e = b
            .call(&sender, &SEND_REQUEST, ask(unasked[1]))
            .await
            .unwrap_err();
        assert_eq!(e.code, Code::ResourceExhausted, "{e:?}");
        assert_eq!(pending(store.clone(), sender.clone()).await, 5);
        a.harness.stop().await;
        b.harness.stop().await;
    })
    .await;
}
