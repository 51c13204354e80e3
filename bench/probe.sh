#!/usr/bin/env bash
# 4. During-probe sampling: highest sustained HTTP probe rate and its CPU; detection of a
# 300 ms pause at the default and at a 50 ms interval.
source "$(dirname "$0")/setup.sh"
python3 bench/probe.py
