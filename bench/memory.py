#!/usr/bin/env python3
"""5. Peak memory of a run with 50 targets: pause 50 containers for 1 s with an HTTP probe
before and after; faultline (`run --yes`, select all by label) vs Chaos Toolkit (a process
action `docker pause` of the 50, 1 s, `docker unpause` of the 50, http probe in the
hypothesis). Max RSS of the process (getrusage, as /usr/bin/time -v reports it, which
also covers the largest child it waited for) and the peak summed RSS of the process tree
(bench/peakrss.py). Medians over ROUNDS."""
import json
import os

from common import *

ROUNDS = int(os.environ.get("BENCH_MEM_ROUNDS", "5"))
N = 50


def measure(cmd):
    out = sh("python3", str(ROOT / "bench" / "peakrss.py"), *cmd, check=False, env=fl_env())
    r = json.loads(out.stdout)
    if r["code"] != 0:
        sys.exit(f"bench: {' '.join(cmd)} exited {r['code']}")
    return r


def main():
    d = outdir("memory")
    cs = start_containers(N, "mem", publish=False)
    [web] = start_containers(1, "memweb", publish=True)
    url = f"http://127.0.0.1:{web['port']}/"
    (d / "pause-50.yaml").write_text(f"""version: 1
name: bench-pause-50
target:
  docker:
    labels: {{fltest.run: "{RUN}", fltest.set: "mem"}}
  select: {{mode: all}}
steady_state:
  - name: web answers
    http: {{url: "{url}", status: [200], timeout: 2s}}
faults:
  - pause: {{duration: 1s}}
""")
    names = [c["name"] for c in cs]
    (d / "pause-50.json").write_text(json.dumps({
        "title": "bench-pause-50", "description": "Pause 50 containers for 1 s.",
        "steady-state-hypothesis": {"title": "web answers", "probes": [
            {"type": "probe", "name": "web-answers", "tolerance": 200,
             "provider": {"type": "http", "url": url, "timeout": 2}}]},
        "method": [
            {"type": "action", "name": "pause", "provider": {"type": "process", "path": "docker", "arguments": ["pause", *names]}, "pauses": {"after": 1}},
            {"type": "action", "name": "unpause", "provider": {"type": "process", "path": "docker", "arguments": ["unpause", *names]}}],
        "rollbacks": []}, indent=2))
    fl = [FL, "run", "--yes", str(d / "pause-50.yaml"), "--report", f"json:{d / 'faultline.json'}"]
    ctk = [CHAOS, *CHAOS_FLAGS, "--log-file", str(d / "chaostoolkit.log"), "run",
           "--journal-path", str(d / "journal.json"), str(d / "pause-50.json")]
    rf, rc = [], []
    for _ in range(ROUNDS):
        rf.append(measure(fl))
        assert json.loads((d / "faultline.json").read_text())["verdict"] == "passed"
        rc.append(measure(ctk))
        assert json.loads((d / "journal.json").read_text())["status"] == "completed"
    f_max, c_max = median([r["maxrss_kb"] for r in rf]), median([r["maxrss_kb"] for r in rc])
    f_tree, c_tree = median([r["tree_peak_kb"] for r in rf]), median([r["tree_peak_kb"] for r in rc])
    f_anon, c_anon = median([r["anon_peak_kb"] for r in rf]), median([r["anon_peak_kb"] for r in rc])
    f_file, c_file = median([r["file_peak_kb"] for r in rf]), median([r["file_peak_kb"] for r in rc])
    mib = lambda kb: f"{kb / 1024:.1f} MiB"
    print(f"\n### 5. Peak memory of a run with 50 targets (median of {ROUNDS})\n")
    table(["tool", "max RSS (getrusage, as time -v)", "peak RSS of the process tree", "faultline / peer (max RSS)", "faultline / peer (tree)"], [
        ["faultline", mib(f_max), mib(f_tree), "1.00", "1.00"],
        ["chaos run (Chaos Toolkit)", mib(c_max), mib(c_tree), f"{f_max / c_max:.2f}", f"{f_tree / c_tree:.2f}"],
    ])
    print(f"\nWhat the main process's RSS is made of (peaks sampled from /proc/PID/status):\n")
    table(["tool", "RssAnon (heap, stacks)", "RssFile (its executable and libraries, clean page cache)"], [
        ["faultline", mib(f_anon), mib(f_file)],
        ["chaos run (Chaos Toolkit)", mib(c_anon), mib(c_file)],
        ["faultline / peer", f"{f_anon / c_anon:.2f}", f"{f_file / c_file:.2f}"],
    ])
    met = f_max * 2 <= c_max and f_tree * 2 <= c_tree
    print(f"\nBar: peak memory at most half of Chaos Toolkit's: {f_max / c_max:.2f} (max RSS), {f_tree / c_tree:.2f} (tree) -> {verdict(met)}")
    save("memory", {"faultline": rf, "chaos": rc, "met": met,
                    "ratio_maxrss": f_max / c_max, "ratio_tree": f_tree / c_tree, "ratio_anon": f_anon / c_anon})
    remove(cs + [web])


if __name__ == "__main__":
    main()
