//! What a user is told about an event: a title, a text body and an HTML body per kind.
//! Kinds without a template make a log row but no notification.

use serde_json::Value;

use crate::events::{kinds, Event};

/// A rendered notification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    /// Title (the email subject).
    pub title: String,
    /// Plain text body.
    pub text: String,
    /// HTML body.
    pub html: String,
}

fn field<'a>(payload: &'a Value, name: &str) -> &'a str {
    payload.get(name).and_then(Value::as_str).unwrap_or("")
}

/// Escapes text for HTML element content and attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn rendered(title: String, paragraphs: &[String]) -> Rendered {
    let text = paragraphs.join("\n\n");
    let html = format!(
        "<!doctype html><html><body><h1>{}</h1>{}</body></html>",
        escape_html(&title),
        paragraphs
            .iter()
            .map(|p| format!("<p>{}</p>", escape_html(p)))
            .collect::<String>()
    );
    Rendered { title, text, html }
}

/// Whether events of `kind` have a template.
pub fn has_template(kind: &str) -> bool {
    matches!(
        kind,
        kinds::USER_REGISTERED
            | kinds::REGISTRATION_CODE
            | kinds::USER_CONFIRMED
            | kinds::USER_EMAIL_CHANGED
            | kinds::USER_REGISTER_ATTEMPTED
            | kinds::USER_LOGGED_IN
            | kinds::PASSWORD_RESET_REQUESTED
            | kinds::PASSWORD_RESET
            | kinds::TRAINING_ENROLLED
            | kinds::TRAINING_LESSON_COMPLETED
            | kinds::TRAINING_CERTIFICATE_ISSUED
            | kinds::REMINDER_DUE
    ) || kind.starts_with("task.")
        || kind.starts_with("todo.")
}

/// The notification for `event`, if its kind has a template.
pub fn render(event: &Event) -> Option<Rendered> {
    let p = &event.payload;
    let name = match field(p, "username") {
        "" => "there".to_string(),
        n => n.to_string(),
    };
    let r = match event.kind.as_str() {
        kinds::USER_REGISTERED => rendered(
            "Welcome to Troupe".into(),
            &[
                format!("Hello {name}, welcome aboard!"),
                "Your account has been created.".into(),
            ],
        ),
        kinds::REGISTRATION_CODE => rendered(
            "Confirm your registration".into(),
            &[
                format!("Hello {name},"),
                format!("Your confirmation code is {}", field(p, "code")),
                "Send it to POST /users/confirm-registration to confirm your email address.".into(),
            ],
        ),
        kinds::USER_CONFIRMED => rendered(
            "Registration confirmed".into(),
            &[format!("Hello {name}, your email address is confirmed.")],
        ),
        kinds::USER_EMAIL_CHANGED => rendered(
            "Your email address was changed".into(),
            &[
                format!("Hello {name},"),
                format!(
                    "the email address of your account was changed from {} to {}.",
                    field(p, "old_email"),
                    field(p, "new_email")
                ),
                "If you did not make this change, reset your password and contact an administrator."
                    .into(),
            ],
        ),
        kinds::USER_REGISTER_ATTEMPTED => rendered(
            "Someone tried to register with your email address".into(),
            &[
                format!("Hello {name},"),
                format!(
                    "someone tried to register a new account named {} with this email address, \
                     which already belongs to your account. No account was created.",
                    field(p, "attempted_username")
                ),
                "If it was you, sign in with your account instead (or reset your password). \
                 Otherwise you need not do anything."
                    .into(),
            ],
        ),
        kinds::USER_LOGGED_IN => rendered(
            "New login".into(),
            &[format!(
                "Hello {name}, you logged in{}.",
                match field(p, "ip") {
                    "" => String::new(),
                    ip => format!(" from {ip}"),
                }
            )],
        ),
        kinds::PASSWORD_RESET_REQUESTED => rendered(
            "Password reset".into(),
            &[
                format!("Hello {name},"),
                format!("Your password reset code is {}", field(p, "code")),
                "If you did not ask for it, ignore this message.".into(),
            ],
        ),
        kinds::PASSWORD_RESET => rendered(
            "Your password was changed".into(),
            &[format!(
                "Hello {name}, your password was reset and your other sessions were ended."
            )],
        ),
        kinds::TRAINING_ENROLLED => rendered(
            "Enrolled".into(),
            &[format!(
                "You are enrolled in \"{}\".",
                field(p, "course_title")
            )],
        ),
        kinds::TRAINING_LESSON_COMPLETED => rendered(
            "Lesson completed".into(),
            &[format!(
                "You completed the lesson \"{}\".",
                field(p, "lesson_title")
            )],
        ),
        kinds::TRAINING_CERTIFICATE_ISSUED => rendered(
            "Certificate issued".into(),
            &[
                format!(
                    "Congratulations: you completed and passed \"{}\".",
                    field(p, "course_title")
                ),
                format!("Your certificate: {}", field(p, "certificate_id")),
            ],
        ),
        kinds::REMINDER_DUE => {
            let title = field(p, "title");
            let when = field(p, "start");
            let mut lines = vec![format!("\"{title}\" starts at {when} (UTC).")];
            match field(p, "location") {
                "" => {}
                place => lines.push(format!("Where: {place}")),
            }
            rendered(format!("Reminder: {title}"), &lines)
        }
        k if k.starts_with("task.") => {
            let what = k.trim_start_matches("task.");
            let task = match field(p, "name") {
                "" => field(p, "id").to_string(),
                n => n.to_string(),
            };
            let mut lines = vec![format!("Task {task}: {what}")];
            if let Some(progress) = p.get("progress").and_then(Value::as_f64) {
                lines.push(format!("Progress: {progress}"));
            }
            rendered(format!("Task {what}"), &lines)
        }
        k if k.starts_with("todo.") => {
            let what = k.trim_start_matches("todo.");
            let title = field(p, "title");
            rendered(
                format!("Todo {what}"),
                &[format!("Todo \"{title}\" was {what}")],
            )
        }
        _ => return None,
    };
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: &str, payload: Value) -> Event {
        Event {
            id: "e1".into(),
            kind: kind.into(),
            time: "2026-01-01T00:00:00.000Z".into(),
            source: "n1".into(),
            user_id: Some("u1".into()),
            payload,
        }
    }

    #[test]
    fn reset_code_is_in_both_bodies() {
        let r = render(&event(
            kinds::PASSWORD_RESET_REQUESTED,
            serde_json::json!({"username": "ann", "code": "123456"}),
        ))
        .unwrap();
        assert_eq!(r.title, "Password reset");
        assert!(r.text.contains("Your password reset code is 123456"));
        assert!(r.html.contains("Your password reset code is 123456"));
    }

    #[test]
    fn reminders_name_what_starts_and_when() {
        let r = render(&event(
            kinds::REMINDER_DUE,
            serde_json::json!({"about": "event", "title": "Kick-off", "start": "2027-01-04T09:00:00.000Z", "location": "Room 1"}),
        ))
        .unwrap();
        assert_eq!(r.title, "Reminder: Kick-off");
        assert_eq!(
            r.text,
            "\"Kick-off\" starts at 2027-01-04T09:00:00.000Z (UTC).\n\nWhere: Room 1"
        );
        assert!(has_template(kinds::REMINDER_DUE));
    }

    #[test]
    fn an_email_change_names_both_addresses() {
        let r = render(&event(
            kinds::USER_EMAIL_CHANGED,
            serde_json::json!({"username": "ann", "old_email": "ann@old.example", "new_email": "ann@new.example", "to": "ann@old.example"}),
        ))
        .unwrap();
        assert_eq!(r.title, "Your email address was changed");
        for body in [&r.text, &r.html] {
            assert!(body.contains("ann@old.example") && body.contains("ann@new.example"));
        }
    }

    #[test]
    fn a_register_attempt_names_the_attempted_account_and_reassures() {
        let r = render(&event(
            kinds::USER_REGISTER_ATTEMPTED,
            serde_json::json!({"username": "ann", "attempted_username": "<b>mallory", "to": "ann@example.com"}),
        ))
        .unwrap();
        assert_eq!(r.title, "Someone tried to register with your email address");
        assert!(r.text.contains("Hello ann,") && r.text.contains("<b>mallory"));
        assert!(r.html.contains("&lt;b&gt;mallory") && !r.html.contains("<b>mallory"));
        assert!(r.text.contains("No account was created."));
        assert!(has_template(kinds::USER_REGISTER_ATTEMPTED));
    }

    #[test]
    fn html_is_escaped() {
        let r = render(&event(
            kinds::USER_REGISTERED,
            serde_json::json!({"username": "<script>"}),
        ))
        .unwrap();
        assert!(r.html.contains("&lt;script&gt;"));
        assert!(!r.html.contains("<script>"));
        assert!(r.text.contains("<script>"));
    }

    #[test]
    fn unknown_kinds_have_no_template() {
        assert!(render(&event("bench.event", Value::Null)).is_none());
        assert!(!has_template("bench.event"));
        assert!(has_template("task.progress"));
    }
}
