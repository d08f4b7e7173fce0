//! Single sign-on through a real OpenID Connect provider: `oidc-provider` from the npm
//! registry, run as its own Node process (tests/oidc/provider.mjs, one test user in
//! tests/oidc/users.json). The test is a browser: it starts the sign-in on n1, follows the
//! provider's redirects with its cookies, submits the provider's login and consent forms,
//! and lands on the callback on n3. Without Node or the installed package (`.ci/run`
//! installs it) the tests print that they were skipped and pass.

mod support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{json, Value};
use support::*;

const CLIENT_ID: &str = "troupe";
const CLIENT_SECRET: &str = "troupe-test-client-secret";
/// The test user of tests/oidc/users.json.
const ALICE: (&str, &str) = ("alice", "wonderland-42");
const ALICE_SUB: &str = "alice-0001";
const ALICE_EMAIL: &str = "alice@example.org";

/// Where a test cluster keeps its data: the embedded SQLite file, or the PostgreSQL server
/// of `TROUPE_TEST_PG` when set. A shared database keeps earlier runs' users, so there the
/// provider's user gets a subject and email of this run (`OIDC_USER_SUFFIX`).
struct Backend {
    storage: String,
    suffix: String,
}

impl Backend {
    fn from_env() -> Self {
        match std::env::var("TROUPE_TEST_PG") {
            Ok(url) if !url.is_empty() => Backend {
                storage: format!("[storage]\nurl = \"{url}\"\n"),
                suffix: unique(),
            },
            _ => Backend {
                storage: String::new(),
                suffix: String::new(),
            },
        }
    }

    /// The test user's subject at the provider.
    fn sub(&self) -> String {
        format!("{ALICE_SUB}{}", self.suffix)
    }

    /// The test user's email at the provider.
    fn email(&self) -> String {
        if self.suffix.is_empty() {
            ALICE_EMAIL.to_owned()
        } else {
            ALICE_EMAIL.replace('@', &format!("+{}@", self.suffix))
        }
    }
}

fn oidc_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/oidc")
}

/// Whether Node and the provider package are there; if not, prints that `test` is skipped.
fn provider_installed(test: &str) -> bool {
    let package = oidc_dir().join("node_modules/oidc-provider/package.json");
    let node = Command::new("node").arg("--version").output();
    let why = if node.map(|o| o.status.success()).unwrap_or(false) {
        (!package.exists()).then_some(
            "oidc-provider not installed: npm install --no-audit --no-fund --prefix tests/oidc oidc-provider@9",
        )
    } else {
        Some("node is not installed")
    };
    if let Some(why) = why {
        eprintln!("skipped: {test} ({why})");
        println!("skipped: {test} ({why})");
    }
    why.is_none()
}

/// The provider process; killed on drop.
struct Provider {
    child: Child,
    port: u16,
    clients: String,
    suffix: String,
}

impl Provider {
    /// Starts the provider on `port` for a client whose callback is `callback` (n3's), or
    /// `None` (and a printed skip line) when Node or `oidc-provider` is missing.
    fn start(
        test: &str,
        backend: &Backend,
        port: u16,
        callback: &str,
        after_logout: &str,
    ) -> Option<Provider> {
        if !provider_installed(test) {
            return None;
        }
        let clients = json!([{
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "redirect_uris": [callback],
            "post_logout_redirect_uris": [after_logout],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
        }])
        .to_string();
        match Self::spawn(port, &clients, &backend.suffix) {
            Ok(p) => Some(p),
            Err(why) => {
                eprintln!("skipped: {test} (the provider did not start: {why})");
                println!("skipped: {test} (the provider did not start: {why})");
                None
            }
        }
    }

    fn spawn(port: u16, clients: &str, suffix: &str) -> Result<Provider, String> {
        let mut child = Command::new("node")
            .arg(oidc_dir().join("provider.mjs"))
            .arg(port.to_string())
            .env("OIDC_CLIENTS", clients)
            .env("OIDC_USER_SUFFIX", suffix)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run node: {e}"))?;
        let stdout = child.stdout.take().expect("piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("ready ") {
                    let _ = tx.send(());
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(()) => Ok(Provider {
                child,
                port,
                clients: clients.to_owned(),
                suffix: suffix.to_owned(),
            }),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                Err("no ready line within 20 s".into())
            }
        }
    }

    fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stops the provider and starts it again on the same port: a new signing key (the
    /// provider makes one at every start), so a key rotation; and a loss of its sessions.
    fn restart(&mut self) {
        self.stop();
        let fresh = Self::spawn(self.port, &self.clients, &self.suffix).expect("provider restarts");
        *self = fresh;
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `[sso]` for the provider at `issuer`, with n3's callback.
fn sso_toml(issuer: &str, extra: &str) -> String {
    format!(
        r#"
[sso]
timeout_ms = 1500
{extra}

[[sso.providers]]
name = "corp"
issuer = "{issuer}"
client_id = "{CLIENT_ID}"
client_secret = "{CLIENT_SECRET}"
redirect_url = "http://{{http:n3}}/auth/sso/callback"
scopes = ["openid", "email", "profile"]
post_logout_redirect_url = "http://{{http:n3}}/health"
"#
    )
}

/// A browser: follows no redirect by itself, keeps the provider's cookies.
struct Browser {
    agent: ureq::Agent,
    cookies: HashMap<String, String>,
}

/// One answer: status, `Location`, body.
struct Page {
    status: u16,
    location: Option<String>,
    body: String,
}

impl Browser {
    fn new() -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        Self {
            agent,
            cookies: HashMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        let pairs: Vec<String> = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        pairs.join("; ")
    }

    fn read(&mut self, resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Page {
        let mut resp = resp.expect("http");
        for value in resp.headers().get_all("set-cookie") {
            let text = value.to_str().unwrap_or_default();
            let pair = text.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                let expired = text
                    .to_ascii_lowercase()
                    .contains("expires=thu, 01 jan 1970");
                if value.is_empty() || expired {
                    self.cookies.remove(name.trim());
                } else {
                    self.cookies.insert(name.trim().into(), value.into());
                }
            }
        }
        let location = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let status = resp.status().as_u16();
        let body = resp.body_mut().read_to_string().unwrap_or_default();
        Page {
            status,
            location,
            body,
        }
    }

    fn get(&mut self, url: &str) -> Page {
        let req = self.agent.get(url).header("cookie", &self.cookie_header());
        let resp = req.call();
        self.read(resp)
    }

    fn get_as(&mut self, url: &str, token: &str) -> Page {
        let resp = self
            .agent
            .get(url)
            .header("authorization", &format!("Bearer {token}"))
            .call();
        self.read(resp)
    }

    fn post_form(&mut self, url: &str, fields: &[(&str, &str)]) -> Page {
        let body: Vec<String> = fields
            .iter()
            .map(|(k, v)| format!("{k}={}", form_encode(v)))
            .collect();
        let resp = self
            .agent
            .post(url)
            .header("cookie", &self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .send(body.join("&").as_bytes());
        self.read(resp)
    }

    /// Follows redirects from `url` until one leads to a URL starting with `stop` (answered
    /// without being fetched) or a page answers.
    fn follow(&mut self, url: &str, origin: &str, stop: &str) -> Result<String, Page> {
        let mut url = url.to_owned();
        for _ in 0..20 {
            if url.starts_with(stop) {
                return Ok(url);
            }
            let page = self.get(&url);
            match (page.status, &page.location) {
                (300..=399, Some(next)) => url = absolute(origin, next),
                _ => return Err(page),
            }
        }
        panic!("too many redirects from {url}");
    }

    /// Signs in at the provider as a user would: from the authorization URL through the
    /// login form (`user`, `password`) and the consent form, to the redirect back to
    /// `callback`; answers that URL (with `code`, `state`, `iss`), not yet fetched.
    fn sign_in(
        &mut self,
        authorize: &str,
        origin: &str,
        callback: &str,
        user: (&str, &str),
    ) -> String {
        let mut at = authorize.to_owned();
        for _ in 0..4 {
            let page = match self.follow(&at, origin, callback) {
                Ok(back) => return back,
                Err(page) => page,
            };
            assert_eq!(page.status, 200, "provider page: {}", page.body);
            let action = absolute(origin, &form_action(&page.body));
            let answer = if action.ends_with("/login") {
                self.post_form(&action, &[("login", user.0), ("password", user.1)])
            } else {
                self.post_form(&action, &[])
            };
            assert!(
                (300..400).contains(&answer.status),
                "form {action} answered {}: {}",
                answer.status,
                answer.body
            );
            at = absolute(origin, answer.location.as_deref().expect("location"));
        }
        panic!("no redirect back to {callback}");
    }
}

fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn absolute(origin: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        location.to_owned()
    } else {
        format!("{origin}{location}")
    }
}

/// The `action` of the first form of an HTML page.
fn form_action(html: &str) -> String {
    let start = html.find("action=\"").expect("a form") + "action=\"".len();
    let end = html[start..].find('"').expect("end of action") + start;
    html[start..end].to_owned()
}

/// The value of query parameter `name` of `url` (not decoded; the provider's values need
/// no decoding here).
fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| v.to_owned())
    })
}

/// `url` with query parameter `name` set to `value`.
fn with_param(url: &str, name: &str, value: &str) -> String {
    let (base, query) = url.split_once('?').expect("a query");
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if k == name => format!("{k}={value}"),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{base}?{}", pairs.join("&"))
}

/// Begins a sign-in on `node`: the authorization URL.
fn login_url(node: &Node, path: &str) -> String {
    let (status, v) = get(&node.url(path), None).unwrap();
    assert_eq!(status, 200, "{path}: {v}");
    assert_eq!(v["provider"], "corp");
    v["url"].as_str().expect("url").to_owned()
}

/// An access token of the bootstrap admin, logged in on `node`.
fn admin_access(node: &Node) -> String {
    let (status, v) = login(node, "admin", ADMIN_PASSWORD);
    assert_eq!(status, 200, "{v}");
    v["access_token"].as_str().unwrap().to_owned()
}

/// Users in the cluster (through the admin API on `node`).
fn user_count(node: &Node) -> u64 {
    let admin = admin_access(node);
    let (status, v) = get(&node.url("/users?per_page=100"), Some(&admin)).unwrap();
    assert_eq!(status, 200, "{v}");
    v["total"].as_u64().expect("total")
}

/// Live sessions of `user_id`.
fn sessions_of(node: &Node, user_id: &str) -> Vec<Value> {
    let admin = admin_access(node);
    let (status, v) = get(&node.url(&format!("/api/sessions/{user_id}")), Some(&admin)).unwrap();
    assert_eq!(status, 200, "{v}");
    v["items"]
        .as_array()
        .expect("sessions list")
        .iter()
        .filter(|s| s["revoked"] == false)
        .cloned()
        .collect()
}

fn verify(node: &Node, token: &str) -> u16 {
    get(&node.url("/auth/verify-token"), Some(token)).unwrap().0
}

fn error_message(v: &Value) -> String {
    v["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn sso_sign_in_on_n1_lands_on_n3_works_on_n2_refreshes_and_logs_out_everywhere() {
    let test = "sso_sign_in_on_n1_lands_on_n3_works_on_n2_refreshes_and_logs_out_everywhere";
    if !provider_installed(test) {
        return;
    }
    let backend = Backend::from_env();
    // The provider's port is reserved first: the cluster's config names its issuer.
    let port = free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let c = Cluster::start(
        "sso-flow",
        Options {
            extra_toml: sso_toml(&issuer, ""),
            storage_toml: backend.storage.clone(),
            plaintext: true,
            ..Options::default()
        },
    );
    let (n1, n2, n3) = (c.node("n1"), c.node("n2"), c.node("n3"));
    let callback = n3.url("/auth/sso/callback");
    let Some(mut provider) = Provider::start(test, &backend, port, &callback, &n3.url("/health"))
    else {
        return;
    };
    assert_eq!(provider.issuer(), issuer);
    let users_before = user_count(n1);

    // `?redirect=true` answers 302 to the provider's authorization endpoint.
    let page = Browser::new().get(&n1.url("/auth/sso/login?redirect=true"));
    assert_eq!(page.status, 302, "{}", page.body);
    let location = page.location.expect("location");
    assert!(
        location.starts_with(&format!("{issuer}/auth?")),
        "{location}"
    );
    for p in [
        "code_challenge",
        "state",
        "nonce",
        "client_id",
        "redirect_uri",
        "scope",
    ] {
        assert!(query_param(&location, p).is_some(), "{p} in {location}");
    }
    assert_eq!(
        query_param(&location, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert_eq!(
        query_param(&location, "response_type").as_deref(),
        Some("code")
    );

    // The browser: sign-in begun on n1, provider forms, redirect back to n3.
    let mut browser = Browser::new();
    let authorize = login_url(n1, "/auth/sso/login");
    let back = browser.sign_in(&authorize, &issuer, &callback, ALICE);
    assert_eq!(
        query_param(&back, "state"),
        query_param(&authorize, "state")
    );
    let (status, signed) = get(&back, None).unwrap();
    assert_eq!(status, 200, "callback on n3: {signed}");
    assert_eq!(signed["provider"], "corp");
    assert_eq!(signed["created"], true);
    assert_eq!(signed["linked"], false);
    assert_eq!(signed["token_type"], "Bearer");
    let username = signed["user"]["username"].as_str().unwrap();
    // "alice", or "alice-xxxx" on a shared database where an earlier run made an "alice"
    if backend.suffix.is_empty() {
        assert_eq!(username, "alice");
    } else {
        assert!(username.starts_with("alice"), "{username}");
    }
    assert_eq!(signed["user"]["email"], backend.email());
    assert_eq!(signed["user"]["roles"], json!(["user"]));
    let user_id = signed["user"]["id"].as_str().unwrap().to_owned();
    let access = signed["access_token"].as_str().unwrap().to_owned();
    let refresh = signed["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(user_count(n1), users_before + 1);
    // n3 counted the sign-in and its one request to the token endpoint.
    let metrics = get_raw(&n3.url("/metrics"), &[])
        .body_mut()
        .read_to_string()
        .unwrap();
    let line = |needles: &[&str]| {
        metrics
            .lines()
            .any(|l| needles.iter().all(|n| l.contains(n)))
    };
    assert!(
        line(&[
            "troupe_sso_sign_ins_total{",
            "provider=\"corp\"",
            "outcome=\"signed_in\"",
            "} 1"
        ]),
        "{metrics}"
    );
    assert!(
        line(&[
            "troupe_sso_provider_request_duration_seconds_count{",
            "endpoint=\"token\"",
            "result=\"ok\"",
            "} 1"
        ]),
        "{metrics}"
    );

    // The tokens work on every node, like a password login's.
    let (status, me) = get(&n2.url("/users/profile"), Some(&access)).unwrap();
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["id"], user_id.as_str());
    assert_eq!(me["full_name"], "Alice Liddell");
    assert_eq!(me["confirmed"], true);
    for n in [n1, n2, n3] {
        assert_eq!(verify(n, &access), 200);
    }

    // Claims from the provider's userinfo endpoint.
    let (status, info) = get(&n2.url("/auth/sso/user-info"), Some(&access)).unwrap();
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["provider"], "corp");
    assert_eq!(info["claims"]["sub"], backend.sub());
    assert_eq!(info["claims"]["email"], backend.email());
    assert_eq!(info["claims"]["preferred_username"], "alice");

    // Refresh through the provider: a new pair for the same session; the old refresh token
    // is spent.
    let (status, renewed) = post(
        &n2.url("/auth/sso/refresh"),
        &json!({"refresh_token": refresh}),
        None,
    )
    .unwrap();
    assert_eq!(status, 200, "{renewed}");
    assert_eq!(renewed["session_id"], signed["session_id"]);
    assert_eq!(renewed["provider"], "corp");
    let access = renewed["access_token"].as_str().unwrap().to_owned();
    let refresh2 = renewed["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(refresh2, refresh);
    assert_eq!(verify(n1, &access), 200);
    let (status, v) = get(&n1.url("/auth/sso/user-info"), Some(&access)).unwrap();
    assert_eq!(
        (status, v["claims"]["sub"].clone()),
        (200, json!(backend.sub()))
    );

    // The provider rotates its signing key (a restart makes a new one): the next sign-in's
    // ID token names a key the nodes have not seen; they refetch the key set and accept it.
    // The same identity signs in to the same user.
    provider.restart();
    let mut browser = Browser::new();
    let authorize = login_url(n2, "/auth/login-url");
    let back = browser.sign_in(&authorize, &issuer, &callback, ALICE);
    let (status, again) = get(&back, None).unwrap();
    assert_eq!(status, 200, "sign-in after key rotation: {again}");
    assert_eq!(again["created"], false);
    assert_eq!(again["user"]["id"], user_id.as_str());
    assert_eq!(user_count(n1), users_before + 1);
    assert_eq!(sessions_of(n1, &user_id).len(), 2);
    let access2 = again["access_token"].as_str().unwrap().to_owned();

    // Logout on n2 ends the session everywhere and gives the provider's logout URL.
    let (status, out) = get(&n2.url("/auth/sso/logout"), Some(&access)).unwrap();
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["logged_out"], true);
    assert_eq!(out["session_id"], signed["session_id"]);
    let url = out["logout_url"].as_str().unwrap();
    assert!(url.starts_with(&format!("{issuer}/session/end?")), "{url}");
    assert!(query_param(url, "id_token_hint").is_some(), "{url}");
    assert_eq!(query_param(url, "client_id").as_deref(), Some(CLIENT_ID));
    assert!(
        query_param(url, "post_logout_redirect_uri").is_some(),
        "{url}"
    );
    let refused_everywhere = wait_until(Duration::from_secs(3), || {
        [n1, n2, n3].iter().all(|n| verify(n, &access) == 401)
    });
    assert!(
        refused_everywhere,
        "the logged-out token still works somewhere"
    );
    let (status, v) = post(
        &n1.url("/auth/sso/refresh"),
        &json!({"refresh_token": refresh2}),
        None,
    )
    .unwrap();
    assert_eq!(status, 401, "{v}");
    // The other session (the second sign-in) is untouched, and `/auth/logout-url` with
    // `redirect=true` ends it with a 302 to the provider.
    assert_eq!(verify(n3, &access2), 200);
    let page = Browser::new().get_as(&n3.url("/auth/logout-url?redirect=true"), &access2);
    assert_eq!(page.status, 302, "{}", page.body);
    let to = page.location.expect("location");
    assert!(to.starts_with(&format!("{issuer}/session/end?")), "{to}");
    // The provider accepts it: its logout confirmation page. (The first session's URL
    // would not do: its ID token hint is signed by the key the restart retired.)
    let confirm = browser.get(&to);
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    assert!(wait_until(Duration::from_secs(3), || {
        [n1, n2, n3].iter().all(|n| verify(n, &access2) == 401)
    }));
    assert!(sessions_of(n1, &user_id).is_empty());
}

#[test]
fn sso_bad_input_is_refused_with_a_clear_error_and_creates_no_user_or_session() {
    let test = "sso_bad_input_is_refused_with_a_clear_error_and_creates_no_user_or_session";
    if !provider_installed(test) {
        return;
    }
    let backend = Backend::from_env();
    let port = free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let c = Cluster::start(
        "sso-bad",
        Options {
            extra_toml: sso_toml(&issuer, ""),
            storage_toml: backend.storage.clone(),
            plaintext: true,
            ..Options::default()
        },
    );
    let (n1, n2, n3) = (c.node("n1"), c.node("n2"), c.node("n3"));
    let callback = n3.url("/auth/sso/callback");
    let Some(_provider) = Provider::start(test, &backend, port, &callback, &n3.url("/health"))
    else {
        return;
    };
    let users_before = user_count(n1);
    let no_new_user = || assert_eq!(user_count(n2), users_before, "a user was created");

    // Unknown provider: 400 naming the configured ones.
    for path in [
        "/auth/sso/login?provider=nope",
        "/auth/login-url?provider=nope",
    ] {
        let (status, v) = get(&n1.url(path), None).unwrap();
        assert_eq!(status, 400, "{v}");
        assert_eq!(v["error"]["code"], "invalid_argument");
        assert_eq!(
            error_message(&v),
            "unknown sso provider \"nope\"; configured: corp"
        );
    }

    // A forged state, and none at all.
    let (status, v) = get(
        &n3.url("/auth/sso/callback?code=abc&state=forged-state"),
        None,
    )
    .unwrap();
    assert_eq!(status, 401, "{v}");
    assert_eq!(error_message(&v), "unknown or already used sso state");
    let (status, v) = get(&n3.url("/auth/sso/callback?code=abc"), None).unwrap();
    assert_eq!(status, 400, "{v}");
    assert_eq!(error_message(&v), "state is required");
    no_new_user();

    // A wrong nonce: the authorization request is tampered with on its way to the
    // provider, so the ID token carries a nonce the sign-in never issued.
    let mut browser = Browser::new();
    let authorize = login_url(n1, "/auth/sso/login");
    let tampered = with_param(&authorize, "nonce", "attacker-chosen-nonce");
    let back = browser.sign_in(&tampered, &issuer, &callback, ALICE);
    let (status, v) = get(&back, None).unwrap();
    assert_eq!(status, 401, "{v}");
    assert_eq!(
        error_message(&v),
        "id token nonce does not match the sign-in"
    );
    no_new_user();

    // The provider's refusal (the user declines at the provider) is passed on.
    let authorize = login_url(n2, "/auth/sso/login");
    let state = query_param(&authorize, "state").unwrap();
    let (status, v) = get(
        &n3.url(&format!(
            "/auth/sso/callback?state={state}&error=access_denied&error_description=declined"
        )),
        None,
    )
    .unwrap();
    assert_eq!(status, 401, "{v}");
    assert_eq!(
        error_message(&v),
        "the provider refused the sign-in (access_denied: declined)"
    );
    no_new_user();

    // A good sign-in, then its callback replayed: the state is spent.
    let authorize = login_url(n1, "/auth/sso/login");
    let back = browser.sign_in(&authorize, &issuer, &callback, ALICE);
    let (status, ok) = get(&back, None).unwrap();
    assert_eq!(status, 200, "{ok}");
    let user_id = ok["user"]["id"].as_str().unwrap().to_owned();
    let users_after_one = users_before + 1;
    assert_eq!(user_count(n1), users_after_one);
    assert_eq!(sessions_of(n1, &user_id).len(), 1);
    let (status, v) = get(&back, None).unwrap();
    assert_eq!(status, 401, "{v}");
    assert_eq!(error_message(&v), "unknown or already used sso state");

    // The spent code with a fresh state (and so another PKCE verifier): the provider
    // refuses the code.
    let code = query_param(&back, "code").unwrap();
    let authorize = login_url(n2, "/auth/sso/login");
    let state = query_param(&authorize, "state").unwrap();
    let (status, v) = get(
        &n3.url(&format!("/auth/sso/callback?code={code}&state={state}")),
        None,
    )
    .unwrap();
    assert_eq!(status, 401, "{v}");
    let message = error_message(&v);
    assert!(
        message.starts_with("the provider refused the authorization code (invalid_grant"),
        "{message}"
    );
    // A state begun with one provider cannot be finished as another, nor can the issuer
    // in the response (RFC 9207) be another's.
    let authorize = login_url(n2, "/auth/sso/login");
    let state = query_param(&authorize, "state").unwrap();
    let (status, v) = get(
        &n3.url(&format!(
            "/auth/sso/callback?code=x&state={state}&iss=https%3A%2F%2Fevil.example"
        )),
        None,
    )
    .unwrap();
    assert_eq!(status, 401, "{v}");
    assert_eq!(
        error_message(&v),
        "the authorization response comes from another issuer"
    );
    // Nothing of all this made a user or a session.
    assert_eq!(user_count(n1), users_after_one);
    assert_eq!(sessions_of(n1, &user_id).len(), 1);

    // A password-registered account with the same email is not taken over: linking is off.
    // (alice exists now; a local account "bob" shares nothing with her.)
    let (status, v) = get(&n1.url("/auth/sso/user-info"), None).unwrap();
    assert_eq!(status, 401, "{v}");
    let bob = new_user(n1, n2, "bob");
    let (status, v) = get(&n1.url("/auth/sso/user-info"), Some(&bob.access)).unwrap();
    assert_eq!(status, 400, "{v}");
    assert_eq!(
        error_message(&v),
        "not an sso session: no provider user info"
    );
    let (status, v) = post(
        &n1.url("/auth/sso/refresh"),
        &json!({"refresh_token": bob.refresh}),
        None,
    )
    .unwrap();
    assert_eq!(status, 400, "{v}");
    assert_eq!(
        error_message(&v),
        "not an sso session; refresh it with /auth/refresh"
    );
}

#[test]
fn sso_email_of_a_local_account_links_only_when_configured() {
    let test = "sso_email_of_a_local_account_links_only_when_configured";
    if !provider_installed(test) {
        return;
    }
    for link in [false, true] {
        let backend = Backend::from_env();
        let port = free_port();
        let issuer = format!("http://127.0.0.1:{port}");
        let c = Cluster::start(
            "sso-link",
            Options {
                nodes: 3,
                extra_toml: sso_toml(&issuer, "").replace(
                    "scopes = [",
                    &format!("link_verified_email = {link}\nscopes = ["),
                ),
                storage_toml: backend.storage.clone(),
                plaintext: true,
                ..Options::default()
            },
        );
        let (n1, n3) = (c.node("n1"), c.node("n3"));
        let callback = n3.url("/auth/sso/callback");
        let Some(_provider) = Provider::start(test, &backend, port, &callback, &n3.url("/health"))
        else {
            return;
        };
        // A local account registered with alice's email, by password.
        let (status, v) = post(
            &n1.url("/auth/register"),
            &json!({
                "username": format!("alice_local{}", backend.suffix),
                "email": backend.email(),
                "password": "passw0rd-long",
            }),
            None,
        )
        .unwrap();
        assert_eq!(status, 201, "{v}");
        let local_id = v["id"].as_str().unwrap().to_owned();
        let users_before = user_count(n1);
        let mut browser = Browser::new();
        let authorize = login_url(n1, "/auth/sso/login");
        let back = browser.sign_in(&authorize, &issuer, &callback, ALICE);
        let (status, v) = get(&back, None).unwrap();
        if link {
            assert_eq!(status, 200, "{v}");
            assert_eq!(v["linked"], true);
            assert_eq!(v["created"], false);
            assert_eq!(v["user"]["id"], local_id.as_str());
            assert_eq!(sessions_of(n1, &local_id).len(), 1);
        } else {
            assert_eq!(status, 409, "{v}");
            assert!(
                error_message(&v).starts_with(&format!(
                    "an account with email {:?} already exists",
                    backend.email()
                )),
                "{v}"
            );
            assert!(sessions_of(n1, &local_id).is_empty());
        }
        assert_eq!(user_count(n1), users_before);
    }
}

#[test]
fn sso_provider_down_or_slow_is_502_or_504_and_password_logins_go_on() {
    // No provider process is needed: one issuer refuses connections (nothing listens on
    // its port) and one accepts them and never answers.
    let dead = free_port();
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let extra = format!(
        r#"
[sso]
timeout_ms = 1500

[[sso.providers]]
name = "down"
issuer = "http://127.0.0.1:{dead}"
client_id = "troupe"
client_secret = "s"
redirect_url = "http://{{http:n2}}/auth/sso/callback"

[[sso.providers]]
name = "slow"
issuer = "http://127.0.0.1:{silent_port}"
client_id = "troupe"
client_secret = "s"
redirect_url = "http://{{http:n2}}/auth/sso/callback"
"#
    );
    let c = Cluster::start(
        "sso-down",
        Options {
            nodes: 2,
            extra_toml: extra,
            plaintext: true,
            ..Options::default()
        },
    );
    let (n1, n2) = (c.node("n1"), c.node("n2"));
    let (status, v) = get(&n1.url("/auth/sso/login?provider=down"), None).unwrap();
    assert_eq!(status, 502, "{v}");
    assert_eq!(v["error"]["code"], "unavailable");
    assert!(
        error_message(&v).starts_with("sso provider \"down\" failed: discovery"),
        "{v}"
    );

    // Slow sign-ins hold no password login: while several wait on the silent provider, a
    // password login on the same node is answered.
    let slow: Vec<_> = (0..6)
        .map(|_| {
            let url = n2.url("/auth/sso/login?provider=slow");
            std::thread::spawn(move || get(&url, None).unwrap())
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let (status, v) = login(n2, "admin", ADMIN_PASSWORD);
    assert_eq!(status, 200, "{v}");
    let still_waiting = slow.iter().filter(|t| !t.is_finished()).count();
    assert!(
        still_waiting > 0,
        "the slow sign-ins were answered before the login"
    );
    for t in slow {
        let (status, v) = t.join().unwrap();
        assert_eq!(status, 504, "{v}");
        assert_eq!(v["error"]["code"], "deadline_exceeded");
        assert_eq!(
            error_message(&v),
            "sso provider \"slow\" did not answer the discovery within 1500 ms"
        );
    }
    drop(silent);
}
