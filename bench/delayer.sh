#!/usr/bin/env bash
# 6. CPU use of the nfqueue delayer at 1,000 packets per second.
source "$(dirname "$0")/setup.sh"
python3 bench/delayer.py
