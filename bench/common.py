"""Helpers shared by the bench scripts: containers, timing, tables, machine facts.

Every container is labelled `faultline.test=true`, `fltest.group=bench` and
`fltest.run=$BENCH_RUN`, and removed at exit (atexit here, and the shell trap in
setup.sh as a second line of defence).
"""
import atexit
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
FL = os.environ.get("FL", str(ROOT / "target" / "release" / "faultline"))
CHAOS = os.environ.get("CHAOS", str(ROOT / "bench" / ".venv" / "bin" / "chaos"))
RUN = os.environ.get("BENCH_RUN", f"b{os.getpid()}")
IMAGE = "faultline-test/busybox:1"
# Chaos Toolkit must not phone home (its version check) and must not read ~/.chaostoolkit.
CHAOS_FLAGS = ["--no-version-check", "--settings", str(OUT / "ctk-settings.yaml")]

_made = []


def cleanup():
    ids = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=fltest.run={RUN}"],
        capture_output=True, text=True).stdout.split()
    if ids:
        subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)


atexit.register(cleanup)
for _sig in (signal.SIGINT, signal.SIGTERM):
    signal.signal(_sig, lambda *_: sys.exit(130))


def outdir(name):
    d = OUT / name
    d.mkdir(parents=True, exist_ok=True)
    (OUT / "ctk-settings.yaml").write_text("{}\n")
    return d


def sh(*cmd, check=True, **kw):
    return subprocess.run(cmd, check=check, capture_output=True, text=True, **kw)


def start_containers(n, prefix, publish=False):
    """Starts n busybox httpd containers; returns [{name, id, ip, port}]."""
    def one(i):
        name = f"flb-{RUN}-{prefix}-{i}"
        cmd = ["docker", "run", "-d", "--label", "faultline.test=true",
               "--label", "fltest.group=bench", "--label", f"fltest.run={RUN}",
               "--label", f"fltest.set={prefix}", "--name", name]
        if publish:
            cmd += ["-p", "127.0.0.1::80"]
        cmd += [IMAGE, "httpd", "-f", "-p", "80", "-h", "/www"]
        cid = sh(*cmd).stdout.strip()
        return {"name": name, "id": cid}

    with ThreadPoolExecutor(8) as ex:
        cs = list(ex.map(one, range(1, n + 1)))
    fmt = "{{.NetworkSettings.IPAddress}} {{json .NetworkSettings.Ports}}"
    for c in cs:
        ip, ports = sh("docker", "inspect", "-f", fmt, c["id"]).stdout.strip().split(" ", 1)
        c["ip"] = ip
        ports = json.loads(ports) or {}
        bound = ports.get("80/tcp") or []
        c["port"] = int(bound[0]["HostPort"]) if bound else None
    if publish:
        for c in cs:
            wait_http(f"http://127.0.0.1:{c['port']}/")
    return cs


def remove(cs):
    if cs:
        subprocess.run(["docker", "rm", "-f", *[c["id"] for c in cs]], capture_output=True)


def wait_http(url, timeout=10):
    import urllib.request
    end = time.time() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except Exception:
            if time.time() > end:
                raise
        time.sleep(0.05)


def timed(cmd, ok=(0,), **kw):
    """Runs cmd; returns (wall seconds, CompletedProcess). Fails loudly on a bad exit."""
    start = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    took = time.perf_counter() - start
    if p.returncode not in ok:
        sys.exit(f"bench: `{' '.join(map(str, cmd))}` exited {p.returncode}:\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
    return took, p


def fl_env():
    env = dict(os.environ)
    env.setdefault("FAULTLINE_STATE_DIR", str(OUT / "state"))
    env["NO_COLOR"] = "1"
    return env


def median(xs):
    return statistics.median(xs)


def ms(x):
    return f"{x * 1000:.1f} ms" if x < 10 else f"{x:.2f} s"


def table(headers, rows):
    """Prints a Markdown table (to stdout) and returns it as text."""
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"
    text = "\n".join([line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|",
                      *(line(r) for r in rows)])
    print(text, flush=True)
    return text


def verdict(ok):
    return "MET" if ok else "NOT MET"


def machine():
    mem = next(l for l in open("/proc/meminfo") if l.startswith("MemTotal")).split()[1]
    return {
        "date": sh("date").stdout.strip(),
        "nproc": sh("nproc").stdout.strip(),
        "memory": f"{int(mem) / 1024 / 1024:.1f} GiB",
        "kernel": platform.release(),
        "docker": sh("docker", "version", "-f", "{{.Server.Version}}").stdout.strip(),
        "faultline": sh(FL, "--version").stdout.strip(),
        "chaostoolkit": sh(CHAOS, "--version").stdout.strip().splitlines()[-1],
        "python": platform.python_version(),
    }


def save(name, data):
    (OUT / f"{name}.json").write_text(json.dumps(data, indent=2, default=str))


def experiment_file(path, name, container, fault):
    """Writes an experiment with one fault on one container by name; returns its path."""
    path.write_text(f"""version: 1
name: {name}
target:
  docker:
    name: {container}
faults:
  - {fault}
""")
    return path
