#!/usr/bin/env bash
# Start-up with a large backlog (issue 24: a node with 1,000,000 events waiting starts
# serving in under 2 s with RSS under 100 MiB). Prints a markdown report on stdout.
#
#   scripts/bench_outbox_start.sh                 # 1,000,000 events waiting
#   EVENTS=100000 scripts/bench_outbox_start.sh
#   TROUPE_BIN=target/debug/troupe EVENTS=10000 scripts/bench_outbox_start.sh   # smoke
#
# One release node on the embedded SQLite store, with [mqtt] pointing at a port where no
# broker listens, so nothing drains: it starts once (migrations), stops, EVENTS rows are
# written into its `outbox` table (python3's sqlite3), and it starts again. Measured: from
# the spawn to the first `GET /health` answered 200, RSS then, and RSS and the claims held
# 10 s later (the relay holds at most [events] max_in_flight rows).
#
# Needs curl, python3.
set -euo pipefail
cd "$(dirname "$0")/.."

EVENTS=${EVENTS:-1000000}
# shellcheck source=lib.sh
. scripts/lib.sh
need curl python3
if [ -n "${TROUPE_BIN:-}" ]; then BIN=$TROUPE_BIN; else cargo build --release --quiet --bin troupe; fi

DEAD_PORT=$(free_port)
EXTRA="[mqtt]
host = \"127.0.0.1\"
port = $DEAD_PORT
[events]
max_outbox_depth = 100000000
backoff_base_ms = 1000" write_config "$WORK/one.toml" s1
PORT=${HTTP[s1]}
$BIN node --config "$WORK/one.toml" --name s1 > "$WORK/s1.log" 2>&1 &
PID=$!
PIDS+=($PID)
wait_health "$PORT"
kill "$PID"; wait "$PID" 2>/dev/null || true
DB=$WORK/data-one/troupe.db
python3 - "$DB" "$EVENTS" <<'PY'
import json, sqlite3, sys, time, uuid
db, n = sys.argv[1], int(sys.argv[2])
c = sqlite3.connect(db)
now = int(time.time() * 1000)
def rows():
    for i in range(n):
        eid = str(uuid.uuid4())
        body = json.dumps({"id": eid, "type": "bench.event", "time": "2026-12-05T00:00:00.000Z",
                           "source": "s1", "payload": {"run": "start", "seq": i}})
        yield (eid, now * 1000 + i, "", body, now)
c.executemany("INSERT INTO outbox (id, ord, sink, body, created_at) VALUES (?, ?, ?, ?, ?)", rows())
c.commit()
print(c.execute("SELECT COUNT(*) FROM outbox").fetchone()[0], file=sys.stderr)
PY
SIZE=$(du -m "$DB" | cut -f1)
T0=$(date +%s%N)
$BIN node --config "$WORK/one.toml" --name s1 > "$WORK/s1.log" 2>&1 &
PID=$!
PIDS+=($PID)
until curl -sf "http://127.0.0.1:$PORT/health" > /dev/null; do sleep 0.01; done
T1=$(date +%s%N)
RSS0=$(awk '/VmRSS/ {print $2}' "/proc/$PID/status")
sleep 10
RSS10=$(awk '/VmRSS/ {print $2}' "/proc/$PID/status")
HWM=$(awk '/VmHWM/ {print $2}' "/proc/$PID/status")
DEPTH=$(curl -sf "http://127.0.0.1:$PORT/metrics" | awk '$1 == "troupe_outbox_depth" {print $2}')
HELD=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(\"SELECT COUNT(*) FROM outbox WHERE claimed_by <> ''\").fetchone()[0])" "$DB")
MS=$(( (T1 - T0) / 1000000 ))
echo "## Start-up with $EVENTS events waiting (SQLite, broker unreachable)"
echo
echo "| what | value |"
echo "|---|---|"
echo "| database file | $SIZE MiB |"
echo "| spawn -> first \`GET /health\` 200 | **$MS ms** |"
echo "| RSS at that moment | **$((RSS0 / 1024)) MiB** |"
echo "| RSS 10 s later / peak (VmHWM) | $((RSS10 / 1024)) MiB / $((HWM / 1024)) MiB |"
echo "| \`troupe_outbox_depth\` 10 s later | $DEPTH |"
echo "| rows claimed (held by the relay) 10 s later | $HELD |"
echo "| load average (1/5/15 min) | $(uptime | sed 's/.*load average: //') |"
