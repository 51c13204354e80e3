#!/usr/bin/env python3
"""Prints the date and the machine the figures come from (for bench/RESULTS.md)."""
from common import machine

m = machine()
print("\n### Machine\n")
for k, v in m.items():
    print(f"- {k}: {v}")
