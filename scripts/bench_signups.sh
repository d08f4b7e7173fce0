#!/usr/bin/env bash
# User registration throughput on one node, end to end (issue 24: the transactional outbox
# keeps at least 0.8x of the previous registration throughput, measured in the same run).
# Prints a markdown report on stdout.
#
#   TROUPE_BIN=/tmp/troupe-base scripts/bench_signups.sh; TROUPE_BIN=/tmp/troupe-new scripts/bench_signups.sh
#   USERS=2000 CONNS=32 ROUNDS=3 scripts/bench_signups.sh
#
# One node on the embedded SQLite store, publishing to a private Mosquitto (QoS 1), with
# PBKDF2 at 1,000 iterations so the password hash does not hide the write path. Each round
# registers USERS new users once each over CONNS keep-alive connections (`http_load each`,
# node/examples/http_load.rs): every registration writes the user, the confirmation code
# and two events (`user.registration_code`, `user.registered`), which the node then
# delivers to the broker and the notifications service while later rounds run. Reported:
# each round's rate and latency, and how long after the last round the outbox was empty.
#
# Needs /usr/sbin/mosquitto, curl and python3.
set -euo pipefail
cd "$(dirname "$0")/.."

USERS=${USERS:-2000}
CONNS=${CONNS:-32}
ROUNDS=${ROUNDS:-3}
# shellcheck source=lib.sh
. scripts/lib.sh
need curl python3

if [ -n "${TROUPE_BIN:-}" ]; then BIN=$TROUPE_BIN; else cargo build --release --quiet --bin troupe; fi

start_mosquitto
EXTRA="[mqtt]
host = \"127.0.0.1\"
port = $MQTT_PORT"
AUTH_EXTRA='pbkdf2_iterations = 1000' write_config "$WORK/one.toml" s1
$BIN node --config "$WORK/one.toml" --name s1 > "$WORK/s1.log" 2>&1 &
PIDS+=($!)
PORT=${HTTP[s1]}
wait_health "$PORT"
need_load

echo "binary: \`$BIN\`; $USERS registrations per round over $CONNS connections; load before: $(uptime | sed 's/.*load average: //')"
echo
echo "| round | registrations/s | p50 / p99 / max ms | statuses |"
echo "|---|---|---|---|"
RUN=$(date +%s)
for r in $(seq "$ROUNDS"); do
  python3 - "$USERS" "su$RUN-$r" > "$WORK/signup.jsonl" <<'PY'
import json, sys
n, prefix = int(sys.argv[1]), sys.argv[2]
for i in range(n):
    u = {"username": f"{prefix}-{i}", "password": "bench-passw0rd", "email": f"{prefix}-{i}@example.com"}
    print(json.dumps({"method": "POST", "path": "/auth/register", "body": u}))
PY
  "$HTTP_LOAD" each "$PORT" "$CONNS" "$WORK/signup.jsonl" > "$WORK/signup.json"
  python3 - "$r" "$WORK/signup.json" <<'PY'
import json, sys
r, d = sys.argv[1], json.load(open(sys.argv[2]))
l = d["latency_ms"]
print(f"| {r} | {d['per_s']:.0f} | {l['p50']:.1f} / {l['p99']:.1f} / {l['max']:.1f} | {d['statuses']} |")
PY
done
T0=$(date +%s.%N)
DEPTH=""
for _ in $(seq 600); do
  DEPTH=$(curl -sf "http://127.0.0.1:$PORT/metrics" | awk '$1 == "troupe_outbox_depth" {print $2}')
  [ "$DEPTH" = "0" ] && break
  sleep 0.1
done
echo
echo "outbox empty $(python3 -c "print(f'{$(date +%s.%N)-$T0:.1f}')") s after the last round (depth now: ${DEPTH:-not reported}); load after: $(uptime | sed 's/.*load average: //')"
