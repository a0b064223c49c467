#!/usr/bin/env python3
"""Slow clients for the fault suite: COUNT connections to HOST:PORT, each sending a request
header one byte every INTERVAL seconds (a "slowloris"), for SECONDS. Prints, as JSON, how
many connections were opened, how many the server closed before the end, and after how
long the first and last closes came."""

import json
import socket
import sys
import time


def main() -> None:
    host, port, count, seconds, interval = (
        sys.argv[1],
        int(sys.argv[2]),
        int(sys.argv[3]),
        float(sys.argv[4]),
        float(sys.argv[5]),
    )
    header = b"POST /v1/orders HTTP/1.1\r\nHost: orderly\r\nX-Slow: " + b"a" * 4096
    started = time.monotonic()
    sockets = []
    for _ in range(count):
        s = socket.create_connection((host, port), timeout=5)
        s.setblocking(False)
        sockets.append([s, 0, None])  # socket, bytes sent, when closed by the server
    while time.monotonic() - started < seconds:
        for entry in sockets:
            s, sent, closed = entry
            if closed is not None:
                continue
            try:
                if s.recv(1, socket.MSG_PEEK) == b"":
                    entry[2] = time.monotonic() - started
                    continue
            except BlockingIOError:
                pass
            except OSError:
                entry[2] = time.monotonic() - started
                continue
            try:
                s.send(header[sent % len(header) : sent % len(header) + 1])
                entry[1] = sent + 1
            except OSError:
                entry[2] = time.monotonic() - started
        time.sleep(interval)
    closes = sorted(e[2] for e in sockets if e[2] is not None)
    for entry in sockets:
        entry[0].close()
    print(
        json.dumps(
            {
                "opened": len(sockets),
                "closed_by_server": len(closes),
                "first_close_s": round(closes[0], 2) if closes else None,
                "last_close_s": round(closes[-1], 2) if closes else None,
            }
        )
    )


if __name__ == "__main__":
    main()
