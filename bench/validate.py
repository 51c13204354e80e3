#!/usr/bin/env python3
"""3. `faultline validate` vs `chaos validate` on the same experiment (the pause of
bench 1, in each tool's format), and on 1,000 files (1,000 copies with distinct names).
faultline takes the 1,000 files in one call; `chaos validate` takes one file per call, so
Chaos Toolkit is timed twice: its CLI on one file (x1,000 = what a loop costs) and its
library validating all 1,000 in one Python process (bench/ctk_validate_many.py), the
fairest one-process comparison. hyperfine, medians."""
import json
import os
import subprocess

from common import *

RUNS = os.environ.get("BENCH_VALIDATE_RUNS", "20")


def hyperfine(d, name, cmds, runs=RUNS):
    out = d / f"{name}.json"
    args = ["hyperfine", "-N", "--warmup", "3", "--min-runs", str(runs), "--export-json", str(out)]
    for label, cmd in cmds:
        args += ["-n", label, cmd]
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return {r["command"]: r for r in json.loads(out.read_text())["results"]}


def main():
    d = outdir("validate")
    files = d / "files"
    files.mkdir(exist_ok=True)
    yaml = """version: 1
name: bench-pause-one-{i}
target:
  docker:
    name: web-1
steady_state:
  - name: web answers
    http: {{url: "http://127.0.0.1:8080/", status: [200], timeout: 2s}}
faults:
  - pause: {{duration: 1s}}
"""
    def ctk(i):
        return {
            "title": f"bench-pause-one-{i}",
            "description": "Pause one container for 1 s; the web answers before and after.",
            "steady-state-hypothesis": {"title": "web answers", "probes": [
                {"type": "probe", "name": "web-answers", "tolerance": 200,
                 "provider": {"type": "http", "url": "http://127.0.0.1:8080/", "timeout": 2}}]},
            "method": [
                {"type": "action", "name": "pause", "provider": {"type": "process", "path": "docker", "arguments": ["pause", "web-1"]}, "pauses": {"after": 1}},
                {"type": "action", "name": "unpause", "provider": {"type": "process", "path": "docker", "arguments": ["unpause", "web-1"]}}],
            "rollbacks": []}
    for i in range(1000):
        (files / f"e{i}.yaml").write_text(yaml.format(i=i))
        (files / f"e{i}.json").write_text(json.dumps(ctk(i), indent=2))
    one_fl, one_ctk = files / "e0.yaml", files / "e0.json"
    # Both must accept their file, or the timing means nothing.
    sh(FL, "validate", str(one_fl))
    sh(CHAOS, *CHAOS_FLAGS, "--no-log-file", "validate", str(one_ctk))
    many_fl = " ".join(str(files / f"e{i}.yaml") for i in range(1000))
    many_ctk = " ".join(str(files / f"e{i}.json") for i in range(1000))
    vpy = ROOT / "bench" / ".venv" / "bin" / "python"
    chaos = f"{CHAOS} {' '.join(CHAOS_FLAGS)} --no-log-file validate {one_ctk}"
    r1 = hyperfine(d, "one", [("faultline validate (1 file)", f"{FL} validate {one_fl}"),
                              ("chaos validate (1 file)", chaos)])
    rn = hyperfine(d, "many", [
        ("faultline validate (1,000 files, one call)", f"{FL} validate {many_fl}"),
        ("chaoslib in one process (1,000 files)", f"{vpy} {ROOT / 'bench' / 'ctk_validate_many.py'} {many_ctk}"),
        ("chaoslib in one process (0 files: interpreter and imports)", f"{vpy} {ROOT / 'bench' / 'ctk_validate_many.py'}"),
    ], runs=10)
    f1, c1 = r1["faultline validate (1 file)"]["median"], r1["chaos validate (1 file)"]["median"]
    fn = rn["faultline validate (1,000 files, one call)"]["median"]
    cn = rn["chaoslib in one process (1,000 files)"]["median"]
    c0 = rn["chaoslib in one process (0 files: interpreter and imports)"]["median"]
    per_fl, per_ctk = (fn - f1) / 999, (cn - c0) / 1000
    print(f"\n### 3. Validation (hyperfine medians)\n")
    table(["files", "faultline validate", "Chaos Toolkit", "faultline faster by"], [
        ["1 (same experiment)", ms(f1), f"{ms(c1)} (`chaos validate`)", f"{c1 / f1:.0f}x"],
        ["1,000 (one call / one process)", ms(fn), f"{ms(cn)} (chaoslib, one process)", f"{cn / fn:.1f}x"],
        ["1,000 (`chaos validate` per file)", ms(fn), f"{ms(c1 * 1000)} (1,000 x the CLI, computed)", f"{c1 * 1000 / fn:.0f}x"],
        ["each further file (marginal)", f"{per_fl * 1e6:.0f} us", f"{per_ctk * 1e6:.0f} us (chaoslib)", f"{per_ctk / per_fl:.1f}x"],
    ])
    met = c1 / f1 >= 10 and c1 * 1000 / fn >= 10
    print(f"\nBar: validate at least 10x faster than `chaos validate`: {c1 / f1:.0f}x on one file, "
          f"{c1 * 1000 / fn:.0f}x on 1,000 -> {verdict(met)}")
    print(f"Not a bar, for transparency: against chaoslib validating 1,000 files inside one Python "
          f"process (no CLI), faultline is {cn / fn:.1f}x faster; per further file {per_ctk / per_fl:.1f}x.")
    save("validate", {"one": {"faultline": f1, "chaos": c1},
                      "many": {"faultline": fn, "chaoslib": cn, "chaoslib_empty": c0},
                      "per_file": {"faultline": per_fl, "chaoslib": per_ctk}, "met": met})


if __name__ == "__main__":
    main()
