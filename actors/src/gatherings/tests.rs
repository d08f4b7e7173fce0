//! The `events` service against SQLite (and PostgreSQL when `TROUPE_TEST_PG` is set):
//! organiser rights, field checks, exact capacity with an ordered waitlist (through the
//! event's actor and, without it, through the store guard alone), and the calendar.

use std::sync::Arc;
use std::time::{Duration, Instant};

use troupe_proto::mesh::Caller;

use super::*;
use crate::events::Recorder;
use crate::mesh::harness::Harness;
use crate::mesh::service::call_op;
use crate::store::tests::on_each_backend;

async fn service(store: Store) -> (Harness, Arc<Gatherings>, Arc<Recorder>) {
    let events = Arc::new(Recorder::default());
    let builder = Harness::builder();
    let svc = Gatherings::start(builder.info(), store, events.clone(), Plan::default())
        .await
        .expect("events start");
    let harness = builder.start(vec![svc.clone()]).await;
    (harness, svc, events)
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

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

fn input(title: &str, capacity: i64) -> EventInput {
    EventInput {
        title: Some(title.into()),
        description: Some("details, with; specials\\".into()),
        location: Some("Room 1".into()),
        start: Some("2030-03-01T09:30:00Z".into()),
        end: Some("2030-03-01T11:00:00+01:00".into()),
        timezone: Some("Europe/Paris".into()),
        capacity: Some(capacity),
        ..EventInput::default()
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

fn kinds_of(events: &Recorder) -> Vec<String> {
    events.events().into_iter().map(|e| e.kind).collect()
}

#[tokio::test]
async fn organisers_and_admins_change_events_and_nobody_else_does() {
    on_each_backend(|store, _| async move {
        let (_h, svc, events) = service(store).await;
        let (org, other) = (user(), user());
        let e = svc.create(&who(&org), &input("Kick-off", 5)).await.unwrap();
        assert_eq!(
            (
                e.start.as_str(),
                e.end.as_str(),
                e.capacity,
                e.timezone.as_str()
            ),
            (
                "2030-03-01T09:30:00.000Z",
                "2030-03-01T10:00:00.000Z",
                5,
                "Europe/Paris"
            )
        );
        let r = EventRef { id: e.id.clone() };
        assert_eq!(svc.get(&r).await.unwrap(), e);

        let change = EventInput {
            id: e.id.clone(),
            title: Some("Renamed".into()),
            ..EventInput::default()
        };
        let err = svc.update(soon(), &who(&other), &change).await.unwrap_err();
        assert_eq!(err.code, Code::PermissionDenied);
        let err = svc.delete(soon(), &who(&other), &r).await.unwrap_err();
        assert_eq!(err.code, Code::PermissionDenied);
        let err = svc.registrations(&who(&other), &r).await.unwrap_err();
        assert_eq!(err.code, Code::PermissionDenied);

        let admin = Who {
            user_id: user(),
            admin: true,
        };
        let changed = svc.update(soon(), &admin, &change).await.unwrap();
        assert_eq!(
            (changed.title.as_str(), changed.location.as_str()),
            ("Renamed", "Room 1")
        );
        svc.delete(soon(), &who(&org), &r).await.unwrap();
        assert_eq!(svc.get(&r).await.unwrap_err().code, Code::NotFound);
        assert_eq!(
            svc.register(soon(), &who(&other), &r)
                .await
                .unwrap_err()
                .code,
            Code::NotFound
        );
        assert_eq!(
            kinds_of(&events),
            ["event.created", "event.updated", "event.deleted"]
        );
    })
    .await;
}

#[tokio::test]
async fn bad_fields_are_named_and_nothing_is_written() {
    on_each_backend(|store, alone| async move {
        let (_h, svc, events) = service(store).await;
        let org = user();
        let err = svc
            .create(&who(&org), &EventInput::default())
            .await
            .unwrap_err();
        assert_eq!(field_keys(&err), ["capacity", "end", "start", "title"]);
        let bad = EventInput {
            start: Some("2030-03-01 9:30".into()),
            timezone: Some("Mars/Olympus_Mons".into()),
            capacity: Some(0),
            ..input("x", 1)
        };
        let err = svc.create(&who(&org), &bad).await.unwrap_err();
        assert_eq!(err.code, Code::InvalidArgument);
        assert_eq!(field_keys(&err), ["capacity", "start", "timezone"]);
        let backwards = EventInput {
            end: Some("2030-03-01T08:00:00Z".into()),
            ..input("x", 1)
        };
        let err = svc.create(&who(&org), &backwards).await.unwrap_err();
        assert_eq!(field_keys(&err), ["end"]);
        if alone {
            assert_eq!(svc.list(&ListEvents::default()).await.unwrap().total, 0);
        }

        // On update, `end` is checked against the stored start.
        let e = svc.create(&who(&org), &input("ok", 1)).await.unwrap();
        let early_end = EventInput {
            id: e.id.clone(),
            end: Some("2030-03-01T09:00:00Z".into()),
            ..EventInput::default()
        };
        let err = svc
            .update(soon(), &who(&org), &early_end)
            .await
            .unwrap_err();
        assert_eq!(field_keys(&err), ["end"]);
        assert_eq!(svc.get(&EventRef { id: e.id.clone() }).await.unwrap(), e);
        assert_eq!(kinds_of(&events), ["event.created"]);
    })
    .await;
}

#[tokio::test]
async fn capacity_is_exact_and_the_waitlist_moves_up_in_order() {
    on_each_backend(|store, _| async move {
        let (_h, svc, events) = service(store).await;
        let org = user();
        let e = svc.create(&who(&org), &input("Workshop", 3)).await.unwrap();
        let r = EventRef { id: e.id.clone() };
        let users: Vec<String> = (0..8).map(|_| user()).collect();
        let callers: Vec<Who> = users.iter().map(|u| who(u)).collect();
        let answers =
            futures_util::future::join_all(callers.iter().map(|w| svc.register(soon(), w, &r)))
                .await;
        let mut seated = 0;
        let mut positions = Vec::new();
        for a in &answers {
            let a = a.as_ref().unwrap();
            match a.status.as_str() {
                "registered" => seated += 1,
                "waitlisted" => positions.push(a.position),
                s => panic!("status {s}"),
            }
        }
        positions.sort_unstable();
        assert_eq!((seated, positions), (3, vec![1, 2, 3, 4, 5]));
        // Registering again changes nothing.
        let again = svc.register(soon(), &who(&users[0]), &r).await.unwrap();
        assert_eq!(again, answers[0].clone().unwrap());

        let list = svc.registrations(&who(&org), &r).await.unwrap().items;
        let first_waiting = list[3].user_id.clone();
        assert_eq!(
            list.iter().map(|x| x.position).collect::<Vec<_>>(),
            [0, 0, 0, 1, 2, 3, 4, 5]
        );
        let holder = list[0].user_id.clone();
        let gone = svc.cancel(soon(), &who(&holder), &r).await.unwrap();
        assert_eq!(gone.status, "cancelled");
        let list = svc.registrations(&who(&org), &r).await.unwrap().items;
        assert_eq!(list.len(), 7);
        assert!(list
            .iter()
            .any(|x| x.user_id == first_waiting && x.status == "registered"));
        assert_eq!(list.iter().filter(|x| x.status == "registered").count(), 3);
        assert_eq!(
            svc.cancel(soon(), &who(&holder), &r)
                .await
                .unwrap_err()
                .code,
            Code::NotFound
        );
        let promoted: Vec<_> = events
            .events()
            .into_iter()
            .filter(|x| x.kind == "event.promoted")
            .collect();
        assert_eq!(promoted.len(), 1);
        assert_eq!(promoted[0].user_id.as_deref(), Some(first_waiting.as_str()));

        // Capacity: never below the seats taken; a larger one seats the waitlist in order.
        let shrink = EventInput {
            id: e.id.clone(),
            capacity: Some(2),
            ..EventInput::default()
        };
        let err = svc.update(soon(), &who(&org), &shrink).await.unwrap_err();
        assert_eq!(field_keys(&err), ["capacity"]);
        let grow = EventInput {
            capacity: Some(5),
            ..shrink
        };
        let e = svc.update(soon(), &who(&org), &grow).await.unwrap();
        assert_eq!((e.registered, e.waitlisted), (5, 2));
        let k = kinds_of(&events);
        assert_eq!(k.iter().filter(|x| *x == "event.registered").count(), 3);
        assert_eq!(k.iter().filter(|x| *x == "event.waitlisted").count(), 5);
        assert_eq!(k.iter().filter(|x| *x == "event.cancelled").count(), 1);
        assert_eq!(k.iter().filter(|x| *x == "event.promoted").count(), 3);
    })
    .await;
}

#[tokio::test]
async fn a_batch_of_registrations_keeps_arrival_order_and_answers_a_repeat_with_the_first() {
    on_each_backend(|store, _| async move {
        let (_h, svc, _) = service(store.clone()).await;
        let e = svc
            .create(&who(&user()), &input("Batched", 2))
            .await
            .unwrap();
        let (a, b, c) = (user(), user(), user());
        let mut tx = store.begin().await.unwrap();
        let done = store::register_all(
            &mut tx,
            &Plan::default(),
            &e.id,
            &[&a, &b, &a, &c],
            now_ms(),
        )
        .await
        .unwrap()
        .unwrap();
        tx.commit().await.unwrap();
        let view: Vec<(bool, String, String, i64, i64)> = done
            .iter()
            .map(|r| match r {
                store::Registered::New(r) => {
                    (true, r.user_id.clone(), r.status.clone(), r.seq, r.position)
                }
                store::Registered::Already(r) => (
                    false,
                    r.user_id.clone(),
                    r.status.clone(),
                    r.seq,
                    r.position,
                ),
            })
            .collect();
        assert_eq!(
            view,
            vec![
                (true, a.clone(), store::REGISTERED.to_string(), 1, 0),
                (true, b.clone(), store::REGISTERED.to_string(), 2, 0),
                (false, a.clone(), store::REGISTERED.to_string(), 1, 0),
                (true, c.clone(), store::WAITLISTED.to_string(), 3, 1),
            ]
        );
        let got = svc.get(&EventRef { id: e.id.clone() }).await.unwrap();
        assert_eq!((got.registered, got.waitlisted), (2, 1));
        // An unknown event: nothing.
        let mut tx = store.begin().await.unwrap();
        assert!(
            store::register_all(&mut tx, &Plan::default(), "no-such-event", &[&a], now_ms())
                .await
                .unwrap()
                .is_none()
        );
    })
    .await;
}

#[tokio::test]
async fn the_store_alone_never_over_registers() {
    // As if every registration came through a different activation of the event.
    on_each_backend(|store, _| async move {
        let (_h, svc, _) = service(store.clone()).await;
        let e = svc
            .create(&who(&user()), &input("Guarded", 5))
            .await
            .unwrap();
        let users: Vec<String> = (0..30).map(|_| user()).collect();
        let tasks: Vec<_> = users
            .iter()
            .map(|u| {
                let (store, id, u) = (store.clone(), e.id.clone(), u.clone());
                tokio::spawn(async move {
                    let mut tx = store.begin().await?;
                    let done =
                        store::register(&mut tx, &Plan::default(), &id, &u, now_ms()).await?;
                    tx.commit().await.map_err(crate::store::db_error)?;
                    Ok::<_, MeshError>(done)
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap().unwrap();
        }
        let list = store::registrations(&store, &e.id).await.unwrap();
        let seats = list
            .iter()
            .filter(|x| x.status == store::REGISTERED)
            .count();
        let waiting: Vec<i64> = list.iter().map(|x| x.position).filter(|p| *p > 0).collect();
        assert_eq!((seats, waiting), (5, (1..=25).collect::<Vec<_>>()));
        assert_eq!(svc.get(&EventRef { id: e.id }).await.unwrap().registered, 5);
    })
    .await;
}

#[tokio::test]
async fn the_calendar_lists_the_callers_seats_only() {
    on_each_backend(|store, _| async move {
        let (_h, svc, _) = service(store).await;
        let (org, alice, bob) = (user(), user(), user());
        let a = svc
            .create(&who(&org), &input("Alpha, one", 1))
            .await
            .unwrap();
        let b = svc.create(&who(&org), &input("Beta", 1)).await.unwrap();
        let ra = EventRef { id: a.id.clone() };
        let rb = EventRef { id: b.id.clone() };
        svc.register(soon(), &who(&alice), &ra).await.unwrap();
        svc.register(soon(), &who(&bob), &rb).await.unwrap();
        // Waitlisted is not in the calendar.
        svc.register(soon(), &who(&alice), &rb).await.unwrap();
        let caller = Caller {
            user_id: alice.clone(),
            ..Caller::default()
        };
        let cal = call_op(&*svc, &ops::CALENDAR, (), Some(caller))
            .await
            .unwrap();
        assert_eq!(cal.ics.matches("BEGIN:VEVENT").count(), 1, "{}", cal.ics);
        assert!(cal.ics.contains(&format!("UID:{}@troupe\r\n", a.id)));
        assert!(cal.ics.contains("SUMMARY:Alpha\\, one\r\n"));
        assert!(!cal.ics.contains(&b.id));
        assert_eq!(
            call_op(&*svc, &ops::CALENDAR, (), None)
                .await
                .unwrap_err()
                .code,
            Code::Unauthenticated
        );
    })
    .await;
}

/// What `user` has scheduled for event `id`: (kind, due) pairs, pending ones only.
async fn timers_of(store: &Store, id: &str, user: &str) -> Vec<(String, i64)> {
    let (rows, _) = crate::reminders::store::list(
        store,
        Some(user),
        Some(&store::subject(id)),
        Some(true),
        10,
        0,
    )
    .await
    .unwrap();
    let mut out: Vec<(String, i64)> = rows
        .into_iter()
        .map(|l| (l.reminder.kind, l.reminder.due_at))
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn a_seat_carries_its_reminder_and_attendance_and_loses_them_with_it() {
    on_each_backend(|store, _| async move {
        let (_h, svc, _) = service(store.clone()).await;
        let (org, alice, bob) = (user(), user(), user());
        let e = svc.create(&who(&org), &input("Timed", 1)).await.unwrap();
        let start = validate::rfc3339("2030-03-01T09:30:00Z").unwrap();
        let end = validate::rfc3339("2030-03-01T11:00:00+01:00").unwrap();
        let hour = 3_600_000;
        let expect = vec![
            (kinds::EVENT_ATTENDED.to_string(), end),
            (kinds::REMINDER_DUE.to_string(), start - hour),
        ];
        let r = EventRef { id: e.id.clone() };
        let call = |w: &str| Who {
            user_id: w.to_string(),
            admin: false,
        };
        svc.register(soon(), &call(&alice), &r).await.unwrap();
        svc.register(soon(), &call(&bob), &r).await.unwrap();
        assert_eq!(timers_of(&store, &e.id, &alice).await, expect);
        // Waitlisted: nothing scheduled until promoted.
        assert!(timers_of(&store, &e.id, &bob).await.is_empty());
        svc.cancel(soon(), &call(&alice), &r).await.unwrap();
        assert!(timers_of(&store, &e.id, &alice).await.is_empty());
        assert_eq!(timers_of(&store, &e.id, &bob).await, expect);
        // Moved by an hour: the timers move with it.
        let moved = EventInput {
            start: Some("2030-03-01T10:30:00Z".into()),
            end: Some("2030-03-01T11:30:00Z".into()),
            ..EventInput::default()
        };
        svc.update(
            soon(),
            &who(&org),
            &EventInput {
                id: e.id.clone(),
                ..moved
            },
        )
        .await
        .unwrap();
        assert_eq!(
            timers_of(&store, &e.id, &bob).await,
            vec![
                (kinds::EVENT_ATTENDED.to_string(), end + hour + hour / 2),
                (kinds::REMINDER_DUE.to_string(), start),
            ]
        );
        svc.delete(soon(), &who(&org), &r).await.unwrap();
        assert!(timers_of(&store, &e.id, &bob).await.is_empty());
    })
    .await;
}

/// The event's `registered` and `waitlisted` as its rows say.
async fn counted(store: &Store, id: &str) -> (u64, u64) {
    let list = store::registrations(store, id).await.unwrap();
    let seats = list
        .iter()
        .filter(|x| x.status == store::REGISTERED)
        .count() as u64;
    (seats, list.len() as u64 - seats)
}

#[tokio::test]
async fn the_events_counts_follow_every_change_of_its_registrations() {
    // The counts are columns kept in the transactions that change the rows (the waitlist
    // is not counted on read): after each kind of change they equal the rows.
    on_each_backend(|store, _| async move {
        let (_h, svc, _) = service(store.clone()).await;
        let org = user();
        let e = svc.create(&who(&org), &input("Counted", 2)).await.unwrap();
        let r = EventRef { id: e.id.clone() };
        let users: Vec<String> = (0..6).map(|_| user()).collect();
        let check = |want: (u64, u64)| {
            let (svc, store, r) = (svc.clone(), store.clone(), r.clone());
            async move {
                let e = svc.get(&r).await.unwrap();
                assert_eq!((e.registered, e.waitlisted), want);
                assert_eq!(counted(&store, &r.id).await, want);
            }
        };
        for u in &users {
            svc.register(soon(), &who(u), &r).await.unwrap();
        }
        check((2, 4)).await;
        // Registering again changes nothing.
        svc.register(soon(), &who(&users[5]), &r).await.unwrap();
        check((2, 4)).await;
        // A waitlisted user leaves; then a seat holder, whose seat goes to the first waiting.
        svc.cancel(soon(), &who(&users[4]), &r).await.unwrap();
        check((2, 3)).await;
        svc.cancel(soon(), &who(&users[0]), &r).await.unwrap();
        check((2, 2)).await;
        // A larger capacity seats the waitlist.
        let grow = EventInput {
            id: e.id.clone(),
            capacity: Some(3),
            ..EventInput::default()
        };
        svc.update(soon(), &who(&org), &grow).await.unwrap();
        check((3, 1)).await;
        let next = svc.register(soon(), &who(&user()), &r).await.unwrap();
        assert_eq!((next.status.as_str(), next.position), ("waitlisted", 2));
        check((3, 2)).await;
    })
    .await;
}
