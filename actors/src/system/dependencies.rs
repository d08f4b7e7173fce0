//! Dependency health: what a node depends on (the store; the MQTT broker and the SMTP server
//! when configured), checked in the background and read by `/health`.
//!
//! Each [`Probe`] runs in a task of its own every [`Settings::interval`], each check bounded
//! by [`Settings::timeout`]; the result is kept in memory, so a health request only copies
//! it and never waits on a dependency. A dependency whose last check failed is `down`, and
//! the node reports `degraded` (it still serves: the outbox keeps the events the broker or
//! the SMTP server cannot take yet); its next good check brings it back to `ok`. Errors are
//! kept with secrets masked ([`mask`]).

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use troupe_proto::mesh::DependencyHealth;

use crate::mesh::BoxFuture;
use crate::store::{Backend, Store};

/// Gauge: 1 while a dependency's last check passed, 0 after a failed one, by `dependency`.
pub const UP_METRIC: &str = "troupe_dependency_up";
/// Gauge: how long a dependency's last check took, seconds, by `dependency`.
pub const CHECK_SECONDS_METRIC: &str = "troupe_dependency_check_seconds";

/// One dependency's check.
pub trait Probe: Send + Sync + 'static {
    /// `store`, `mqtt` or `smtp`.
    fn name(&self) -> &'static str;
    /// What is checked, without secrets (`postgres db.internal:5432/troupe`, `127.0.0.1:1883`).
    fn target(&self) -> String;
    /// One round trip to the dependency: `Ok` when it answered as it should. The caller
    /// bounds it with [`Settings::timeout`].
    fn check(&self) -> BoxFuture<'static, Result<(), String>>;
}

/// How often and how long the checks run (`[health]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Time between the end of one check and the start of the next.
    pub interval: Duration,
    /// Bound on one check; past it the check fails.
    pub timeout: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(2),
        }
    }
}

/// Status of a dependency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Status {
    /// Not checked yet.
    #[default]
    Unknown,
    /// Its last check passed.
    Ok,
    /// Its last check failed.
    Down,
}

impl Status {
    /// `unknown`, `ok` or `down`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Unknown => "unknown",
            Status::Ok => "ok",
            Status::Down => "down",
        }
    }
}

/// What the checks of one dependency found so far.
#[derive(Clone, Debug, Default, PartialEq)]
struct State {
    status: Status,
    latency: Duration,
    checked_at_ms: u64,
    last_error: String,
    last_error_at_ms: u64,
    since_ms: u64,
}

impl State {
    /// Takes in one check's result; answers the status it changed from, if it changed.
    fn record(
        &mut self,
        result: Result<(), String>,
        latency: Duration,
        now_ms: u64,
    ) -> Option<Status> {
        let before = self.status;
        self.latency = latency;
        self.checked_at_ms = now_ms;
        self.status = match result {
            Ok(()) => Status::Ok,
            Err(e) => {
                self.last_error = e;
                self.last_error_at_ms = now_ms;
                Status::Down
            }
        };
        (before != self.status).then(|| {
            self.since_ms = now_ms;
            before
        })
    }
}

struct Entry {
    name: &'static str,
    target: String,
    state: Mutex<State>,
}

/// The dependencies of a node and what their checks last found. Cheap to clone; the
/// check tasks end once every clone is dropped.
#[derive(Clone, Default)]
pub struct Dependencies {
    entries: Arc<Vec<Arc<Entry>>>,
}

impl Dependencies {
    /// Starts one check task per probe (the first check at once). `secrets` are masked in
    /// every error kept ([`mask`]).
    pub fn start(probes: Vec<Arc<dyn Probe>>, settings: Settings, secrets: Vec<String>) -> Self {
        describe();
        let secrets: Arc<[String]> = secrets.into_iter().filter(|s| !s.is_empty()).collect();
        let started_ms = unix_ms();
        let entries: Vec<Arc<Entry>> = probes
            .iter()
            .map(|p| {
                Arc::new(Entry {
                    name: p.name(),
                    target: p.target(),
                    state: Mutex::new(State {
                        since_ms: started_ms,
                        ..State::default()
                    }),
                })
            })
            .collect();
        for (probe, entry) in probes.into_iter().zip(&entries) {
            tokio::spawn(run(probe, Arc::downgrade(entry), settings, secrets.clone()));
        }
        Self {
            entries: Arc::new(entries),
        }
    }

    /// Every dependency as its last check left it, in the order the probes were given.
    pub fn report(&self) -> Vec<DependencyHealth> {
        self.entries
            .iter()
            .map(|e| {
                let s = e.state.lock().unwrap_or_else(|p| p.into_inner()).clone();
                DependencyHealth {
                    name: e.name.to_string(),
                    target: e.target.clone(),
                    status: s.status.as_str().to_string(),
                    latency_ms: s.latency.as_micros() as f64 / 1000.0,
                    checked_at_ms: s.checked_at_ms,
                    last_error: s.last_error,
                    last_error_at_ms: s.last_error_at_ms,
                    since_ms: s.since_ms,
                }
            })
            .collect()
    }
}

/// Checks `probe` every `settings.interval` until its entry is dropped.
async fn run(
    probe: Arc<dyn Probe>,
    entry: Weak<Entry>,
    settings: Settings,
    secrets: Arc<[String]>,
) {
    let name = probe.name();
    loop {
        let started = Instant::now();
        let result = match tokio::time::timeout(settings.timeout, probe.check()).await {
            Ok(r) => r.map_err(|e| mask(&e, &secrets)),
            Err(_) => Err(format!(
                "no answer within {} ms",
                settings.timeout.as_millis()
            )),
        };
        let latency = started.elapsed();
        let Some(entry) = entry.upgrade() else {
            return;
        };
        metrics::gauge!(UP_METRIC, "dependency" => name).set(if result.is_ok() {
            1.0
        } else {
            0.0
        });
        metrics::gauge!(CHECK_SECONDS_METRIC, "dependency" => name).set(latency.as_secs_f64());
        let error = result.as_ref().err().cloned();
        let changed = entry
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .record(result, latency, unix_ms());
        match (changed, error) {
            (Some(_), Some(error)) => {
                tracing::warn!(dependency = name, target = %entry.target, error = %error, "dependency down")
            }
            (Some(Status::Down), None) => {
                tracing::info!(dependency = name, target = %entry.target, "dependency recovered")
            }
            _ => {}
        }
        drop(entry);
        tokio::time::sleep(settings.interval).await;
    }
}

/// `error` with every secret replaced by `***`, and the password of any `scheme://user:pass@`
/// in it too (a driver may quote the URL it was given).
pub fn mask(error: &str, secrets: &[String]) -> String {
    let mut out = error.to_string();
    for s in secrets.iter().filter(|s| !s.is_empty()) {
        out = out.replace(s.as_str(), "***");
    }
    let mut masked = String::with_capacity(out.len());
    let mut rest = out.as_str();
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        masked.push_str(head);
        let authority_end = tail.find(['/', ' ', '"', '\'']).unwrap_or(tail.len());
        let authority = &tail[..authority_end];
        match (authority.rfind('@'), authority.find(':')) {
            (Some(at), Some(colon)) if colon < at => {
                masked.push_str(&authority[..colon]);
                masked.push_str(":***");
                masked.push_str(&authority[at..]);
            }
            _ => masked.push_str(authority),
        }
        rest = &tail[authority_end..];
    }
    masked.push_str(rest);
    masked
}

/// The store's check: a `SELECT 1` ([`Store::ping`]).
pub struct StoreProbe {
    store: Store,
    target: String,
}

impl StoreProbe {
    /// A probe of `store`, opened from `url` (`None`: the embedded SQLite file).
    pub fn new(store: Store, url: Option<&str>) -> Self {
        let target = match (store.backend(), url) {
            (Backend::Postgres, Some(url)) => format!("postgres {}", server_of(url)),
            (Backend::Postgres, None) => "postgres".to_string(),
            (Backend::Sqlite, _) => "sqlite".to_string(),
        };
        Self { store, target }
    }
}

/// `host:port/database` of a database URL: no user, password or parameters.
fn server_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.split(['?', '#']).next().unwrap_or(rest);
    rest.rsplit_once('@').map_or(rest, |(_, r)| r).to_string()
}

impl Probe for StoreProbe {
    fn name(&self) -> &'static str {
        "store"
    }

    fn target(&self) -> String {
        self.target.clone()
    }

    fn check(&self) -> BoxFuture<'static, Result<(), String>> {
        let store = self.store.clone();
        Box::pin(async move { store.ping().await.map(|_| ()).map_err(|e| e.message) })
    }
}

fn describe() {
    metrics::describe_gauge!(
        UP_METRIC,
        "1 while a dependency's last check passed, else 0, by dependency"
    );
    metrics::describe_gauge!(
        CHECK_SECONDS_METRIC,
        metrics::Unit::Seconds,
        "duration of a dependency's last check, by dependency"
    );
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    #[test]
    fn a_failed_check_is_down_and_a_good_one_brings_it_back_keeping_the_error() {
        let mut s = State::default();
        assert_eq!(
            s.record(Ok(()), Duration::from_millis(2), 10),
            Some(Status::Unknown)
        );
        assert_eq!((s.status, s.since_ms), (Status::Ok, 10));
        assert_eq!(s.record(Ok(()), Duration::from_millis(1), 20), None);
        assert_eq!(s.since_ms, 10);
        let changed = s.record(
            Err("connection refused".into()),
            Duration::from_millis(3),
            30,
        );
        assert_eq!(changed, Some(Status::Ok));
        assert_eq!(
            (
                s.status,
                s.last_error.as_str(),
                s.last_error_at_ms,
                s.since_ms
            ),
            (Status::Down, "connection refused", 30, 30)
        );
        assert_eq!(
            s.record(Ok(()), Duration::from_millis(1), 40),
            Some(Status::Down)
        );
        assert_eq!(
            (s.status, s.since_ms, s.checked_at_ms),
            (Status::Ok, 40, 40)
        );
        assert_eq!(s.last_error, "connection refused", "kept after recovery");
    }

    #[test]
    fn secrets_and_url_passwords_are_masked() {
        let secrets = vec!["hunter2-long".to_string()];
        assert_eq!(
            mask("auth failed for hunter2-long at smtp", &secrets),
            "auth failed for *** at smtp"
        );
        assert_eq!(
            mask(
                "cannot connect to postgres://troupe:s3cret@db:5432/troupe?sslmode=require: refused",
                &[]
            ),
            "cannot connect to postgres://troupe:***@db:5432/troupe?sslmode=require: refused"
        );
        assert_eq!(
            mask("mqtt://broker:1883 and postgres://u@h/d", &[]),
            "mqtt://broker:1883 and postgres://u@h/d"
        );
    }

    #[test]
    fn the_store_target_names_no_credentials() {
        assert_eq!(
            server_of("postgres://troupe:pw@db.internal:5432/troupe?sslmode=verify-full"),
            "db.internal:5432/troupe"
        );
        assert_eq!(server_of("postgres://127.0.0.1/t"), "127.0.0.1/t");
    }

    struct Flaky {
        up: Arc<AtomicBool>,
        hang: Arc<AtomicBool>,
    }

    impl Probe for Flaky {
        fn name(&self) -> &'static str {
            "flaky"
        }
        fn target(&self) -> String {
            "here".into()
        }
        fn check(&self) -> BoxFuture<'static, Result<(), String>> {
            let (up, hang) = (
                self.up.load(Ordering::SeqCst),
                self.hang.load(Ordering::SeqCst),
            );
            Box::pin(async move {
                if hang {
                    std::future::pending::<()>().await;
                }
                if up {
                    Ok(())
                } else {
                    Err("refused, password pw-secret".into())
                }
            })
        }
    }

    async fn wait_for(deps: &Dependencies, status: &str) -> DependencyHealth {
        for _ in 0..200 {
            let r = deps.report().remove(0);
            if r.status == status {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("never {status}: {:?}", deps.report());
    }

    #[tokio::test]
    async fn checks_run_in_the_background_bounded_and_follow_the_dependency() {
        let up = Arc::new(AtomicBool::new(true));
        let hang = Arc::new(AtomicBool::new(false));
        let probe = Arc::new(Flaky {
            up: up.clone(),
            hang: hang.clone(),
        });
        let settings = Settings {
            interval: Duration::from_millis(20),
            timeout: Duration::from_millis(50),
        };
        let deps = Dependencies::start(vec![probe], settings, vec!["pw-secret".into()]);
        let r = wait_for(&deps, "ok").await;
        assert_eq!((r.name.as_str(), r.target.as_str()), ("flaky", "here"));
        up.store(false, Ordering::SeqCst);
        let r = wait_for(&deps, "down").await;
        assert_eq!(r.last_error, "refused, password ***");
        up.store(true, Ordering::SeqCst);
        wait_for(&deps, "ok").await;
        hang.store(true, Ordering::SeqCst);
        let r = wait_for(&deps, "down").await;
        assert_eq!(r.last_error, "no answer within 50 ms");
        assert!(r.latency_ms >= 50.0, "{r:?}");
    }
}
