//! Shared helpers of the black-box tests: reserve ports, write a config, start real `troupe`
//! processes (one per node), talk to them over HTTP, send them signals, wait for conditions.

#![allow(dead_code)]

use std::fs;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod mqtt;
pub mod netlab;
pub mod smtp;

/// The admin token every test cluster uses.
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";
/// The bootstrap admin user's password (username `admin`).
pub const ADMIN_PASSWORD: &str = "admin-password-123";
/// The JWT signing key every test cluster uses.
pub const AUTH_KEY: &str = "test:test-signing-key-0123456789abcdef0123";
/// The cookie every test cluster uses.
pub const COOKIE: &str = "test-cookie-0123456789";

/// Cluster tests are timing-sensitive (failure detection): run them one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// Takes the serial lock (a failed test must not poison the others).
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Ports this test process already handed out: the OS may offer a just-released port again.
static HANDED_OUT: Mutex<Vec<u16>> = Mutex::new(Vec::new());

/// A free port on 127.0.0.1 for both TCP and UDP (cluster sessions and gossip share it),
/// never one this process handed out before, and below the kernel's ephemeral range: a
/// node binds its ports a moment after the test picked them, and meanwhile the nodes
/// already running open outgoing connections from ephemeral ports, which once took a
/// port picked for a node still starting (it then failed to bind and never joined).
pub fn free_port() -> u16 {
    let (low, high) = unclaimed_range();
    let mut seed = rand_u64();
    loop {
        // xorshift: a fresh candidate each round, spread over the range.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let port = low + (seed % u64::from(high - low)) as u16;
        let mut seen = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
        if seen.contains(&port) {
            continue;
        }
        let free = TcpListener::bind(("127.0.0.1", port)).is_ok()
            && UdpSocket::bind(("127.0.0.1", port)).is_ok();
        if free {
            seen.push(port);
            return port;
        }
    }
}

/// Ports no outgoing connection is given: from 10000 up to the start of
/// `ip_local_port_range` (32768 to 60999 unless configured otherwise), or above its end
/// when it starts lower.
fn unclaimed_range() -> (u16, u16) {
    let range: Vec<u16> = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect();
    match range[..] {
        [low, _] if low > 12_000 => (10_000, low),
        [_, high] if high < 63_000 => (high + 1, 65_000),
        _ => (10_000, 32_768),
    }
}

/// Addresses of one node.
#[derive(Clone, Debug)]
pub struct Addrs {
    pub name: String,
    pub cluster: SocketAddr,
    pub http: SocketAddr,
    pub grpc: SocketAddr,
}

impl Addrs {
    fn new(name: &str) -> Self {
        let addr = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
        Self {
            name: name.to_string(),
            cluster: addr(free_port()),
            http: addr(free_port()),
            grpc: addr(free_port()),
        }
    }
}

/// A fresh directory for one test cluster.
pub fn scratch_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "troupe-test-{tag}-{}-{}",
        std::process::id(),
        rand_u64()
    ));
    fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(1);
    h.finish()
}

/// One running (or stopped) node process.
pub struct Node {
    pub addrs: Addrs,
    pub child: Option<Child>,
    pub log: PathBuf,
}

impl Node {
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("node running").id()
    }

    /// Sends a signal by name (`STOP`, `CONT`, `TERM`).
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{sig} failed");
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Waits for the process to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut()?;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addrs.http, path)
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_ref() {
            // A SIGSTOPped child ignores SIGKILL until continued on some systems: be sure.
            let _ = Command::new("kill")
                .arg("-CONT")
                .arg(c.id().to_string())
                .status();
        }
        self.kill();
    }
}

/// Options of a test cluster.
#[derive(Clone, Debug)]
pub struct Options {
    pub nodes: usize,
    /// Extra TOML appended to the generated config (e.g. `[http]` limits); `{http:<node>}`
    /// in it becomes that node's HTTP address.
    pub extra_toml: String,
    /// Extra keys of the generated `[auth]` table (e.g. login rate limits).
    pub auth_toml: String,
    /// Seeds: only the first node's cluster address (so discovery is exercised).
    pub single_seed: bool,
    /// A `[storage]` table (empty: the embedded SQLite file in the cluster's directory).
    pub storage_toml: String,
    /// `TROUPE_*` variables every node process gets (settings of a section the generated
    /// config already has, like `[auth]`).
    pub env: Vec<(String, String)>,
    /// Nodes in the config that [`Cluster::start`] does not start ([`Cluster::start_node`]
    /// starts them later).
    pub late: Vec<String>,
    /// Extra TOML lines of one node's `[[nodes]]` entry, by node name (per-node settings
    /// such as a certificate path).
    pub node_toml: Vec<(String, String)>,
    /// Sessions between nodes in plaintext (`insecure_plaintext = true`) instead of mutual
    /// TLS with certificates from `troupe certs` in `<dir>/certs`.
    pub plaintext: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            nodes: 3,
            extra_toml: String::new(),
            auth_toml: String::new(),
            single_seed: true,
            storage_toml: String::new(),
            env: Vec::new(),
            late: Vec::new(),
            node_toml: Vec::new(),
            plaintext: false,
        }
    }
}

/// A cluster of real `troupe` processes.
pub struct Cluster {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub nodes: Vec<Node>,
    env: Vec<(String, String)>,
    _serial: MutexGuard<'static, ()>,
}

/// The `troupe` binary under test.
pub fn troupe_bin() -> &'static str {
    env!("CARGO_BIN_EXE_troupe")
}

/// Runs `troupe certs --out <out> --nodes <nodes>` with `extra` arguments; panics with
/// its output when it fails.
pub fn make_certs(out: &Path, nodes: &[&str], extra: &[&str]) {
    let output = Command::new(troupe_bin())
        .arg("certs")
        .arg("--out")
        .arg(out)
        .args(["--nodes", &nodes.join(",")])
        .args(extra)
        .output()
        .expect("run troupe certs");
    assert!(
        output.status.success(),
        "troupe certs failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Writes a config for `addrs`; unless `options.plaintext`, with mutual TLS and the
/// certificates of every node in `<dir>/certs` (made the first time).
pub fn write_config(dir: &Path, addrs: &[Addrs], options: &Options) -> PathBuf {
    let security = if options.plaintext {
        "insecure_plaintext = true\n".to_owned()
    } else {
        let certs = dir.join("certs");
        if !certs.join("ca.pem").exists() {
            let nodes: Vec<&str> = addrs.iter().map(|a| a.name.as_str()).collect();
            make_certs(&certs, &nodes, &[]);
        }
        format!(
            "\n[cluster.tls]\nca = \"{}\"\n",
            certs.join("ca.pem").display()
        )
    };
    let seeds: Vec<String> = if options.single_seed {
        vec![format!("\"{}\"", addrs[0].cluster)]
    } else {
        addrs.iter().map(|a| format!("\"{}\"", a.cluster)).collect()
    };
    // Every client of a test is 127.0.0.1, and the per-address login limit holds for the
    // whole cluster: unless a test sets its own, it is high enough never to matter.
    let ip_limit = if options.auth_toml.contains("login_per_ip_per_minute") {
        ""
    } else {
        "login_per_ip_per_minute = 1000000\n"
    };
    // Likewise every other rate limit and quota, unless a test writes its own section (or
    // sets a `TROUPE_LIMITS_*` / `TROUPE_QUOTAS_*` variable, which wins over the file).
    let mut sections = String::new();
    if !options.extra_toml.contains("[limits]") {
        sections.push_str(
            "\n[limits]\nregister_per_ip_per_minute = 1000000\nrefresh_per_ip_per_minute = 1000000\n\
             codes_per_ip_per_minute = 1000000\nsearch_per_user_per_minute = 1000000\n\
             ws_upgrades_per_ip_per_minute = 1000000\ngrpc_calls_per_ip_per_minute = 1000000\n",
        );
    }
    if !options.extra_toml.contains("[quotas]") {
        sections.push_str(
            "\n[quotas]\ntasks_active_per_user = 1000000\nws_connections_per_user = 1000000\n\
             chat_requests_per_user_per_minute = 1000000\nimage_bytes_per_user = 1099511627776\n",
        );
    }
    let mut toml = format!(
        "data_dir = \"{}\"\n\n[cluster]\nname = \"troupe-test\"\ncookie = \"{COOKIE}\"\nseeds = [{}]\ngossip_interval_ms = 100\n{security}\n[admin]\ntoken = \"{ADMIN_TOKEN}\"\npassword = \"{ADMIN_PASSWORD}\"\n\n[auth]\nkeys = [\"{AUTH_KEY}\"]\nargon2_memory_kib = 64\nargon2_iterations = 1\n{ip_limit}{}\n{}\n{sections}\n{}\n",
        dir.join("data").display(),
        seeds.join(", "),
        options.auth_toml,
        options.storage_toml,
        options.extra_toml
    );
    for a in addrs {
        toml.push_str(&format!(
            "\n[[nodes]]\nname = \"{}\"\ncluster_addr = \"{}\"\nhttp_addr = \"{}\"\ngrpc_addr = \"{}\"\n",
            a.name, a.cluster, a.http, a.grpc
        ));
        for (_, lines) in options.node_toml.iter().filter(|(n, _)| *n == a.name) {
            toml.push_str(lines);
            toml.push('\n');
        }
    }
    // `{http:<node>}` in the extra TOML is that node's HTTP address (a URL naming a node,
    // like an SSO callback, written before the ports are known to the test).
    for a in addrs {
        toml = toml.replace(&format!("{{http:{}}}", a.name), &a.http.to_string());
    }
    let path = dir.join("cluster.toml");
    fs::write(&path, toml).expect("write config");
    path
}

/// Starts one node process from a config file.
pub fn spawn_node(config: &Path, addrs: &Addrs, dir: &Path, env: &[(&str, &str)]) -> Node {
    spawn_node_via(&[], config, addrs, dir, env)
}

/// Starts one node process from a config file, through `wrapper` (a command that runs its
/// arguments, e.g. `ip netns exec <ns>`, which execs in place so the child is the node).
pub fn spawn_node_via(
    wrapper: &[&str],
    config: &Path,
    addrs: &Addrs,
    dir: &Path,
    env: &[(&str, &str)],
) -> Node {
    let log = dir.join(format!("{}-{}.log", addrs.name, rand_u64() % 100_000));
    let out = fs::File::create(&log).expect("create log");
    let err = out.try_clone().expect("clone log");
    let mut cmd = match wrapper.split_first() {
        Some((program, args)) => {
            let mut cmd = Command::new(program);
            cmd.args(args).arg(troupe_bin());
            cmd
        }
        None => Command::new(troupe_bin()),
    };
    cmd.arg("node")
        .arg("--config")
        .arg(config)
        .arg("--name")
        .arg(&addrs.name)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().expect("spawn troupe");
    Node {
        addrs: addrs.clone(),
        child: Some(child),
        log,
    }
}

impl Cluster {
    /// Starts `options.nodes` nodes but the `late` ones (in reverse order, to show start
    /// order does not matter) and waits until every started node sees every other as `up`.
    pub fn start(tag: &str, options: Options) -> Cluster {
        let guard = serial();
        let dir = scratch_dir(tag);
        let addrs: Vec<Addrs> = (1..=options.nodes)
            .map(|i| Addrs::new(&format!("n{i}")))
            .collect();
        let config = write_config(&dir, &addrs, &options);
        let env: Vec<(&str, &str)> = options
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let mut nodes: Vec<Node> = addrs
            .iter()
            .rev()
            .map(|a| {
                if options.late.contains(&a.name) {
                    Node {
                        addrs: a.clone(),
                        child: None,
                        log: dir.join(format!("{}-not-started.log", a.name)),
                    }
                } else {
                    spawn_node(&config, a, &dir, &env)
                }
            })
            .collect();
        nodes.reverse();
        let cluster = Cluster {
            dir,
            config,
            nodes,
            env: options.env.clone(),
            _serial: guard,
        };
        let names = cluster.running();
        for n in cluster.nodes.iter().filter(|n| n.child.is_some()) {
            cluster.wait_up(n, &names, Duration::from_secs(20));
        }
        cluster
    }

    /// Names of the nodes whose process runs.
    pub fn running(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|n| n.child.is_some())
            .map(|n| n.addrs.name.clone())
            .collect()
    }

    /// Starts a node that is not running (a `late` one, or one killed before) and waits
    /// until every running node sees every running node as `up`.
    /// Sets a `TROUPE_*` variable for the nodes started from now on.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.to_string()));
    }

    pub fn start_node(&mut self, name: &str) {
        self.restart(name);
        let names = self.running();
        for n in self.nodes.iter().filter(|n| n.child.is_some()) {
            self.wait_up(n, &names, Duration::from_secs(20));
        }
    }

    pub fn node(&self, name: &str) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.addrs.name == name)
            .expect("node exists")
    }

    pub fn node_mut(&mut self, name: &str) -> &mut Node {
        self.nodes
            .iter_mut()
            .find(|n| n.addrs.name == name)
            .expect("node exists")
    }

    /// Restarts a stopped node under the same name.
    pub fn restart(&mut self, name: &str) {
        let (config, dir, env) = (self.config.clone(), self.dir.clone(), self.env.clone());
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let node = self.node_mut(name);
        node.kill();
        let fresh = spawn_node(&config, &node.addrs.clone(), &dir, &env);
        *node = fresh;
    }

    /// Waits until `observer` sees exactly `names` as `up`.
    pub fn wait_up(&self, observer: &Node, names: &[String], timeout: Duration) {
        let mut want: Vec<String> = names.to_vec();
        want.sort();
        let ok = wait_until(timeout, || up_members(observer) == want);
        assert!(
            ok,
            "{} never saw {:?} up (saw {:?}); logs:\n{}",
            observer.addrs.name,
            want,
            up_members(observer),
            self.logs()
        );
    }

    /// Logs of every node, for failure messages.
    pub fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("==== {} ====\n{}", n.addrs.name, n.log_text()))
            .collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            n.kill();
        }
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("test cluster files kept in {}", self.dir.display());
        }
    }
}

/// Names of the members `node` sees as `up`, sorted (empty when it does not answer).
pub fn up_members(node: &Node) -> Vec<String> {
    let Ok((200, v)) = get(&node.url("/cluster"), None) else {
        return Vec::new();
    };
    let mut up: Vec<String> = v["members"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["state"] == "up")
        .filter_map(|m| m["name"].as_str().map(String::from))
        .collect();
    up.sort();
    up
}

/// The member entry `observer` has for `name`.
pub fn member(observer: &Node, name: &str) -> Option<Value> {
    let (_, v) = get(&observer.url("/cluster"), None).ok()?;
    v["members"]
        .as_array()?
        .iter()
        .find(|m| m["name"] == name)
        .cloned()
}

/// Polls `cond` every 50 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into()
}

/// A parsed HTTP answer: status and JSON body (Null when the body is not JSON).
pub type Answer = (u16, Value);

fn finish(resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Result<Answer, String> {
    let mut resp = resp.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let text = resp
        .body_mut()
        .read_to_string()
        .map_err(|e| e.to_string())?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

/// GET with an optional bearer token.
pub fn get(url: &str, token: Option<&str>) -> Result<Answer, String> {
    let mut req = agent().get(url);
    if let Some(t) = token {
        req = req.header("authorization", &format!("Bearer {t}"));
    }
    finish(req.call())
}

/// GET returning the raw response for header checks.
pub fn get_raw(url: &str, headers: &[(&str, &str)]) -> ureq::http::Response<ureq::Body> {
    let mut req = agent().get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.call().expect("http get")
}

/// The value of one series on `node`'s `/metrics`, named as Prometheus writes it: the
/// metric's name with its labels, if any (`troupe_outbox_depth`,
/// `troupe_store_batches_total{batch="bookings"}`); `None` when the node has no such series.
pub fn metric(node: &Node, series: &str) -> Option<f64> {
    let text = get_raw(&node.url("/metrics"), &[])
        .body_mut()
        .read_to_string()
        .unwrap_or_default();
    text.lines()
        .find(|l| l.split_whitespace().next() == Some(series))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
}

/// POST JSON, answering the raw response for header checks.
pub fn post_json_raw(url: &str, body: &Value) -> ureq::http::Response<ureq::Body> {
    agent()
        .post(url)
        .header("content-type", "application/json")
        .send(body.to_string().as_bytes())
        .expect("http post")
}

/// POST a body with headers, answering the raw response for header checks.
pub fn post_headers_raw(
    url: &str,
    body: &[u8],
    headers: &[(&str, &str)],
) -> ureq::http::Response<ureq::Body> {
    let mut req = agent().post(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send(body).expect("http post")
}

/// POST JSON with extra headers and an optional bearer token.
pub fn post_with(
    url: &str,
    body: &Value,
    headers: &[(&str, &str)],
    token: Option<&str>,
) -> Result<Answer, String> {
    send_with("POST", url, body, headers, token)
}

/// JSON sent with `method` (POST, PUT or PATCH), extra headers and an optional bearer
/// token.
pub fn send_with(
    method: &str,
    url: &str,
    body: &Value,
    headers: &[(&str, &str)],
    token: Option<&str>,
) -> Result<Answer, String> {
    let agent = agent();
    let req = match method {
        "PUT" => agent.put(url),
        "PATCH" => agent.patch(url),
        _ => agent.post(url),
    };
    let mut req = req.header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(t) = token {
        req = req.header("authorization", &format!("Bearer {t}"));
    }
    finish(req.send(body.to_string().as_bytes()))
}

/// POST a raw body with a content type and an optional bearer token.
pub fn post_raw(
    url: &str,
    body: &[u8],
    content_type: &str,
    token: Option<&str>,
) -> Result<Answer, String> {
    let mut req = agent().post(url).header("content-type", content_type);
    if let Some(t) = token {
        req = req.header("authorization", &format!("Bearer {t}"));
    }
    finish(req.send(body))
}

/// POST JSON with an optional bearer token.
pub fn post(url: &str, body: &Value, token: Option<&str>) -> Result<Answer, String> {
    post_raw(url, body.to_string().as_bytes(), "application/json", token)
}

/// `[storage]` for the PostgreSQL server named by `TROUPE_TEST_PG`, or `None` (and a printed
/// skip line) when it is not set.
pub fn postgres_storage(test: &str) -> Option<String> {
    match std::env::var("TROUPE_TEST_PG") {
        Ok(url) if !url.is_empty() => Some(format!("[storage]\nurl = \"{url}\"\n")),
        _ => {
            eprintln!("skipped: {test} (TROUPE_TEST_PG not set)");
            println!("skipped: {test} (TROUPE_TEST_PG not set)");
            None
        }
    }
}

/// A unique suffix for names in a shared database.
pub fn unique() -> String {
    format!("{:x}", rand_u64() ^ (std::process::id() as u64) << 32)
        .chars()
        .take(10)
        .collect()
}

/// A registered and logged-in user.
#[derive(Clone, Debug)]
pub struct User {
    pub id: String,
    pub username: String,
    pub password: String,
    pub access: String,
    pub refresh: String,
    pub session: String,
}

/// Registers `username` on `node` (201) and returns its id.
pub fn register(node: &Node, username: &str, password: &str) -> String {
    let (status, v) = post(
        &node.url("/auth/register"),
        &serde_json::json!({
            "username": username,
            "email": format!("{username}@example.com"),
            "password": password,
        }),
        None,
    )
    .unwrap();
    assert_eq!(status, 201, "register {username}: {v}");
    v["id"].as_str().unwrap().to_string()
}

/// Logs in on `node` and returns the token pair.
pub fn login(node: &Node, username: &str, password: &str) -> Answer {
    post(
        &node.url("/auth/login"),
        &serde_json::json!({"username": username, "password": password}),
        None,
    )
    .unwrap()
}

/// Registers on `a`, logs in on `b`.
pub fn new_user(a: &Node, b: &Node, prefix: &str) -> User {
    let username = format!("{prefix}_{}", unique());
    let password = "passw0rd-long".to_string();
    let id = register(a, &username, &password);
    let (status, v) = login(b, &username, &password);
    assert_eq!(status, 200, "login {username}: {v}");
    User {
        id,
        username,
        password,
        access: v["access_token"].as_str().unwrap().to_string(),
        refresh: v["refresh_token"].as_str().unwrap().to_string(),
        session: v["session_id"].as_str().unwrap().to_string(),
    }
}

/// HTTP with a method, a JSON body and an optional bearer token.
pub fn send(method: &str, url: &str, body: Option<&Value>, token: Option<&str>) -> Answer {
    let agent = agent();
    let auth = token.map(|t| format!("Bearer {t}"));
    let resp = match method {
        "GET" | "DELETE" => {
            let mut req = if method == "GET" {
                agent.get(url)
            } else {
                agent.delete(url)
            };
            if let Some(a) = &auth {
                req = req.header("authorization", a);
            }
            req.call()
        }
        _ => {
            let mut req = if method == "PUT" {
                agent.put(url)
            } else {
                agent.post(url)
            };
            req = req.header("content-type", "application/json");
            if let Some(a) = &auth {
                req = req.header("authorization", a);
            }
            req.send(body.map(|b| b.to_string()).unwrap_or_default().as_bytes())
        }
    };
    finish(resp).expect("http")
}

/// Connects to the cluster port `addr` as a TLS client presenting `cert`/`key` (PEM), trusting
/// `ca`, expecting the server to be `server_name`, and sends a byte: `Err` with the error when
/// the session is refused (TLS 1.3: the server's verdict on the client certificate arrives
/// after the client's handshake is done, so this reads until it does).
pub fn tls_probe(
    addr: SocketAddr,
    ca: &Path,
    cert: &Path,
    key: &Path,
    server_name: &str,
) -> Result<(), String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    use std::io::{Read, Write};
    use std::sync::Arc;

    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let chain: Vec<_> = CertificateDer::pem_file_iter(cert)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(key).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .unwrap();
    let name = ServerName::try_from(server_name.to_owned()).unwrap();
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut sock = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut tls = rustls::Stream::new(&mut conn, &mut sock);
    tls.write_all(&[0; 8]).map_err(|e| e.to_string())?;
    let mut byte = [0];
    match tls.read(&mut byte) {
        Ok(0) => Err("closed".into()),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

/// `troupe_cluster_tls_refused_total{reason="<reason>"}` on `node` (0 when absent).
pub fn tls_refusals(node: &Node, reason: &str) -> u64 {
    let text = get_raw(&node.url("/metrics"), &[])
        .body_mut()
        .read_to_string()
        .unwrap();
    let needle = format!("troupe_cluster_tls_refused_total{{reason=\"{reason}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&needle))
        .map_or(0, |n| n.trim().parse().unwrap())
}

/// Lines of `log` that report a TLS refusal.
pub fn refusal_lines(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains("cluster peer refused (tls)"))
        .collect()
}

/// The bootstrap admin's access token, logged in on `n1`.
pub fn admin_token(c: &Cluster) -> String {
    let (status, v) = login(c.node("n1"), "admin", ADMIN_PASSWORD);
    assert_eq!(status, 200, "{v}");
    v["access_token"].as_str().unwrap().to_string()
}

/// The field names of a 400 answer's `error.details.fields`, sorted.
pub fn field_errors(v: &Value) -> Vec<String> {
    let mut keys: Vec<String> = v["error"]["details"]["fields"]
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    keys.sort();
    keys
}
