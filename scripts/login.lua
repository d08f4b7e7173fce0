-- wrk script: POST /auth/login with the benchmark user's credentials.
wrk.method = "POST"
wrk.body   = '{"username":"benchuser","password":"bench-passw0rd"}'
wrk.headers["Content-Type"] = "application/json"
