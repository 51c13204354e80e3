#!/usr/bin/env python3
"""7. Latency the `http` fault's proxy adds to the requests it does not act on.

One busybox container serves the same files on two ports: 80 and 8080 (a second httpd).
An `http` fault on port 80 matches only requests carrying a header the client never
sends, so every request to port 80 goes through faultline's proxy (the iptables REDIRECT
in the container's namespace, the proxy's accept, its connection to the server, HTTP/1.1
parsing and forwarding) and is passed untouched, while port 8080 is the same server
reached directly. The host's client alternates the two ports request by request, each a
new connection (`GET /index.html`, read until the server closes), so both sides see the
same load on this shared machine. Before the fault the same alternation is timed once,
to show the two ports are alike. Reported: median and p95 of each side and their
differences (the proxy's added latency); the requirement is under 1 ms at the median."""
import json
import os
import socket
import subprocess
import sys
import time

from common import *

N = int(os.environ.get("BENCH_REQUESTS", "2000"))


def get(ip, port):
    """One request on a new connection; returns (seconds, status line)."""
    t = time.perf_counter()
    s = socket.create_connection((ip, port), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(b"GET /index.html HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    took = time.perf_counter() - t
    return took, data.split(b"\r\n", 1)[0].decode(errors="replace"), data


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


def alternate(ip, n):
    """n requests to each port, alternating; returns (proxied-port times, direct times)."""
    a, b = [], []
    for i in range(n):
        order = (80, 8080) if i % 2 == 0 else (8080, 80)
        for port in order:
            took, status, _ = get(ip, port)
            if not status.startswith("HTTP/1.1 200"):
                sys.exit(f"bench: port {port} answered `{status}`")
            (a if port == 80 else b).append(took)
    return a, b


def main():
    d = outdir("http-proxy")
    [c] = start_containers(1, "httpx")
    sh("docker", "exec", c["id"], "httpd", "-p", "8080", "-h", "/www")
    ip = c["ip"]
    for port in (80, 8080):
        for _ in range(100):
            try:
                get(ip, port)
                break
            except OSError:
                time.sleep(0.05)
    # The two ports are alike without a fault (warm-up first).
    alternate(ip, 100)
    base80, base8080 = alternate(ip, min(N, 1000))
    exp = experiment_file(d / "http.yaml", "bench-http-proxy", c["name"],
                          'http: {port: 80, match: {headers: {X-Bench-Never: "sent"}}, abort: {status: 503}, duration: 600s}')
    rep = d / "faultline.json"
    run = subprocess.Popen([FL, "run", str(exp), "--report", f"json:{rep}"], env=fl_env(),
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(400):
            rules = sh("nsenter", "-t", sh("docker", "inspect", "-f", "{{.State.Pid}}", c["id"]).stdout.strip(),
                       "-n", "iptables", "-w", "-t", "nat", "-S", check=False).stdout
            if "faultline-http-" in rules or run.poll() is not None:
                break
            time.sleep(0.05)
        if "faultline-http-" not in rules:
            sys.exit(f"bench: no redirect appeared: {run.stderr.read().decode()[-2000:]}")
        alternate(ip, 100)
        proxied, direct = alternate(ip, N)
    finally:
        run.send_signal(2)
        code = run.wait(timeout=60)
    counts = json.loads(rep.read_text())["faults"][0].get("effects", {}).get("http", {})
    if counts.get("matched", 0) != 0 or counts.get("passed", 0) < N:
        sys.exit(f"bench: the proxy did not pass every request untouched: {counts}")
    med = (median(proxied) - median(direct)) * 1000
    p95 = (pct(proxied, 0.95) - pct(direct, 0.95)) * 1000
    base = (median(base80) - median(base8080)) * 1000
    f = lambda x: f"{x * 1000:.3f} ms"
    print(f"\n### 7. http fault: latency added to unmatched requests ({N} requests per side, alternating, new connection each; {FL})\n")
    table(["side", "median", "p95"], [
        ["without the fault: port 80", f(median(base80)), f(pct(base80, 0.95))],
        ["without the fault: port 8080", f(median(base8080)), f(pct(base8080, 0.95))],
        ["during the fault: port 80, through the proxy", f(median(proxied)), f(pct(proxied, 0.95))],
        ["during the fault: port 8080, direct", f(median(direct)), f(pct(direct, 0.95))],
        ["added by the proxy (through - direct)", f"{med:+.3f} ms", f"{p95:+.3f} ms"],
    ])
    print(f"\nports 80 vs 8080 without the fault: {base:+.3f} ms at the median. "
          f"Under 1 ms at the median: {verdict(med < 1.0)}. Proxy counts: {counts}; run exit {code}.")
    save("http-proxy", {"requests": N, "added_median_ms": med, "added_p95_ms": p95,
                        "ports_alike_median_ms": base, "counts": counts, "exit": code, "binary": FL,
                        "proxied_median_ms": median(proxied) * 1000, "direct_median_ms": median(direct) * 1000})
    remove([c])


if __name__ == "__main__":
    main()
