#!/usr/bin/env bash
# CPU instructions per request, counted by valgrind's callgrind: the same count for the same
# binary and requests whatever else the machine is doing, so it shows a change of a few
# percent that wall-clock runs (scripts/bench.sh) lose in their noise. It counts the
# server's user-space instructions only, not the kernel's share of a request.
#
#   scripts/bench_instr.sh                       # 3000 requests each, release build
#   N=5000 BIN=/tmp/troupe-old scripts/bench_instr.sh
#   TROUPE_TELEMETRY_HISTORY=false scripts/bench_instr.sh   # the node without its history
#
# The release build goes to $CARGO_TARGET_DIR when that is set (else target/), and the
# node measured is $BIN (default: the troupe binary of that build). TROUPE_* variables
# reach the node as they would any node.
#
# Each server runs under callgrind on loopback; one keep-alive connection sends 300 warm-up
# requests, the counters are zeroed, N requests follow, and the counters are dumped: the
# total over N is the instructions per request (timers and gossip of the idle node in that
# window included; they add well under 1 %). Troupe runs as one node with no seeds.
#
# Needs valgrind (callgrind_control), curl and python3.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-3000}
TARGET=${CARGO_TARGET_DIR:-target}
BIN=${BIN:-$TARGET/release/troupe}
# shellcheck source=lib.sh
. scripts/lib.sh
need valgrind callgrind_control curl python3

cargo build --release --quiet --bin troupe --example bare_axum

# Sends $3 GET requests for path $2 to port $1 on one keep-alive connection.
requests() {
  python3 - "$@" <<'PY'
import http.client, sys
port, path, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
c = http.client.HTTPConnection("127.0.0.1", port)
for _ in range(n):
    c.request("GET", path)
    r = c.getresponse()
    body = r.read()
    if r.status != 200:
        sys.exit(f"GET {path}: {r.status} {body!r}")
PY
}

# Runs "$@" under callgrind serving on $PORT, measures GET $URL_PATH, prints instructions/request.
measure() {
  local out="$WORK/cg.$RANDOM"
  valgrind --tool=callgrind --callgrind-out-file="$out.%p" "$@" > "$WORK/valgrind.log" 2>&1 &
  local vg=$!
  PIDS+=("$vg")
  for _ in $(seq 300); do
    curl -sf "http://127.0.0.1:$PORT$URL_PATH" > /dev/null 2>&1 && break
    sleep 0.2
  done
  requests "$PORT" "$URL_PATH" 300
  callgrind_control -z "$vg" > /dev/null
  requests "$PORT" "$URL_PATH" "$N"
  callgrind_control -d "$vg" > /dev/null
  kill -9 "$vg" 2> /dev/null || true
  wait "$vg" 2> /dev/null || true
  local total
  total=$(awk '/^totals:/ {print $2}' "$out".*.1)
  echo $((total / N))
}

PORT=$(free_port) URL_PATH=/health
BARE=$(measure "$TARGET/release/examples/bare_axum" "127.0.0.1:$PORT")

write_config "$WORK/node.toml" n1
PORT=${HTTP[n1]} URL_PATH=/ping
PING=$(measure "$BIN" node --config "$WORK/node.toml" --name n1)

echo "## Instructions per request (callgrind, $N requests on one keep-alive connection)"
echo
echo "| server | instructions per request |"
echo "|---|---|"
echo "| bare axum \`GET /health\` | $BARE |"
echo "| Troupe \`GET /ping\` ($BIN) | $PING ($(python3 -c "print(f'{$PING/$BARE:.2f}')")x bare) |"
