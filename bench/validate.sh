#!/usr/bin/env bash
# 3. `faultline validate` vs `chaos validate`: one file (an editor's loop) and 1,000 files
# (a repository's CI check). Prints a table of hyperfine medians and the ratios.
# Usage: bench/validate.sh
source "$(dirname "$0")/setup.sh"
python3 bench/validate.py
