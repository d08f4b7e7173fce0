#!/usr/bin/env python3
"""Failure detection, readiness, restart and footprint numbers of the cluster runtime.

    python3 scripts/bench_node.py target/release/troupe

Starts 3 fresh nodes on free loopback ports and prints markdown:
- time from process start to `GET /health` 200, and to a full mesh;
- idle RSS per node;
- how long until a SIGKILLed / SIGSTOPped node is out of every survivor's routing table
  (`/cluster` state != up), and until a restarted / SIGCONTed node is `up` in every view;
- how long a service whose only worker was killed takes to answer again.
"""
import json, os, signal, socket, subprocess, sys, tempfile, time, urllib.request, statistics

BIN = sys.argv[1] if len(sys.argv) > 1 else "target/release/troupe"
TOKEN = "bench-admin-token-0123456789"
WORK = tempfile.mkdtemp()


def free_port():
    while True:
        t = socket.socket(); t.bind(("127.0.0.1", 0)); port = t.getsockname()[1]
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(("127.0.0.1", port)); return port
        except OSError:
            pass
        finally:
            t.close(); u.close()


NAMES = ["n1", "n2", "n3"]
ADDR = {n: (free_port(), free_port(), free_port()) for n in NAMES}
CONF = os.path.join(WORK, "cluster.toml")
CERTS = os.path.join(WORK, "certs")
subprocess.run([BIN, "certs", "--out", CERTS, "--nodes", ",".join(NAMES)], check=True,
               stdout=subprocess.DEVNULL)
with open(CONF, "w") as f:
    f.write(f'data_dir = "{WORK}/data"\n[cluster]\ncookie = "bench-cookie-0123456789"\n'
            f'[cluster.tls]\nca = "{CERTS}/ca.pem"\n'
            f'[admin]\ntoken = "{TOKEN}"\n[log]\nlevel = "warn"\n'
            f'[auth]\nkeys = ["bench:bench-signing-key-0123456789abcdef0123"]\n'
            # Throughput, not limits: every rate limit and quota out of reach.
            f'[limits]\nregister_per_ip_per_minute = 10000000\nrefresh_per_ip_per_minute = 10000000\n'
            f'codes_per_ip_per_minute = 10000000\nsearch_per_user_per_minute = 10000000\n'
            f'ws_upgrades_per_ip_per_minute = 10000000\ngrpc_calls_per_ip_per_minute = 10000000\n'
            f'[quotas]\ntasks_active_per_user = 10000000\nws_connections_per_user = 1000000\n'
            f'chat_requests_per_user_per_minute = 1000000\nimage_bytes_per_user = 1099511627776\n'
            f'[services]\nworkers = 1\n[supervision]\nmax_restarts = 1000\nrestart_window_s = 1\n')
    for n in NAMES:
        c, h, g = ADDR[n]
        f.write(f'[[nodes]]\nname = "{n}"\ncluster_addr = "127.0.0.1:{c}"\n'
                f'http_addr = "127.0.0.1:{h}"\ngrpc_addr = "127.0.0.1:{g}"\n')

procs = {}


def start(n):
    log = open(os.path.join(WORK, f"{n}.log"), "a")
    procs[n] = subprocess.Popen([BIN, "node", "--config", CONF, "--name", n], stdout=log, stderr=log)
    return time.monotonic()


def url(n, path):
    return f"http://127.0.0.1:{ADDR[n][1]}{path}"


def get(n, path, timeout=1.0):
    try:
        with urllib.request.urlopen(url(n, path), timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except Exception:
        return None, None


def post(n, path, body):
    req = urllib.request.Request(url(n, path), data=json.dumps(body).encode(), method="POST",
                                 headers={"authorization": f"Bearer {TOKEN}", "content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())


def up(observer):
    s, v = get(observer, "/cluster", timeout=0.5)
    if s != 200:
        return None
    return sorted(m["name"] for m in v["members"] if m["state"] == "up")


def wait(cond, timeout=10.0, step=0.005):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if cond():
            return time.monotonic() - t0
        time.sleep(step)
    return None


def ms(x):
    return "timeout" if x is None else f"{x * 1000:.0f} ms"


try:
    t0 = {n: start(n) for n in NAMES}
    ready = {}
    for n in NAMES:
        wait(lambda: get(n, "/health", 0.2)[0] == 200, 10, 0.002)
        ready[n] = time.monotonic() - t0[n]
    mesh = wait(lambda: all(up(n) == NAMES for n in NAMES), 10)
    print(f"- Ready (process start to `GET /health` 200): " + ", ".join(f"{n} {ready[n]*1000:.0f} ms" for n in NAMES))
    print(f"- Full 3-node mesh formed {ms(mesh + max(ready.values()) if mesh is not None else None)} after the first start")
    time.sleep(5)
    rss = {}
    for n in NAMES:
        with open(f"/proc/{procs[n].pid}/status") as f:
            rss[n] = next(l.split()[1] for l in f if l.startswith("VmRSS")) 
    print("- Idle RSS: " + ", ".join(f"{n} {int(rss[n]) / 1024:.1f} MiB" for n in NAMES))
    print()
    print("| event | n1 | n2 / n3 | all views |")
    print("|---|---|---|---|")
    rows = []

    def out_of(victim, observers):
        t = time.monotonic(); res = {}
        pending = set(observers)
        while pending and time.monotonic() - t < 10:
            for o in list(pending):
                v = up(o)
                if v is not None and victim not in v:
                    res[o] = time.monotonic() - t; pending.discard(o)
            time.sleep(0.005)
        return res

    def back_in(victim, t):
        res = {}; pending = set(NAMES)
        while pending and time.monotonic() - t < 15:
            for o in list(pending):
                v = up(o)
                if v is not None and victim in v and len(v) == 3:
                    res[o] = time.monotonic() - t; pending.discard(o)
            time.sleep(0.005)
        return res

    for trial in range(3):
        procs["n3"].send_signal(signal.SIGKILL); procs["n3"].wait()
        r = out_of("n3", ["n1", "n2"])
        rows.append(("SIGKILL n3: out of routing", r.get("n1"), r.get("n2"), max(r.values()) if len(r) == 2 else None))
        time.sleep(0.5)
        t = start("n3")
        r = back_in("n3", t)
        rows.append(("restart n3: back up (from process start)", r.get("n1"), r.get("n2"), max(r.values()) if len(r) == 3 else None))
        time.sleep(1)
        procs["n2"].send_signal(signal.SIGSTOP)
        r = out_of("n2", ["n1", "n3"])
        rows.append(("SIGSTOP n2: out of routing", r.get("n1"), r.get("n3"), max(r.values()) if len(r) == 2 else None))
        time.sleep(0.5)
        t = time.monotonic(); procs["n2"].send_signal(signal.SIGCONT)
        r = back_in("n2", t)
        rows.append(("SIGCONT n2: back up", r.get("n1"), r.get("n3"), max(r.values()) if len(r) == 3 else None))
        time.sleep(1)
    for name, a, b, c in rows:
        print(f"| {name} | {ms(a)} | {ms(b)} | {ms(c)} |")
    print()

    # The ping service has one worker per node here: kill it, then time the next answer.
    samples = []
    for _ in range(10):
        time.sleep(1.1)  # past the 1 s restart window, so each restart is a first restart
        killed = post("n1", "/admin/chaos/kill", {"service": "ping", "node": "n1", "count": 1})
        assert killed["count"] == 1, killed
        t = time.monotonic()
        s, v = get("n1", "/ping")
        assert s == 200, (s, v)
        samples.append(time.monotonic() - t)
    print(f"- Killed worker (the only `ping` worker of n1) answering again, measured as the next "
          f"`GET /ping` round trip after the kill: median {statistics.median(samples)*1000:.2f} ms, "
          f"max {max(samples)*1000:.2f} ms over {len(samples)} kills")
finally:
    for p in procs.values():
        try:
            p.send_signal(signal.SIGCONT); p.kill()
        except Exception:
            pass
