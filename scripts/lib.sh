# Shared by the benchmark drivers (source it after `cd` to the repository root):
# a scratch directory, processes killed on exit, free ports, and the bare axum baseline.

TOKEN=bench-admin-token-0123456789
BIN=${BIN:-target/release/troupe}
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
  target/release/examples/bare_axum "127.0.0.1:$BASE_PORT" > "$WORK/bare.log" 2>&1 &
  PIDS+=($!)
}

# Writes a config for the nodes named after $1 to file $1 and gives each node free ports in
# CL, HTTP and GRPC (kept when the node has them already, so several configs can name the
# same node). Each config file gets its own data directory, the bench cookie, admin token and
# signing key, mutual TLS between the nodes (PLAINTEXT=1: plaintext), and warn-level logs;
# AUTH_EXTRA adds lines to [auth], EXTRA adds whole tables.
declare -A CL HTTP GRPC
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
