#!/usr/bin/env python3
"""Runs a command and reports its memory: the max RSS of the process itself and of the
largest child it waited for (getrusage, what `/usr/bin/time -v` prints), and the peak of
the summed RSS of its whole process tree, sampled from /proc every 2 ms (helpers such as
Chaos Toolkit's `docker` CLI calls or faultline's dead-man's switch count here).
The main process's RssAnon (heap, stacks) and RssFile (mapped files: its executable and
libraries, clean page cache) peaks are sampled too.
Usage: peakrss.py CMD...   Prints one JSON line; exits with the command's code."""
import json
import os
import subprocess
import sys
import threading
import time


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(c) for c in f.read().split()]
    except OSError:
        return []


def status_kb(pid, key="VmRSS:"):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def main():
    p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = [0]
    main_peak = {"RssAnon:": 0, "RssFile:": 0}
    done = threading.Event()

    def sample():
        while not done.is_set():
            tree, todo = 0, [p.pid]
            while todo:
                pid = todo.pop()
                tree += status_kb(pid)
                todo += children(pid)
            peak[0] = max(peak[0], tree)
            for k in main_peak:
                main_peak[k] = max(main_peak[k], status_kb(p.pid, k))
            time.sleep(0.002)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    _, status, ru = os.wait4(p.pid, 0)
    done.set()
    t.join()
    print(json.dumps({"maxrss_kb": ru.ru_maxrss, "tree_peak_kb": peak[0],
                      "anon_peak_kb": main_peak["RssAnon:"], "file_peak_kb": main_peak["RssFile:"],
                      "code": os.waitstatus_to_exitcode(status)}))
    sys.exit(os.waitstatus_to_exitcode(status))


if __name__ == "__main__":
    main()
