#!/usr/bin/env python3
"""The floor for pause/unpause: N parallel raw Engine API calls on the unix socket.

Usage: rawapi.py [--socket PATH] [--api v1.41] [--confirm] ID...
Prints one JSON line: {"pause_s": ..., "unpause_s": ..., "total_s": ...}. Every call is
its own HTTP/1.1 connection from its own thread, all released at once by a barrier, so
the timing is the daemon's concurrent work plus one connect per call, nothing else.
"""
import argparse
import http.client
import json
import socket
import threading
import time


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=30)
        self.path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(30)
        s.connect(self.path)
        self.sock = s


def call_all(sock, api, ids, action, confirm=False):
    """POSTs /containers/ID/ACTION for every id at once; returns the elapsed seconds.
    With confirm, each call also inspects the container (before a pause, after an
    unpause), as faultline does."""
    barrier = threading.Barrier(len(ids) + 1)
    errors = []

    def request(conn, method, path):
        conn.request(method, path)
        r = conn.getresponse()
        return r.status, r.read()

    def one(cid):
        barrier.wait()
        conn = UnixConnection(sock)
        if confirm and action == "pause":
            request(conn, "GET", f"/{api}/containers/{cid}/json")
        status, body = request(conn, "POST", f"/{api}/containers/{cid}/{action}")
        if confirm and action == "unpause":
            request(conn, "GET", f"/{api}/containers/{cid}/json")
        conn.close()
        if status != 204:
            errors.append(f"{action} {cid[:12]}: {status} {body[:200]!r}")

    threads = [threading.Thread(target=one, args=(c,)) for c in ids]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    took = time.perf_counter() - start
    if errors:
        raise SystemExit("raw API call failed: " + "; ".join(errors))
    return took


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--socket", default="/var/run/docker.sock")
    ap.add_argument("--api", default="v1.41")
    ap.add_argument("--confirm", action="store_true",
                    help="inspect before each pause and after each unpause, as faultline did until 2026-12-04")
    ap.add_argument("ids", nargs="+")
    a = ap.parse_args()
    p = call_all(a.socket, a.api, a.ids, "pause", a.confirm)
    u = call_all(a.socket, a.api, a.ids, "unpause", a.confirm)
    print(json.dumps({"pause_s": p, "unpause_s": u, "total_s": p + u}))


if __name__ == "__main__":
    main()
