#!/usr/bin/env bash
# SSO sign-in latency (issue 22): what a sign-in through Troupe costs on top of the
# provider's own time. Prints a markdown report on stdout.
#
#   scripts/bench_sso.sh                   # 300 sign-ins, 3 nodes, release build
#   N=1000 scripts/bench_sso.sh
#   BIN=target/debug/troupe scripts/bench_sso.sh   # a binary already built (no build)
#
# A real provider (tests/oidc/provider.mjs, `oidc-provider` from npm, installed by .ci/run)
# runs on the same machine. One browser session signs in N times: each time it asks n1 for
# the authorization URL (`GET /auth/sso/login`), lets the provider redirect it back (its
# session and consent are remembered after the first time, so no forms), and calls the
# callback on n3, which spends the code at the provider's token endpoint and validates the
# ID token against the cached JWKS. Right after, the same browser does the same
# authorization for a second client of the provider and spends that code at the token
# endpoint itself: the provider's own time for the round trip the callback makes. Troupe's
# part of a sign-in is (login URL + callback) - (the provider's token request).
#
# Needs node (20+), npm's oidc-provider in tests/oidc/node_modules, curl and python3.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-300}
GIVEN_BIN=${BIN:-}
# shellcheck source=lib.sh
. scripts/lib.sh
need node curl python3
[ -f tests/oidc/node_modules/oidc-provider/package.json ] || {
  echo "$0: needs oidc-provider: npm install --no-audit --no-fund --prefix tests/oidc oidc-provider@9" >&2; exit 2; }
[ -n "$GIVEN_BIN" ] || cargo build --release --quiet --bin troupe

OIDC_PORT=$(free_port)
ISSUER="http://127.0.0.1:$OIDC_PORT"
EXTRA="[sso]
timeout_ms = 3000
[[sso.providers]]
name = \"corp\"
issuer = \"$ISSUER\"
client_id = \"troupe\"
client_secret = \"troupe-bench-secret\"
redirect_url = \"http://127.0.0.1:__N3__/auth/sso/callback\"" PLAINTEXT=1 write_config "$WORK/cluster.toml" n1 n2 n3
sed -i "s/__N3__/${HTTP[n3]}/" "$WORK/cluster.toml"
CALLBACK="http://127.0.0.1:${HTTP[n3]}/auth/sso/callback"
DIRECT_CB="http://127.0.0.1:1/direct-callback"
CLIENTS=$(python3 -c 'import json,sys; print(json.dumps([
 {"client_id":"troupe","client_secret":"troupe-bench-secret","redirect_uris":[sys.argv[1]],
  "grant_types":["authorization_code","refresh_token"],"response_types":["code"]},
 {"client_id":"direct","client_secret":"direct-bench-secret","redirect_uris":[sys.argv[2]],
  "grant_types":["authorization_code","refresh_token"],"response_types":["code"]}]))' "$CALLBACK" "$DIRECT_CB")
OIDC_CLIENTS=$CLIENTS node tests/oidc/provider.mjs "$OIDC_PORT" > "$WORK/oidc.log" 2>&1 &
PIDS+=($!)
for n in n1 n2 n3; do
  $BIN node --config "$WORK/cluster.toml" --name $n > "$WORK/$n.log" 2>&1 &
  PIDS+=($!)
done
for n in n1 n2 n3; do wait_health "${HTTP[$n]}"; done
for _ in $(seq 100); do curl -sf "$ISSUER/.well-known/openid-configuration" > /dev/null && break; sleep 0.1; done

python3 - "$N" "$ISSUER" "http://127.0.0.1:${HTTP[n1]}" "$CALLBACK" "$DIRECT_CB" "$(git rev-parse --short HEAD)" "$BIN" <<'PY'
import base64, hashlib, http.cookiejar, json, os, re, secrets, sys, time, urllib.error, urllib.parse, urllib.request

n, issuer, n1, callback, direct_cb, commit, binary = int(sys.argv[1]), *sys.argv[2:]

class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None

jar = http.cookiejar.CookieJar()
browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect)

def fetch(url, data=None, headers=None):
    req = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with browser.open(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()

def absolute(loc):
    return loc if loc.startswith("http") else issuer + loc

def authorize(url, stop):
    """Follows the provider from `url` (forms on the first visit) to the redirect to `stop`."""
    for _ in range(30):
        if url.startswith(stop):
            return url
        status, headers, body = fetch(url)
        if 300 <= status < 400:
            url = absolute(headers["Location"])
            continue
        action = absolute(re.search(r'action="([^"]+)"', body).group(1))
        fields = {"login": "alice", "password": "wonderland-42"} if action.endswith("/login") else {}
        status, headers, body = fetch(action, urllib.parse.urlencode(fields).encode(),
                                      {"content-type": "application/x-www-form-urlencoded"})
        url = absolute(headers["Location"])
    raise SystemExit("no redirect back to " + stop)

meta = json.loads(fetch(issuer + "/.well-known/openid-configuration")[2])
basic = "Basic " + base64.b64encode(b"direct:direct-bench-secret").decode()

def direct_exchange():
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    q = urllib.parse.urlencode({"response_type": "code", "client_id": "direct", "redirect_uri": direct_cb,
        "scope": "openid email profile", "state": secrets.token_urlsafe(16), "nonce": secrets.token_urlsafe(16),
        "code_challenge": challenge, "code_challenge_method": "S256"})
    back = authorize(meta["authorization_endpoint"] + "?" + q, direct_cb)
    code = urllib.parse.parse_qs(urllib.parse.urlparse(back).query)["code"][0]
    body = urllib.parse.urlencode({"grant_type": "authorization_code", "code": code,
        "redirect_uri": direct_cb, "code_verifier": verifier}).encode()
    t = time.perf_counter()
    status, _, text = fetch(meta["token_endpoint"], body,
        {"content-type": "application/x-www-form-urlencoded", "authorization": basic})
    took = time.perf_counter() - t
    assert status == 200 and "id_token" in json.loads(text), text
    return took

def troupe_sign_in():
    t = time.perf_counter()
    status, _, text = fetch(n1 + "/auth/sso/login")
    login_url_time = time.perf_counter() - t
    assert status == 200, text
    back = authorize(json.loads(text)["url"], callback)
    t = time.perf_counter()
    status, _, text = fetch(back)
    callback_time = time.perf_counter() - t
    assert status == 200 and json.loads(text)["access_token"], text
    return login_url_time, callback_time

# Warm-up: the first visit's forms and consent, discovery and JWKS on the nodes.
for _ in range(5):
    troupe_sign_in(); direct_exchange()
rows = []
for _ in range(n):
    a, c = troupe_sign_in()
    p = direct_exchange()
    rows.append((a, c, p))

def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))] * 1000

cols = {
    "login URL (`GET /auth/sso/login` on n1)": [a for a, _, _ in rows],
    "callback (`GET /auth/sso/callback` on n3)": [c for _, c, _ in rows],
    "sign-in through Troupe (login URL + callback)": [a + c for a, c, _ in rows],
    "provider's own token request (same code exchange, direct)": [p for _, _, p in rows],
    "Troupe's part: sign-in - provider's token request": [a + c - p for a, c, p in rows],
}
print(f"## SSO sign-in: {n} sign-ins, 3 nodes, `{binary}` at {commit}")
print()
print("| measure | p50 ms | p90 ms | p99 ms | max ms |")
print("|---|---|---|---|---|")
for name, xs in cols.items():
    print(f"| {name} | {pct(xs, 50):.1f} | {pct(xs, 90):.1f} | {pct(xs, 99):.1f} | {max(xs) * 1000:.1f} |")
PY
