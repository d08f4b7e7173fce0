#!/usr/bin/env python3
"""Task actors at scale: many concurrently running tasks on one node, cancel latency, memory.

    cargo build --release --bin troupe
    python3 scripts/bench_tasks.py target/release/troupe                 # 10,000 tasks
    TASKS=2000 CANCELS=500 python3 scripts/bench_tasks.py target/release/troupe

Starts one fresh node (so every task is homed on it) on free loopback ports with the
embedded SQLite store, registers a user, then:
- creates TASKS tasks (STEPS steps, DELAY_MS between steps) over CONCURRENCY connections;
- waits until `troupe_tasks_running` (task actors alive) reaches TASKS;
- samples RSS and CPU over SAMPLE_S seconds of steady state (every actor ticking);
- cancels CANCELS random running tasks, one request per connection at a time over
  CANCEL_CONCURRENCY connections, timing each `PUT .../tasks/:id/cancel` from send to reply
  (the reply comes after the cancelled state is written);
- prints markdown.
Needs only python3's standard library.
"""
import json, os, random, re, shutil, signal, socket, subprocess, sys, tempfile, time
import urllib.request, urllib.error
from concurrent.futures import ThreadPoolExecutor

BIN = sys.argv[1] if len(sys.argv) > 1 else "target/release/troupe"
TASKS = int(os.environ.get("TASKS", 10_000))
STEPS = int(os.environ.get("STEPS", 1000))
DELAY_MS = int(os.environ.get("DELAY_MS", 10_000))
CANCELS = int(os.environ.get("CANCELS", 1000))
CONCURRENCY = int(os.environ.get("CONCURRENCY", 32))
CANCEL_CONCURRENCY = int(os.environ.get("CANCEL_CONCURRENCY", 4))
SAMPLE_S = float(os.environ.get("SAMPLE_S", 10))
# A PostgreSQL url (use a database of its own: the tasks left running stay in it); default:
# the embedded SQLite file.
STORAGE_URL = os.environ.get("STORAGE_URL", "")
WORK = tempfile.mkdtemp()
TASK_PATH = "/api/v1/eventstreammonitor/tasks"


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


C, H, G = free_port(), free_port(), free_port()
BASE = f"http://127.0.0.1:{H}"
CONF = os.path.join(WORK, "cluster.toml")
with open(CONF, "w") as f:
    f.write(f'data_dir = "{WORK}/data"\n[cluster]\ncookie = "bench-cookie-0123456789"\n'
            # One node: no traffic between nodes to secure.
            f'insecure_plaintext = true\n'
            f'[admin]\ntoken = "bench-admin-token-0123456789"\n[log]\nlevel = "warn"\n'
            f'[auth]\nkeys = ["bench:bench-signing-key-0123456789abcdef0123"]\npassword_hash = "pbkdf2"\npbkdf2_iterations = 1000\n'
            # Throughput, not limits: every rate limit and quota out of reach.
            f'[limits]\nregister_per_ip_per_minute = 10000000\nrefresh_per_ip_per_minute = 10000000\n'
            f'codes_per_ip_per_minute = 10000000\nsearch_per_user_per_minute = 10000000\n'
            f'ws_upgrades_per_ip_per_minute = 10000000\ngrpc_calls_per_ip_per_minute = 10000000\n'
            f'[quotas]\ntasks_active_per_user = 10000000\nws_connections_per_user = 1000000\n'
            f'chat_requests_per_user_per_minute = 1000000\nimage_bytes_per_user = 1099511627776\n'
            f'[services]\nqueue_capacity = 100000\n'
            + (f'[storage]\nurl = "{STORAGE_URL}"\n' if STORAGE_URL else '') +
            f'[[nodes]]\nname = "n1"\ncluster_addr = "127.0.0.1:{C}"\n'
            f'http_addr = "127.0.0.1:{H}"\ngrpc_addr = "127.0.0.1:{G}"\n')
log = open(os.path.join(WORK, "n1.log"), "a")
proc = subprocess.Popen([BIN, "node", "--config", CONF, "--name", "n1"], stdout=log, stderr=log)


def cleanup():
    proc.kill(); proc.wait()
    shutil.rmtree(WORK, ignore_errors=True)


def http(method, path, body=None, token=None, timeout=30):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(BASE + path, data=data, method=method)
    req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def rss_kib():
    with open(f"/proc/{proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_ticks():
    with open(f"/proc/{proc.pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def metric(name):
    _, text = http("GET", "/metrics")
    total = 0.0
    for line in text.decode().splitlines():
        if line.startswith(name) and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


try:
    for _ in range(200):
        try:
            if http("GET", "/health", timeout=1)[0] == 200:
                break
        except OSError:
            pass
        time.sleep(0.1)
    http("POST", "/auth/register", {"username": "benchuser", "email": "bench@example.com", "password": "bench-passw0rd"})
    status, body = http("POST", "/auth/login", {"username": "benchuser", "password": "bench-passw0rd"})
    assert status == 200, body
    token = json.loads(body)["access_token"]
    idle_rss = rss_kib()

    create_ms, ids, errors = [], [], []

    def create(i):
        t0 = time.perf_counter()
        s, b = http("POST", TASK_PATH, {"name": f"bench-{i}", "payload": {"i": i}, "steps": STEPS, "delay_ms": DELAY_MS}, token)
        dt = (time.perf_counter() - t0) * 1000
        return s, b, dt

    t0 = time.time()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        for s, b, dt in pool.map(create, range(TASKS)):
            if s == 201:
                ids.append(json.loads(b)["id"]); create_ms.append(dt)
            else:
                errors.append((s, b[:200]))
    create_s = time.time() - t0
    deadline = time.time() + 120
    running = 0
    while time.time() < deadline:
        running = metric("troupe_tasks_running")
        if running >= len(ids):
            break
        time.sleep(0.5)
    time.sleep(1)
    rss0, cpu0, steps0, w0 = rss_kib(), cpu_ticks(), metric("troupe_task_steps_total"), time.time()
    time.sleep(SAMPLE_S)
    rss1, cpu1, steps1, w1 = rss_kib(), cpu_ticks(), metric("troupe_task_steps_total"), time.time()
    hz = os.sysconf("SC_CLK_TCK")
    cpu_pct = (cpu1 - cpu0) / hz / (w1 - w0) * 100
    step_rate = (steps1 - steps0) / (w1 - w0)

    victims = random.sample(ids, min(CANCELS, len(ids)))
    cancel_ms, cancel_bad = [], []

    def cancel(tid):
        t0 = time.perf_counter()
        s, b = http("PUT", f"{TASK_PATH}/{tid}/cancel", None, token)
        return s, b, (time.perf_counter() - t0) * 1000

    with ThreadPoolExecutor(CANCEL_CONCURRENCY) as pool:
        for s, b, dt in pool.map(cancel, victims):
            if s == 200 and json.loads(b)["status"] == "cancelled":
                cancel_ms.append(dt)
            else:
                cancel_bad.append((s, b[:200]))
    running_after = metric("troupe_tasks_running")

    print(f"## {TASKS} concurrently running task actors on one node\n")
    store = "PostgreSQL" if STORAGE_URL else "SQLite"
    print(f"Store: {store}\n")
    print(f"Command: `{'STORAGE_URL=... ' if STORAGE_URL else ''}TASKS={TASKS} STEPS={STEPS} DELAY_MS={DELAY_MS} CANCELS={CANCELS} "
          f"CONCURRENCY={CONCURRENCY} CANCEL_CONCURRENCY={CANCEL_CONCURRENCY} python3 scripts/bench_tasks.py {BIN}`\n")
    print("| what | value |\n|---|---|")
    print(f"| tasks created (201) / refused | {len(ids)} / {len(errors)} |")
    print(f"| create rate | {len(ids) / create_s:.0f}/s over {CONCURRENCY} connections |")
    if create_ms:
        print(f"| create latency p50 / p99 | {pct(create_ms, 50):.1f} ms / {pct(create_ms, 99):.1f} ms |")
    print(f"| task actors alive (`troupe_tasks_running`) | {running:.0f} |")
    print(f"| steps committed during {SAMPLE_S:.0f} s of steady state | {step_rate:.0f}/s (expected {len(ids) * 1000 / DELAY_MS:.0f}/s) |")
    print(f"| node CPU during steady state | {cpu_pct:.0f}% of one core |")
    print(f"| RSS idle -> with all tasks running | {idle_rss / 1024:.1f} MiB -> {rss0 / 1024:.1f} MiB "
          f"({(rss0 - idle_rss) * 1024 / max(1, len(ids)):.0f} bytes per running task, everything included) |")
    print(f"| RSS growth over the {SAMPLE_S:.0f} s of steady state (no task created) | "
          f"{(rss1 - rss0) / 1024:.1f} MiB |")
    if cancel_ms:
        print(f"| cancels answered 200 cancelled / other | {len(cancel_ms)} / {len(cancel_bad)} |")
        print(f"| cancel latency p50 / p90 / p99 / max | {pct(cancel_ms, 50):.1f} / {pct(cancel_ms, 90):.1f} / "
              f"{pct(cancel_ms, 99):.1f} / {max(cancel_ms):.1f} ms |")
    print(f"| task actors alive after the cancels | {running_after:.0f} |")
    if errors or cancel_bad:
        print("\nFirst failures:", (errors + cancel_bad)[:3])
finally:
    cleanup()
