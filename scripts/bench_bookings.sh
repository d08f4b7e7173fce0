#!/usr/bin/env bash
# Coaching bookings under contention: 1,000 concurrent clients race for the 100 slots of 4
# coaches on a 3-node cluster (mutual TLS, the embedded SQLite store). Each client is its own
# user on its own connection, sent to node n1, n2 or n3 in turn; ten clients want each slot,
# and all of them are released at once. Checks that exactly 100 bookings were made (100
# answers 201, 900 answers 409, no open slot left, and 100 live rows in the store), then
# prints the client-side latency of `POST /coaching/bookings`: p50/p90/p99/max over every
# answer and over the 201s, and how many transactions each group-commit writer took. Target
# (issue 21): p99 < 50 ms.
#
#   scripts/bench_bookings.sh                      # release build
#   CLIENTS=2000 scripts/bench_bookings.sh         # more clients for the same 100 slots
#   SKIP_BUILD=1 BIN=/tmp/troupe-old HTTP_LOAD=/tmp/http_load scripts/bench_bookings.sh  # given binaries
#   PERF_OUT=/tmp/race.perf scripts/bench_bookings.sh   # also `perf record -a --call-graph dwarf` the race
#   PERF_HZ=4999 PERF_OUT=/tmp/race.perf scripts/bench_bookings.sh   # at 4,999 samples/s (default 999)
#
# The race is sent by `http_load burst` (node/examples/http_load.rs: one client task per client
# on its own open HTTP/1.1 connection, all on one thread, released at once; latency from the
# release instant to the whole answer), which shares the machine's cores with the three
# nodes. The nodes' CPU time over the race is printed too. Python makes the
# coaches and users first and checks the outcome. Needs curl and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
CLIENTS=${CLIENTS:-1000}
# shellcheck source=lib.sh
. scripts/lib.sh
need curl python3

[ -n "${SKIP_BUILD:-}" ] || cargo build --release --quiet --bin troupe --example http_load
need_load

# Registration and login are not what is measured: a cheap hash and no login rate limit.
AUTH_EXTRA="pbkdf2_iterations = 1000
login_per_account_per_minute = 100000000
login_per_ip_per_minute = 100000000" write_config "$WORK/cluster.toml" n1 n2 n3
ADMIN_PASSWORD=bench-admin-password-1
start_three "$WORK/cluster.toml"

NODE_PIDS="${PIDS[*]}" python3 - "$CLIENTS" "$ADMIN_PASSWORD" "$WORK/data-cluster/troupe.db" "$HTTP_LOAD" "${HTTP[n1]}" "${HTTP[n2]}" "${HTTP[n3]}" <<'PY'
import http.client, json, os, sqlite3, subprocess, sys, threading, time, uuid
clients, admin_pw, db, burst = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
ports = [int(p) for p in sys.argv[5:]]

def req(port, method, path, body=None, token=None, conn=None):
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.request(method, path, json.dumps(body) if body is not None else None, headers)
    r = c.getresponse()
    return r.status, json.loads(r.read() or b"null")

s, v = req(ports[0], "POST", "/auth/login", {"username": "admin", "password": admin_pw})
assert s == 200, (s, v)
admin = v["access_token"]

# 4 coaches in UTC with 25 half-hour slots each on Monday 3 June 2030: 08:00 to 20:30.
COACHES, DAY = 4, "2030-06-03"
coaches = []
for k in range(COACHES):
    body = {"name": f"Bench coach {k}", "timezone": "UTC", "slot_minutes": 30,
            "availability": [{"weekday": 1, "start": "08:00", "end": "20:30"}]}
    s, v = req(ports[k % 3], "POST", "/coaching/coaches", body, admin)
    assert s == 201, (s, v)
    coaches.append(v["id"])
slots = []
for c in coaches:
    s, v = req(ports[0], "GET", f"/coaching/coaches/{c}/availability?from={DAY}T00:00:00Z&to={DAY}T23:59:59Z", token=admin)
    assert s == 200, (s, v)
    slots += [(c, x["start"]) for x in v["slots"]]
assert len(slots) == 100, len(slots)

# One user per client, made before the race (registered and logged in, spread over nodes).
tokens = [None] * clients
def make(i):
    name = "bk" + uuid.uuid4().hex[:12]
    port = ports[i % 3]
    s, v = req(port, "POST", "/auth/register", {"username": name, "email": f"{name}@example.com", "password": "passw0rd-long"})
    assert s == 201, (s, v)
    s, v = req(ports[(i + 1) % 3], "POST", "/auth/login", {"username": name, "password": "passw0rd-long"})
    assert s == 200, (s, v)
    tokens[i] = v["access_token"]
def run(fns, width):
    it = iter(fns)
    lock = threading.Lock()
    def worker():
        while True:
            with lock:
                f = next(it, None)
            if f is None:
                return
            f()
    ts = [threading.Thread(target=worker) for _ in range(width)]
    [t.start() for t in ts]; [t.join() for t in ts]
run([lambda i=i: make(i) for i in range(clients)], 32)

# The race: each client on its own open connection, all released together.
lines = []
for i in range(clients):
    coach, start = slots[i % len(slots)]
    lines.append(json.dumps({"url": f"http://127.0.0.1:{ports[i % 3]}/coaching/bookings", "method": "POST",
                             "token": tokens[i], "body": {"coach_id": coach, "start": start}}))
def node_cpu_s():
    # user + system CPU seconds of the three node processes so far
    total = 0
    for pid in os.environ["NODE_PIDS"].split():
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")
def batches():
    # the nodes' group-commit counters (`troupe_store_batch*_total`), summed over nodes
    out = {}
    for port in ports:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.request("GET", "/metrics")
        for line in conn.getresponse().read().decode().splitlines():
            for kind in ("batches", "batch_items"):
                head = f'troupe_store_{kind}_total{{batch="'
                if line.startswith(head):
                    name, value = line[len(head):].split('"} ')
                    out[(name, kind)] = out.get((name, kind), 0) + int(float(value))
    return out
batches0 = batches()
cpu0 = node_cpu_s()
t0 = time.perf_counter()
cmd = [burst, "burst"]
if os.environ.get("PERF_OUT"):  # a profile of the whole machine while the race runs
    cmd = ["perf", "record", "-q", "-a", "--call-graph", "dwarf,16384", "-F", os.environ.get("PERF_HZ", "999"), "-o", os.environ["PERF_OUT"], "--"] + cmd
answers = subprocess.run(cmd, input="\n".join(lines), capture_output=True, text=True, check=True).stdout
wall = time.perf_counter() - t0
node_cpu = node_cpu_s() - cpu0
written = {k: v - batches0.get(k, 0) for k, v in batches().items()}
results = [None] * clients
for line in answers.splitlines():
    a = json.loads(line)
    coach, start = slots[a["i"] % len(slots)]
    results[a["i"]] = (a["status"], a["ms"], coach, start)
assert all(r is not None for r in results), "every client answered"
race_ms = max(r[1] for r in results)

booked = [r for r in results if r[0] == 201]
taken = [r for r in results if r[0] == 409]
other = [r for r in results if r[0] not in (201, 409)]
distinct = len({(r[2], r[3]) for r in booked})
left = 0
for c in coaches:
    s, v = req(ports[1], "GET", f"/coaching/coaches/{c}/availability?from={DAY}T00:00:00Z&to={DAY}T23:59:59Z", token=admin)
    left += len(v["slots"])
q = "SELECT COUNT(*) FROM coaching_bookings WHERE status = 'booked' AND coach_id IN (%s)" % ",".join("?" * len(coaches))
rows = sqlite3.connect(f"file:{db}?mode=ro", uri=True).execute(q, coaches).fetchone()[0]

# Where the coaches live: each is served on its home node (rendezvous hashing of its id),
# so how many each node hosts decides how the race's writes are spread.
s, v = req(ports[0], "GET", "/dashboard/state", token=admin)
homes = {node: len(set(p.get("coach", {}).get("ids", [])) & set(coaches)) for node, p in v["placement"].items()} if s == 200 else {}

def pct(xs):
    xs = sorted(xs)
    pick = lambda q: xs[min(len(xs) - 1, int(q * len(xs)))]
    return f"p50 {pick(0.5):.1f} ms  p90 {pick(0.9):.1f} ms  p99 {pick(0.99):.1f} ms  max {xs[-1]:.1f} ms"
print(f"POST /coaching/bookings: {clients} clients racing for 100 slots of {COACHES} coaches on 3 nodes (last answer {race_ms:.0f} ms after the release; {wall:.2f} s with connecting)")
print(f"  201: {len(booked)} ({distinct} distinct slots)  409: {len(taken)}  other: {len(other)}" + (f" (first: {other[0]})" if other else ""))
print(f"  open slots left: {left}  live bookings in the store: {rows}")
print("  coaches per home node: " + ", ".join(f"{n} {k}" for n, k in sorted(homes.items())))
print(f"  every answer: {pct([r[1] for r in results])}")
print(f"  the nodes' CPU over the race (connecting included): {node_cpu * 1000:.0f} ms, {node_cpu * 1e6 / clients:.0f} us per client")
print(f"  201 answers:  {pct([r[1] for r in booked])}")
groups = sorted({name for name, _ in written if written[(name, "batches")]})
print("  group commit over the race (items in batches): " + ", ".join(
    f'{name} {written[(name, "batch_items")]} in {written[(name, "batches")]}' for name in groups))
ok = len(booked) == 100 and distinct == 100 and len(taken) == clients - 100 and left == 0 and rows == 100
print("  exactly 100 bookings: " + ("yes" if ok else "NO"))
sys.exit(0 if ok else 1)
PY
