#!/usr/bin/env bash
# A 2/1 partition under client load (issue 20, "Numbers to reach"): 3 nodes, each in its own
# network namespace on one bridge (scripts/netlab.sh, 198.18.0.0/15 only), one SQLite file.
# Clients write todos through every node; long tasks run; n3 is cut off from n1 and n2 with
# blackhole routes for CUT_S seconds, then healed. Measured:
#   - when each side saw the split (first /cluster poll, every 50 ms, without the other side);
#   - write success per side while cut (target: majority >= 99 %);
#   - duplicate activations: task claims beyond the first, and steps committed by an older
#     claim after a newer one (two live activations at once), from every task's history;
#     troupe_entity_activations_total and troupe_task_takeovers_total deltas from /metrics;
#   - acknowledged todos readable from every node after the heal (target: all);
#   - time until every node's view has all 3 up again after the heal (target: <= 3 s).
#
#   sudo scripts/bench_partition.sh                       # release build
#   sudo PROFILE=debug scripts/bench_partition.sh         # debug build (faster to build)
#   sudo BIN=/tmp/troupe-old SKIP_BUILD=1 scripts/bench_partition.sh
#   CUT_S=15 TASKS=4 STEPS=250 DELAY_MS=100 ...           # the defaults
#
# Needs root, iproute2, curl and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
CUT_S=${CUT_S:-15}
TASKS=${TASKS:-4}
STEPS=${STEPS:-250}
DELAY_MS=${DELAY_MS:-100}
PROFILE=${PROFILE:-release}
BIN=${BIN:-${CARGO_TARGET_DIR:-target}/$PROFILE/troupe}
# shellcheck source=lib.sh
. scripts/lib.sh
# shellcheck source=netlab.sh
. scripts/netlab.sh
need curl python3
lab_need

if [ -z "${SKIP_BUILD:-}" ]; then
  if [ "$PROFILE" = release ]; then cargo build --release --quiet --bin troupe; else cargo build --quiet --bin troupe; fi
fi

lab_up n1 n2 n3
AUTH_EXTRA="pbkdf2_iterations = 1000
login_per_account_per_minute = 100000
login_per_ip_per_minute = 100000" EXTRA="[tasks]
scan_interval_ms = 500" lab_config "$WORK/cluster.toml"
lab_start "$WORK/cluster.toml"
echo "lab: 198.18.$LAB_SUBNET.0/24, binary $BIN"

python3 - "$CUT_S" "$TASKS" "$STEPS" "$DELAY_MS" "${LAB_IP[n1]}" "${LAB_IP[n2]}" "${LAB_IP[n3]}" \
  "$(lab_routes add n3 'n1 n2')" "$(lab_routes del n3 'n1 n2')" <<'PY'
import http.client, json, re, subprocess, sys, threading, time, uuid

cut_s, ntasks, steps, delay_ms = (int(a) for a in sys.argv[1:5])
ips = dict(zip(["n1", "n2", "n3"], sys.argv[5:8]))
cut_cmd, heal_cmd = sys.argv[8], sys.argv[9]
ALL = {"n1", "n2", "n3"}

def req(node, method, path, body=None, token=None, timeout=5):
    c = http.client.HTTPConnection(ips[node], 8080, timeout=timeout)
    try:
        headers = {"content-type": "application/json"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        c.request(method, path, json.dumps(body) if body is not None else None, headers)
        r = c.getresponse()
        raw = r.read()
        try:
            return r.status, json.loads(raw or b"null")
        except ValueError:
            return r.status, raw.decode(errors="replace")
    except Exception as e:
        return None, str(e)
    finally:
        c.close()

def metric(node, name):
    s, text = req(node, "GET", "/metrics")
    if s != 200:
        return None
    return sum(float(m) for m in re.findall(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M))

def user(node):
    name = "pt" + uuid.uuid4().hex[:12]
    s, v = req(node, "POST", "/auth/register", {"username": name, "email": f"{name}@example.com", "password": "passw0rd-long"})
    assert s == 201, (s, v)
    s, v = req(node, "POST", "/auth/login", {"username": name, "password": "passw0rd-long"})
    assert s == 200, (s, v)
    return v["access_token"]

tokens = {n: user(n) for n in ALL}
metrics0 = {n: (metric(n, "troupe_entity_activations_total"), metric(n, "troupe_task_takeovers_total")) for n in sorted(ALL)}

stop = threading.Event()
writes = []  # (started, node, status, id)
views = []   # (t, node, set of up members or None)
lock = threading.Lock()

def writer(node):
    i = 0
    while not stop.is_set():
        i += 1
        t = time.monotonic()
        s, v = req(node, "POST", "/todos", {"title": f"{node} {i}"}, tokens[node])
        with lock:
            writes.append((t, node, s, v.get("id") if s == 201 and isinstance(v, dict) else None))
        time.sleep(0.01)

def poller(node):
    while not stop.is_set():
        t = time.monotonic()
        s, v = req(node, "GET", "/cluster", timeout=1)
        up = {m["name"] for m in v["members"] if m.get("state") == "up"} if s == 200 else None
        with lock:
            views.append((t, node, up))
        time.sleep(0.05)

task_ids = []
for _ in range(ntasks):
    s, v = req("n1", "POST", "/api/v1/eventstreammonitor/tasks", {"name": "across", "steps": steps, "delay_ms": delay_ms}, tokens["n1"])
    assert s == 201, (s, v)
    task_ids.append(v["id"])

threads = [threading.Thread(target=f, args=(n,), daemon=True) for n in sorted(ALL) for f in (writer, poller)]
for th in threads:
    th.start()
time.sleep(3)
t_cut = time.monotonic()
subprocess.run(cut_cmd, shell=True, check=True)
time.sleep(cut_s)
t_heal = time.monotonic()
subprocess.run(heal_cmd, shell=True, check=True)
time.sleep(5)
stop.set()
for th in threads:
    th.join()

def first(node, after, cond):
    for t, n, up in views:
        if n == node and t >= after and up is not None and cond(up):
            return t - after
    return None

split = {n: first(n, t_cut, (lambda up: up == {"n3"}) if n == "n3" else (lambda up: "n3" not in up)) for n in sorted(ALL)}
heal = {n: first(n, t_heal, lambda up: up == ALL) for n in sorted(ALL)}

def success(nodes, lo, hi):
    w = [x for x in writes if x[1] in nodes and lo <= x[0] < hi]
    ok = sum(1 for x in w if x[2] == 201)
    return ok, len(w)

acked = [(n, i) for _, n, s, i in writes if s == 201]
missing = {}
for reader in sorted(ALL):
    missing[reader] = sum(1 for n, i in acked if req(reader, "GET", f"/todos/{i}", token=tokens[n])[0] != 200)

deadline = time.monotonic() + max(60, steps * delay_ms / 1000 * 2)
while True:
    tasks = [req("n1", "GET", f"/api/v1/eventstreammonitor/tasks/{i}", token=tokens["n1"])[1] for i in task_ids]
    if all(t["status"] in ("completed", "failed", "cancelled") for t in tasks) or time.monotonic() > deadline:
        break
    time.sleep(1)
extra_claims = sum(t["activations"] - 1 for t in tasks)
overlaps = 0
dup_steps = 0
for t in tasks:
    acts = [h["activation"] for h in t["history"]]
    overlaps += sum(1 for a, b in zip(acts, acts[1:]) if b < a)
    st = [h["step"] for h in t["history"]]
    dup_steps += len(st) - len(set(st))
metrics1 = {n: (metric(n, "troupe_entity_activations_total"), metric(n, "troupe_task_takeovers_total")) for n in sorted(ALL)}

fmt = lambda d: "never" if d is None else f"{d:.2f} s"
pct = lambda ok, n: f"{100 * ok / n:.2f} % ({ok}/{n})" if n else "n/a"
print()
print(f"| measure (n3 cut off for {cut_s} s) | value | target |")
print("|---|---|---|")
for n in sorted(ALL):
    print(f"| split seen by {n} | {fmt(split[n])} | <= 2 s |")
print(f"| majority (n1+n2) write success while cut | {pct(*success({'n1', 'n2'}, t_cut, t_heal))} | >= 99 % |")
print(f"| minority (n3) write success while cut | {pct(*success({'n3'}, t_cut, t_heal))} | (informative) |")
print(f"| all writes, whole run | {pct(*success(ALL, 0, float('inf')))} | |")
print(f"| acknowledged todos | {len(acked)} | |")
for n in sorted(ALL):
    print(f"| acknowledged todos not readable from {n} after heal | {missing[n]} | 0 |")
for n in sorted(ALL):
    print(f"| views converged on {n} after heal | {fmt(heal[n])} | <= 3 s |")
status = {}
for t in tasks:
    status[t["status"]] = status.get(t["status"], 0) + 1
print(f"| tasks ({ntasks} x {steps} steps of {delay_ms} ms, across the cut) | {status} | all completed |")
print(f"| task claims beyond the first (activations - 1, summed) | {extra_claims} | |")
print(f"| duplicate activations (an older claim committing after a newer one) | {overlaps} | 0 |")
print(f"| steps committed twice | {dup_steps} | 0 |")
for n in sorted(ALL):
    a0, k0 = metrics0[n]
    a1, k1 = metrics1[n]
    d = lambda x, y: "n/a" if x is None or y is None else f"{y - x:.0f}"
    print(f"| {n}: troupe_entity_activations_total / troupe_task_takeovers_total delta | {d(a0, a1)} / {d(k0, k1)} | |")
for t in tasks:
    if t["status"] != "completed":
        print(f"task {t['id']}: {t['status']}, activations {t['activations']}, error {t['error']}")
PY
for n in n1 n2 n3; do echo "$n log: $(wc -l < "$WORK/$n.log") lines"; done
