#!/usr/bin/env python3
"""6. CPU use of the nfqueue delayer at 1,000 packets per second.

A busybox container gets a 10 ms delay with `engine: nfqueue` (strategy host); the
delayer runs as `faultline delayer ...` in the container's network namespace and holds
every packet the container sends. The host sends ICMP echo requests to the container's
own IP paced at 1 kHz for 10 s; each echo reply leaves the container through the delayer,
so it handles 1,000 packets per second. The delayer's CPU time is read from
/proc/PID/stat (utime + stime, clock ticks) and /proc/PID/schedstat (ns on CPU) at the
start and end of the window; 2 s without traffic first give its idle cost. The round trip
times show the packets really were held ~10 ms."""
import json
import os
import socket
import struct
import subprocess
import threading

from common import *

RATE = int(os.environ.get("BENCH_PPS", "1000"))
SECONDS = float(os.environ.get("BENCH_LOAD_SECONDS", "10"))
TICK = os.sysconf("SC_CLK_TCK")


def cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(") ", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    total_ns = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
            total_ns += int(f.read().split()[0])
    return ticks / TICK, total_ns / 1e9


def find_delayer(marker_hint):
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        if len(argv) > 1 and argv[0].endswith(b"faultline") and argv[1] == b"delayer":
            return int(pid), b" ".join(argv).decode()
    return None, None


def checksum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def ping_load(ip, rate, seconds):
    """Sends ICMP echo requests at `rate` per second for `seconds`; returns (sent,
    received, round trip times in ms)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    s.settimeout(0.2)
    ident = os.getpid() & 0xFFFF
    rtts, stop = {}, threading.Event()

    def receive():
        while not stop.is_set():
            try:
                data, addr = s.recvfrom(2048)
            except socket.timeout:
                continue
            if addr[0] != ip:
                continue
            icmp = data[(data[0] & 0x0F) * 4:]
            typ, _, _, rid, seq = struct.unpack("!BBHHH", icmp[:8])
            if typ == 0 and rid == ident and len(icmp) >= 16:
                (sent_at,) = struct.unpack("!d", icmp[8:16])
                rtts[seq] = (time.perf_counter() - sent_at) * 1000

    t = threading.Thread(target=receive, daemon=True)
    t.start()
    n = int(rate * seconds)
    start = time.perf_counter()
    for seq in range(n):
        due = start + seq / rate
        while True:
            left = due - time.perf_counter()
            if left <= 0:
                break
            time.sleep(left if left > 0.0005 else 0)
        payload = struct.pack("!d", time.perf_counter()) + b"faultline-bench"
        head = struct.pack("!BBHHH", 8, 0, 0, ident, seq & 0xFFFF)
        head = struct.pack("!BBHHH", 8, 0, checksum(head + payload), ident, seq & 0xFFFF)
        s.sendto(head + payload, (ip, 0))
    took = time.perf_counter() - start
    time.sleep(0.3)
    stop.set()
    t.join()
    s.close()
    return n, took, sorted(rtts.values())


def pct(xs, p):
    return xs[min(len(xs) - 1, int(len(xs) * p))] if xs else float("nan")


def main():
    d = outdir("delayer")
    [c] = start_containers(1, "nfq")
    # The round trip without any fault, for reference.
    _, _, base = ping_load(c["ip"], 200, 1)
    duration = int(SECONDS + 6)
    exp = experiment_file(d / "delay.yaml", "bench-nfqueue-delay", c["name"],
                          f"network: {{delay: 10ms, engine: nfqueue, strategy: host, duration: {duration}s}}")
    rep = d / "faultline.json"
    run = subprocess.Popen([FL, "run", str(exp), "--report", f"json:{rep}"], env=fl_env(),
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        pid = None
        for _ in range(200):
            pid, argv = find_delayer(None)
            if pid or run.poll() is not None:
                break
            time.sleep(0.05)
        if not pid:
            sys.exit(f"bench: no delayer appeared: {run.stderr.read().decode()[-2000:]}")
        time.sleep(0.5)
        idle0 = cpu(pid)
        time.sleep(2.0)
        idle1 = cpu(pid)
        load0 = cpu(pid)
        sent, took, rtts = ping_load(c["ip"], RATE, SECONDS)
        load1 = cpu(pid)
        code = run.wait(timeout=duration + 60)
        verdict_ = json.loads(rep.read_text())["verdict"]
        left, _ = find_delayer(None)
    finally:
        if run.poll() is None:
            run.terminate()
            run.wait()
    idle_pct = (idle1[1] - idle0[1]) / 2.0 * 100
    stat_pct = (load1[0] - load0[0]) / took * 100
    ns_pct = (load1[1] - load0[1]) / took * 100
    pps = len(rtts) / took
    per_packet_us = (load1[1] - load0[1]) / max(len(rtts), 1) * 1e6
    print(f"\n### 6. nfqueue delayer CPU at {RATE} packets/s (10 ms delay, {SECONDS:.0f} s of ICMP echo from the host to the container's IP)\n")
    table(["measure", "value"], [
        ["echo requests sent / replies through the delayer", f"{sent} / {len(rtts)} ({pps:.0f} replies/s)"],
        ["round trip p50 / p99 without the fault", f"{pct(base, 0.5):.2f} ms / {pct(base, 0.99):.2f} ms"],
        ["round trip p50 / p99 with the 10 ms delay", f"{pct(rtts, 0.5):.2f} ms / {pct(rtts, 0.99):.2f} ms"],
        ["delayer CPU, idle (schedstat)", f"{idle_pct:.2f}% of a core"],
        ["delayer CPU at load (/proc/PID/stat utime+stime)", f"{stat_pct:.1f}% of a core"],
        ["delayer CPU at load (schedstat, ns)", f"{ns_pct:.1f}% of a core"],
        ["CPU per packet", f"{per_packet_us:.1f} us"],
        ["run verdict / exit; delayer left after revert", f"{verdict_} / {code}; {'yes: ' + str(left) if left else 'none'}"],
    ])
    save("delayer", {"sent": sent, "received": len(rtts), "seconds": took, "idle_pct": idle_pct,
                     "stat_pct": stat_pct, "schedstat_pct": ns_pct, "per_packet_us": per_packet_us,
                     "rtt_p50_ms": pct(rtts, 0.5), "rtt_p99_ms": pct(rtts, 0.99),
                     "base_p50_ms": pct(base, 0.5), "verdict": verdict_, "exit": code, "argv": argv})
    remove([c])


if __name__ == "__main__":
    main()
