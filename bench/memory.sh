#!/usr/bin/env bash
# 5. Peak memory of a run with 50 targets: faultline vs Chaos Toolkit.
source "$(dirname "$0")/setup.sh"
python3 bench/memory.py
