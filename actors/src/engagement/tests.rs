//! The `engagement` service against SQLite (and PostgreSQL when `TROUPE_TEST_PG` is set):
//! tracking and badges, bus events awarding points once per event id, feedback, the
//! leaderboard, admin-only analytics, and bad input that writes nothing.

use std::sync::Arc;

use troupe_proto::mesh::Caller;

use super::*;
use crate::events::{EventJson, Recorder};
use crate::mesh::service::call_op;
use crate::store::tests::{on_each_backend, sqlite};

fn engagement(store: Store) -> (Engagement, Arc<Recorder>) {
    let events = Arc::new(Recorder::default());
    (Engagement::new(store, events.clone()), events)
}

fn user() -> Who {
    Who {
        user_id: format!("u-{}", uuid::Uuid::new_v4().simple()),
        admin: false,
    }
}

fn admin() -> Who {
    Who {
        user_id: format!("a-{}", uuid::Uuid::new_v4().simple()),
        admin: true,
    }
}

fn track(kind: &str) -> Track {
    Track {
        kind: Some(kind.into()),
        reference: None,
    }
}

fn bus_event(kind: &str, user_id: &str) -> Event {
    Event {
        id: uuid::Uuid::new_v4().to_string(),
        kind: kind.into(),
        time: rfc3339_millis(now_ms()),
        source: "test".into(),
        user_id: Some(user_id.into()),
        payload: serde_json::json!({ "lesson_id": "l-1", "course_id": "c-1" }),
    }
}

fn invalid_field(e: &MeshError, field: &str) {
    assert_eq!(e.code, Code::InvalidArgument, "{e:?}");
    let text = format!("{} {}", e.message, e.details);
    assert!(text.contains(field), "{e:?} names {field}");
}

#[test]
fn the_kind_table_is_consistent() {
    let mut names: Vec<&str> = KINDS.iter().map(|k| k.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), KINDS.len(), "kind names are unique");
    assert!(KINDS.iter().all(|k| k.points > 0));
    assert!(BADGES.windows(2).all(|w| w[0].1 < w[1].1), "badges ascend");
}

#[tokio::test]
async fn tracking_awards_points_and_badges_at_thresholds() {
    on_each_backend(|store, _| async move {
        let (svc, events) = engagement(store);
        let ann = user();
        let t = svc.track(&ann, track("share")).await.unwrap();
        assert_eq!((t.awarded, t.points), (5, 5));
        assert!(t.new_badges.is_empty());
        let mut last = t;
        for _ in 0..4 {
            last = svc.track(&ann, track("share")).await.unwrap();
        }
        assert_eq!(last.points, 25);
        assert_eq!(last.new_badges, ["bronze"]);
        let p = svc.points(&ann, &UserRef::default()).await.unwrap();
        assert_eq!(
            (p.points, p.badges.clone()),
            (25, vec!["bronze".to_string()])
        );
        let b = svc.badges(&ann, &UserRef::default()).await.unwrap();
        assert_eq!(b.items.iter().filter(|b| b.earned).count(), 1);
        let kinds: Vec<String> = events.events().iter().map(|e| e.kind.clone()).collect();
        assert_eq!(
            kinds.iter().filter(|k| *k == "engagement.activity").count(),
            5
        );
        assert_eq!(
            kinds
                .iter()
                .filter(|k| *k == "engagement.badge_earned")
                .count(),
            1
        );
    })
    .await;
}

#[tokio::test]
async fn the_same_bus_event_consumed_twice_awards_points_once() {
    on_each_backend(|store, _| async move {
        let (svc, _) = engagement(store.clone());
        let other = Engagement::new(store, Arc::new(Recorder::default()));
        let ann = user();
        let e = bus_event(kinds::TRAINING_LESSON_COMPLETED, &ann.user_id);
        assert_eq!(svc.consume(&e).await.unwrap().awarded, 10);
        assert_eq!(svc.consume(&e).await.unwrap().awarded, 0);
        assert_eq!(other.consume(&e).await.unwrap().awarded, 0, "another node");
        let p = svc.points(&ann, &UserRef::default()).await.unwrap();
        assert_eq!(p.points, 10);
        // A second, distinct event is awarded; kinds outside the table are ignored.
        let cert = bus_event(kinds::TRAINING_CERTIFICATE_ISSUED, &ann.user_id);
        assert_eq!(svc.consume(&cert).await.unwrap().awarded, 50);
        let unrelated = bus_event(kinds::TODO_CREATED, &ann.user_id);
        assert_eq!(svc.consume(&unrelated).await.unwrap().awarded, 0);
        let own = bus_event(kinds::ENGAGEMENT_ACTIVITY, &ann.user_id);
        assert_eq!(svc.consume(&own).await.unwrap().awarded, 0);
        let p = svc.points(&ann, &UserRef::default()).await.unwrap();
        assert_eq!(p.points, 60);
    })
    .await;
}

#[tokio::test]
async fn a_coaching_booking_earns_its_client_points_once_per_event_and_slot() {
    on_each_backend(|store, _| async move {
        let (svc, _) = engagement(store);
        let client = user();
        let booking = |slot: &str| Event {
            payload: serde_json::json!({
                "booking_id": uuid::Uuid::new_v4().to_string(),
                "coach_id": "c-1",
                "slot": slot,
            }),
            ..bus_event(kinds::COACHING_BOOKING_MADE, &client.user_id)
        };
        let first = booking("c-1@2030-03-04T08:00:00.000Z");
        assert_eq!(svc.consume(&first).await.unwrap().awarded, 20);
        assert_eq!(svc.consume(&first).await.unwrap().awarded, 0, "redelivered");
        // The same slot cancelled and booked again is a new event, but earns nothing more.
        let again = booking("c-1@2030-03-04T08:00:00.000Z");
        assert_eq!(svc.consume(&again).await.unwrap().awarded, 0);
        let other = booking("c-1@2030-03-04T09:00:00.000Z");
        assert_eq!(svc.consume(&other).await.unwrap().awarded, 20);
        let p = svc.points(&client, &UserRef::default()).await.unwrap();
        assert_eq!(p.points, 40);
        // A cancellation earns nothing.
        let cancelled = bus_event(kinds::COACHING_BOOKING_CANCELLED, &client.user_id);
        assert_eq!(svc.consume(&cancelled).await.unwrap().awarded, 0);
    })
    .await;
}

#[tokio::test]
async fn consume_arrives_through_the_op_without_a_caller() {
    let (store, _dir) = sqlite().await;
    let (svc, _) = engagement(store);
    let ann = user();
    let e = bus_event(kinds::EVENT_ATTENDED, &ann.user_id);
    for expected in [15, 0] {
        let c = call_op(&svc, &ops::CONSUME, EventJson::of(&e), None)
            .await
            .unwrap();
        assert_eq!(c.awarded, expected);
    }
    let caller = Caller {
        user_id: ann.user_id.clone(),
        ..Default::default()
    };
    let p = call_op(&svc, &ops::POINTS, UserRef::default(), Some(caller))
        .await
        .unwrap();
    assert_eq!(p.points, 15);
    let refused = call_op(&svc, &ops::POINTS, UserRef::default(), None).await;
    assert_eq!(refused.unwrap_err().code, Code::Unauthenticated);
}

#[tokio::test]
async fn bad_input_is_refused_naming_the_field_and_writes_nothing() {
    on_each_backend(|store, _| async move {
        let (svc, events) = engagement(store);
        let ann = user();
        let e = svc.track(&ann, Track::default()).await.unwrap_err();
        invalid_field(&e, "kind");
        let e = svc.track(&ann, track("juggling")).await.unwrap_err();
        invalid_field(&e, "kind");
        let e = svc
            .track(&ann, track("lesson_completed"))
            .await
            .unwrap_err();
        invalid_field(&e, "kind");
        let long = Track {
            kind: Some("share".into()),
            reference: Some("x".repeat(REF_MAX + 1)),
        };
        invalid_field(&svc.track(&ann, long).await.unwrap_err(), "ref");
        for rating in [None, Some(0), Some(6)] {
            let f = NewFeedback {
                rating,
                ..Default::default()
            };
            invalid_field(&svc.feedback(&ann, f).await.unwrap_err(), "rating");
        }
        let p = svc.points(&ann, &UserRef::default()).await.unwrap();
        assert_eq!(p.points, 0);
        assert!(events.events().is_empty());
    })
    .await;
}

#[tokio::test]
async fn points_of_others_and_analytics_are_for_admins() {
    on_each_backend(|store, _| async move {
        let (svc, _) = engagement(store);
        let (ann, bob, boss) = (user(), user(), admin());
        svc.track(&ann, track("comment")).await.unwrap();
        let other = UserRef {
            user_id: ann.user_id.clone(),
        };
        let e = svc.points(&bob, &other).await.unwrap_err();
        assert_eq!(e.code, Code::PermissionDenied);
        let e = svc
            .analytics(&bob, &AnalyticsQuery::default())
            .await
            .unwrap_err();
        assert_eq!(e.code, Code::PermissionDenied);
        let e = svc
            .list_feedback(&bob, &ListFeedback::default())
            .await
            .unwrap_err();
        assert_eq!(e.code, Code::PermissionDenied);
        // An admin asking for a user who does not exist.
        let e = svc.points(&boss, &other).await.unwrap_err();
        assert_eq!(e.code, Code::NotFound);
        let a = svc
            .analytics(&boss, &AnalyticsQuery::default())
            .await
            .unwrap();
        let today = day_of(now_ms());
        assert!(a
            .active_users
            .iter()
            .any(|d| d.day == today && d.users >= 1));
        assert!(a.top_activities.iter().any(|k| k.kind == "comment"));
    })
    .await;
}

#[tokio::test]
async fn feedback_is_stored_and_listed_for_admins() {
    on_each_backend(|store, _| async move {
        let (svc, _) = engagement(store);
        let (ann, boss) = (user(), admin());
        let f = svc
            .feedback(
                &ann,
                NewFeedback {
                    rating: Some(4),
                    text: Some("useful".into()),
                    reference: Some("course-1".into()),
                },
            )
            .await
            .unwrap();
        assert_eq!((f.rating, f.user_id.as_str()), (4, ann.user_id.as_str()));
        let page = svc
            .list_feedback(
                &boss,
                &ListFeedback {
                    page: 1,
                    per_page: 100,
                },
            )
            .await
            .unwrap();
        assert!(page
            .items
            .iter()
            .any(|x| x.id == f.id && x.text == "useful"));
        let a = svc
            .analytics(&boss, &AnalyticsQuery::default())
            .await
            .unwrap();
        assert!(a.feedback_count >= 1);
    })
    .await;
}

#[tokio::test]
async fn the_leaderboard_ranks_by_points() {
    let (store, _dir) = sqlite().await;
    let (svc, _) = engagement(store);
    let (ann, bob) = (user(), user());
    svc.track(&ann, track("comment")).await.unwrap();
    svc.track(&bob, track("share")).await.unwrap();
    let board = svc
        .leaderboard(&LeaderboardQuery { limit: 10 })
        .await
        .unwrap();
    let order: Vec<&str> = board.items.iter().map(|s| s.user_id.as_str()).collect();
    assert_eq!(order, [bob.user_id.as_str(), ann.user_id.as_str()]);
    let top = svc
        .leaderboard(&LeaderboardQuery { limit: 1 })
        .await
        .unwrap();
    assert_eq!(top.items.len(), 1);
    let e = svc
        .leaderboard(&LeaderboardQuery { limit: 1000 })
        .await
        .unwrap_err();
    invalid_field(&e, "limit");
}

#[tokio::test]
async fn the_same_lesson_completed_again_earns_nothing_more() {
    on_each_backend(|store, _| async move {
        let (svc, _) = engagement(store);
        let ann = user();
        let first = bus_event(kinds::TRAINING_LESSON_COMPLETED, &ann.user_id);
        assert_eq!(svc.consume(&first).await.unwrap().awarded, 10);
        // Unmarked and marked again: a new event about the same lesson.
        let again = bus_event(kinds::TRAINING_LESSON_COMPLETED, &ann.user_id);
        assert_eq!(svc.consume(&again).await.unwrap().awarded, 0);
        let mut other = bus_event(kinds::TRAINING_LESSON_COMPLETED, &ann.user_id);
        other.payload = serde_json::json!({ "lesson_id": "l-2" });
        assert_eq!(svc.consume(&other).await.unwrap().awarded, 10);
        let p = svc.points(&ann, &UserRef::default()).await.unwrap();
        assert_eq!(p.points, 20);
    })
    .await;
}
