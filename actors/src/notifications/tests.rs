use super::*;
use crate::events::kinds;

async fn service() -> Notifications {
    let dir = std::env::temp_dir().join(format!("troupe-notif-{}", uuid::Uuid::new_v4()));
    Notifications::new(Store::connect(None, &dir).await.unwrap(), false)
}

fn event(id: &str, kind: &str, user: Option<&str>, payload: serde_json::Value) -> Event {
    Event {
        id: id.into(),
        kind: kind.into(),
        time: "2026-01-01T00:00:00.000Z".into(),
        source: "n1".into(),
        user_id: user.map(str::to_string),
        payload,
    }
}

async fn page(s: &Notifications, user: &str) -> NotificationPage {
    s.list(ListRequest {
        user_id: user.into(),
        ..Default::default()
    })
    .await
    .unwrap()
}

async fn log_total(s: &Notifications, kind: &str) -> u64 {
    s.logs(LogsRequest {
        kind: kind.into(),
        ..Default::default()
    })
    .await
    .unwrap()
    .total
}

#[tokio::test]
async fn the_same_event_twice_changes_nothing_the_second_time() {
    let s = service().await;
    let e = event(
        "e1",
        kinds::USER_REGISTERED,
        Some("u1"),
        serde_json::json!({"username": "ann"}),
    );
    assert!(s.consume(&e).await.unwrap().fresh);
    assert!(!s.consume(&e).await.unwrap().fresh);
    let p = page(&s, "u1").await;
    assert_eq!(p.total, 1);
    assert_eq!(p.unread, 1);
    // Read, then delivered once more: it stays read.
    s.read(ReadRequest {
        user_id: "u1".into(),
        id: "e1".into(),
    })
    .await
    .unwrap();
    assert!(!s.consume(&e).await.unwrap().fresh);
    let p = page(&s, "u1").await;
    assert_eq!((p.total, p.unread), (1, 0));
    assert_eq!(p.items[0].id, "e1");
    assert_eq!(p.items[0].title, "Welcome to Troupe");
    assert_eq!(log_total(&s, kinds::USER_REGISTERED).await, 1);
}

#[tokio::test]
async fn the_log_hides_codes_the_notification_shows_them() {
    let s = service().await;
    let e = event(
        "e2",
        kinds::PASSWORD_RESET_REQUESTED,
        Some("u1"),
        serde_json::json!({"username": "ann", "code": "654321"}),
    );
    s.consume(&e).await.unwrap();
    let p = page(&s, "u1").await;
    assert!(p.items[0].body.contains("654321"));
    let logs = s.logs(LogsRequest::default()).await.unwrap();
    assert_eq!(logs.total, 1);
    assert!(!logs.items[0].payload_json.contains("654321"));
    assert_eq!(logs.items[0].channels, ["in_app", "log"]);
    assert_eq!(logs.items[0].event_time, "2026-01-01T00:00:00.000Z");
}

#[tokio::test]
async fn events_without_a_user_or_template_only_make_a_log_row() {
    let s = service().await;
    s.consume(&event(
        "e3",
        "bench.event",
        None,
        serde_json::json!({"run": "r1"}),
    ))
    .await
    .unwrap();
    s.consume(&event("e4", "task.created", None, serde_json::json!({})))
        .await
        .unwrap();
    assert_eq!(log_total(&s, "").await, 2);
    assert_eq!(log_total(&s, "task.*").await, 1);
    assert_eq!(log_total(&s, "task.created").await, 1);
    assert_eq!(log_total(&s, "task").await, 0);
    let stats = s
        .bench_stats(BenchStatsRequest { run: "r1".into() })
        .await
        .unwrap();
    assert_eq!(stats.count, 1);
}

#[tokio::test]
async fn read_marks_only_the_owners_notification() {
    let s = service().await;
    s.consume(&event(
        "e5",
        kinds::TODO_CREATED,
        Some("u1"),
        serde_json::json!({"title": "milk"}),
    ))
    .await
    .unwrap();
    let other = s
        .read(ReadRequest {
            user_id: "u2".into(),
            id: "e5".into(),
        })
        .await;
    assert_eq!(other.unwrap_err().code, crate::mesh::Code::NotFound);
    let n = s
        .read(ReadRequest {
            user_id: "u1".into(),
            id: "e5".into(),
        })
        .await
        .unwrap();
    assert!(n.read);
    assert_eq!(page(&s, "u1").await.unread, 0);
}

#[tokio::test]
async fn preferences_default_on_and_change_per_channel() {
    let s = service().await;
    let p = store::prefs(&s.store, "u1").await.unwrap();
    assert!(p.email && p.log);
    let p = s
        .prefs_put(PrefsUpdate {
            user_id: "u1".into(),
            email: Some(false),
            log: None,
        })
        .await
        .unwrap();
    assert!(!p.email && p.log);
    s.consume(&event(
        "e6",
        kinds::USER_LOGGED_IN,
        Some("u1"),
        serde_json::json!({"username": "ann"}),
    ))
    .await
    .unwrap();
    let logs = s.logs(LogsRequest::default()).await.unwrap();
    assert_eq!(logs.items[0].channels, ["in_app", "log"]);
}

#[tokio::test]
async fn bad_requests_are_refused() {
    let s = service().await;
    let e = event("", kinds::USER_LOGGED_IN, Some("u1"), serde_json::json!({}));
    assert!(s.consume(&e).await.is_err());
    let e = event("e7", "Bad Kind", Some("u1"), serde_json::json!({}));
    assert!(s.consume(&e).await.is_err());
    let r = s
        .list(ListRequest {
            user_id: "u1".into(),
            per_page: 1000,
            ..Default::default()
        })
        .await;
    assert_eq!(r.unwrap_err().code, crate::mesh::Code::InvalidArgument);
    let r = s
        .logs(LogsRequest {
            limit: 10_000,
            ..Default::default()
        })
        .await;
    assert_eq!(r.unwrap_err().code, crate::mesh::Code::InvalidArgument);
}

#[test]
fn times_parse_back_to_millis() {
    use crate::store::time::rfc3339_millis;
    for ms in [0, 1_700_000_000_123, 951_782_400_000, 4_102_444_799_999] {
        assert_eq!(parse_time(&rfc3339_millis(ms)), Some(ms));
    }
    assert_eq!(parse_time("2026-01-01T00:00:00Z"), Some(1_767_225_600_000));
    assert_eq!(parse_time("not a time"), None);
    assert_eq!(parse_time("2026-13-01T00:00:00.000Z"), None);
}
