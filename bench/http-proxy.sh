#!/usr/bin/env bash
# 7. Latency the `http` fault's proxy adds to requests it does not act on, side by side
# with direct requests to the same server in the same run.
# Usage: bench/http-proxy.sh   (BENCH_REQUESTS=N; FL=/path/to/faultline for another build)
source "$(dirname "$0")/setup.sh"
python3 bench/http-proxy.py
