#!/usr/bin/env bash
# CPU per request, user and kernel, of bare axum `GET /health` and a one-node Troupe
# `GET /ping` under the same wrk load: where a throughput ratio comes from. Reads each
# server's threads in /proc before and after each load (user and system ticks, voluntary and
# involuntary context switches) and divides by the requests wrk completed.
#
#   scripts/bench_cpu.sh                     # 3 rounds of 8 s each, release build
#   ROUNDS=5 DURATION=10 BIN=/tmp/troupe-old BARE=/tmp/bare-old scripts/bench_cpu.sh
#
# Needs wrk, curl and python3.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-8}
ROUNDS=${ROUNDS:-3}
# shellcheck source=lib.sh
. scripts/lib.sh
need wrk curl python3

cargo build --release --quiet --bin troupe --example bare_axum
BARE=${BARE:-target/release/examples/bare_axum}

BARE_PORT=$(free_port)
"$BARE" "127.0.0.1:$BARE_PORT" > "$WORK/bare.log" 2>&1 &
BARE_PID=$!
PIDS+=("$BARE_PID")
write_config "$WORK/node.toml" n1
"$BIN" node --config "$WORK/node.toml" --name n1 > "$WORK/n1.log" 2>&1 &
NODE_PID=$!
PIDS+=("$NODE_PID")
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:${HTTP[n1]}/ping" > /dev/null 2>&1 \
    && curl -sf "http://127.0.0.1:$BARE_PORT/health" > /dev/null 2>&1 && break
  sleep 0.1
done

# user ticks, system ticks, voluntary and involuntary switches, summed over the threads of $1
snap() {
  python3 - "$1" <<'PY'
import os, sys
pid = sys.argv[1]; t = [0, 0, 0, 0]
for task in os.listdir(f"/proc/{pid}/task"):
    f = open(f"/proc/{pid}/task/{task}/stat").read().rsplit(")", 1)[1].split()
    t[0] += int(f[11]); t[1] += int(f[12])
    for line in open(f"/proc/{pid}/task/{task}/status"):
        if line.startswith("voluntary_ctxt_switches"): t[2] += int(line.split()[1])
        if line.startswith("nonvoluntary_ctxt_switches"): t[3] += int(line.split()[1])
print(*t)
PY
}

# One load against $2 on server $3 (pid); prints a table row.
measure() {
  local before after n
  before=$(snap "$3")
  n=$(wrk -t2 -c64 -d"${DURATION}s" "$2" | awk '/requests in/ {print $1}')
  after=$(snap "$3")
  python3 - "$1" "$n" "$DURATION" "$(getconf CLK_TCK)" $before $after <<'PY'
import sys
name, n, d, hz = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
a = list(map(int, sys.argv[5:9])); b = list(map(int, sys.argv[9:13]))
x = [b[i] - a[i] for i in range(4)]
us = lambda ticks: ticks / hz / n * 1e6
print(f"| {name} | {n / d:.0f} | {us(x[0]):.2f} | {us(x[1]):.2f} | {x[2] / n:.3f} | {x[3] / n:.3f} |")
PY
}

echo "## CPU per request (wrk -t2 -c64, ${DURATION}s per load, $ROUNDS rounds)"
echo
echo "| server | requests/s | user us/request | kernel us/request | voluntary switches/request | involuntary switches/request |"
echo "|---|---|---|---|---|---|"
for _ in $(seq "$ROUNDS"); do
  measure "bare axum \`GET /health\`" "http://127.0.0.1:$BARE_PORT/health" "$BARE_PID"
  measure "Troupe \`GET /ping\`" "http://127.0.0.1:${HTTP[n1]}/ping" "$NODE_PID"
done
