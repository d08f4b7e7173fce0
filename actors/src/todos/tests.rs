//! The `todos` service against SQLite (and PostgreSQL when `TROUPE_TEST_PG` is set):
//! ownership, validation, optimistic concurrency and the events each change publishes.

use std::sync::Arc;

use troupe_proto::mesh::Caller;

use super::*;
use crate::events::Recorder;
use crate::mesh::service::call_op;
use crate::store::tests::{on_each_backend, sqlite};

fn todos(store: Store) -> (Todos, Arc<Recorder>) {
    let events = Arc::new(Recorder::default());
    (Todos::new(store, events.clone()), events)
}

fn who(user: &str) -> Who {
    Who {
        user_id: user.to_string(),
        admin: false,
    }
}

fn user() -> String {
    format!("u-{}", uuid::Uuid::new_v4().simple())
}

fn new_todo(title: &str) -> CreateTodo {
    CreateTodo {
        title: Some(title.to_string()),
        description: Some("details".to_string()),
        status: None,
    }
}

fn field_keys(e: &MeshError) -> Vec<String> {
    let details: serde_json::Value = serde_json::from_str(&e.details).expect("details json");
    let mut keys: Vec<String> = details["fields"]
        .as_object()
        .expect("fields object")
        .keys()
        .cloned()
        .collect();
    keys.sort();
    keys
}

#[tokio::test]
async fn owners_create_read_change_and_delete_their_todos() {
    on_each_backend(|store, _| async move {
        let (svc, events) = todos(store);
        let alice = user();
        let t = svc
            .create(&who(&alice), new_todo("buy milk"))
            .await
            .unwrap();
        assert_eq!(
            (t.status.as_str(), t.version, t.owner_id.as_str()),
            ("pending", 1, alice.as_str())
        );
        let r = TodoRef { id: t.id.clone() };
        assert_eq!(svc.get(&who(&alice), &r).await.unwrap(), t);

        let u = UpdateTodo {
            id: t.id.clone(),
            status: Some("in_progress".into()),
            ..UpdateTodo::default()
        };
        let changed = svc.update(&who(&alice), u).await.unwrap();
        assert_eq!(
            (
                changed.status.as_str(),
                changed.title.as_str(),
                changed.version
            ),
            ("in_progress", "buy milk", 2)
        );
        // Nothing to change: no write, no event.
        let same = UpdateTodo {
            id: t.id.clone(),
            title: Some("buy milk".into()),
            ..UpdateTodo::default()
        };
        assert_eq!(svc.update(&who(&alice), same).await.unwrap().version, 2);
        // A stale version is refused.
        let stale = UpdateTodo {
            id: t.id.clone(),
            status: Some("done".into()),
            version: Some(1),
            ..UpdateTodo::default()
        };
        let e = svc.update(&who(&alice), stale).await.unwrap_err();
        assert_eq!(e.code, Code::FailedPrecondition);

        let gone = svc.delete(&who(&alice), &r).await.unwrap();
        assert_eq!(gone.status, "in_progress");
        assert_eq!(
            svc.get(&who(&alice), &r).await.unwrap_err().code,
            Code::NotFound
        );
        assert_eq!(
            svc.delete(&who(&alice), &r).await.unwrap_err().code,
            Code::NotFound
        );

        let mine: Vec<_> = events
            .events()
            .into_iter()
            .filter(|e| e.payload["todo_id"] == t.id.as_str())
            .collect();
        let kinds: Vec<&str> = mine.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds, ["todo.created", "todo.updated", "todo.deleted"]);
        assert!(mine
            .iter()
            .all(|e| e.user_id.as_deref() == Some(alice.as_str())));
        assert_eq!(mine[1].payload["changed"], serde_json::json!(["status"]));
    })
    .await;
}

#[tokio::test]
async fn other_users_cannot_see_or_touch_a_todo_and_admins_only_read() {
    let (store, _dir) = sqlite().await;
    let (svc, events) = todos(store);
    let (alice, bob) = (user(), user());
    let t = svc.create(&who(&alice), new_todo("secret")).await.unwrap();
    svc.create(&who(&bob), new_todo("bob's")).await.unwrap();
    let r = TodoRef { id: t.id.clone() };
    let before = events.events().len();
    assert_eq!(
        svc.get(&who(&bob), &r).await.unwrap_err().code,
        Code::NotFound
    );
    let u = UpdateTodo {
        id: t.id.clone(),
        title: Some("mine now".into()),
        ..UpdateTodo::default()
    };
    assert_eq!(
        svc.update(&who(&bob), u.clone()).await.unwrap_err().code,
        Code::NotFound
    );
    assert_eq!(
        svc.delete(&who(&bob), &r).await.unwrap_err().code,
        Code::NotFound
    );

    let admin = Who {
        user_id: user(),
        admin: true,
    };
    assert_eq!(svc.get(&admin, &r).await.unwrap().title, "secret");
    assert_eq!(
        svc.update(&admin, u).await.unwrap_err().code,
        Code::PermissionDenied
    );
    assert_eq!(
        svc.delete(&admin, &r).await.unwrap_err().code,
        Code::PermissionDenied
    );
    assert_eq!(
        events.events().len(),
        before,
        "refused requests publish nothing"
    );
    assert_eq!(svc.get(&who(&alice), &r).await.unwrap(), t, "unchanged");

    let mine = svc.list(&who(&alice), &ListTodos::default()).await.unwrap();
    assert_eq!((mine.total, mine.items[0].id.as_str()), (1, t.id.as_str()));
    assert_eq!(
        svc.list(&admin, &ListTodos::default()).await.unwrap().total,
        2
    );
    let bobs = ListTodos {
        owner_id: bob.clone(),
        ..ListTodos::default()
    };
    assert_eq!(svc.list(&admin, &bobs).await.unwrap().total, 1);
    assert_eq!(
        svc.list(&who(&alice), &bobs).await.unwrap_err().code,
        Code::PermissionDenied
    );
}

#[tokio::test]
async fn bad_fields_are_all_reported_and_change_nothing() {
    let (store, _dir) = sqlite().await;
    let (svc, events) = todos(store);
    let alice = user();
    let bad = CreateTodo {
        title: None,
        description: Some("d".repeat(validate::DESCRIPTION_MAX + 1)),
        status: Some("finished".into()),
    };
    let e = svc.create(&who(&alice), bad).await.unwrap_err();
    assert_eq!(
        (e.code, e.message.as_str()),
        (Code::InvalidArgument, "validation failed")
    );
    assert_eq!(field_keys(&e), ["description", "status", "title"]);
    let e = svc
        .create(&who(&alice), new_todo(&"t".repeat(validate::TITLE_MAX + 1)))
        .await
        .unwrap_err();
    assert_eq!(field_keys(&e), ["title"]);
    let e = svc.create(&who(&alice), new_todo("   ")).await.unwrap_err();
    assert_eq!(field_keys(&e), ["title"]);
    assert_eq!(
        svc.list(&who(&alice), &ListTodos::default())
            .await
            .unwrap()
            .total,
        0
    );

    let t = svc.create(&who(&alice), new_todo("ok")).await.unwrap();
    let u = UpdateTodo {
        id: t.id.clone(),
        title: Some(String::new()),
        status: Some("DONE".into()),
        ..UpdateTodo::default()
    };
    let e = svc.update(&who(&alice), u).await.unwrap_err();
    assert_eq!(field_keys(&e), ["status", "title"]);
    assert_eq!(
        svc.get(&who(&alice), &TodoRef { id: t.id.clone() })
            .await
            .unwrap(),
        t
    );
    let bad_filter = ListTodos {
        status: "later".into(),
        ..ListTodos::default()
    };
    assert_eq!(
        field_keys(&svc.list(&who(&alice), &bad_filter).await.unwrap_err()),
        ["status"]
    );
    assert_eq!(events.events().len(), 1, "only the valid create published");
}

#[tokio::test]
async fn ops_need_a_caller() {
    let (store, _dir) = sqlite().await;
    let (svc, _) = todos(store);
    let e = call_op(&svc, &ops::CREATE, new_todo("x"), None)
        .await
        .unwrap_err();
    assert_eq!(e.code, Code::Unauthenticated);
    let caller = Caller {
        user_id: "u1".into(),
        roles: vec!["user".into()],
        session_id: "s".into(),
    };
    let todo = call_op(&svc, &ops::CREATE, new_todo("x"), Some(caller))
        .await
        .unwrap();
    assert_eq!(todo.owner_id, "u1");
}
