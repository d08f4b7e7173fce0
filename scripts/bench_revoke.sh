#!/usr/bin/env bash
# Logging out everywhere: `DELETE /api/sessions/:userId` with 100 live sessions of one user,
# on a 3-node cluster. Each round registers a fresh user, logs it in 100 times (spread over
# the nodes), then times the DELETE on one node (client side, loopback, one request); after
# the rounds it prints p50/p90/p99/max and checks that every ending answered 200 with all 100
# sessions. Target (issue "One way to call a service"): p99 under 500 ms.
#
#   scripts/bench_revoke.sh                  # 30 rounds, release build
#   ROUNDS=50 SESSIONS=100 scripts/bench_revoke.sh
#   BIN=/tmp/troupe-old scripts/bench_revoke.sh   # an older binary, same driver
#
# Needs curl and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-30}
SESSIONS=${SESSIONS:-100}
# shellcheck source=lib.sh
. scripts/lib.sh
need curl python3

[ -n "${SKIP_BUILD:-}" ] || cargo build --release --quiet --bin troupe

# Logins are not what is measured: a cheap hash and no login rate limit.
AUTH_EXTRA="pbkdf2_iterations = 1000
login_per_account_per_minute = 100000000
login_per_ip_per_minute = 100000000" write_config "$WORK/cluster.toml" n1 n2 n3
for n in n1 n2 n3; do
  $BIN node --config "$WORK/cluster.toml" --name $n > "$WORK/$n.log" 2>&1 &
  PIDS+=($!)
done
N1="http://127.0.0.1:${HTTP[n1]}"
for _ in $(seq 100); do curl -sf "$N1/ping?node=n3" > /dev/null && curl -sf "$N1/ping?node=n2" > /dev/null && break; sleep 0.1; done

python3 - "$ROUNDS" "$SESSIONS" "${HTTP[n1]}" "${HTTP[n2]}" "${HTTP[n3]}" <<'PY'
import http.client, json, sys, time, uuid
rounds, sessions = int(sys.argv[1]), int(sys.argv[2])
ports = [int(p) for p in sys.argv[3:]]
conns = [http.client.HTTPConnection("127.0.0.1", p, timeout=30) for p in ports]

def req(i, method, path, body=None, token=None):
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    c = conns[i % len(conns)]
    c.request(method, path, json.dumps(body) if body is not None else None, headers)
    r = c.getresponse()
    return r.status, json.loads(r.read() or b"null")

times, bad = [], []
for n in range(rounds):
    name = "rv" + uuid.uuid4().hex[:12]
    pw = "passw0rd-long"
    s, v = req(0, "POST", "/auth/register", {"username": name, "email": f"{name}@example.com", "password": pw})
    assert s == 201, (s, v)
    uid = v["id"]
    token = None
    for i in range(sessions):
        s, v = req(i, "POST", "/auth/login", {"username": name, "password": pw})
        assert s == 200, (s, v)
        token = token or v["access_token"]
    t0 = time.perf_counter()
    s, v = req(1, "DELETE", f"/api/sessions/{uid}", token=token)
    times.append((time.perf_counter() - t0) * 1000)
    if s != 200 or v.get("ended") != sessions:
        bad.append((s, v))
times.sort()
pick = lambda q: times[min(len(times) - 1, int(q * len(times)))]
print(f"DELETE /api/sessions/:userId with {sessions} sessions, {rounds} rounds on 3 nodes:")
print(f"  p50 {pick(0.5):.1f} ms  p90 {pick(0.9):.1f} ms  p99 {pick(0.99):.1f} ms  max {times[-1]:.1f} ms")
print(f"  answers other than 200 with every session ended: {len(bad)}" + (f" (first: {bad[0]})" if bad else ""))
PY
