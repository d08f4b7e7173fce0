//! The `tasks` service and its actors against SQLite (and PostgreSQL when `TROUPE_TEST_PG`
//! is set): runs, cancels, ownership, validation, and what happens when the node running a
//! task is lost or a second node activates it too. "Nodes" here are two services with
//! different node names on one database, without a mesh.

use std::time::{Duration, Instant};

use super::*;
use crate::events::{Event, Recorder};
use crate::store::tests::on_each_backend;

struct Node {
    svc: Arc<Tasks>,
    events: Arc<Recorder>,
}

async fn node(store: &Store, name: &str, settings: Settings) -> Node {
    let events = Arc::new(Recorder::default());
    let svc = Tasks::start(
        NodeInfo::new(name.into(), 1),
        store.clone(),
        events.clone(),
        settings,
    )
    .await
    .expect("tasks start");
    Node { svc, events }
}

fn who(user: &str) -> Who {
    Who {
        user_id: user.to_string(),
        admin: false,
    }
}

fn admin() -> Who {
    Who {
        user_id: "the-admin".to_string(),
        admin: true,
    }
}

fn user() -> String {
    format!("u-{}", uuid::Uuid::new_v4().simple())
}

fn request() -> Request {
    let mut req = Request::new(ops::CREATE.name, Bytes::new(), Duration::from_secs(10));
    req.request_id = "test".to_string();
    req
}

fn spec(steps: i64, delay_ms: i64) -> CreateTask {
    CreateTask {
        name: Some("job".to_string()),
        payload: r#"{"input": [1, 2, 3]}"#.to_string(),
        steps: Some(steps),
        delay_ms: Some(delay_ms),
        resumable: None,
        fail_at_step: None,
    }
}

async fn get(n: &Node, owner: &str, id: &str) -> Task {
    n.svc
        .get(
            &who(owner),
            &TaskRef {
                id: id.to_string(),
                history: true,
            },
        )
        .await
        .expect("get")
}

/// Polls until `pred` holds for the task, failing after 10 s.
async fn wait(n: &Node, owner: &str, id: &str, pred: impl Fn(&Task) -> bool) -> Task {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let t = get(n, owner, id).await;
        if pred(&t) {
            return t;
        }
        assert!(Instant::now() < deadline, "condition not reached: {t:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn kinds_of(events: &[Event], task: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.payload["task_id"] == task)
        .map(|e| e.kind.clone())
        .collect()
}

/// Every step from 1 to `steps` exactly once, in order.
fn assert_each_step_once(t: &Task) {
    let steps: Vec<u32> = t.history.iter().map(|h| h.step).collect();
    assert_eq!(steps, (1..=t.steps).collect::<Vec<_>>(), "{t:?}");
}

/// Stops every task actor of `n` between two messages (no more writes) and its host, as
/// when the node's process dies.
async fn crash(n: &Node) {
    let host = n.svc.host.lock().expect("host lock").clone();
    host.stop_children(None);
    tokio::time::sleep(Duration::from_millis(20)).await;
    host.kill();
}

async fn running_here(n: &Node) -> Vec<String> {
    let host = n.svc.host().await.expect("host");
    ractor::call!(host, HostMsg::Running).expect("running")
}

#[tokio::test]
async fn a_task_runs_to_completion_publishing_its_progress() {
    on_each_backend(|store, _| async move {
        let a = node(&store, "a", Settings::default()).await;
        let owner = user();
        let t = a
            .svc
            .create(&who(&owner), &request(), spec(3, 10))
            .await
            .unwrap();
        assert_eq!(t.status, "running");
        assert_eq!((t.node.as_str(), t.activations, t.steps), ("a", 1, 3));
        let done = wait(&a, &owner, &t.id, |t| t.status == "completed").await;
        assert_eq!(done.step, 3);
        assert_each_step_once(&done);
        assert!(done
            .history
            .iter()
            .all(|h| h.node == "a" && h.activation == 1));
        assert!(!done.finished_at.is_empty() && !done.started_at.is_empty());
        // `task.completed` is published right after the completing write that `wait` saw.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !kinds_of(&a.events.events(), &t.id).contains(&"task.completed".to_string()) {
            assert!(Instant::now() < deadline, "task.completed never published");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(
            kinds_of(&a.events.events(), &t.id),
            [
                "task.created",
                "task.progress",
                "task.progress",
                "task.completed"
            ]
        );
        let completed = a.events.events().into_iter().last().unwrap();
        assert_eq!(completed.user_id.as_deref(), Some(owner.as_str()));
        assert_eq!(completed.payload["percent"], 100.0);
        // The actor is gone once the task is done.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !running_here(&a).await.is_empty() {
            assert!(Instant::now() < deadline, "actor still alive");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn cancel_stops_the_task_and_a_finished_task_answers_conflict() {
    let (store, _dir) = crate::store::tests::sqlite().await;
    let a = node(&store, "a", Settings::default()).await;
    let owner = user();
    let t = a
        .svc
        .create(&who(&owner), &request(), spec(1000, 20))
        .await
        .unwrap();
    wait(&a, &owner, &t.id, |t| t.step >= 2).await;
    let r = TaskRef {
        id: t.id.clone(),
        history: false,
    };
    let cancelled = a.svc.cancel(&who(&owner), &r).await.unwrap();
    assert_eq!(cancelled.status, "cancelled");
    // The actor is told to stop at once, not at its next step.
    let deadline = Instant::now() + Duration::from_millis(500);
    while !running_here(&a).await.is_empty() {
        assert!(Instant::now() < deadline, "the actor outlived its cancel");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    let later = get(&a, &owner, &t.id).await;
    assert_eq!(
        (later.status.as_str(), later.step),
        ("cancelled", cancelled.step)
    );
    assert_eq!(
        later.history.len() as u32,
        cancelled.step,
        "no step after the cancel"
    );
    assert_eq!(
        kinds_of(&a.events.events(), &t.id)
            .last()
            .map(String::as_str),
        Some("task.cancelled")
    );
    let again = a.svc.cancel(&who(&owner), &r).await.unwrap_err();
    assert_eq!(again.code, Code::FailedPrecondition);
    assert_eq!(again.message, "task is already cancelled");

    // A completed task cannot be cancelled either.
    let quick = a
        .svc
        .create(&who(&owner), &request(), spec(1, 0))
        .await
        .unwrap();
    wait(&a, &owner, &quick.id, |t| t.status == "completed").await;
    let r = TaskRef {
        id: quick.id.clone(),
        history: false,
    };
    let e = a.svc.cancel(&who(&owner), &r).await.unwrap_err();
    assert_eq!(
        (e.code, e.message.as_str()),
        (Code::FailedPrecondition, "task is already completed")
    );
}

#[tokio::test]
async fn cancel_of_a_task_not_running_here_goes_through_the_store() {
    let (store, _dir) = crate::store::tests::sqlite().await;
    let a = node(&store, "a", Settings::default()).await;
    let b = node(&store, "b", Settings::default()).await;
    let owner = user();
    let t = a
        .svc
        .create(&who(&owner), &request(), spec(1000, 20))
        .await
        .unwrap();
    wait(&a, &owner, &t.id, |t| t.step >= 1).await;
    // Cancelled on b, where no actor runs it: a's actor sees it at its next write.
    let r = TaskRef {
        id: t.id.clone(),
        history: false,
    };
    let c = b.svc.cancel(&who(&owner), &r).await.unwrap();
    assert_eq!(c.status, "cancelled");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !running_here(&a).await.is_empty() {
        assert!(Instant::now() < deadline, "a's actor did not stop");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let later = get(&a, &owner, &t.id).await;
    assert_eq!((later.status.as_str(), later.step), ("cancelled", c.step));
}

#[tokio::test]
async fn only_the_owner_or_an_admin_sees_a_task() {
    let (store, _dir) = crate::store::tests::sqlite().await;
    let a = node(&store, "a", Settings::default()).await;
    let (alice, bob) = (user(), user());
    let t = a
        .svc
        .create(&who(&alice), &request(), spec(1, 0))
        .await
        .unwrap();
    a.svc
        .create(&who(&bob), &request(), spec(1, 0))
        .await
        .unwrap();
    let r = TaskRef {
        id: t.id.clone(),
        history: false,
    };
    let e = a.svc.get(&who(&bob), &r).await.unwrap_err();
    assert_eq!(
        (e.code, e.message.as_str()),
        (Code::NotFound, "task not found")
    );
    let e = a.svc.cancel(&who(&bob), &r).await.unwrap_err();
    assert_eq!(e.code, Code::NotFound);
    assert_eq!(a.svc.get(&admin(), &r).await.unwrap().id, t.id);

    let mine = a
        .svc
        .list(&who(&alice), &ListTasks::default())
        .await
        .unwrap();
    assert_eq!(mine.total, 1);
    assert_eq!(mine.items[0].id, t.id);
    let all = a.svc.list(&admin(), &ListTasks::default()).await.unwrap();
    assert_eq!(all.total, 2);
    let bobs = ListTasks {
        owner_id: bob.clone(),
        ..ListTasks::default()
    };
    assert_eq!(a.svc.list(&admin(), &bobs).await.unwrap().total, 1);
    let e = a.svc.list(&who(&alice), &bobs).await.unwrap_err();
    assert_eq!(e.code, Code::PermissionDenied);

    wait(&a, &alice, &t.id, |t| t.status == "completed").await;
    let done = ListTasks {
        status: "completed".into(),
        ..ListTasks::default()
    };
    assert_eq!(a.svc.list(&who(&alice), &done).await.unwrap().total, 1);
    let bad = ListTasks {
        status: "finished".into(),
        ..ListTasks::default()
    };
    let e = a.svc.list(&who(&alice), &bad).await.unwrap_err();
    assert_eq!(e.code, Code::InvalidArgument);
    assert!(e.details.contains("status"), "{e:?}");
}

#[tokio::test]
async fn bad_fields_are_all_reported_and_nothing_is_stored() {
    let (store, _dir) = crate::store::tests::sqlite().await;
    let a = node(&store, "a", Settings::default()).await;
    let owner = user();
    let bad = CreateTask {
        name: None,
        payload: "{oops".into(),
        steps: Some(3),
        delay_ms: Some(-1),
        resumable: None,
        fail_at_step: Some(4),
    };
    let e = a
        .svc
        .create(&who(&owner), &request(), bad)
        .await
        .unwrap_err();
    assert_eq!(
        (e.code, e.message.as_str()),
        (Code::InvalidArgument, "validation failed")
    );
    let details: serde_json::Value = serde_json::from_str(&e.details).unwrap();
    let mut keys: Vec<&String> = details["fields"].as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["delay_ms", "fail_at_step", "name", "payload"]);
    assert_eq!(details["fields"]["name"], "is required");
    let huge = CreateTask {
        name: Some("x".repeat(validate::NAME_MAX + 1)),
        steps: Some(validate::STEPS_MAX + 1),
        ..spec(1, 1)
    };
    let e = a
        .svc
        .create(&who(&owner), &request(), huge)
        .await
        .unwrap_err();
    assert!(
        e.details.contains("name") && e.details.contains("steps"),
        "{e:?}"
    );
    let mine = a
        .svc
        .list(&who(&owner), &ListTasks::default())
        .await
        .unwrap();
    assert_eq!(mine.total, 0);
    assert!(a.events.events().is_empty());
}

#[tokio::test]
async fn a_failing_step_fails_the_task_with_its_reason() {
    let (store, _dir) = crate::store::tests::sqlite().await;
    let a = node(&store, "a", Settings::default()).await;
    let owner = user();
    let c = CreateTask {
        fail_at_step: Some(3),
        ..spec(5, 5)
    };
    let t = a.svc.create(&who(&owner), &request(), c).await.unwrap();
    let failed = wait(&a, &owner, &t.id, |t| t.status == "failed").await;
    assert_eq!(failed.step, 2);
    assert_eq!(failed.error, "step 3 of 5 failed (fail_at_step)");
    assert_eq!(
        kinds_of(&a.events.events(), &t.id)
            .last()
            .map(String::as_str),
        Some("task.failed")
    );
}

#[tokio::test]
async fn a_lost_task_resumes_on_another_node_from_its_last_step() {
    on_each_backend(|store, _| async move {
        let a = node(&store, "a", Settings::default()).await;
        let b = node(&store, "b", Settings::default()).await;
        let owner = user();
        let t = a
            .svc
            .create(&who(&owner), &request(), spec(8, 25))
            .await
            .unwrap();
        let before = wait(&a, &owner, &t.id, |t| t.step >= 2).await;
        crash(&a).await;
        let lost_at = get(&a, &owner, &t.id).await.step;
        assert!(lost_at >= before.step);
        let resumed = b
            .svc
            .run_here(&t.id, Instant::now() + Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!((resumed.node.as_str(), resumed.activations), ("b", 2));
        assert_eq!(
            resumed.step,
            i64::from(lost_at),
            "resumes from the last committed step"
        );
        let done = wait(&b, &owner, &t.id, |t| t.status == "completed").await;
        assert_each_step_once(&done);
        let by_a = done.history.iter().filter(|h| h.node == "a").count() as u32;
        assert_eq!(by_a, lost_at);
        assert!(done
            .history
            .iter()
            .skip(by_a as usize)
            .all(|h| h.node == "b" && h.activation == 2));
        let mut all = a.events.events();
        all.extend(b.events.events());
        let completed = kinds_of(&all, &t.id)
            .iter()
            .filter(|k| *k == "task.completed")
            .count();
        assert_eq!(completed, 1);
    })
    .await;
}

#[tokio::test]
async fn a_task_actor_logs_in_the_trace_of_the_request_that_ran_it() {
    use crate::mesh::trace::{self, capture, Trace};
    let (store, _dir) = crate::store::tests::sqlite().await;
    let a = node(&store, "a", Settings::default()).await;
    let b = node(&store, "b", Settings::default()).await;
    let owner = user();
    let t = a
        .svc
        .create(&who(&owner), &request(), spec(50, 20))
        .await
        .unwrap();
    wait(&a, &owner, &t.id, |t| t.step >= 1).await;
    crash(&a).await;
    let (lines, _guard) = capture::start();
    let resuming = Trace::fresh();
    let deadline = Instant::now() + Duration::from_secs(5);
    let resumed = trace::scope(resuming, b.svc.run_here(&t.id, deadline))
        .await
        .unwrap();
    assert_eq!(resumed.node, "b");
    // b's task actor wrote "took over a running task" in its first turn, on its own task.
    let lines = lines.lock().unwrap().clone();
    let took_over: Vec<_> = lines
        .iter()
        .filter(|(m, _)| m == "took over a running task")
        .collect();
    assert_eq!(
        took_over,
        [&(
            "took over a running task".to_string(),
            Some(resuming.trace_id)
        )],
        "{lines:?}"
    );
}

#[tokio::test]
async fn a_duplicate_activation_never_commits_a_step_twice() {
    on_each_backend(|store, _| async move {
        let a = node(&store, "a", Settings::default()).await;
        let b = node(&store, "b", Settings::default()).await;
        let owner = user();
        let t = a
            .svc
            .create(&who(&owner), &request(), spec(10, 15))
            .await
            .unwrap();
        wait(&a, &owner, &t.id, |t| t.step >= 1).await;
        // b activates it while a still runs it (as during membership churn).
        let deadline = Instant::now() + Duration::from_secs(5);
        b.svc.run_here(&t.id, deadline).await.unwrap();
        let done = wait(&b, &owner, &t.id, |t| t.status == "completed").await;
        assert_each_step_once(&done);
        assert_eq!(done.node, "b");
        // Each committed step's event is published after its commit: wait until the
        // last ones are in (or the deadline passed), then check that none came twice.
        let counts = || {
            let mut all = a.events.events();
            all.extend(b.events.events());
            let kinds = kinds_of(&all, &t.id);
            let count = |kind: &str| kinds.iter().filter(|k| *k == kind).count();
            (count("task.progress"), count("task.completed"))
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while counts() < (9, 1) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(counts(), (9, 1), "progress and completed events");
        // a's actor noticed it lost the task and stopped.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !running_here(&a).await.is_empty() {
            assert!(Instant::now() < deadline, "a's actor did not stop");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn a_task_that_is_not_resumable_fails_with_the_reason_when_its_node_is_lost() {
    let (store, _dir) = crate::store::tests::sqlite().await;
    let a = node(&store, "a", Settings::default()).await;
    let b = node(&store, "b", Settings::default()).await;
    let owner = user();
    let c = CreateTask {
        resumable: Some(false),
        ..spec(100, 20)
    };
    let t = a.svc.create(&who(&owner), &request(), c).await.unwrap();
    wait(&a, &owner, &t.id, |t| t.step >= 1).await;
    crash(&a).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    let failed = b.svc.run_here(&t.id, deadline).await.unwrap();
    assert_eq!(failed.status, Status::Failed);
    assert!(
        failed
            .error
            .starts_with("task is not resumable and its runner on node a was lost after step"),
        "{}",
        failed.error
    );
    assert_eq!(kinds_of(&b.events.events(), &t.id), ["task.failed"]);
}

#[tokio::test]
async fn a_task_whose_nodes_keep_dying_is_failed_after_max_activations() {
    let (store, _dir) = crate::store::tests::sqlite().await;
    let strict = Settings {
        max_activations: 1,
        ..Settings::default()
    };
    let a = node(&store, "a", strict.clone()).await;
    let b = node(&store, "b", strict).await;
    let owner = user();
    let t = a
        .svc
        .create(&who(&owner), &request(), spec(100, 20))
        .await
        .unwrap();
    wait(&a, &owner, &t.id, |t| t.step >= 1).await;
    crash(&a).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    let failed = b.svc.run_here(&t.id, deadline).await.unwrap();
    assert_eq!(failed.status, Status::Failed);
    assert_eq!(
        failed.error,
        "gave up after 1 activations: the nodes running it kept failing"
    );
}

#[test]
fn orphans_are_the_unrun_tasks_homed_here() {
    let members: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
    let homed = |node: &str| -> Vec<String> {
        (0..200)
            .map(|i| format!("t{i}"))
            .filter(|id| placement::home(id, &members).map(String::as_str) == Some(node))
            .take(4)
            .collect()
    };
    let here = homed("a");
    let there = homed("b");
    let row = |id: &str, status, node: &str, resumable| Unfinished {
        id: id.to_string(),
        status,
        node: node.to_string(),
        resumable,
    };
    let rows = vec![
        row(&here[0], Status::Pending, "", true),
        row(&here[1], Status::Running, "c", true), // running elsewhere: moves home
        row(&here[2], Status::Running, "b", false), // not resumable, its node lives: stays
        row(&here[3], Status::Running, "gone", false), // its node is gone: taken (and failed)
        row(&there[0], Status::Pending, "", true), // another node's
    ];
    let running: HashSet<String> = [here[0].clone()].into_iter().collect();
    assert_eq!(
        orphans(&rows, &members, "a", &running),
        vec![here[1].clone(), here[3].clone()]
    );
    assert_eq!(
        orphans(&rows, &members, "a", &HashSet::new()),
        vec![here[0].clone(), here[1].clone(), here[3].clone()]
    );
}

#[test]
fn every_op_is_listed_once() {
    let mut names: Vec<&str> = Cmd::OPS.iter().map(|o| o.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), Cmd::OPS.len());
}

/// The active-task quota when one owner's creates race: 24 at once over two nodes, room
/// for 5. Each counts the others that committed before it (the owner's quota lock), so
/// exactly 5 are stored; on PostgreSQL without the lock, creates counting at the same time
/// all got in.
#[tokio::test]
async fn racing_creates_of_one_owner_admit_exactly_the_quota() {
    on_each_backend(|store, _| async move {
        let settings = Settings {
            max_active_per_user: 5,
            ..Settings::default()
        };
        let a = node(&store, "a", settings.clone()).await;
        let b = node(&store, "b", settings).await;
        let owner = user();
        let creates = (0..24).map(|i| {
            let svc = if i % 2 == 0 { &a.svc } else { &b.svc }.clone();
            let owner = owner.clone();
            tokio::spawn(
                async move { svc.create(&who(&owner), &request(), spec(1000, 1000)).await },
            )
        });
        let answers = futures_util::future::join_all(creates).await;
        let mut admitted = 0;
        for answer in answers {
            match answer.expect("task") {
                Ok(_) => admitted += 1,
                Err(e) => assert_eq!(e.code, Code::ResourceExhausted, "{e:?}"),
            }
        }
        assert_eq!(admitted, 5, "creates admitted");
        let mine = store::list(&store, Some(&owner), None, 100, 0)
            .await
            .unwrap();
        assert_eq!(mine.1, 5, "tasks stored");
    })
    .await;
}

/// `[quotas] tasks_active_per_user`: counted in the store (so it holds for every node), a
/// create past it is refused naming the quota and stores nothing; another owner is not
/// affected; a finished (here cancelled) task frees its place.
#[tokio::test]
async fn active_tasks_past_the_owners_quota_are_refused() {
    on_each_backend(|store, _| async move {
        let settings = Settings {
            max_active_per_user: 2,
            ..Settings::default()
        };
        let a = node(&store, "a", settings.clone()).await;
        let b = node(&store, "b", settings).await;
        let owner = user();
        let first = a
            .svc
            .create(&who(&owner), &request(), spec(1000, 1000))
            .await
            .expect("first");
        b.svc
            .create(&who(&owner), &request(), spec(1000, 1000))
            .await
            .expect("second, on another node");
        let e = a
            .svc
            .create(&who(&owner), &request(), spec(1000, 1000))
            .await
            .expect_err("a third active task");
        assert_eq!(e.code, Code::ResourceExhausted);
        let d: serde_json::Value = serde_json::from_str(&e.details).unwrap();
        assert_eq!(d["quota"], "tasks_active_per_user");
        assert_eq!(d["limit"], 2);
        let other = user();
        a.svc
            .create(&who(&other), &request(), spec(1000, 1000))
            .await
            .expect("another owner");
        let mine = store::list(&store, Some(&owner), None, 100, 0)
            .await
            .unwrap();
        assert_eq!(mine.1, 2, "the refused task was not stored");
        a.svc
            .cancel(
                &who(&owner),
                &TaskRef {
                    id: first.id.clone(),
                    history: false,
                },
            )
            .await
            .expect("cancel");
        wait(&a, &owner, &first.id, |t| t.status == "cancelled").await;
        b.svc
            .create(&who(&owner), &request(), spec(1000, 1000))
            .await
            .expect("room again once one ended");
    })
    .await;
}
