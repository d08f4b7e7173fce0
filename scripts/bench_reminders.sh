#!/usr/bin/env bash
# Durable reminders at scale (issue 21: 10,000 pending reminders on one node fire within
# 1 s of their due time, p99). Prints a markdown report on stdout.
#
#   scripts/bench_reminders.sh                      # 10,000 due at once, then 10,000 over 5 s
#   COUNT=20000 LEAD_S=30 SPREAD_MS=10000 POLL_MS=500 scripts/bench_reminders.sh
#   TROUPE_BIN=target/debug/troupe COUNT=1000 scripts/bench_reminders.sh   # smoke
#
# One release node on the embedded SQLite store, [reminders] poll_ms = POLL_MS. USERS users
# are made through the API (the reminders are theirs, so each fired `reminder.due` becomes
# a real notification: the notifications service consumes every one, part of the load).
# Two rounds, each COUNT rows written straight into `reminders` (0011_reminders.sql: unique
# UUID ids, shard id % 64, kind `reminder.due`, an event-reminder payload, no expiry):
#   1. all due at once, LEAD_S seconds after they are written;
#   2. due times spread evenly over SPREAD_MS, starting LEAD_S seconds after.
# Each round waits until every row has `fired_at`, then reports p50/p99/max of
# `fired_at - due_at` from the table, and how many `reminder.due` rows the notification log
# holds for them.
#
# Needs curl, python3 and sqlite3.
set -euo pipefail
cd "$(dirname "$0")/.."

COUNT=${COUNT:-10000}
USERS=${USERS:-100}
LEAD_S=${LEAD_S:-20}
SPREAD_MS=${SPREAD_MS:-5000}
POLL_MS=${POLL_MS:-1000}
# shellcheck source=lib.sh
. scripts/lib.sh
need curl python3 sqlite3

if [ -n "${TROUPE_BIN:-}" ]; then BIN=$TROUPE_BIN; else cargo build --release --quiet --bin troupe; fi

EXTRA="[reminders]
poll_ms = $POLL_MS" AUTH_EXTRA="pbkdf2_iterations = 1000
login_per_account_per_minute = 100000000
login_per_ip_per_minute = 100000000" write_config "$WORK/one.toml" m1
$BIN node --config "$WORK/one.toml" --name m1 > "$WORK/m1.log" 2>&1 &
PIDS+=($!)
PORT=${HTTP[m1]}
DB="$WORK/data-one/troupe.db"
wait_health "$PORT"
PREFIX="rem$(date +%s)"
make_users "$PORT" "$USERS" "$PREFIX" "$WORK/tokens"

# round NAME SPREAD_MS: writes COUNT reminders due LEAD_S s from now (spread over SPREAD_MS),
# waits for all to fire and prints one table row.
round() {
  local name=$1 spread=$2 base pending
  base=$(($(date +%s%3N) + LEAD_S * 1000))
  python3 - "$name" "$COUNT" "$base" "$spread" "$PREFIX" > "$WORK/$name.sql" <<'PY'
import json, sys, uuid
name, count, base, spread, prefix = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
print(".timeout 10000")
print("BEGIN;")
print(f"CREATE TEMP TABLE bench_users AS SELECT id, ROW_NUMBER() OVER (ORDER BY id) - 1 AS n FROM users WHERE username LIKE '{prefix}-%';")
print("CREATE TEMP TABLE r (id TEXT, subject TEXT, u BIGINT, due_at BIGINT, shard BIGINT, payload TEXT);")
for i in range(count):
    due = base + (i * spread // count if spread else 0)
    payload = json.dumps({"event_id": f"{name}-{i}", "title": f"Bench {name} {i}",
                          "start": "2030-03-01T09:30:00.000Z", "location": "Room 4"})
    print(f"INSERT INTO r VALUES ('{uuid.uuid4()}', 'bench:{name}:{i}', {i}, {due}, {i % 64}, '{payload}');")
print("INSERT INTO reminders (id, subject, user_id, kind, due_at, expires_at, shard, payload, created_at) "
      "SELECT r.id, r.subject, b.id, 'reminder.due', r.due_at, NULL, r.shard, r.payload, "
      f"{base - 20000} FROM r JOIN bench_users b ON b.n = r.u % (SELECT COUNT(*) FROM bench_users);")
print("COMMIT;")
PY
  sqlite3 "$DB" < "$WORK/$name.sql"
  local written; written=$(sqlite3 "$DB" "SELECT COUNT(*) FROM reminders WHERE subject LIKE 'bench:$name:%'")
  [ "$written" = "$COUNT" ] || { echo "round $name: $written of $COUNT reminders written" >&2; exit 1; }
  local load; load=$(uptime | sed 's/.*load average: //')
  local deadline=$((base / 1000 + spread / 1000 + 120))
  while :; do
    pending=$(sqlite3 "$DB" ".timeout 5000" "SELECT COUNT(*) FROM reminders WHERE subject LIKE 'bench:$name:%' AND fired_at IS NULL")
    [ "$pending" = 0 ] && break
    [ "$(date +%s)" -lt "$deadline" ] || { echo "round $name: $pending reminders still pending" >&2; break; }
    sleep 0.5
  done
  sleep 3  # the notifications lane drains the outbox
  sqlite3 -json "$DB" ".timeout 5000" "SELECT fired_at - due_at AS late, outcome FROM reminders WHERE subject LIKE 'bench:$name:%'" > "$WORK/$name.json"
  local logged; logged=$(sqlite3 "$DB" ".timeout 5000" "SELECT COUNT(*) FROM notification_log l JOIN reminders r ON r.id = l.event_id WHERE r.subject LIKE 'bench:$name:%'")
  python3 - "$WORK/$name.json" "$COUNT" "$spread" "$pending" "$logged" "$load" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))
count, spread, pending, logged, load = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
late = sorted(r["late"] for r in rows if r["late"] is not None)
fired = sum(1 for r in rows if r["outcome"] == "fired")
def pct(p): return late[min(len(late) - 1, max(0, -(-p * len(late) // 100) - 1))] if late else None
when = "all due at once" if not spread else f"due over {spread} ms"
print(f"| {count:,} {when} | {fired} fired, {pending} pending | {pct(50)} / {pct(99)} / {late[-1] if late else None} | {logged} | {load} |")
PY
}

echo "## Reminders, one node (SQLite, poll_ms = $POLL_MS)"
echo
echo "| round | rows | \`fired_at - due_at\` p50 / p99 / max (ms) | \`reminder.due\` notification log rows | load average before |"
echo "|---|---|---|---|---|"
round at_once 0
round spread "$SPREAD_MS"
