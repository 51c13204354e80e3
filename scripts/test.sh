#!/usr/bin/env bash
# The README's test command: `cargo test` (arguments passed through, e.g. `--test reports`
# or `--locked`), then exactly which tests did not run here and why. Exits with cargo's
# status.
#
# A test that cannot run records itself (tests/support/skip.rs) in target/test-skips/:
#   missing dependency             a program or service is not installed; under CI=true or
#                                  FAULTLINE_REQUIRE_ALL=1 the test fails instead
#   not applicable on this kernel  e.g. the netem test without sch_netem; never a failure
#   turned off                     switched off by an environment variable
set -uo pipefail
cd "$(dirname "$0")/.."

target="${CARGO_TARGET_DIR:-target}"
case "$target" in /*) ;; *) target="$PWD/$target" ;; esac
export FAULTLINE_SKIP_DIR="$target/test-skips"
rm -rf "$FAULTLINE_SKIP_DIR"

cargo test "$@"
status=$?

shopt -s nullglob
records=("$FAULTLINE_SKIP_DIR"/*.tsv)
if [ "${#records[@]}" -eq 0 ]; then
    echo "== test.sh: nothing was skipped; every test that was selected ran"
    exit "$status"
fi
count=$(cat "${records[@]}" | wc -l)
echo
echo "== test.sh: $count test(s) did not run (fully) here:"
for kind in "missing dependency" "not applicable on this kernel" "turned off"; do
    lines=$(cat "${records[@]}" | awk -F '\t' -v k="$kind" '$1 == k { print "    " $2 ": " $3 }' | sort)
    [ -n "$lines" ] || continue
    case "$kind" in
        "missing dependency")
            echo "  missing dependency (install with scripts/install-test-deps.sh; a failure under CI=true or FAULTLINE_REQUIRE_ALL=1):" ;;
        "not applicable on this kernel")
            echo "  not applicable on this kernel (the test has a counterpart for this kernel; never a failure):" ;;
        *)
            echo "  turned off by the environment:" ;;
    esac
    echo "$lines"
done
exit "$status"
