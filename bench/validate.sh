#!/usr/bin/env bash
# How fast `faultline validate` is: one file (an editor's loop) and 1,000 files (a repo's CI
# check). Prints hyperfine's table. Usage: bench/validate.sh [path/to/faultline]
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-target/release/faultline}"
[ -x "$bin" ] || cargo build --release --quiet --bin faultline
command -v hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine >/dev/null; }

work=bench/out/validate
rm -rf "$work" && mkdir -p "$work/files"
i=0
while [ $i -lt 1000 ]; do
    for f in experiments/*.yaml; do
        [ $i -lt 1000 ] || break
        sed "s/^name: \(.*\)$/name: \1-$i/" "$f" > "$work/files/e$i.yaml"
        i=$((i + 1))
    done
done
# The examples' modeline points at ../schema; irrelevant here.
hyperfine --warmup 3 --min-runs 20 --export-markdown "$work/result.md" \
    -n "validate 1 file" "$bin validate experiments/web-pause.yaml" \
    -n "validate 1000 files" "$bin validate $work/files/*.yaml"
cat "$work/result.md"
