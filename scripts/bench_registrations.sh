#!/usr/bin/env bash
# Event registration throughput with exact capacity (issue 21: at least 2,000 requests/s on
# one node, capacity exact). Prints a markdown report on stdout.
#
#   scripts/bench_registrations.sh                        # 20,000 users, capacity 5,000
#   USERS=5000 CAPACITY=1000 CONNS=64 scripts/bench_registrations.sh
#   STORAGE_URL=postgres://postgres@127.0.0.1/bench_scratch scripts/bench_registrations.sh
#   TROUPE_BIN=target/debug/troupe USERS=500 CAPACITY=100 scripts/bench_registrations.sh   # smoke
#
# One release node (the embedded SQLite store, or STORAGE_URL: give it a scratch database,
# the run leaves its users and event there). USERS users are registered and logged in
# (PBKDF2 at 1,000 iterations, login limits off), one of them creates an event of CAPACITY
# seats, then every user's `POST /events/:id/register` is sent exactly once over CONNS
# connections (`http_load each`, node/examples/http_load.rs). Checked: every answer 200, `registered` answers ==
# CAPACITY, `waitlisted` answers == USERS - CAPACITY with positions 1..USERS-CAPACITY each
# once, and the event's counters (and, on SQLite, its rows) agree.
#
# Needs curl and python3 (and sqlite3 for the row check on SQLite).
set -euo pipefail
cd "$(dirname "$0")/.."

USERS=${USERS:-20000}
CAPACITY=${CAPACITY:-5000}
CONNS=${CONNS:-128}
STORAGE_URL=${STORAGE_URL:-}
# shellcheck source=lib.sh
. scripts/lib.sh
need curl python3

if [ -n "${TROUPE_BIN:-}" ]; then BIN=$TROUPE_BIN; else cargo build --release --quiet --bin troupe; fi

EXTRA=""
[ -z "$STORAGE_URL" ] || EXTRA="[storage]
url = \"$STORAGE_URL\""
RUN=$(date +%s)
AUTH_EXTRA="pbkdf2_iterations = 1000
login_per_account_per_minute = 100000000
login_per_ip_per_minute = 100000000" write_config "$WORK/one.toml" r1
$BIN node --config "$WORK/one.toml" --name r1 > "$WORK/r1.log" 2>&1 &
PIDS+=($!)
PORT=${HTTP[r1]}
wait_health "$PORT"

T0=$(date +%s)
make_users "$PORT" "$USERS" "reg$RUN" "$WORK/tokens"
USERS_S=$(($(date +%s) - T0))
ORGANISER=$(head -1 "$WORK/tokens")
EVENT=$(curl -sf -X POST "http://127.0.0.1:$PORT/events" -H "authorization: Bearer $ORGANISER" \
  -H 'content-type: application/json' \
  -d "{\"title\":\"Bench talk\",\"start\":\"2030-03-01T09:30:00Z\",\"end\":\"2030-03-01T11:00:00Z\",\"timezone\":\"Europe/Paris\",\"capacity\":$CAPACITY}" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
python3 - "$EVENT" "$WORK/tokens" > "$WORK/register.jsonl" <<'PY'
import json, sys
for t in open(sys.argv[2]).read().split():
    print(json.dumps({"method": "POST", "path": f"/events/{sys.argv[1]}/register", "token": t}))
PY
LOAD=$(uptime | sed 's/.*load average: //')
need_load
"$HTTP_LOAD" each "$PORT" "$CONNS" "$WORK/register.jsonl" "$WORK/register.out" > "$WORK/register.json"
curl -sf "http://127.0.0.1:$PORT/events/$EVENT" -H "authorization: Bearer $ORGANISER" > "$WORK/event.json"
ROWS="n/a (not SQLite)"
if [ -z "$STORAGE_URL" ]; then
  ROWS=$(sqlite3 "$WORK/data-one/troupe.db" \
    "SELECT status || ' ' || COUNT(*) FROM gathering_registrations WHERE event_id = '$EVENT' GROUP BY status ORDER BY status" | paste -sd, -)
fi

python3 - "$WORK" "$USERS" "$CAPACITY" "$CONNS" "$USERS_S" "$LOAD" "$ROWS" "${STORAGE_URL:+PostgreSQL}" <<'PY'
import json, sys
work, users, capacity, conns, users_s, load, rows, backend = sys.argv[1:9]
users, capacity = int(users), int(capacity)
s = json.load(open(f"{work}/register.json"))
answers = [json.loads(l) for l in open(f"{work}/register.out")]
ok = [a["body"] for a in answers if a["status"] == 200]
registered = sum(1 for b in ok if b["status"] == "registered")
waitlisted = [b.get("position") for b in ok if b["status"] == "waitlisted"]
event = json.load(open(f"{work}/event.json"))
checks = {
    "every answer 200": len(ok) == users,
    "registered answers == capacity": registered == capacity,
    "waitlisted answers == the rest": len(waitlisted) == users - capacity,
    "waitlist positions 1..rest, each once": sorted(waitlisted) == list(range(1, users - capacity + 1)),
    "event counters agree": (event["registered"], event["waitlisted"]) == (capacity, users - capacity),
}
lat = s["latency_ms"]
print(f"## Event registration, one node ({backend or 'SQLite'})")
print()
print("| what | value |")
print("|---|---|")
print(f"| users made (register + login) | {users} in {users_s} s |")
print(f"| `POST /events/:id/register`, each user once, {conns} connections | {s['requests']} in {s['seconds']} s: **{s['per_s']:.0f} requests/s** |")
print(f"| latency p50 / p90 / p99 / max (ms) | {lat['p50']} / {lat['p90']} / {lat['p99']} / {lat['max']} |")
print(f"| answers by status | {s['statuses']} |")
print(f"| registered / waitlisted answers | {registered} / {len(waitlisted)} (capacity {capacity}) |")
print(f"| event afterwards (`GET /events/:id`) | registered {event['registered']}, waitlisted {event['waitlisted']} |")
print(f"| rows in `gathering_registrations` | {rows} |")
print(f"| load average before the run (1/5/15 min) | {load} |")
print(f"| checks | {'all passed' if all(checks.values()) else 'FAILED: ' + ', '.join(k for k, v in checks.items() if not v)} |")
sys.exit(0 if all(checks.values()) else 1)
PY
