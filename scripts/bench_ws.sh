#!/usr/bin/env bash
# Benchmarks of WebSocket connections and chat (issue 6). Prints a markdown report on stdout.
#
#   scripts/bench_ws.sh                          # release build, defaults below
#   PROFILE=dev IDLE=19000 BCAST=19800 scripts/bench_ws.sh
#   PARTS=latency scripts/bench_ws.sh            # only some of: idle latency broadcast
#   IDLE_SETTLE=10 PARTS="idle latency" scripts/bench_ws.sh   # seconds between idle and latency
#   BIN=/tmp/troupe-old DRIVER=/tmp/ws_bench-old scripts/bench_ws.sh   # other binaries (A/B)
#
# - idle: IDLE idle connections on n1; the node's RSS growth per connection.
# - latency: alice sends POST /messages/send on n1 at RATE/s for SECS s; bob is connected to
#   n3; send (scheduled time) to delivery of the frame at bob, p50/p99/max.
# - broadcast: BCAST connections spread over n1..n3 (held by two listener processes, each under
#   the per-process open-file limit), REPEATS admin broadcasts from n2 every INTERVAL_MS; per
#   broadcast, the time until the last connection got it.
#
# Needs curl and python3. Open files: every process here is limited by `ulimit -Hn`
# (20000 on the machine these numbers come from), which caps connections per node.
set -euo pipefail
cd "$(dirname "$0")/.."

PROFILE=${PROFILE:-release}
IDLE=${IDLE:-19950}
RATE=${RATE:-1000}
SECS=${SECS:-10}
BCAST=${BCAST:-20000}
REPEATS=${REPEATS:-20}
INTERVAL_MS=${INTERVAL_MS:-500}
PARTS=${PARTS:-idle latency broadcast}
part() { [[ " $PARTS " == *" $1 "* ]]; }
# shellcheck source=lib.sh
. scripts/lib.sh
ulimit -n "$(ulimit -Hn)"

if [ "$PROFILE" = release ]; then
  cargo build --release --quiet --bin troupe --example ws_bench
  DRIVER=${DRIVER:-target/release/examples/ws_bench}
else
  cargo build --quiet --bin troupe --example ws_bench
  BIN=target/debug/troupe; DRIVER=target/debug/examples/ws_bench
fi

AUTH_EXTRA='pbkdf2_iterations = 1000
login_per_account_per_minute = 100000000
login_per_ip_per_minute = 100000000' EXTRA='[ws]
ping_interval_s = 30
idle_timeout_s = 300' write_config "$WORK/cluster.toml" n1 n2 n3
declare -A PID URL
for n in n1 n2 n3; do
  $BIN node --config "$WORK/cluster.toml" --name $n > "$WORK/$n.log" 2>&1 &
  PID[$n]=$!; PIDS+=($!); URL[$n]="http://127.0.0.1:${HTTP[$n]}"
done
for _ in $(seq 200); do curl -sf "${URL[n1]}/ping?node=n3" > /dev/null && curl -sf "${URL[n1]}/ping?node=n2" > /dev/null && break; sleep 0.1; done

echo "## WebSocket and chat ($PROFILE build, $(nproc) cores, load average $(cut -d' ' -f1 /proc/loadavg) at start)"
echo
echo '```'
if part idle; then
  $DRIVER idle "${URL[n1]}" "$IDLE" "${PID[n1]}"
  sleep "${IDLE_SETTLE:-5}" # n1 tears down the idle connections
fi
if part latency; then $DRIVER latency "${URL[n1]}" "${URL[n3]}" "$RATE" "$SECS"; fi
if ! part broadcast; then echo '```'; exit 0; fi
HALF=$((BCAST / 2))
ALL="${URL[n1]},${URL[n2]},${URL[n3]}"
LISTEN_SECS=$(( (REPEATS * INTERVAL_MS) / 1000 + 30 ))
$DRIVER listen "$ALL" "$HALF" "$LISTEN_SECS" a > "$WORK/listen-a.out" &
LA=$!; PIDS+=($LA)
$DRIVER listen "$ALL" "$((BCAST - HALF))" "$LISTEN_SECS" b > "$WORK/listen-b.out" &
LB=$!; PIDS+=($LB)
for _ in $(seq 1200); do
  [ "$(grep -c '^listening' "$WORK/listen-a.out" "$WORK/listen-b.out" | awk -F: '{s+=$2} END {print s}')" = 2 ] && break
  sleep 0.5
done
sleep 2
OPEN=$(curl -sf -H "Authorization: Bearer $TOKEN" "${URL[n2]}/connections" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])' || echo "?")
$DRIVER broadcast "${URL[n2]}" "$TOKEN" "$REPEATS" "$INTERVAL_MS" 2> "$WORK/broadcast.err"
wait $LA $LB || true
python3 - "$WORK/listen-a.out" "$WORK/listen-b.out" "$OPEN" <<'PY'
import sys
per = {}
held = 0
for path in sys.argv[1:3]:
    for line in open(path):
        p = line.split()
        if p[0] == "listening":
            held += int(p[1])
        elif p[0] == "bcast":
            seq, us, n = int(p[1]), int(p[2]), int(p[3])
            c = per.setdefault(seq, [0, 0])
            c[0] = max(c[0], us); c[1] += n
done = sorted(ms / 1000 for ms, n in per.values())
full = sum(1 for ms, n in per.values() if n == held)
p = lambda q: done[min(len(done) - 1, round((len(done) - 1) * q))] if done else float("nan")
print(f"broadcast: connections={held} (GET /connections: {sys.argv[3]}) broadcasts={len(done)} "
      f"fully_delivered={full} completion_ms p50={p(0.5):.1f} p99={p(0.99):.1f} max={max(done, default=float('nan')):.1f}")
print("broadcast: completion_ms in order: " + " ".join(f"{per[k][0] / 1000:.0f}" for k in sorted(per)))
PY
echo '```'
