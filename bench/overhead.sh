#!/usr/bin/env bash
# 1. Whole-run overhead, faultline vs Chaos Toolkit. Usage: bench/overhead.sh
source "$(dirname "$0")/setup.sh"
python3 bench/overhead.py
