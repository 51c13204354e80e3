"""Chaos Toolkit's own validation (chaoslib's ensure_experiment_is_valid, what
`chaos validate` runs) over many files in ONE Python process: the most favourable way to
validate 1,000 files with Chaos Toolkit, whose CLI takes one file per call.
Usage: bench/.venv/bin/python ctk_validate_many.py FILE..."""
import logging
import sys

from chaoslib.experiment import ensure_experiment_is_valid
from chaoslib.loader import load_experiment

logging.disable(logging.CRITICAL)
bad = 0
for path in sys.argv[1:]:
    try:
        ensure_experiment_is_valid(load_experiment(path))
    except Exception as e:  # an invalid file: count it, like a validator would
        bad += 1
        print(f"{path}: {e}", file=sys.stderr)
sys.exit(1 if bad else 0)
