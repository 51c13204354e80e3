#!/usr/bin/env bash
# 2. Pause + unpause of N = 1, 10, 50 containers: faultline vs docker CLI loop vs raw API.
source "$(dirname "$0")/setup.sh"
python3 bench/inject.py
