#!/usr/bin/env python3
"""2. Injection and revert across N = 1, 10, 50 containers (pause, then unpause).

  faultline   the run's own fault timings from its JSON report: from the first
              `injected_at` (taken before the first API call) to the last `reverted_at`
              (taken once the daemon has answered every unpause), minus the 10 ms pause; and the
              wall time of the whole process minus the pause (start-up, connect, list,
              journal, dead-man's switch, report included)
  docker CLI  `docker pause` on each container in turn, then `docker unpause` on each
  raw API     N parallel POST /containers/ID/pause on the socket, then N parallel unpause
              (bench/rawapi.py: one thread and one connection per call): the floor
  raw+confirm the same with one inspect per container before its pause and after its
              unpause, as faultline did until 2026-12-04 (the daemon's own answers confirm
              now): what confirming by inspect costs at the floor
Medians over ROUNDS, the tools interleaved in every round."""
import json
import os
from datetime import datetime

from common import *

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "7"))
NS = [int(n) for n in os.environ.get("BENCH_NS", "1,10,50").split(",")]
PAUSE = 0.010


def ts(s):
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def faultline_once(d, n):
    rep = d / f"faultline-{n}.json"
    wall, _ = timed([FL, "run", "--yes", str(d / f"pause-{n}.yaml"), "--report", f"json:{rep}"],
                    env=fl_env())
    r = json.loads(rep.read_text())
    assert r["verdict"] == "passed" and len(r["faults"]) == n, r["verdict"]
    assert all(f["status"] == "reverted" for f in r["faults"])
    start = min(ts(f["injected_at"]) for f in r["faults"])
    end = max(ts(f["reverted_at"]) for f in r["faults"])
    return end - start - PAUSE, wall - PAUSE


def cli_once(cs):
    start = time.perf_counter()
    for c in cs:
        sh("docker", "pause", c["id"])
    for c in cs:
        sh("docker", "unpause", c["id"])
    return time.perf_counter() - start


def raw_once(cs, confirm=False):
    cmd = ["python3", str(ROOT / "bench" / "rawapi.py"), *(["--confirm"] if confirm else []),
           *[c["id"] for c in cs]]
    return json.loads(sh(*cmd).stdout)["total_s"]


def main():
    d = outdir("inject")
    rows, data = [], {}
    for n in NS:
        cs = start_containers(n, f"inj{n}")
        (d / f"pause-{n}.yaml").write_text(f"""version: 1
name: bench-pause-{n}
target:
  docker:
    labels: {{fltest.run: "{RUN}", fltest.set: "inj{n}"}}
  select: {{mode: all}}
faults:
  - pause: {{duration: 10ms}}
""")
        faultline_once(d, n), raw_once(cs)  # warm-up
        t = {"faultline": [], "faultline_wall": [], "cli": [], "raw": [], "raw_confirm": []}
        for _ in range(ROUNDS):
            inner, wall = faultline_once(d, n)
            t["faultline"].append(inner)
            t["faultline_wall"].append(wall)
            t["raw"].append(raw_once(cs))
            t["raw_confirm"].append(raw_once(cs, confirm=True))
            t["cli"].append(cli_once(cs))
        m = {k: median(v) for k, v in t.items()}
        data[n] = {"samples": t, "median": m}
        rows += [
            [n, "faultline (report: first inject -> last confirmed revert)", ms(m["faultline"]), f"{m['faultline'] / m['raw']:.2f}x", f"{m['faultline'] / m['cli']:.2f}x"],
            [n, "faultline (whole process, wall - pause)", ms(m["faultline_wall"]), f"{m['faultline_wall'] / m['raw']:.2f}x", f"{m['faultline_wall'] / m['cli']:.2f}x"],
            [n, "docker pause/unpause loop (CLI, sequential)", ms(m["cli"]), f"{m['cli'] / m['raw']:.2f}x", "1.00x"],
            [n, "raw API, N parallel calls (floor)", ms(m["raw"]), "1.00x", f"{m['raw'] / m['cli']:.2f}x"],
            [n, "raw API + inspect per container (what confirming by inspect costs)", ms(m["raw_confirm"]), f"{m['raw_confirm'] / m['raw']:.2f}x", f"{m['raw_confirm'] / m['cli']:.2f}x"],
        ]
        remove(cs)
    print(f"\n### 2. Pause + unpause of N containers (median of {ROUNDS}; ratios: time / floor, time / docker CLI loop)\n")
    table(["N", "how", "pause+unpause", "vs raw floor", "vs docker CLI loop"], rows)
    if 50 in data:
        r = data[50]["median"]["faultline"] / data[50]["median"]["raw"]
        print(f"\nBar: pause+unpause of 50 containers within 1.3x of the parallel raw-API floor: {r:.2f}x -> {verdict(r <= 1.3)}")
        data["ratio_50"] = r
    save("inject", data)


if __name__ == "__main__":
    main()
