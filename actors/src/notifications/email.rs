//! The email channel: a sink of the event bus that renders the event's template and sends
//! it through SMTP (lettre) to the address of the user it is about, or to the payload's
//! `to` when it names one (the old address of a `user.email_changed`).
//!
//! Being a sink, it gets the outbox's guarantees: an email is retried with backoff until
//! the SMTP server accepts it, and ends in the dead-letter queue when the attempts run out.
//! The user's `email` preference is honoured, except for emailed codes (a code that never
//! arrives would lock the user out).
//!
//! [`Probe`] is the SMTP server's health check (`/health`, `system::dependencies`).

use std::sync::Arc;
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::{messages as nm, ops, templates};
use crate::events::sink::Sink;
use crate::events::{kinds, Event};
use crate::mesh::{BoxFuture, Code, MeshError, NodeInfo};
use crate::users::{self, messages as um};

/// SMTP settings (`[smtp]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Server host name.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// User name, when the server wants a login.
    pub user: Option<String>,
    /// Password of `user`.
    pub password: Option<String>,
    /// Sender address, e.g. `Troupe <noreply@example.com>`.
    pub from: String,
    /// Upgrade the connection with STARTTLS (required by most servers).
    pub starttls: bool,
}

/// The email sink.
pub struct Email {
    info: Arc<NodeInfo>,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

/// Kinds emailed whatever the user's preference says.
const ALWAYS: &[&str] = &[
    kinds::REGISTRATION_CODE,
    kinds::PASSWORD_RESET_REQUESTED,
    kinds::USER_EMAIL_CHANGED,
    kinds::USER_REGISTER_ATTEMPTED,
];

/// The payload field naming another recipient than the user's current address (the old
/// address of a `user.email_changed`, the owner's of a `user.register_attempted`).
const TO: &str = "to";

impl Email {
    /// A sink sending through the server of `settings`.
    pub fn new(info: Arc<NodeInfo>, settings: &Settings) -> anyhow::Result<Self> {
        let from: Mailbox = settings
            .from
            .parse()
            .map_err(|e| anyhow::anyhow!("smtp from {:?}: {e}", settings.from))?;
        Ok(Self {
            info,
            transport: transport(settings)?,
            from,
        })
    }
}

/// A transport to the server of `settings` (one connection per use: no pool).
fn transport(settings: &Settings) -> anyhow::Result<AsyncSmtpTransport<Tokio1Executor>> {
    let builder = if settings.starttls {
        AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&settings.host)?
    } else {
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(settings.host.as_str())
    };
    let mut builder = builder
        .port(settings.port)
        .timeout(Some(Duration::from_secs(10)));
    if let (Some(user), Some(password)) = (&settings.user, &settings.password) {
        builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
    }
    Ok(builder.build())
}

/// The SMTP server's health check (`system::dependencies`): connect, greet, STARTTLS and
/// log in as sending does, then `NOOP` and `QUIT` (lettre's `test_connection`).
pub struct Probe {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    target: String,
}

impl Probe {
    /// A check of the server of `settings`.
    pub fn new(settings: &Settings) -> anyhow::Result<Self> {
        Ok(Self {
            transport: transport(settings)?,
            target: format!("{}:{}", settings.host, settings.port),
        })
    }
}

impl crate::system::dependencies::Probe for Probe {
    fn name(&self) -> &'static str {
        "smtp"
    }

    fn target(&self) -> String {
        self.target.clone()
    }

    fn check(&self) -> BoxFuture<'static, Result<(), String>> {
        let transport = self.transport.clone();
        Box::pin(async move {
            match transport.test_connection().await {
                Ok(true) => Ok(()),
                Ok(false) => Err("smtp: the server did not answer NOOP".to_string()),
                Err(e) => Err(format!("smtp: {e}")),
            }
        })
    }
}

/// Where `event` is mailed: the payload's `to` if it names an address, else the user's
/// `current` one.
fn recipient<'a>(event: &'a Event, current: &'a str) -> &'a str {
    event
        .payload
        .get(TO)
        .and_then(serde_json::Value::as_str)
        .filter(|a| !a.is_empty())
        .unwrap_or(current)
}

/// The message for `event` to `to`.
pub fn message(from: &Mailbox, to: Mailbox, r: &templates::Rendered) -> Result<Message, MeshError> {
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(r.title.clone())
        .multipart(MultiPart::alternative_plain_html(
            r.text.clone(),
            r.html.clone(),
        ))
        .map_err(|e| MeshError::internal(format!("cannot build the email: {e}")))
}

impl Sink for Email {
    fn name(&self) -> &str {
        "email"
    }

    fn wants(&self, kind: &str) -> bool {
        templates::has_template(kind)
    }

    fn concurrency(&self) -> usize {
        4
    }

    fn deliver(&self, event: Arc<Event>) -> BoxFuture<'static, Result<(), MeshError>> {
        let router = self.info.router().cloned();
        let transport = self.transport.clone();
        let from = self.from.clone();
        Box::pin(async move {
            let Some(user_id) = event.user_id.clone().filter(|u| !u.is_empty()) else {
                return Ok(());
            };
            let Some(rendered) = templates::render(&event) else {
                return Ok(());
            };
            let router = router?;
            let timeout = Duration::from_secs(5);
            if !ALWAYS.contains(&event.kind.as_str()) {
                let call = ops::PREFS_GET
                    .call(nm::PrefsRequest {
                        user_id: user_id.clone(),
                    })
                    .timeout(timeout);
                let prefs = router.call(call).await?;
                if !prefs.email {
                    return Ok(());
                }
            }
            let call = users::GET
                .call(um::GetRequest {
                    id: user_id.clone(),
                })
                .timeout(timeout);
            let user = match router.call(call).await {
                Ok(user) => user,
                // The user is gone: nobody to write to.
                Err(e) if e.code == Code::NotFound => return Ok(()),
                Err(e) => return Err(e),
            };
            let address = recipient(&event, &user.email);
            let to = Mailbox::new(
                (!user.full_name.is_empty()).then(|| user.full_name.clone()),
                address
                    .parse()
                    .map_err(|e| MeshError::invalid(format!("bad recipient address: {e}")))?,
            );
            let msg = message(&from, to, &rendered)?;
            transport
                .send(msg)
                .await
                .map_err(|e| MeshError::unavailable(format!("smtp: {e}")))?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_email_change_is_mailed_to_the_old_address() {
        let event = |kind: &str, payload| Event {
            id: "e1".into(),
            kind: kind.into(),
            time: "2026-01-01T00:00:00.000Z".into(),
            source: "n1".into(),
            user_id: Some("u1".into()),
            payload,
        };
        let changed = event(
            kinds::USER_EMAIL_CHANGED,
            serde_json::json!({"old_email": "ann@old.example", "new_email": "ann@new.example", "to": "ann@old.example"}),
        );
        assert_eq!(recipient(&changed, "ann@new.example"), "ann@old.example");
        assert!(ALWAYS.contains(&kinds::USER_EMAIL_CHANGED));
        let code = event(
            kinds::REGISTRATION_CODE,
            serde_json::json!({"email": "ann@new.example", "code": "123456"}),
        );
        assert_eq!(recipient(&code, "ann@new.example"), "ann@new.example");
        // A registration attempt with the owner's address is mailed to it, always.
        let attempt = event(
            kinds::USER_REGISTER_ATTEMPTED,
            serde_json::json!({"username": "ann", "attempted_username": "mallory", "to": "ann@new.example"}),
        );
        assert_eq!(recipient(&attempt, "ann@new.example"), "ann@new.example");
        assert!(ALWAYS.contains(&kinds::USER_REGISTER_ATTEMPTED));
    }

    #[test]
    fn messages_have_a_text_and_an_html_part() {
        let r = templates::Rendered {
            title: "Welcome".into(),
            text: "hello".into(),
            html: "<p>hello</p>".into(),
        };
        let from: Mailbox = "Troupe <noreply@troupe.local>".parse().unwrap();
        let to: Mailbox = "ann@example.com".parse().unwrap();
        let m = message(&from, to, &r).unwrap();
        let text = String::from_utf8(m.formatted()).unwrap();
        assert!(text.contains("Subject: Welcome"));
        assert!(text.contains("multipart/alternative"));
        assert!(text.contains("text/plain"));
        assert!(text.contains("text/html"));
        assert!(text.contains("To: ann@example.com"));
    }
}
