#!/usr/bin/env bash
# Benchmarks of the SOAP and gRPC ingress (issue 4), measured side by side on one node of
# this machine. Prints a markdown report on stdout.
#
#   scripts/bench_grpc.sh                  # 10 s per load
#   DURATION=20 CONNS=64 scripts/bench_grpc.sh
#   PROFILE=dev scripts/bench_grpc.sh      # without a release build (slower numbers)
#
# Rows:
# - gRPC TokenService/ValidateToken on a node vs. a bare tonic server answering the same
#   call at once (node/examples/bare_tonic.rs), both driven by node/examples/grpc_load.rs;
# - gRPC ImageService/UploadImage of 1 MiB images into the embedded SQLite store, MB/s;
# - SOAP GET /user/soap (LookupUser) vs. the bare axum baseline's GET /health (wrk).
#
# Needs wrk, curl and python3.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
GRPC_CONC=${GRPC_CONC:-64}
GRPC_CONNS=${GRPC_CONNS:-4}
UPLOAD_CONC=${UPLOAD_CONC:-8}
PROFILE=${PROFILE:-release}
# shellcheck source=lib.sh
. scripts/lib.sh
need wrk curl python3

if [ "$PROFILE" = release ]; then
  cargo build --release --quiet --bin troupe --example bare_axum --example bare_tonic --example grpc_load
  DIR=target/release
else
  cargo build --quiet --bin troupe --example bare_axum --example bare_tonic --example grpc_load
  DIR=target/debug
  BIN=$DIR/troupe
fi
LOAD=$DIR/examples/grpc_load

BASE_PORT=$(free_port)
$DIR/examples/bare_axum "127.0.0.1:$BASE_PORT" > "$WORK/bare.log" 2>&1 &
PIDS+=($!)
TONIC_PORT=$(free_port)
$DIR/examples/bare_tonic "127.0.0.1:$TONIC_PORT" > "$WORK/bare_tonic.log" 2>&1 &
PIDS+=($!)

AUTH_EXTRA='pbkdf2_iterations = 1000
login_per_account_per_minute = 100000000
login_per_ip_per_minute = 100000000' EXTRA='[images]
max_bytes = 4194304' write_config "$WORK/cluster.toml" n1
$BIN node --config "$WORK/cluster.toml" --name n1 > "$WORK/n1.log" 2>&1 &
PIDS+=($!)
N1="http://127.0.0.1:${HTTP[n1]}"
for _ in $(seq 200); do curl -sf "$N1/health" > /dev/null && break; sleep 0.1; done
curl -sf "$N1/health" > /dev/null || { echo "node did not start"; cat "$WORK"/*.log; exit 1; }

curl -sf -X POST "$N1/auth/register" -H 'content-type: application/json' \
  -d '{"username":"benchuser","email":"bench@example.com","password":"bench-passw0rd"}' > /dev/null
ACCESS=$(curl -sf -X POST "$N1/auth/login" -H 'content-type: application/json' \
  -d '{"username":"benchuser","password":"bench-passw0rd"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')

field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }
ratio() { python3 -c "print(f'{$1/$2:.2f}')"; }
rps() { wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency "$1" > "$WORK/wrk.out"; \
        awk '/Requests\/sec/ {print $2}' "$WORK/wrk.out"; }
p99() { awk '/ 99%/ {print $2}' "$WORK/wrk.out"; }

echo "## gRPC (grpc_load: $GRPC_CONC calls in flight over $GRPC_CONNS connections, ${DURATION}s each; profile $PROFILE)"
echo
echo "| what | requests/s | p99 ms | ratio |"
echo "|---|---|---|---|"
BARE=$($LOAD validate "127.0.0.1:$TONIC_PORT" x "$DURATION" "$GRPC_CONC" "$GRPC_CONNS")
NODE=$($LOAD validate "127.0.0.1:${GRPC[n1]}" "$ACCESS" "$DURATION" "$GRPC_CONC" "$GRPC_CONNS")
echo "| bare tonic, trivial ValidateToken | $(field "$BARE" rps) | $(field "$BARE" p99_ms) | 1.00 |"
echo "| node TokenService/ValidateToken (errors: $(field "$NODE" errors)) | $(field "$NODE" rps) | $(field "$NODE" p99_ms) | $(ratio "$(field "$NODE" rps)" "$(field "$BARE" rps)") |"
echo
UP=$($LOAD upload "127.0.0.1:${GRPC[n1]}" "$ACCESS" "$DURATION" "$UPLOAD_CONC" 2 1048576)
echo "| what | uploads/s | MB/s | p99 ms |"
echo "|---|---|---|---|"
echo "| UploadImage, 1 MiB PNG in 64 KiB chunks, $UPLOAD_CONC in flight (errors: $(field "$UP" errors)) | $(field "$UP" rps) | $(field "$UP" mb_per_s) | $(field "$UP" p99_ms) |"
echo
echo "## SOAP (wrk: $THREADS threads, $CONNS connections, ${DURATION}s each)"
echo
echo "| what | requests/s | p99 | ratio |"
echo "|---|---|---|---|"
RAW=$(rps "http://127.0.0.1:$BASE_PORT/health"); RAW99=$(p99)
SOAP=$(rps "$N1/user/soap?username=benchuser"); SOAP99=$(p99)
grep -q "Non-2xx" "$WORK/wrk.out" && echo "warning: non-2xx answers during the SOAP load" >&2
echo "| bare axum GET /health | $RAW | $RAW99 | 1.00 |"
echo "| SOAP GET /user/soap (LookupUser) | $SOAP | $SOAP99 | $(ratio "$SOAP" "$RAW") |"
echo
echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores."
