#!/usr/bin/env bash
# Runs every benchmark in one go on this machine and prints each table; the full output
# is also kept in bench/out/run-all.txt. Installs what it needs (see bench/setup.sh).
# Takes about 10 minutes on 2 cores, once faultline is built.
# Usage: bench/run-all.sh            (BENCH_ROUNDS etc. as in each script to shorten)
source "$(dirname "$0")/setup.sh"
start=$(date +%s)
{
    python3 bench/machine.py
    for b in overhead inject validate probe memory delayer http-proxy; do
        python3 "bench/$b.py"
    done
    echo
    echo "Total: $(( $(date +%s) - start )) s"
} 2>&1 | tee bench/out/run-all.txt
