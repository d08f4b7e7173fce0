//! The `coaching` service: slots in the coach's time zone across DST changes (Berlin and
//! New York, spring and autumn), exceptions, field checks; then against SQLite (and
//! PostgreSQL when `TROUPE_TEST_PG` is set): rights, booking and cancelling, one booking
//! per slot through the coach's actor, through the store alone and at the unique index,
//! and notes seen by the two parties only.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::schedule::{Exception as Ex, Schedule, Window as Win};
use super::*;
use crate::events::Recorder;
use crate::gatherings::validate::rfc3339;
use crate::mesh::harness::Harness;
use crate::store::tests::on_each_backend;

// ---- slots ----

fn ms(s: &str) -> i64 {
    rfc3339(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn texts(slots: &[(i64, i64)]) -> Vec<(String, String)> {
    slots
        .iter()
        .map(|(s, e)| (rfc3339_millis(*s), rfc3339_millis(*e)))
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(s, e)| (s.to_string(), e.to_string()))
        .collect()
}

fn every_day(start: &str, end: &str) -> Vec<Win> {
    (1..=7)
        .map(|weekday| Win {
            weekday,
            start: start.into(),
            end: end.into(),
        })
        .collect()
}

fn schedule(tz: &str, slot: i64, windows: &[Win], exceptions: &[Ex]) -> Schedule {
    Schedule::new(tz, slot, windows, exceptions).expect("a valid schedule")
}

#[test]
fn a_nine_oclock_slot_stays_at_nine_local_across_spring_forward_in_berlin() {
    let s = schedule("Europe/Berlin", 60, &every_day("09:00", "10:00"), &[]);
    // Monday 23 March to Monday 30 March 2026; clocks go forward on Sunday 29 March.
    let got = s.slots(ms("2026-03-23T00:00:00Z"), ms("2026-03-30T00:00:00Z"));
    let mut want: Vec<(String, String)> = (23..=28)
        .map(|d| {
            (
                format!("2026-03-{d}T08:00:00.000Z"),
                format!("2026-03-{d}T09:00:00.000Z"),
            )
        })
        .collect();
    want.push((
        "2026-03-29T07:00:00.000Z".into(),
        "2026-03-29T08:00:00.000Z".into(),
    ));
    assert_eq!(texts(&got), want);
}

#[test]
fn a_local_time_that_does_not_exist_is_skipped() {
    // Berlin, 29 March 2026: 02:00 CET jumps to 03:00 CEST.
    let sunday = [Win {
        weekday: 7,
        start: "01:00".into(),
        end: "04:00".into(),
    }];
    let s = schedule("Europe/Berlin", 60, &sunday, &[]);
    let got = s.slots(ms("2026-03-28T00:00:00Z"), ms("2026-03-30T00:00:00Z"));
    assert_eq!(
        texts(&got),
        pairs(&[
            ("2026-03-29T00:00:00.000Z", "2026-03-29T01:00:00.000Z"),
            ("2026-03-29T01:00:00.000Z", "2026-03-29T02:00:00.000Z"),
        ])
    );
    // New York, 8 March 2026, half-hour slots: 02:00 and 02:30 do not exist.
    let sunday = [Win {
        weekday: 7,
        start: "01:30".into(),
        end: "03:30".into(),
    }];
    let s = schedule("America/New_York", 30, &sunday, &[]);
    let got = s.slots(ms("2026-03-08T00:00:00Z"), ms("2026-03-09T00:00:00Z"));
    assert_eq!(
        texts(&got),
        pairs(&[
            ("2026-03-08T06:30:00.000Z", "2026-03-08T07:00:00.000Z"),
            ("2026-03-08T07:00:00.000Z", "2026-03-08T07:30:00.000Z"),
        ])
    );
}

#[test]
fn a_local_time_that_happens_twice_is_its_earlier_instant() {
    // Berlin, 25 October 2026: 03:00 CEST falls back to 02:00 CET; 02:00 happens twice.
    let sunday = [Win {
        weekday: 7,
        start: "01:00".into(),
        end: "04:00".into(),
    }];
    let s = schedule("Europe/Berlin", 60, &sunday, &[]);
    let got = s.slots(ms("2026-10-24T00:00:00Z"), ms("2026-10-26T00:00:00Z"));
    assert_eq!(
        texts(&got),
        pairs(&[
            ("2026-10-24T23:00:00.000Z", "2026-10-25T00:00:00.000Z"),
            ("2026-10-25T00:00:00.000Z", "2026-10-25T01:00:00.000Z"),
            ("2026-10-25T02:00:00.000Z", "2026-10-25T03:00:00.000Z"),
        ])
    );
}

#[test]
fn a_nine_oclock_slot_stays_at_nine_local_across_fall_back_in_new_york() {
    // Clocks go back on Sunday 1 November 2026 (EDT, UTC-4, to EST, UTC-5).
    let s = schedule("America/New_York", 60, &every_day("09:00", "10:00"), &[]);
    let got = s.slots(ms("2026-10-29T00:00:00Z"), ms("2026-11-03T00:00:00Z"));
    assert_eq!(
        texts(&got),
        pairs(&[
            ("2026-10-29T13:00:00.000Z", "2026-10-29T14:00:00.000Z"),
            ("2026-10-30T13:00:00.000Z", "2026-10-30T14:00:00.000Z"),
            ("2026-10-31T13:00:00.000Z", "2026-10-31T14:00:00.000Z"),
            ("2026-11-01T14:00:00.000Z", "2026-11-01T15:00:00.000Z"),
            ("2026-11-02T14:00:00.000Z", "2026-11-02T15:00:00.000Z"),
        ])
    );
}

#[test]
fn exceptions_close_a_day_or_a_window_of_it() {
    let windows = [Win {
        weekday: 1,
        start: "09:00".into(),
        end: "12:00".into(),
    }];
    let exceptions = [
        Ex {
            date: "2030-06-03".into(),
            start: Some("10:30".into()),
            end: Some("11:00".into()),
        },
        Ex {
            date: "2030-06-10".into(),
            start: None,
            end: None,
        },
    ];
    let s = schedule("Europe/Berlin", 60, &windows, &exceptions);
    // Mondays 3, 10 and 17 June 2030 (CEST, UTC+2): 10:00-11:00 overlaps the closed
    // half hour; the 10th is closed all day.
    let got = s.slots(ms("2030-06-01T00:00:00Z"), ms("2030-06-20T00:00:00Z"));
    assert_eq!(
        texts(&got),
        pairs(&[
            ("2030-06-03T07:00:00.000Z", "2030-06-03T08:00:00.000Z"),
            ("2030-06-03T09:00:00.000Z", "2030-06-03T10:00:00.000Z"),
            ("2030-06-17T07:00:00.000Z", "2030-06-17T08:00:00.000Z"),
            ("2030-06-17T08:00:00.000Z", "2030-06-17T09:00:00.000Z"),
            ("2030-06-17T09:00:00.000Z", "2030-06-17T10:00:00.000Z"),
        ])
    );
    // A slot is found only on the grid, inside availability, outside exceptions.
    assert_eq!(
        s.slot_at(ms("2030-06-17T09:00:00+02:00")),
        Some((ms("2030-06-17T07:00:00Z"), ms("2030-06-17T08:00:00Z")))
    );
    assert_eq!(s.slot_at(ms("2030-06-17T09:30:00+02:00")), None, "off grid");
    assert_eq!(s.slot_at(ms("2030-06-17T13:00:00+02:00")), None, "outside");
    assert_eq!(s.slot_at(ms("2030-06-18T09:00:00+02:00")), None, "Tuesday");
    assert_eq!(
        s.slot_at(ms("2030-06-10T09:00:00+02:00")),
        None,
        "closed day"
    );
    assert_eq!(
        s.slot_at(ms("2030-06-03T10:00:00+02:00")),
        None,
        "closed window"
    );
}

#[test]
fn slots_start_in_the_window_asked_for_and_fit_their_availability() {
    let windows = [Win {
        weekday: 1,
        start: "09:00".into(),
        end: "10:45".into(),
    }];
    let s = schedule("UTC", 30, &windows, &[]);
    let got = s.slots(ms("2030-06-03T09:30:00Z"), ms("2030-06-03T10:15:00Z"));
    // 10:30 would end after 10:45; 09:00 starts before `from`; 10:15 is `to` itself.
    assert_eq!(
        texts(&got),
        pairs(&[
            ("2030-06-03T09:30:00.000Z", "2030-06-03T10:00:00.000Z"),
            ("2030-06-03T10:00:00.000Z", "2030-06-03T10:30:00.000Z"),
        ])
    );
}

// ---- field checks ----

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

fn window(weekday: i64, start: &str, end: &str) -> Window {
    Window {
        weekday,
        start: start.into(),
        end: end.into(),
    }
}

fn input(name: &str) -> CoachInput {
    CoachInput {
        name: Some(name.into()),
        bio: Some("Ten years of leadership coaching".into()),
        timezone: Some("Europe/Berlin".into()),
        slot_minutes: Some(60),
        availability: Some(Windows {
            items: (1..=7).map(|d| window(d, "09:00", "12:00")).collect(),
        }),
        ..CoachInput::default()
    }
}

#[test]
fn bad_fields_are_named() {
    let err = Change::parse(&CoachInput::default(), true).unwrap_err();
    assert_eq!(err.code, Code::InvalidArgument);
    assert_eq!(field_keys(&err), ["availability", "name", "timezone"]);
    let availability = |items: Vec<Window>| CoachInput {
        availability: Some(Windows { items }),
        ..input("x")
    };
    for (case, bad) in [
        (
            "overlap",
            vec![window(1, "09:00", "11:00"), window(1, "10:00", "12:00")],
        ),
        ("start = end", vec![window(2, "09:00", "09:00")]),
        ("start > end", vec![window(2, "10:00", "09:00")]),
        ("weekday 0", vec![window(0, "09:00", "10:00")]),
        ("weekday 8", vec![window(8, "09:00", "10:00")]),
        ("weekday huge", vec![window(1 << 40, "09:00", "10:00")]),
        ("9:00", vec![window(1, "9:00", "10:00")]),
        ("25:00", vec![window(1, "09:00", "25:00")]),
        ("start 24:00", vec![window(1, "24:00", "24:00")]),
    ] {
        let err = Change::parse(&availability(bad), true).unwrap_err();
        assert_eq!(field_keys(&err), ["availability"], "{case}");
    }
    // Touching windows, and a window to midnight, are fine.
    let ok = availability(vec![
        window(1, "09:00", "10:00"),
        window(1, "10:00", "24:00"),
    ]);
    assert!(Change::parse(&ok, true).is_ok());

    let cases: Vec<(&str, CoachInput)> = vec![
        (
            "timezone",
            CoachInput {
                timezone: Some("Mars/Olympus_Mons".into()),
                ..input("x")
            },
        ),
        (
            "slot_minutes",
            CoachInput {
                slot_minutes: Some(10),
                ..input("x")
            },
        ),
        (
            "slot_minutes",
            CoachInput {
                slot_minutes: Some(481),
                ..input("x")
            },
        ),
        ("name", input("   ")),
        (
            "exceptions",
            CoachInput {
                exceptions: Some(Exceptions {
                    items: vec![Exception {
                        date: "2030-02-30".into(),
                        start: None,
                        end: None,
                    }],
                }),
                ..input("x")
            },
        ),
        (
            "exceptions",
            CoachInput {
                exceptions: Some(Exceptions {
                    items: vec![Exception {
                        date: "2030-03-01".into(),
                        start: Some("10:00".into()),
                        end: None,
                    }],
                }),
                ..input("x")
            },
        ),
        (
            "user_id",
            CoachInput {
                user_id: Some("a\u{0}b".into()),
                ..input("x")
            },
        ),
    ];
    for (field, bad) in cases {
        let err = Change::parse(&bad, true).unwrap_err();
        assert_eq!(field_keys(&err), [field], "{bad:?}");
    }
}

// ---- the service, on each store ----

async fn service(store: Store) -> (Harness, Arc<Coaching>, Arc<Recorder>) {
    let events = Arc::new(Recorder::default());
    let builder = Harness::builder();
    let svc = Coaching::start(builder.info(), store, events.clone(), Plan::default())
        .await
        .expect("coaching start");
    let harness = builder.start(vec![svc.clone()]).await;
    (harness, svc, events)
}

fn who(user: &str) -> Who {
    Who {
        user_id: user.to_string(),
        admin: false,
    }
}

fn admin() -> Who {
    Who {
        user_id: format!("a-{}", uuid::Uuid::new_v4().simple()),
        admin: true,
    }
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

/// A registered user (a row of `users`), as a coach's user must be.
async fn registered(store: &Store) -> String {
    let id = uuid::Uuid::new_v4().to_string();
    let name = format!("c{}", &id[..8]);
    sqlx::query(
        "INSERT INTO users (id, username, username_lower, email, email_lower, \
         password_hash, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 'x', 0, 0)",
    )
    .bind(&id)
    .bind(&name)
    .bind(&name)
    .bind(format!("{name}@example.com"))
    .bind(format!("{name}@example.com"))
    .execute(store.writer())
    .await
    .expect("insert user");
    id
}

fn kinds_of(events: &Recorder) -> Vec<String> {
    events.events().into_iter().map(|e| e.kind).collect()
}

fn book_input(coach: &str, start: &str) -> BookInput {
    BookInput {
        coach_id: coach.into(),
        start: start.into(),
    }
}

/// Monday 3 June 2030, 09:00 in Berlin (CEST).
const MONDAY_9: &str = "2030-06-03T07:00:00Z";

#[tokio::test]
async fn admins_create_coaches_and_the_coach_or_an_admin_changes_them() {
    on_each_backend(|store, _| async move {
        let (_h, svc, events) = service(store.clone()).await;
        let coach_user = registered(&store).await;
        let other = registered(&store).await;
        let err = svc
            .create_coach(&who(&other), &input("Nope"))
            .await
            .unwrap_err();
        assert_eq!(err.code, Code::PermissionDenied);
        let linked = CoachInput {
            user_id: Some(coach_user.clone()),
            ..input("Ada")
        };
        let c = svc.create_coach(&admin(), &linked).await.unwrap();
        assert_eq!(
            (
                c.name.as_str(),
                c.timezone.as_str(),
                c.slot_minutes,
                c.availability.len(),
                c.user_id.as_str()
            ),
            ("Ada", "Europe/Berlin", 60, 7, coach_user.as_str())
        );
        assert_eq!(svc.get_coach(&Ref { id: c.id.clone() }).await.unwrap(), c);

        let rename = CoachInput {
            id: c.id.clone(),
            bio: Some("Changed".into()),
            ..CoachInput::default()
        };
        let err = svc
            .update_coach(soon(), &who(&other), &rename)
            .await
            .unwrap_err();
        assert_eq!(err.code, Code::PermissionDenied);
        let changed = svc
            .update_coach(soon(), &who(&coach_user), &rename)
            .await
            .unwrap();
        assert_eq!(
            (changed.bio.as_str(), changed.name.as_str()),
            ("Changed", "Ada")
        );
        // The coach's own user may not hand the coach to someone else; an admin may.
        let relink = CoachInput {
            id: c.id.clone(),
            user_id: Some(other.clone()),
            ..CoachInput::default()
        };
        let err = svc
            .update_coach(soon(), &who(&coach_user), &relink)
            .await
            .unwrap_err();
        assert_eq!(err.code, Code::PermissionDenied);
        let relinked = svc.update_coach(soon(), &admin(), &relink).await.unwrap();
        assert_eq!(relinked.user_id, other);
        // An unknown user, an unknown coach.
        let ghost = CoachInput {
            user_id: Some("no-such-user".into()),
            ..input("Ghost")
        };
        let err = svc.create_coach(&admin(), &ghost).await.unwrap_err();
        assert_eq!(field_keys(&err), ["user_id"]);
        let missing = CoachInput {
            id: "no-such-coach".into(),
            ..rename
        };
        let err = svc
            .update_coach(soon(), &admin(), &missing)
            .await
            .unwrap_err();
        assert_eq!(err.code, Code::NotFound);
        assert_eq!(
            kinds_of(&events),
            [
                "coaching.coach_created",
                "coaching.coach_updated",
                "coaching.coach_updated"
            ]
        );
    })
    .await;
}

#[tokio::test]
async fn a_booking_takes_its_slot_and_a_cancellation_gives_it_back() {
    on_each_backend(|store, _| async move {
        let (_h, svc, events) = service(store.clone()).await;
        let c = svc.create_coach(&admin(), &input("Bo")).await.unwrap();
        let (client, rival) = (registered(&store).await, registered(&store).await);
        let query = SlotQuery {
            coach_id: c.id.clone(),
            from: Some("2030-06-03T00:00:00Z".into()),
            to: Some("2030-06-04T00:00:00Z".into()),
        };
        let open = |s: Slots| -> Vec<String> { s.slots.into_iter().map(|x| x.start).collect() };
        let all = [
            "2030-06-03T07:00:00.000Z",
            "2030-06-03T08:00:00.000Z",
            "2030-06-03T09:00:00.000Z",
        ];
        assert_eq!(open(svc.availability(&query).await.unwrap()), all);

        let b = svc
            .book(
                soon(),
                &who(&client),
                &book_input(&c.id, "2030-06-03T10:00:00+02:00"),
            )
            .await
            .unwrap();
        assert_eq!(
            (
                b.start.as_str(),
                b.end.as_str(),
                b.client_id.as_str(),
                b.status.as_str()
            ),
            (
                "2030-06-03T08:00:00.000Z",
                "2030-06-03T09:00:00.000Z",
                client.as_str(),
                "booked"
            )
        );
        assert_eq!(
            open(svc.availability(&query).await.unwrap()),
            [all[0], all[2]]
        );
        let err = svc
            .book(soon(), &who(&rival), &book_input(&c.id, &b.start))
            .await
            .unwrap_err();
        assert_eq!(err.code, Code::AlreadyExists);
        // The client's reminder, an hour (the default lead) before the session.
        let reminders = |id: &str| {
            let store = store.clone();
            let subject = store::subject(id);
            async move {
                let (rows, _) =
                    crate::reminders::store::list(&store, None, Some(&subject), None, 10, 0)
                        .await
                        .unwrap();
                rows.into_iter()
                    .map(|l| (l.reminder.user_id, l.reminder.kind, l.reminder.due_at))
                    .collect::<Vec<_>>()
            }
        };
        let start = rfc3339("2030-06-03T08:00:00Z").unwrap();
        assert_eq!(
            reminders(&b.id).await,
            [(
                client.clone(),
                "reminder.due".to_string(),
                start - 3_600_000
            )]
        );

        // Someone else's booking does not exist for them; the client cancels it.
        let r = Ref { id: b.id.clone() };
        assert_eq!(
            svc.cancel(&who(&rival), &r).await.unwrap_err().code,
            Code::NotFound
        );
        let gone = svc.cancel(&who(&client), &r).await.unwrap();
        assert_eq!(gone.status, "cancelled");
        assert!(
            reminders(&b.id).await.is_empty(),
            "cancelling drops the reminder"
        );
        assert_eq!(
            svc.cancel(&who(&client), &r).await.unwrap_err().code,
            Code::FailedPrecondition
        );
        assert_eq!(open(svc.availability(&query).await.unwrap()), all);
        let again = svc
            .book(soon(), &who(&rival), &book_input(&c.id, &b.start))
            .await
            .unwrap();
        assert_ne!(again.id, b.id);
        let mine = svc
            .list_bookings(&who(&rival), &ListPage::default())
            .await
            .unwrap();
        assert_eq!(
            (mine.total, mine.items[0].id.as_str()),
            (1, again.id.as_str())
        );
        let theirs = svc
            .list_bookings(&who(&client), &ListPage::default())
            .await
            .unwrap();
        assert_eq!(
            (theirs.total, theirs.items[0].status.as_str()),
            (1, "cancelled")
        );

        // Bad slots are 400 on `start`, an unknown coach 404.
        for bad in [
            "2020-06-01T07:00:00Z",      // past
            "2030-06-03T07:30:00Z",      // off the grid
            "2030-06-03T12:00:00Z",      // outside availability (14:00 local)
            "3 June 2030, nine o'clock", // not RFC 3339
        ] {
            let err = svc
                .book(soon(), &who(&client), &book_input(&c.id, bad))
                .await
                .unwrap_err();
            assert_eq!(field_keys(&err), ["start"], "{bad}");
        }
        let err = svc
            .book(
                soon(),
                &who(&client),
                &book_input("no-such-coach", MONDAY_9),
            )
            .await
            .unwrap_err();
        assert_eq!(err.code, Code::NotFound);
        let made: Vec<_> = events
            .events()
            .into_iter()
            .filter(|e| e.kind.starts_with("coaching.booking"))
            .map(|e| (e.kind, e.user_id.unwrap_or_default()))
            .collect();
        assert_eq!(
            made,
            [
                ("coaching.booking_made".to_string(), client.clone()),
                ("coaching.booking_cancelled".to_string(), client.clone()),
                ("coaching.booking_made".to_string(), rival.clone()),
            ]
        );
    })
    .await;
}

#[tokio::test]
async fn availability_windows_are_checked() {
    on_each_backend(|store, _| async move {
        let (_h, svc, _) = service(store).await;
        let c = svc.create_coach(&admin(), &input("Cy")).await.unwrap();
        let q = |from: Option<&str>, to: Option<&str>| SlotQuery {
            coach_id: c.id.clone(),
            from: from.map(Into::into),
            to: to.map(Into::into),
        };
        for (field, query) in [
            ("from", q(Some("yesterday"), None)),
            ("to", q(Some("2030-06-03T00:00:00Z"), Some("2030-06-03"))),
            (
                "to",
                q(Some("2030-06-03T00:00:00Z"), Some("2030-06-02T00:00:00Z")),
            ),
            (
                "to",
                q(Some("2030-06-01T00:00:00Z"), Some("2030-08-03T00:00:00Z")),
            ),
        ] {
            let err = svc.availability(&query).await.unwrap_err();
            assert_eq!(field_keys(&err), [field], "{query:?}");
        }
        // 62 days is the longest window; no `to` means a week.
        let long = q(Some("2030-06-01T00:00:00Z"), Some("2030-08-02T00:00:00Z"));
        assert_eq!(svc.availability(&long).await.unwrap().slots.len(), 62 * 3);
        let week = q(Some("2030-06-01T00:00:00Z"), None);
        assert_eq!(svc.availability(&week).await.unwrap().slots.len(), 7 * 3);
        let unknown = SlotQuery {
            coach_id: "no-such-coach".into(),
            ..week
        };
        assert_eq!(
            svc.availability(&unknown).await.unwrap_err().code,
            Code::NotFound
        );
    })
    .await;
}

#[tokio::test]
async fn racing_bookings_through_the_coach_actor_give_one_booking() {
    on_each_backend(|store, _| async move {
        let (_h, svc, _) = service(store.clone()).await;
        let c = svc.create_coach(&admin(), &input("Di")).await.unwrap();
        let clients: Vec<Who> = (0..20)
            .map(|i| who(&format!("racer-{i}-{}", uuid::Uuid::new_v4().simple())))
            .collect();
        let slot = book_input(&c.id, MONDAY_9);
        let answers =
            futures_util::future::join_all(clients.iter().map(|w| svc.book(soon(), w, &slot)))
                .await;
        let won = answers.iter().filter(|a| a.is_ok()).count();
        let taken = answers
            .iter()
            .filter(|a| matches!(a, Err(e) if e.code == Code::AlreadyExists))
            .count();
        assert_eq!((won, taken), (1, 19));
        let rows = store::bookings_of_coach(&store, &c.id).await.unwrap();
        assert_eq!(rows.len(), 1);
    })
    .await;
}

#[tokio::test]
async fn the_store_alone_never_books_a_slot_twice() {
    // As if every booking came through a different activation of the coach.
    on_each_backend(|store, _| async move {
        let (_h, svc, _) = service(store.clone()).await;
        let c = svc.create_coach(&admin(), &input("Ed")).await.unwrap();
        let start = ms(MONDAY_9);
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let (store, id) = (store.clone(), c.id.clone());
                tokio::spawn(async move {
                    let mut tx = store.begin().await?;
                    let done = store::book(
                        &mut tx,
                        &Plan::default(),
                        &id,
                        &format!("client-{i}"),
                        now_ms(),
                        |_| Ok((start, start + 3_600_000)),
                    )
                    .await?;
                    tx.commit().await.map_err(crate::store::db_error)?;
                    Ok::<_, MeshError>(done)
                })
            })
            .collect();
        let mut done = 0;
        for t in tasks {
            match t.await.unwrap().unwrap() {
                store::Booked::Done(_) => done += 1,
                store::Booked::Taken => {}
                store::Booked::Missing => panic!("the coach exists"),
            }
        }
        assert_eq!(done, 1);

        // The unique index alone: a second live booking at the same start is refused, a
        // cancelled one does not count.
        let row = |status: &str| store::BookingRow {
            id: uuid::Uuid::new_v4().to_string(),
            coach_id: c.id.clone(),
            client_id: "raw".into(),
            start_at: start,
            end_at: start + 1,
            status: status.into(),
            created_at: 0,
            cancelled_at: 0,
        };
        let mut tx = store.writer().begin().await.unwrap();
        let err = store::insert_bookings(&mut tx, &[row(store::BOOKED)])
            .await
            .unwrap_err();
        assert_eq!(err.code, Code::AlreadyExists);
        drop(tx);
        let mut tx = store.writer().begin().await.unwrap();
        store::insert_bookings(&mut tx, &[row(store::CANCELLED)])
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let rows = store::bookings_of_coach(&store, &c.id).await.unwrap();
        let live = rows.iter().filter(|r| r.status == store::BOOKED).count();
        assert_eq!((rows.len(), live), (2, 1));
    })
    .await;
}

#[tokio::test]
async fn a_batch_of_bookings_is_decided_in_arrival_order_in_one_transaction() {
    on_each_backend(|store, _| async move {
        let (_h, svc, _) = service(store.clone()).await;
        let c = svc.create_coach(&admin(), &input("Gus")).await.unwrap();
        let (nine, ten, bad) = (ms(MONDAY_9), ms(MONDAY_9) + 3_600_000, 1);
        let asks = [("a", nine), ("b", nine), ("c", bad), ("d", ten), ("e", ten)];
        let mut tx = store.begin().await.unwrap();
        let answers = store::book_all(&mut tx, &Plan::default(), &c.id, &asks, now_ms(), |_, s| {
            if s == bad {
                Err(MeshError::invalid("not a slot"))
            } else {
                Ok((s, s + 3_600_000))
            }
        })
        .await
        .unwrap()
        .expect("the coach exists");
        tx.commit().await.unwrap();
        let got: Vec<String> = answers
            .iter()
            .map(|a| match a {
                Ok(store::Booked::Done(row)) => format!("{}@{}", row.client_id, row.start_at),
                Ok(other) => format!("{other:?}"),
                Err(e) => e.message.clone(),
            })
            .collect();
        assert_eq!(
            got,
            [
                format!("a@{nine}"),
                "Taken".into(),
                "not a slot".into(),
                format!("d@{ten}"),
                "Taken".into()
            ]
        );
        let rows = store::bookings_of_coach(&store, &c.id).await.unwrap();
        let mut clients: Vec<&str> = rows.iter().map(|r| r.client_id.as_str()).collect();
        clients.sort_unstable();
        assert_eq!(clients, ["a", "d"]);
        // A coach that does not exist: nothing asked of it is decided.
        let mut tx = store.begin().await.unwrap();
        let none = store::book_all(
            &mut tx,
            &Plan::default(),
            "no-such-coach",
            &asks,
            0,
            |_, s| Ok((s, s + 1)),
        )
        .await
        .unwrap();
        assert!(none.is_none());
    })
    .await;
}

#[tokio::test]
async fn a_booking_written_again_under_its_key_is_a_repeat_not_a_taken_slot() {
    on_each_backend(|store, _| async move {
        let (_h, svc, _) = service(store.clone()).await;
        let c = svc.create_coach(&admin(), &input("Hal")).await.unwrap();
        let writer = entity::bookings(
            store.clone(),
            Plan::default(),
            Arc::new(Recorder::default()),
        );
        // Keys of this run only (the PostgreSQL database outlives it).
        let run = uuid::Uuid::new_v4().simple().to_string();
        let ask = |client: &str, key: &str| entity::Ask {
            coach_id: c.id.clone(),
            client_id: client.into(),
            start: ms(MONDAY_9),
            key: Some(crate::store::idempotency::Key::made_for_test(&format!(
                "{key}-{run}"
            ))),
        };
        let first = writer.submit(ask("ann", "k-ann")).await.unwrap().unwrap();
        assert_eq!(first.client_id, "ann");
        // Ann's write run again (its answer was lost): told it is a repeat, so the
        // idempotency layer answers it with the first answer, not 409.
        let again = writer
            .submit(ask("ann", "k-ann"))
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(again, crate::store::idempotency::duplicate());
        // Bob's write for the same slot lost the race: taken.
        let bob = writer
            .submit(ask("bob", "k-bob"))
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(bob.code, Code::AlreadyExists);
        assert_eq!(
            store::bookings_of_coach(&store, &c.id).await.unwrap().len(),
            1
        );
    })
    .await;
}

#[tokio::test]
async fn notes_are_seen_by_the_client_and_the_coach_only() {
    on_each_backend(|store, _| async move {
        let (_h, svc, events) = service(store.clone()).await;
        let coach_user = registered(&store).await;
        let linked = CoachInput {
            user_id: Some(coach_user.clone()),
            ..input("Fay")
        };
        let c = svc.create_coach(&admin(), &linked).await.unwrap();
        let (client, outsider) = (registered(&store).await, registered(&store).await);
        let b = svc
            .book(soon(), &who(&client), &book_input(&c.id, MONDAY_9))
            .await
            .unwrap();
        let note = |text: &str| NoteInput {
            booking_id: b.id.clone(),
            text: Some(text.into()),
        };
        svc.add_note(&who(&client), &note("Goals: delegation"))
            .await
            .unwrap();
        svc.add_note(&who(&coach_user), &note("Homework: a list"))
            .await
            .unwrap();
        let r = Ref { id: b.id.clone() };
        for reader in [&client, &coach_user] {
            let notes = svc.notes(&who(reader), &r).await.unwrap().items;
            let texts: Vec<&str> = notes.iter().map(|n| n.text.as_str()).collect();
            assert_eq!(texts, ["Goals: delegation", "Homework: a list"]);
        }
        for stranger in [who(&outsider), admin()] {
            assert_eq!(
                svc.notes(&stranger, &r).await.unwrap_err().code,
                Code::NotFound
            );
            let err = svc.add_note(&stranger, &note("hi")).await.unwrap_err();
            assert_eq!(err.code, Code::NotFound);
        }
        let err = svc.add_note(&who(&client), &note("  ")).await.unwrap_err();
        assert_eq!(field_keys(&err), ["text"]);
        // The coach's user sees the booking in their list too.
        let theirs = svc
            .list_bookings(&who(&coach_user), &ListPage::default())
            .await
            .unwrap();
        assert_eq!(
            theirs.items.iter().map(|x| &x.id).collect::<Vec<_>>(),
            [&b.id]
        );
        let added = kinds_of(&events)
            .into_iter()
            .filter(|k| k == "coaching.note_added")
            .count();
        assert_eq!(added, 2);
    })
    .await;
}
