#!/usr/bin/env python3
"""4. During-probe sampling.
 a) The highest HTTP probe rate faultline sustains against a tiny local server
    (bench/tinyserver.py on 127.0.0.1) and its CPU cost: a 3 s pause of a bench container
    opens the during window; K http probes sampled every 10 ms (the shortest interval
    faultline accepts) ask for K x 100 samples/s. Sustained = at least 95% of the asked
    samples taken and all of them successful. CPU = faultline's user+sys time (rusage of
    the process) minus that of the same run without during probes.
 b) Whether a 300 ms pause is detected: 20 trials at the default interval (1 s) and at
    50 ms, the during probe asking the paused container's httpd with a 100 ms timeout.
    Detected = at least one sample and a during success ratio below 1."""
import json
import os
import subprocess
import sys

from common import *

WINDOW = 3.0
KS = [int(k) for k in os.environ.get("BENCH_PROBE_KS", "1,10,50,100,200,400,800").split(",")]
TRIALS = int(os.environ.get("BENCH_TRIALS", "20"))


def run_rusage(cmd):
    """Runs cmd; returns (wall s, cpu s of the process and the children it waited for)."""
    start = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=fl_env())
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    err = p.stderr.read().decode()
    if p.returncode != 0:
        sys.exit(f"bench: {' '.join(cmd)} exited {p.returncode}: {err[-2000:]}")
    return wall, ru.ru_utime + ru.ru_stime


def server_cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(") ", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rate_experiment(d, target, url, k):
    probes = "".join(f"""    - name: local-{i}
      http: {{url: "{url}", timeout: 1s}}
""" for i in range(k))
    during = f"""during:
  interval: 10ms
  probes:
{probes}""" if k else ""
    f = d / f"rate-{k}.yaml"
    f.write_text(f"""version: 1
name: bench-probe-rate-{k}
target:
  docker:
    name: {target}
{during}faults:
  - pause: {{duration: 3s}}
""")
    return f


def main():
    d = outdir("probe")
    [c] = start_containers(1, "probe", publish=True)
    server = subprocess.Popen(["python3", str(ROOT / "bench" / "tinyserver.py"), "--lifetime", "900"],
                              stdout=subprocess.PIPE, text=True)
    try:
        port = int(server.stdout.readline())
        url = f"http://127.0.0.1:{port}/"
        wait_http(url)
        # a) rate and CPU
        base = [run_rusage([FL, "run", str(rate_experiment(d, c["name"], url, 0))])[1] for _ in range(3)]
        cpu0 = median(base)
        rows, rate_data = [], []
        best = 0
        for k in KS:
            f = rate_experiment(d, c["name"], url, k)
            rep = d / f"rate-{k}.json"
            runs = []
            s0 = server_cpu(server.pid)
            for _ in range(3):
                _, cpu = run_rusage([FL, "run", str(f), "--report", f"json:{rep}"])
                r = json.loads(rep.read_text())
                ps = r["phases"]["during"]["probes"]
                samples = sum(p["samples"] for p in ps)
                ok = sum(p["successes"] for p in ps)
                runs.append((samples, ok, cpu))
            srv = (server_cpu(server.pid) - s0) / (3 * WINDOW)
            samples = median([x[0] for x in runs])
            ok = median([x[1] for x in runs])
            cpu = median([x[2] for x in runs]) - cpu0
            asked = k * 100 * WINDOW
            achieved = samples / WINDOW
            sustained = samples >= 0.95 * asked and ok == samples
            if sustained:
                best = max(best, achieved)
            per_k = cpu / samples * 1000 * 1000 if samples else 0
            rows.append([f"{k} x every 10 ms", f"{k * 100}/s", f"{achieved:.0f}/s", f"{ok / samples:.4f}" if samples else "-",
                         f"{cpu / WINDOW * 100:.1f}% of a core", f"{per_k:.0f} us", f"{srv * 100:.0f}%", "yes" if sustained else "no"])
            rate_data.append({"k": k, "asked_per_s": k * 100, "achieved_per_s": achieved, "ok": ok,
                              "samples": samples, "cpu_s": cpu, "sustained": sustained})
        print(f"\n### 4a. During-probe rate against a local server (3 s window, median of 3 runs)\n")
        table(["probes", "asked", "achieved", "success ratio", "faultline CPU (minus a run without probes)", "CPU per sample", "server CPU (approx.)", "sustained"], rows)
        print(f"\nHighest sustained rate: {best:.0f} samples/s")

        # b) detection of a 300 ms pause
        det_rows, det_data = [], {}
        for label, interval in [("default (1s)", None), ("50ms", "50ms")]:
            iv = f"  interval: {interval}\n" if interval else ""
            f = d / f"detect-{interval or 'default'}.yaml"
            f.write_text(f"""version: 1
name: bench-detect
target:
  docker:
    name: {c['name']}
during:
{iv}  probes:
    - name: web answers
      http: {{url: "http://127.0.0.1:{c['port']}/", timeout: 100ms}}
faults:
  - pause: {{duration: 300ms}}
""")
            detected, samples, no_sample = 0, [], 0
            rep = d / "detect.json"
            for _ in range(TRIALS):
                timed([FL, "run", str(f), "--report", f"json:{rep}"], ok=(0, 1), env=fl_env())
                p = json.loads(rep.read_text())["phases"]["during"]["probes"][0]
                samples.append(p["samples"])
                if p["samples"] == 0:
                    no_sample += 1
                elif p["success_ratio"] < 1:
                    detected += 1
            det_data[label] = {"detected": detected, "trials": TRIALS, "samples": samples}
            det_rows.append([label, f"{detected}/{TRIALS}", f"{median(samples):.0f}", no_sample,
                             verdict(detected == TRIALS)])
        print(f"\n### 4b. Is a 300 ms pause detected? ({TRIALS} trials each; probe timeout 100 ms)\n")
        table(["interval", "detected", "samples per run (median)", "runs with no sample at all", "20 of 20"], det_rows)
        save("probe", {"baseline_cpu_s": cpu0, "rate": rate_data, "best_per_s": best, "detect": det_data})
    finally:
        server.terminate()
        server.wait()
        remove([c])


if __name__ == "__main__":
    main()
