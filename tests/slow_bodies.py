#!/usr/bin/env python3
"""A flood of stalled request bodies for the fault suite and bench/slow_bodies.sh.

    slow_bodies.py HOST PORT SECONDS RATE ADDRESS...

From each loopback ADDRESS (a client address of its own for the rate limits), RATE new
connections a second for SECONDS, taking turns between a console sign-in and an anonymous
`POST /v1/orders`: each sends its head, announcing a 100-byte body, and 8 bytes of the body,
then nothing more. Whatever the server answers is read until it closes the connection, or
until 20 s after the last one opened. Prints, as JSON: how many were opened, the answers by
status (`none` for a connection closed without one, `open` for one still open at the end),
and the longest any connection was held open by the server, in seconds."""

import json
import resource
import select
import socket
import sys
import time

HEADS = [
    b"POST /console/sign-in HTTP/1.1\r\nHost: orderly\r\n"
    b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nkey=oly_",
    b"POST /v1/orders HTTP/1.1\r\nHost: orderly\r\n"
    b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"lines\"",
]


def main() -> None:
    host, port, seconds, rate = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
    addresses = sys.argv[5:]
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    poller = select.poll()
    live = {}  # fd -> [socket, opened at, first bytes of the answer]
    answers = {}
    longest = 0.0
    opened = 0
    started = time.monotonic()
    due = started
    turn = 0

    def finish(fd, status):
        nonlocal longest
        s, at, _ = live.pop(fd)
        poller.unregister(fd)
        s.close()
        answers[status] = answers.get(status, 0) + 1
        longest = max(longest, time.monotonic() - at)

    while True:
        now = time.monotonic()
        while now - started < seconds and due <= now:
            for address in addresses:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.bind((address, 0))
                s.settimeout(5)
                try:
                    s.connect((host, port))
                    s.sendall(HEADS[turn % len(HEADS)])
                except OSError:
                    s.close()
                    answers["connect_failed"] = answers.get("connect_failed", 0) + 1
                    continue
                turn += 1
                s.setblocking(False)
                live[s.fileno()] = [s, time.monotonic(), b""]
                poller.register(s.fileno(), select.POLLIN)
                opened += 1
            due += 1 / rate
        if now - started >= seconds and (not live or now - started >= seconds + 20):
            break
        for fd, _ in poller.poll(10):
            entry = live.get(fd)
            if entry is None:
                continue
            try:
                data = entry[0].recv(4096)
            except OSError:
                data = b""
            if data and len(entry[2]) < 12:
                entry[2] += data
                continue
            if not data:
                head = entry[2]
                status = head[9:12].decode() if head.startswith(b"HTTP/1.1 ") else "none"
                finish(fd, status)
    answers["open"] = len(live)
    for s, _, _ in list(live.values()):
        s.close()
    print(
        json.dumps(
            {
                "opened": opened,
                "answers": answers,
                "longest_held_s": round(longest, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
