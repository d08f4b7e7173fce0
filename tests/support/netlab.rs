//! A network lab for multi-host tests: one Linux network namespace per node, each joined by a
//! veth pair to a bridge in the root namespace, so every node has its own address and the
//! network between nodes can be cut (blackhole routes) or degraded (`tc netem`) while the
//! nodes share the filesystem (one SQLite file: only the network is split).
//!
//! Addresses come only from the benchmarking range 198.18.0.0/15: lab `L` uses
//! `198.18.L.0/24`, node `k` (1-based) is `198.18.L.k` and the bridge is `198.18.L.254`, so
//! the test process (root namespace) reaches every node over the bridge. Tests use `L` in
//! 1..=199; the benchmark drivers in `scripts/` use 200..=249.
//!
//! Names carry the owner's pid and a counter (`trl<pid:06x><n:02x>`), so labs of parallel
//! tests never collide and a lab left by a crashed run is recognised and removed by the next
//! one ([`remove_stale`]). Interface names stay within the kernel's 15 characters. A
//! [`Lab`] tears everything down on drop, also when the test panics; a [`LabCluster`] kills
//! its node processes first.
//!
//! Everything needs root and iproute2: [`available`] says why a test is skipped otherwise.

use std::collections::HashSet;
use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard, Once};
use std::time::Duration;

use super::{
    scratch_dir, serial, spawn_node_via, up_members, wait_until, write_config, Addrs, Node, Options,
};

/// Prefix of every lab name this module creates (the benchmark drivers use `trb`).
pub const PREFIX: &str = "trl";
/// Prefixes whose stale labs [`remove_stale`] removes (ours and the benchmark drivers').
const STALE_PREFIXES: [&str; 2] = ["trl", "trb"];
/// Ports every node uses inside its namespace (each node has its own address).
pub const CLUSTER_PORT: u16 = 7000;
pub const HTTP_PORT: u16 = 8080;
pub const GRPC_PORT: u16 = 9090;

static COUNTER: AtomicU32 = AtomicU32::new(0);
/// Subnets (third octets) handed out by this process.
static SUBNETS: Mutex<Vec<u8>> = Mutex::new(Vec::new());
static STALE: Once = Once::new();

/// Runs `ip` (or another tool) and fails with its stderr.
pub fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn must(program: &str, args: &[&str]) -> String {
    run(program, args).unwrap_or_else(|e| panic!("{e}"))
}

fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|uid| uid == "0"))
        })
        .unwrap_or(false)
}

/// Whether this host can build a lab; when not, prints why `test` is skipped (stderr and
/// stdout, like the `TROUPE_TEST_PG` skips) and returns false.
pub fn available(test: &str) -> bool {
    let why = if !is_root() {
        Some("needs root".to_string())
    } else if let Err(e) = run("ip", &["-V"]) {
        Some(format!("needs iproute2 (`ip`): {e}"))
    } else {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed) % 256;
        let probe = format!("{PREFIX}{:06x}{n:02x}-probe", std::process::id());
        match run("ip", &["netns", "add", &probe]) {
            Ok(_) => {
                let _ = run("ip", &["netns", "del", &probe]);
                None
            }
            Err(e) => Some(format!("cannot create a network namespace: {e}")),
        }
    };
    match why {
        Some(why) => {
            eprintln!("skipped: {test} ({why})");
            println!("skipped: {test} ({why})");
            false
        }
        None => true,
    }
}

/// Whether `tc` can add a netem qdisc here (kernels without `sch_netem` cannot); when not,
/// prints why and returns false.
pub fn netem_available(test: &str) -> bool {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed) % 256;
    let dev = format!("{PREFIX}{:06x}{n:02x}p", std::process::id());
    let peer = format!("{dev}p");
    let result = run(
        "ip",
        &["link", "add", &dev, "type", "veth", "peer", "name", &peer],
    )
    .and_then(|_| {
        run(
            "tc",
            &["qdisc", "add", "dev", &dev, "root", "netem", "delay", "1ms"],
        )
    });
    let _ = run("ip", &["link", "del", &dev]);
    match result {
        Ok(_) => true,
        Err(e) => {
            eprintln!("{test}: tc netem unavailable: {e}");
            println!("{test}: tc netem unavailable: {e}");
            false
        }
    }
}

/// Whether `iptables` runs here (the loss-only fallback of [`Lab::drop_incoming`]).
pub fn iptables_available() -> bool {
    run("iptables", &["--version"]).is_ok()
}

fn pid_alive(pid: u32) -> bool {
    PathBuf::from(format!("/proc/{pid}")).exists()
}

/// The pid a lab name carries (`trl<pid:06x><n:02x>` then `b`, `v<k>`, `p`, `pp` or
/// `-<suffix>`), if it is one of ours.
fn owner(name: &str) -> Option<u32> {
    let prefix = STALE_PREFIXES.iter().find(|p| name.starts_with(**p))?;
    let rest = &name[prefix.len()..];
    let stem = rest.get(..8)?;
    let tail = &rest[8..];
    let ours = tail == "b"
        || tail == "p"
        || tail == "pp"
        || tail.starts_with('-')
        || tail
            .strip_prefix('v')
            .is_some_and(|k| k.parse::<u8>().is_ok());
    if !ours || !stem.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let pid = u32::from_str_radix(&stem[..6], 16).ok()?;
    let pid_max = fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(4_194_304);
    (pid <= pid_max).then_some(pid)
}

/// Removes namespaces (and the processes in them) and links left by labs whose owner
/// process is gone: a test run that was SIGKILLed cannot run its destructors.
pub fn remove_stale() {
    let netns = run("ip", &["netns", "list"]).unwrap_or_default();
    for ns in netns.lines().filter_map(|l| l.split_whitespace().next()) {
        if owner(ns).is_some_and(|pid| !pid_alive(pid)) {
            kill_inside(ns);
            let _ = run("ip", &["netns", "del", ns]);
        }
    }
    let links = run("ip", &["-o", "link", "show"]).unwrap_or_default();
    for link in links.lines().filter_map(|l| l.split(':').nth(1)) {
        let name = link.trim().split('@').next().unwrap_or_default();
        if owner(name).is_some_and(|pid| !pid_alive(pid)) {
            let _ = run("ip", &["link", "del", name]);
        }
    }
}

/// SIGKILLs every process in namespace `ns`.
fn kill_inside(ns: &str) {
    let pids = run("ip", &["netns", "pids", ns]).unwrap_or_default();
    for pid in pids.split_whitespace() {
        let _ = Command::new("kill").args(["-9", pid]).status();
    }
}

/// A third octet no current address of this host uses, nor a lab of this process.
fn free_subnet() -> u8 {
    let mut taken = SUBNETS.lock().unwrap_or_else(|e| e.into_inner());
    let used = run("ip", &["-o", "-4", "addr", "show"]).unwrap_or_default();
    let start = std::process::id() % 199;
    for i in 0..199 {
        let octet = ((start + i) % 199 + 1) as u8;
        if !taken.contains(&octet) && !used.contains(&format!("198.18.{octet}.")) {
            taken.push(octet);
            return octet;
        }
    }
    panic!("no free 198.18.x.0/24 for a lab");
}

/// One node's namespace.
#[derive(Clone, Debug)]
pub struct Host {
    /// The node's name (`n1`, ...).
    pub name: String,
    /// The namespace.
    pub ns: String,
    /// The root-namespace end of its veth pair (enslaved to the bridge).
    pub veth: String,
    /// Its address (on `eth0` inside the namespace).
    pub ip: Ipv4Addr,
}

/// Namespaces, veths and a bridge; removed on drop.
pub struct Lab {
    /// `trl<pid><n>`: the stem of every name.
    pub id: String,
    /// The third octet of the lab's /24.
    pub subnet: u8,
    /// The bridge in the root namespace.
    pub bridge: String,
    pub hosts: Vec<Host>,
    /// Blackhole routes in place: (namespace, address).
    blackholes: Vec<(String, Ipv4Addr)>,
}

impl Lab {
    /// Builds a lab with one namespace per name.
    pub fn new(names: &[&str]) -> Lab {
        STALE.call_once(remove_stale);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed) % 256;
        let id = format!("{PREFIX}{:06x}{n:02x}", std::process::id());
        let subnet = free_subnet();
        let mut lab = Lab {
            bridge: format!("{id}b"),
            id,
            subnet,
            hosts: Vec::new(),
            blackholes: Vec::new(),
        };
        // From here on, a failure tears down what was built (Drop).
        let br = lab.bridge.clone();
        must("ip", &["link", "add", &br, "type", "bridge"]);
        must(
            "ip",
            &[
                "addr",
                "add",
                &format!("{}/24", lab.bridge_ip()),
                "dev",
                &br,
            ],
        );
        must("ip", &["link", "set", &br, "up"]);
        for (k, name) in names.iter().enumerate() {
            let host = Host {
                name: name.to_string(),
                ns: format!("{}-{name}", lab.id),
                veth: format!("{}v{k}", lab.id),
                ip: Ipv4Addr::new(198, 18, subnet, k as u8 + 1),
            };
            assert!(host.veth.len() <= 15, "interface name {}", host.veth);
            must("ip", &["netns", "add", &host.ns]);
            lab.hosts.push(host.clone());
            let ns = host.ns.as_str();
            must(
                "ip",
                &[
                    "link", "add", &host.veth, "type", "veth", "peer", "name", "eth0", "netns", ns,
                ],
            );
            must("ip", &["link", "set", &host.veth, "master", &br, "up"]);
            must("ip", &["-n", ns, "link", "set", "lo", "up"]);
            must(
                "ip",
                &[
                    "-n",
                    ns,
                    "addr",
                    "add",
                    &format!("{}/24", host.ip),
                    "dev",
                    "eth0",
                ],
            );
            must("ip", &["-n", ns, "link", "set", "eth0", "up"]);
        }
        lab
    }

    /// The bridge's address: how the root namespace reaches the nodes.
    pub fn bridge_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, self.subnet, 254)
    }

    pub fn host(&self, name: &str) -> &Host {
        self.hosts
            .iter()
            .find(|h| h.name == name)
            .unwrap_or_else(|| panic!("no host {name} in the lab"))
    }

    /// Cuts every host of `a` off from every host of `b`, both directions (blackhole
    /// routes); the root namespace still reaches everyone.
    pub fn cut(&mut self, a: &[&str], b: &[&str]) {
        for (from, to) in a
            .iter()
            .flat_map(|x| b.iter().map(move |y| (*x, *y)))
            .flat_map(|(x, y)| [(x, y), (y, x)])
        {
            let (ns, ip) = (self.host(from).ns.clone(), self.host(to).ip);
            must(
                "ip",
                &["-n", &ns, "route", "add", "blackhole", &format!("{ip}/32")],
            );
            self.blackholes.push((ns, ip));
        }
    }

    /// Removes every blackhole route.
    pub fn heal(&mut self) {
        for (ns, ip) in std::mem::take(&mut self.blackholes) {
            must(
                "ip",
                &["-n", &ns, "route", "del", "blackhole", &format!("{ip}/32")],
            );
        }
    }

    /// Puts `tc netem` (e.g. `["loss", "5%", "delay", "50ms"]`) on the way into every host:
    /// a packet between two nodes passes it once.
    pub fn degrade(&self, netem: &[&str]) {
        for h in &self.hosts {
            let mut args = vec!["qdisc", "replace", "dev", &h.veth, "root", "netem"];
            args.extend_from_slice(netem);
            must("tc", &args);
        }
    }

    /// Drops `percent` of the packets arriving at every host (iptables' statistic match in
    /// each namespace): loss without delay, for kernels without `sch_netem`. The rules go
    /// with the namespaces.
    pub fn drop_incoming(&self, percent: f64) {
        let p = format!("{}", percent / 100.0);
        for h in &self.hosts {
            must(
                "ip",
                &[
                    "netns",
                    "exec",
                    &h.ns,
                    "iptables",
                    "-A",
                    "INPUT",
                    "-m",
                    "statistic",
                    "--mode",
                    "random",
                    "--probability",
                    &p,
                    "-j",
                    "DROP",
                ],
            );
        }
    }

    /// Removes what [`Lab::degrade`] added.
    pub fn restore(&self) {
        for h in &self.hosts {
            let _ = run("tc", &["qdisc", "del", "dev", &h.veth, "root"]);
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for h in &self.hosts {
            kill_inside(&h.ns);
            let _ = run("ip", &["link", "del", &h.veth]);
            let _ = run("ip", &["netns", "del", &h.ns]);
        }
        let _ = run("ip", &["link", "del", &self.bridge]);
        SUBNETS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|s| *s != self.subnet);
    }
}

/// A cluster of real `troupe` processes, one per namespace of a [`Lab`], on the shared
/// SQLite file of the default test config.
pub struct LabCluster {
    /// Every host's addresses, started or not.
    pub addrs: Vec<Addrs>,
    pub dir: PathBuf,
    pub config: PathBuf,
    /// Declared before `lab`: the nodes die before their namespaces go.
    pub nodes: Vec<Node>,
    pub lab: Lab,
    _serial: MutexGuard<'static, ()>,
}

impl LabCluster {
    /// Builds a lab with `options.nodes` namespaces, starts a node in each (cluster, HTTP
    /// and gRPC on fixed ports of the node's address) and waits until every node sees all
    /// of them up. Lab clusters of one test binary run one at a time, like [`super::Cluster`]:
    /// failure detection is timing-sensitive.
    pub fn start(tag: &str, options: Options) -> LabCluster {
        let guard = serial();
        let names: Vec<String> = (1..=options.nodes).map(|i| format!("n{i}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let lab = Lab::new(&refs);
        let dir = scratch_dir(tag);
        let addrs: Vec<Addrs> = lab
            .hosts
            .iter()
            .map(|h| {
                let at = |port| SocketAddr::from((h.ip, port));
                Addrs {
                    name: h.name.clone(),
                    cluster: at(CLUSTER_PORT),
                    http: at(HTTP_PORT),
                    grpc: at(GRPC_PORT),
                }
            })
            .collect();
        let config = write_config(&dir, &addrs, &options);
        let env: Vec<(&str, &str)> = options
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        // `options.late` nodes get a host (and a config entry) but are not started.
        let nodes = addrs
            .iter()
            .filter(|a| !options.late.contains(&a.name))
            .map(|a| {
                let ns = lab.host(&a.name).ns.clone();
                spawn_node_via(&["ip", "netns", "exec", &ns], &config, a, &dir, &env)
            })
            .collect();
        let started: Vec<String> = names
            .iter()
            .filter(|n| !options.late.contains(n))
            .cloned()
            .collect();
        let cluster = LabCluster {
            addrs,
            dir,
            config,
            nodes,
            lab,
            _serial: guard,
        };
        for n in &cluster.nodes {
            cluster.wait_up(n, &started, Duration::from_secs(30));
        }
        cluster
    }

    /// Starts node `name` (a `late` one) in its namespace from `config` (the cluster's when
    /// `None`), with `env` on top; it is not waited for, nor added to `nodes`.
    pub fn spawn(&self, name: &str, config: Option<&Path>, env: &[(&str, &str)]) -> Node {
        let a = self
            .addrs
            .iter()
            .find(|a| a.name == name)
            .unwrap_or_else(|| panic!("no host {name}"));
        let ns = self.lab.host(name).ns.clone();
        let config = config.unwrap_or(&self.config);
        spawn_node_via(&["ip", "netns", "exec", &ns], config, a, &self.dir, env)
    }

    pub fn node(&self, name: &str) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.addrs.name == name)
            .unwrap_or_else(|| panic!("no node {name}"))
    }

    /// Waits until `observer` sees exactly `names` as `up`.
    pub fn wait_up(&self, observer: &Node, names: &[String], timeout: Duration) {
        let mut want = names.to_vec();
        want.sort();
        let ok = wait_until(timeout, || up_members(observer) == want);
        assert!(
            ok,
            "{} never saw {want:?} up (saw {:?}); logs:\n{}",
            observer.addrs.name,
            up_members(observer),
            self.logs()
        );
    }

    /// The last lines of every node's log, for failure messages.
    pub fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|n| {
                let text = n.log_text();
                let lines: Vec<&str> = text.lines().collect();
                let tail = lines[lines.len().saturating_sub(40)..].join("\n");
                format!(
                    "==== {} ({} lines, tail) ====\n{tail}\n",
                    n.addrs.name,
                    lines.len()
                )
            })
            .collect()
    }

    /// Names every node sees as up, by node (an unanswering node sees nothing).
    pub fn views(&self) -> Vec<(String, Vec<String>)> {
        self.nodes
            .iter()
            .map(|n| (n.addrs.name.clone(), up_members(n)))
            .collect()
    }

    /// Every member name in any state that any node lists.
    pub fn all_listed(&self) -> HashSet<String> {
        self.nodes
            .iter()
            .filter_map(|n| super::get(&n.url("/cluster"), None).ok())
            .flat_map(|(_, v)| {
                v["members"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|m| m["name"].as_str().map(String::from))
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

impl Drop for LabCluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            n.kill();
        }
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("lab cluster files kept in {}", self.dir.display());
        }
    }
}
