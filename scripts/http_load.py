#!/usr/bin/env python3
"""Sends a list of HTTP requests, each exactly once, over keep-alive connections.

    python3 scripts/http_load.py PORT CONCURRENCY REQUESTS.jsonl [ANSWERS.jsonl] > summary.json

Each line of REQUESTS is one request, `{"method", "path", "body"?, "token"?}` (`body` is
sent as JSON, `token` as a bearer token). CONCURRENCY connections to 127.0.0.1:PORT each
send one request at a time, taking the next unsent line, until every line is sent once (a
request is never retried: a lost answer is counted as status 0). Prints a JSON summary:
`requests`, `seconds` (first send to last answer), `per_s`, `latency_ms` (p50, p90, p99,
max, from send to the last byte of the answer) and `statuses` (how many of each code).
ANSWERS, when given, gets each answer's `{"status", "body"}` in the order of REQUESTS.

Wrk cannot send each of a list of requests exactly once (it runs for a duration), which
the benchmarks that check exact counts (one registration per user) need. Standard library
only; asyncio, so one Python process drives a few thousand requests/s.
"""
import asyncio, json, sys, time


async def connection(port, reqs, next_index, answers, latencies, lost):
    reader = writer = None
    while True:
        i = next_index[0]
        if i >= len(reqs):
            break
        next_index[0] = i + 1
        raw = reqs[i]
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            t0 = time.perf_counter()
            writer.write(raw)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length, close = 0, False
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection" and value.strip().lower() == b"close":
                    close = True
            body = await reader.readexactly(length) if length else b""
            latencies.append(time.perf_counter() - t0)
            answers[i] = (status, body)
            if close:
                writer.close()
                reader = writer = None
        except (OSError, asyncio.IncompleteReadError, ValueError) as e:
            answers[i] = (0, str(e).encode())
            lost[0] += 1
            if writer is not None:
                writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()


def encode(line):
    r = json.loads(line)
    body = b"" if r.get("body") is None else json.dumps(r["body"]).encode()
    head = f"{r['method']} {r['path']} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
    if r.get("token"):
        head += f"authorization: Bearer {r['token']}\r\n"
    return head.encode() + b"\r\n" + body


def pct(sorted_values, p):
    if not sorted_values:
        return None
    k = min(len(sorted_values) - 1, max(0, int(round(p / 100 * len(sorted_values) + 0.5)) - 1))
    return round(sorted_values[k] * 1000, 2)


async def main():
    port, concurrency, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    with open(path) as f:
        reqs = [encode(line) for line in f if line.strip()]
    answers, latencies, lost, next_index = [None] * len(reqs), [], [0], [0]
    t0 = time.perf_counter()
    await asyncio.gather(*(connection(port, reqs, next_index, answers, latencies, lost)
                           for _ in range(min(concurrency, len(reqs)))))
    seconds = time.perf_counter() - t0
    statuses = {}
    for status, _ in answers:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    latencies.sort()
    print(json.dumps({
        "requests": len(reqs), "connections": concurrency, "seconds": round(seconds, 3),
        "per_s": round(len(reqs) / seconds, 1),
        "latency_ms": {p: pct(latencies, q) for p, q in
                       (("p50", 50), ("p90", 90), ("p99", 99), ("max", 100))},
        "statuses": statuses,
    }))
    if len(sys.argv) > 4:
        with open(sys.argv[4], "w") as f:
            for status, body in answers:
                try:
                    value = json.loads(body) if body else None
                except ValueError:
                    value = body.decode(errors="replace")
                f.write(json.dumps({"status": status, "body": value}) + "\n")


asyncio.run(main())
