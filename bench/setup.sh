# Sourced by every bench script: installs what the benchmarks need, once, and sets up the
# clean-up of this run's containers. Safe to source again (each step is idempotent).
#   - faultline: `cargo build --release` (a no-op when up to date)
#   - hyperfine: from Debian when missing
#   - Chaos Toolkit: `chaostoolkit` from PyPI into bench/.venv (private virtualenv)
#   - test images: scripts/test-images.sh (built locally, no registry)
# Exports ROOT, FL (faultline binary), CHAOS (chaos CLI), BENCH_RUN (label of this run's
# containers), FAULTLINE_STATE_DIR (a private journal under bench/out).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CHAOSTOOLKIT_VERSION="${CHAOSTOOLKIT_VERSION:-1.19.0}"

note() { printf 'bench: %s\n' "$*" >&2; }

apt_install() {
    if [ -z "${BENCH_APT_UPDATED:-}" ]; then
        apt-get update -qq >/dev/null
        export BENCH_APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if [ -z "${BENCH_SETUP_DONE:-}" ]; then
    command -v docker >/dev/null || { note "docker CLI missing"; exit 1; }
    docker info >/dev/null 2>&1 || { note "cannot reach the Docker daemon"; exit 1; }
    command -v hyperfine >/dev/null || { note "installing hyperfine"; apt_install hyperfine; }
    [ -x /usr/bin/time ] || { note "installing GNU time"; apt_install time; }
    command -v python3 >/dev/null || { note "installing python3"; apt_install python3; }

    note "building faultline (cargo build --release)"
    cargo build --release --quiet --bin faultline

    if [ ! -x bench/.venv/bin/chaos ] ||
        ! bench/.venv/bin/python -c "import importlib.metadata as m; assert m.version('chaostoolkit') == '$CHAOSTOOLKIT_VERSION'" 2>/dev/null; then
        note "installing chaostoolkit==$CHAOSTOOLKIT_VERSION into bench/.venv"
        rm -rf bench/.venv
        python3 -m venv bench/.venv 2>/dev/null || { apt_install python3-venv; python3 -m venv bench/.venv; }
        bench/.venv/bin/pip install -q --disable-pip-version-check "chaostoolkit==$CHAOSTOOLKIT_VERSION"
    fi

    scripts/test-images.sh >/dev/null
    export BENCH_SETUP_DONE=1
fi

export ROOT
export FL="${FL:-$ROOT/target/release/faultline}"
export CHAOS="$ROOT/bench/.venv/bin/chaos"
export BENCH_RUN="${BENCH_RUN:-b$$-$(date +%s)}"
export FAULTLINE_STATE_DIR="$ROOT/bench/out/state"
mkdir -p bench/out "$FAULTLINE_STATE_DIR"

# Whatever happens (error, Ctrl-C), this run's containers go.
bench_cleanup() {
    local ids
    ids="$(docker ps -aq --filter "label=fltest.run=$BENCH_RUN" 2>/dev/null || true)"
    [ -z "$ids" ] || docker rm -f $ids >/dev/null 2>&1 || true
}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM
