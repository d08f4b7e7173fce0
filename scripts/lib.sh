# Shared by the benchmark drivers (source it after `cd` to the repository root):
# a scratch directory, processes killed on exit, free ports, and the bare axum baseline.

TOKEN=bench-admin-token-0123456789
# Where `cargo build --release` puts the binaries: $CARGO_TARGET_DIR when set, as cargo does.
RELEASE=${CARGO_TARGET_DIR:-target}/release
BIN=${BIN:-$RELEASE/troupe}
# Benchmark users are made with cheap PBKDF2 (the AUTH_EXTRA of each driver sets 1,000
# rounds), as in every earlier run, unless the caller picks argon2id.
export TROUPE_AUTH_PASSWORD_HASH=${TROUPE_AUTH_PASSWORD_HASH:-pbkdf2}
# The request driver (node/examples/http_load.rs: each request of a list sent once, or a
# burst of clients released together), built on first use unless HTTP_LOAD names one.
HTTP_LOAD=${HTTP_LOAD:-$RELEASE/examples/http_load}
need_load() { [ -x "$HTTP_LOAD" ] || cargo build --release --quiet --example http_load; }
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done; [ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"; }
trap cleanup EXIT

# Stops the run at once when a tool it needs is missing, instead of printing empty results.
need() { for t in "$@"; do command -v "$t" > /dev/null || { echo "$0: needs $t (e.g. apt-get install $t)" >&2; exit 2; }; done; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Starts the baseline on a free port and sets BASE_PORT.
start_bare() {
  BASE_PORT=$(free_port)
  "$RELEASE/examples/bare_axum" "127.0.0.1:$BASE_PORT" > "$WORK/bare.log" 2>&1 &
  PIDS+=($!)
}

# Writes a config for the nodes named after $1 to file $1 and gives each node free ports in
# CL, HTTP and GRPC (kept when the node has them already, so several configs can name the
# same node). Each config file gets its own data directory, the bench cookie, admin token and
# signing key, mutual TLS between the nodes (PLAINTEXT=1: plaintext), and warn-level logs;
# AUTH_EXTRA adds lines to [auth], EXTRA adds whole tables. Benches measure throughput, not
# limits: every [limits] rate and [quotas] quota is set out of reach unless EXTRA has its own
# [limits] or [quotas] table.
declare -A CL HTTP GRPC
BENCH_LIMITS='[limits]
register_per_ip_per_minute = 10000000
refresh_per_ip_per_minute = 10000000
codes_per_ip_per_minute = 10000000
search_per_user_per_minute = 10000000
ws_upgrades_per_ip_per_minute = 10000000
grpc_calls_per_ip_per_minute = 10000000'
BENCH_QUOTAS='[quotas]
tasks_active_per_user = 10000000
ws_connections_per_user = 1000000
chat_requests_per_user_per_minute = 1000000
image_bytes_per_user = 1099511627776' 
# Node certificates for mutual TLS in $WORK/certs (one development CA, made by `troupe
# certs` the first time; nodes added later are signed by it). PLAINTEXT=1 skips TLS.
certs_for() {
  local n d=$WORK/certs
  for n in "$@"; do
    [ -f "$d/$n.pem" ] && continue
    if [ -f "$d/ca.pem" ]; then
      "$BIN" certs --out "$d" --nodes "$n" --ca "$d/ca.pem" --ca-key "$d/ca.key" > /dev/null
    else
      "$BIN" certs --out "$d" --nodes "$n" > /dev/null
    fi
  done
}
write_config() {
  local file=$1 n
  shift
  {
    echo "data_dir = \"$WORK/data-$(basename "$file" .toml)\""
    echo '[cluster]'; echo 'cookie = "bench-cookie-0123456789"'
    if [ -n "${PLAINTEXT:-}" ]; then
      echo 'insecure_plaintext = true'
    else
      certs_for "$@"; echo '[cluster.tls]'; echo "ca = \"$WORK/certs/ca.pem\""
    fi
    echo '[admin]'; echo "token = \"$TOKEN\""
    echo '[auth]'; echo 'keys = ["bench:bench-signing-key-0123456789abcdef0123"]'
    [ -z "${AUTH_EXTRA:-}" ] || echo "$AUTH_EXTRA"
    echo '[log]'; echo 'level = "warn"'
    # (A binary from before [limits] and [quotas] existed refuses them: same-run comparisons.)
    if grep -qa register_per_ip_per_minute "$BIN"; then
      case "${EXTRA:-}" in *'[limits]'*) ;; *) echo "$BENCH_LIMITS" ;; esac
      case "${EXTRA:-}" in *'[quotas]'*) ;; *) echo "$BENCH_QUOTAS" ;; esac
    fi
    [ -z "${EXTRA:-}" ] || echo "$EXTRA"
    for n in "$@"; do
      [ -n "${CL[$n]:-}" ] || { CL[$n]=$(free_port); HTTP[$n]=$(free_port); GRPC[$n]=$(free_port); }
      echo '[[nodes]]'; echo "name = \"$n\""
      echo "cluster_addr = \"127.0.0.1:${CL[$n]}\""
      echo "http_addr = \"127.0.0.1:${HTTP[$n]}\""
      echo "grpc_addr = \"127.0.0.1:${GRPC[$n]}\""
    done
  } > "$file"
}

# Starts nodes n1, n2 and n3 of config $1 (made by write_config) with the admin password
# $ADMIN_PASSWORD, logs in $WORK/<name>.log, sets N1 to n1's URL, and waits until n1 reaches
# n2 and n3 through the mesh.
start_three() {
  local n
  for n in n1 n2 n3; do
    TROUPE_ADMIN_PASSWORD=$ADMIN_PASSWORD $BIN node --config "$1" --name $n > "$WORK/$n.log" 2>&1 &
    PIDS+=($!)
  done
  N1="http://127.0.0.1:${HTTP[n1]}"
  for _ in $(seq 100); do curl -sf "$N1/ping?node=n3" > /dev/null && curl -sf "$N1/ping?node=n2" > /dev/null && break; sleep 0.1; done
}

# Waits until the node at http://127.0.0.1:$1 answers `GET /health`.
wait_health() { for _ in $(seq 200); do curl -sf "http://127.0.0.1:$1/health" > /dev/null && return; sleep 0.1; done; echo "node on port $1 not ready" >&2; exit 1; }

# Registers and logs in $2 users named $3-<i> on the node at port $1 (32 connections, each
# request once, `http_load each`) and writes their access tokens, one a line, to $4.
# Set AUTH_EXTRA's pbkdf2_iterations low and its login limits high for large counts.
make_users() {
  local port=$1 n=$2 prefix=$3 out=$4
  python3 - "$n" "$prefix" "$WORK" <<'PY'
import json, sys
n, prefix, work = int(sys.argv[1]), sys.argv[2], sys.argv[3]
with open(f"{work}/users-register.jsonl", "w") as reg, open(f"{work}/users-login.jsonl", "w") as login:
    for i in range(n):
        u = {"username": f"{prefix}-{i}", "password": "bench-passw0rd"}
        login.write(json.dumps({"method": "POST", "path": "/auth/login", "body": u}) + "\n")
        u["email"] = f"{prefix}-{i}@example.com"
        reg.write(json.dumps({"method": "POST", "path": "/auth/register", "body": u}) + "\n")
PY
  need_load
  "$HTTP_LOAD" each "$port" 32 "$WORK/users-register.jsonl" > "$WORK/users-register.json"
  "$HTTP_LOAD" each "$port" 32 "$WORK/users-login.jsonl" "$WORK/users-login.out" > "$WORK/users-login.json"
  python3 - "$WORK/users-login.out" "$out" <<'PY'
import json, sys
tokens = [json.loads(l)["body"]["access_token"] for l in open(sys.argv[1]) if json.loads(l)["status"] == 200]
open(sys.argv[2], "w").write("\n".join(tokens) + "\n")
PY
  local got; got=$(wc -l < "$out")
  [ "$got" = "$n" ] || { echo "make_users: $got of $n users logged in (register: $(cat "$WORK/users-register.json"))" >&2; exit 1; }
}

# Starts a private Mosquitto on a free port (no queue limit) and sets MQTT_PORT once it
# accepts connections.
start_mosquitto() {
  MQTT_PORT=$(free_port)
  mkdir -p "$WORK/mosquitto" && chmod 777 "$WORK/mosquitto"
  printf 'listener %s 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\n' "$MQTT_PORT" > "$WORK/mosquitto/m.conf"
  /usr/sbin/mosquitto -c "$WORK/mosquitto/m.conf" > "$WORK/mosquitto.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/"$MQTT_PORT") 2>/dev/null && break; sleep 0.1; done
}
