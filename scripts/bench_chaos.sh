#!/usr/bin/env bash
# Chaos soak of the write path (issue 24: 60 s of registrations with a worker killed every
# 100 ms and a node SIGKILLed every 10 s: 0 acknowledged events lost, 0 duplicates after
# dedup, under 0.1 % of requests failed). Prints a markdown report on stdout.
#
#   scripts/bench_chaos.sh                       # 60 s, 8 clients
#   DURATION=20 CLIENTS=4 scripts/bench_chaos.sh
#   TROUPE_BIN=target/debug/troupe DURATION=10 scripts/bench_chaos.sh   # smoke
#
# Three release nodes on one SQLite file, events to a private Mosquitto that
# `mosquitto_sub` (QoS 1) records. CLIENTS Python threads register users as fast as they
# can, each request to a random node, with an `Idempotency-Key`; a request that got no
# answer (its node was killed) is sent again to another node under the same key, as the
# issue allows clients to (a 4xx/5xx answer is final and counts as failed). `troupe chaos` kills a
# random worker actor 10 times a second through n1, and n2 and n3 are SIGKILLed in turn
# every 10 s and started again at once. Then, once the outbox is empty: every
# acknowledged (201) registration must have exactly one distinct `user.registered` event
# id on the broker and exactly one welcome notification row; every other answer counts as
# a failed request.
#
# Needs /usr/sbin/mosquitto, mosquitto_sub, curl, python3.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-60}
CLIENTS=${CLIENTS:-8}
# shellcheck source=lib.sh
. scripts/lib.sh
need curl python3 mosquitto_sub
if [ -n "${TROUPE_BIN:-}" ]; then BIN=$TROUPE_BIN; else cargo build --release --quiet --bin troupe; fi

start_mosquitto
mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -t user-registration-events > "$WORK/mqtt.jsonl" &
PIDS+=($!)

AUTH_EXTRA="pbkdf2_iterations = 1000
login_per_account_per_minute = 100000000
login_per_ip_per_minute = 100000000" EXTRA="[mqtt]
host = \"127.0.0.1\"
port = $MQTT_PORT
[events]
claim_ttl_ms = 3000
backoff_base_ms = 20
backoff_max_ms = 1000
max_attempts = 1000" write_config "$WORK/c.toml" n1 n2 n3
declare -A NODE_PID
start() {
  $BIN node --config "$WORK/c.toml" --name "$1" >> "$WORK/$1.log" 2>&1 &
  NODE_PID[$1]=$!
  PIDS+=($!)
}
for n in n1 n2 n3; do start "$n"; done
for n in n1 n2 n3; do wait_health "${HTTP[$n]}"; done
sleep 2

echo "${HTTP[n1]} ${HTTP[n2]} ${HTTP[n3]}" > "$WORK/ports"
python3 - "$WORK" "$DURATION" "$CLIENTS" > "$WORK/load.json" <<'PY' &
import http.client, json, random, sys, threading, time, urllib.request, urllib.error
work, duration, clients = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
ports = open(f"{work}/ports").read().split()
acked, failed, statuses, retried = [], [], {}, [0]
lock = threading.Lock()
end = time.time() + duration
def client(t):
    i = 0
    while time.time() < end:
        name = f"chaos_{t}_{i}_{int(end)}"
        i += 1
        body = json.dumps({"username": name, "email": f"{name}@example.com",
                           "password": "passw0rd-long"}).encode()
        # The registration's own Idempotency-Key: a request whose connection dropped (its
        # node was killed) is sent again, to another node, and runs once.
        for attempt in range(10):
            port = random.choice(ports)
            req = urllib.request.Request(f"http://127.0.0.1:{port}/auth/register", body,
                                         {"content-type": "application/json",
                                          "idempotency-key": name})
            try:
                with urllib.request.urlopen(req, timeout=10) as r:
                    status = r.status
            except urllib.error.HTTPError as e:
                status = e.code
            except (urllib.error.URLError, ConnectionError, http.client.HTTPException) as e:
                with lock: retried[0] += 1
                status = "no answer: " + type(getattr(e, "reason", e)).__name__
                time.sleep(0.05)
                continue
            break
        with lock:
            statuses[str(status)] = statuses.get(str(status), 0) + 1
            (acked if status == 201 else failed).append(name)
threads = [threading.Thread(target=client, args=(t,)) for t in range(clients)]
for t in threads: t.start()
for t in threads: t.join()
json.dump({"acked": acked, "failed": failed, "statuses": statuses, "refused_then_retried": retried[0]}, sys.stdout)
PY
LOAD_PID=$!
LOADAVG=$(uptime | sed 's/.*load average: //')
TROUPE_ADMIN_TOKEN=$TOKEN $BIN chaos --url "http://127.0.0.1:${HTTP[n1]}" --rate 10 --duration "${DURATION}s" > "$WORK/chaos.log" 2>&1 &
CHAOS_PID=$!
KILLS=0
T_END=$(( $(date +%s) + DURATION ))
VICTIMS=(n2 n3)
while [ "$(date +%s)" -lt $((T_END - 5)) ]; do
  sleep 10
  v=${VICTIMS[$((KILLS % 2))]}
  kill -9 "${NODE_PID[$v]}" 2>/dev/null || true
  wait "${NODE_PID[$v]}" 2>/dev/null || true
  KILLS=$((KILLS + 1))
  start "$v"
done
wait "$LOAD_PID"
wait "$CHAOS_PID" || true
for n in n1 n2 n3; do wait_health "${HTTP[$n]}"; done
# Drained: the outbox is empty (counted every second).
for _ in $(seq 120); do
  D=$(curl -sf "http://127.0.0.1:${HTTP[n1]}/metrics" | awk '$1 == "troupe_outbox_depth" {print $2}')
  [ "${D:-1}" = "0" ] && break
  sleep 1
done
sleep 2
python3 - "$WORK" "$DURATION" "$CLIENTS" "$KILLS" "$LOADAVG" <<'PY'
import json, sqlite3, sys, collections
work, duration, clients, kills, loadavg = sys.argv[1:6]
load = json.load(open(f"{work}/load.json"))
acked = set(load["acked"])
events = collections.defaultdict(set)
for line in open(f"{work}/mqtt.jsonl"):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    if e.get("type") == "user.registered":
        events[e["payload"]["username"]].add(e["id"])
db = sqlite3.connect(f"{work}/data-c/troupe.db")
welcomes = collections.Counter(
    name for (name,) in db.execute(
        "SELECT u.username FROM notifications n JOIN users u ON u.id = n.user_id "
        "WHERE n.kind = 'user.registered'"))
missing_mqtt = [a for a in acked if a not in events]
dup_mqtt = [a for a in acked if len(events.get(a, ())) > 1]
missing_note = [a for a in acked if welcomes[a] == 0]
dup_note = [a for a in acked if welcomes[a] > 1]
total = len(load["acked"]) + len(load["failed"])
killed = [l for l in open(f"{work}/chaos.log").read().splitlines() if l.startswith("troupe chaos:") and "killed" in l][-1:]
pct = 100.0 * len(load["failed"]) / max(total, 1)
print(f"## Chaos soak: {duration} s, {clients} clients, 3 nodes (SQLite)")
print()
print("| what | value |")
print("|---|---|")
print(f"| registrations sent / acknowledged (201) | {total} / {len(acked)} ({len(acked)/float(duration):.0f}/s) |")
print(f"| failed requests | **{len(load['failed'])} ({pct:.3f} %)** |")
print(f"| answers by status | {load['statuses']} |")
print(f"| requests sent again (same Idempotency-Key) after no answer from a killed node | {load['refused_then_retried']} |")
print(f"| node SIGKILLs (n2, n3 in turn) | {kills} |")
print(f"| worker kills (`troupe chaos --rate 10`) | {killed[0] if killed else 'n/a'} |")
print(f"| acknowledged with no `user.registered` on the broker | **{len(missing_mqtt)}** |")
print(f"| acknowledged with more than one event id | **{len(dup_mqtt)}** |")
print(f"| acknowledged with no welcome notification / more than one | **{len(missing_note)} / {len(dup_note)}** |")
print(f"| load average before the run (1/5/15 min) | {loadavg} |")
ok = not (missing_mqtt or dup_mqtt or missing_note or dup_note)
print(f"| checks | {'all passed' if ok else 'FAILED'} |")
sys.exit(0 if ok else 1)
PY
