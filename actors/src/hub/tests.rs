//! The connection index without sockets: a recording [`Outlet`] stands where a WebSocket
//! connection actor would be.

use std::sync::Mutex;
use std::time::Duration;

use super::*;
use crate::mesh::NodeInfo;
use crate::sessions::Revocations;
use crate::store::time::now_ms;

#[derive(Default)]
struct Recorder {
    frames: Mutex<Vec<Bytes>>,
    closed: Mutex<Option<CloseReason>>,
    full: bool,
}

impl Outlet for Recorder {
    fn push(&self, frame: &Bytes) -> bool {
        if self.full {
            return false;
        }
        self.frames.lock().unwrap().push(frame.clone());
        true
    }

    fn close(&self, why: CloseReason) {
        *self.closed.lock().unwrap() = Some(why);
    }
}

fn conn(hub: &ConnectionHub, user: &str, session: &str, outlet: Arc<Recorder>) -> Arc<Connection> {
    Arc::new(Connection {
        id: hub.next_id(),
        user_id: user.into(),
        username: format!("{user}-name"),
        session_id: session.into(),
        since_ms: 1_000,
        outlet,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_larger_than_a_chunk_reaches_every_connection_once() {
    let hub = ConnectionHub::start(NodeInfo::new("n1".into(), 1), Revocations::default());
    let count = 3 * BROADCAST_CHUNK + 7;
    let recorders: Vec<Arc<Recorder>> = (0..count)
        .map(|i| {
            let r = Arc::new(Recorder {
                full: i % 100 == 0,
                ..Recorder::default()
            });
            hub.register(conn(&hub, &format!("u{i}"), "s", r.clone()));
            r
        })
        .collect();
    let full = recorders.iter().filter(|r| r.full).count();
    let frame = Bytes::from_static(br#"{"type":"broadcast"}"#);
    assert_eq!(hub.broadcast(&frame).await as usize, count - full);
    for r in &recorders {
        let got = r.frames.lock().unwrap().len();
        assert_eq!(got, usize::from(!r.full));
    }
}

#[tokio::test]
async fn frames_reach_every_connection_of_the_user_and_broadcast_reaches_all() {
    let info = NodeInfo::new("n1".into(), 1);
    let revocations = Revocations::default();
    let hub = ConnectionHub::start(info, revocations.clone());
    let (a1, a2, b) = (
        Arc::new(Recorder::default()),
        Arc::new(Recorder::default()),
        Arc::new(Recorder::default()),
    );
    let slow = Arc::new(Recorder {
        full: true,
        ..Recorder::default()
    });
    let ca1 = conn(&hub, "alice", "s1", a1.clone());
    hub.register(ca1.clone());
    hub.register(conn(&hub, "alice", "s2", a2.clone()));
    hub.register(conn(&hub, "bob", "s3", b.clone()));
    hub.register(conn(&hub, "carol", "s4", slow.clone()));
    assert_eq!(hub.len(), 4);

    let frame = Bytes::from_static(br#"{"type":"message"}"#);
    assert_eq!(hub.deliver("alice", &frame).await, 2);
    assert_eq!(hub.deliver("nobody", &frame).await, 0);
    assert_eq!(
        hub.deliver("carol", &frame).await,
        0,
        "a full queue takes nothing"
    );
    assert_eq!(a1.frames.lock().unwrap().len(), 1);
    assert!(b.frames.lock().unwrap().is_empty());
    assert_eq!(hub.broadcast(&frame).await, 3);
    assert_eq!(b.frames.lock().unwrap().len(), 1);

    let list = hub.list("alice");
    assert_eq!((list.items.len(), list.total), (2, 4));
    assert!(list
        .items
        .iter()
        .all(|c| c.node == "n1" && c.user_id == "alice"));
    assert_eq!(hub.list("").items.len(), 4);

    // A revoked session's connection is closed by the sweep, as revoked (1008 over a
    // WebSocket: see troupe_protocols::ws::close).
    revocations.add("s3", i64::MAX);
    let swept = tokio::time::timeout(Duration::from_secs(2), async {
        while b.closed.lock().unwrap().is_none() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(
        swept.is_ok(),
        "the sweep did not close the revoked connection"
    );
    assert_eq!(
        b.closed.lock().unwrap().unwrap(),
        CloseReason::SessionRevoked
    );
    assert!(a1.closed.lock().unwrap().is_none());

    hub.unregister("alice", ca1.id);
    hub.unregister("alice", ca1.id);
    assert_eq!(hub.len(), 3);
    assert_eq!(hub.deliver("alice", &frame).await, 1);
    hub.close_all(CloseReason::ShuttingDown);
    assert_eq!(
        a2.closed.lock().unwrap().unwrap(),
        CloseReason::ShuttingDown
    );
}

#[test]
fn frames_are_json_with_a_type() {
    let m = crate::chat::messages::ChatMessage {
        id: "m1".into(),
        sender_id: "a".into(),
        recipient_id: "b".into(),
        ciphertext: "c".into(),
        nonce: String::new(),
        created_at: "2024-01-01T00:00:00.000Z".into(),
    };
    let parse = |b: Bytes| serde_json::from_slice::<serde_json::Value>(&b).unwrap();
    assert_eq!(parse(frames::message(&m))["type"], "message");
    let r = parse(frames::receipt(&m, "delivered", 2, "r1"));
    assert_eq!(
        (
            r["type"].as_str(),
            r["delivered"].as_u64(),
            r["ref"].as_str()
        ),
        (Some("receipt"), Some(2), Some("r1"))
    );
    let p = parse(frames::presence("a", "alice", false, "n2"));
    assert_eq!(
        (p["status"].as_str(), p["node"].as_str()),
        (Some("offline"), Some("n2"))
    );
    assert_eq!(parse(frames::broadcast("hi", "x"))["message"], "hi");
    assert_eq!(
        parse(frames::error(&MeshError::invalid("bad"), ""))["code"],
        "invalid_argument"
    );
}

#[tokio::test]
async fn a_pulled_list_counts_as_notes_when_its_node_departs() {
    let hub = ConnectionHub::start(NodeInfo::new("n1".into(), 1), Revocations::default());
    hub.register(conn(&hub, "carol", "s1", Arc::new(Recorder::default())));
    let listed = |user: &str, node: &str| ConnectionInfo {
        id: 1,
        user_id: user.into(),
        username: format!("{user}-name"),
        node: node.into(),
        since_ms: 1_000,
    };
    let members = ["n1".to_string(), "n2".to_string(), "n3".to_string()];
    let list = ConnectionList {
        items: vec![listed("alice", "n2"), listed("carol", "n2")],
        total: 2,
    };
    assert_eq!(hub.learn("n2", list, &members), 2);
    // A note that arrived meanwhile is kept (union), another node's list is its own.
    hub.note(PresenceNote {
        user_id: "dave".into(),
        username: "dave-name".into(),
        node: "n2".into(),
        online: true,
    });
    let bob = ConnectionList {
        items: vec![listed("bob", "n3")],
        total: 1,
    };
    assert_eq!(hub.learn("n3", bob, &members), 1);
    // A list of a node that left routing meanwhile, or of this node, teaches nothing.
    let late = ConnectionList {
        items: vec![listed("erin", "n4")],
        total: 1,
    };
    assert_eq!(hub.learn("n4", late.clone(), &members), 0);
    assert_eq!(hub.learn("n1", late, &members), 0);

    // n2 departs: its users are lost except carol, who is connected here.
    let lost = hub.forget_departed(&["n1".to_string(), "n3".to_string()]);
    assert_eq!(
        lost,
        [
            ("alice".to_string(), "alice-name".to_string()),
            ("dave".to_string(), "dave-name".to_string())
        ]
    );
    let lost = hub.forget_departed(&members[..1]);
    assert_eq!(lost, [("bob".to_string(), "bob-name".to_string())]);
}

/// Issue 23, `[quotas] ws_connections_per_user`, the attack: 24 upgrades of one user race
/// each other on three nodes (three `Slots` over one store) for a quota of 5. Exactly 5
/// slots are reserved, the rest refused naming the quota; a closed connection (its slot
/// dropped) frees one; another user is not affected. SQLite and PostgreSQL.
#[tokio::test]
async fn racing_reservations_of_one_user_on_three_nodes_admit_exactly_the_quota() {
    crate::store::tests::on_each_backend(|store, _| async move {
        let mut nodes = Vec::new();
        for name in ["s1", "s2", "s3"] {
            let info = NodeInfo::new(format!("{name}-{}", uuid::Uuid::new_v4()).into(), 1);
            nodes.push(
                Slots::start(&info, store.clone(), 5, slots::LEASE)
                    .await
                    .unwrap(),
            );
        }
        let user = format!("u-{}", uuid::Uuid::new_v4());
        let races = (0..24).map(|i| {
            let slots = nodes[i % 3].clone();
            let user = user.clone();
            tokio::spawn(async move { slots.reserve(&user).await })
        });
        let mut held = Vec::new();
        for answer in futures_util::future::join_all(races).await {
            match answer.expect("task") {
                Ok(slot) => held.push(slot),
                Err(e) => {
                    assert_eq!(e.code, crate::mesh::Code::ResourceExhausted, "{e:?}");
                    let d: serde_json::Value = serde_json::from_str(&e.details).unwrap();
                    assert_eq!(
                        (d["quota"].as_str(), d["limit"].as_u64()),
                        (Some(slots::QUOTA), Some(5))
                    );
                }
            }
        }
        assert_eq!(held.len(), 5, "slots reserved");
        assert_eq!(store::live(&store, &user, now_ms()).await.unwrap(), 5);
        let other = format!("u-{}", uuid::Uuid::new_v4());
        nodes[1]
            .reserve(&other)
            .await
            .expect("another user's first");

        // A closed connection drops its slot: one more gets in, then no more.
        drop(held.pop());
        let mut again = None;
        for _ in 0..100 {
            if let Ok(slot) = nodes[2].reserve(&user).await {
                again = Some(slot);
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(again.is_some(), "a freed slot is reserved again");
        assert!(nodes[0].reserve(&user).await.is_err(), "still at the quota");
        assert_eq!(store::live(&store, &user, now_ms()).await.unwrap(), 5);
    })
    .await;
}

/// A node that dies leaves its slots behind: they stop counting when their lease runs out
/// (nobody renews them), and a restart of the node under its name drops them at once. A
/// live node's slots are renewed and keep counting past their first lease; a node that
/// leaves frees its own.
#[tokio::test]
async fn a_dead_nodes_slots_run_out_and_a_live_nodes_are_renewed() {
    crate::store::tests::on_each_backend(|store, _| async move {
        let lease = Duration::from_millis(400);
        let user = format!("u-{}", uuid::Uuid::new_v4());
        // The dead node's slots, as its process left them: never renewed.
        let dead = store::Holder {
            node: format!("dead-{}", uuid::Uuid::new_v4()),
            incarnation: 1,
        };
        for _ in 0..2 {
            let mut conn = store.writer().acquire().await.unwrap();
            let id = uuid::Uuid::new_v4().to_string();
            let now = now_ms();
            assert!(
                store::reserve(&mut conn, &id, &user, &dead, now, now + 400, 2)
                    .await
                    .unwrap()
            );
        }
        let live = Slots::start(
            &NodeInfo::new(format!("live-{}", uuid::Uuid::new_v4()).into(), 1),
            store.clone(),
            2,
            lease,
        )
        .await
        .unwrap();
        assert!(
            live.reserve(&user).await.is_err(),
            "the dead node's slots count for now"
        );
        tokio::time::sleep(lease + Duration::from_millis(100)).await;
        let kept = live
            .reserve(&user)
            .await
            .expect("the dead node's slots ran out");
        // Renewed past several leases, it keeps counting.
        tokio::time::sleep(lease * 3).await;
        assert_eq!(store::live(&store, &user, now_ms()).await.unwrap(), 1);

        // A restart under the dead node's name drops what its earlier run held at once.
        let far = now_ms() + 3_600_000;
        let mut conn = store.writer().acquire().await.unwrap();
        let id = uuid::Uuid::new_v4().to_string();
        assert!(
            store::reserve(&mut conn, &id, &user, &dead, now_ms(), far, 2)
                .await
                .unwrap()
        );
        drop(conn);
        assert_eq!(store::live(&store, &user, now_ms()).await.unwrap(), 2);
        let restarted = NodeInfo::new(dead.node.clone().into(), 2);
        let _again = Slots::start(&restarted, store.clone(), 2, lease)
            .await
            .unwrap();
        assert_eq!(store::live(&store, &user, now_ms()).await.unwrap(), 1);
        // Leaving, the live node frees what it holds.
        assert_eq!(live.release_all().await.unwrap(), 1);
        assert_eq!(store::live(&store, &user, now_ms()).await.unwrap(), 0);
        drop(kept);
    })
    .await;
}
