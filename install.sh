#!/usr/bin/env sh
# Builds faultline in release mode and installs the binary into $PREFIX (default ~/.local/bin).
# Safe to run again: it rebuilds only what changed and replaces the binary atomically.
set -eu

PREFIX="${PREFIX:-$HOME/.local/bin}"
cd "$(dirname "$0")"

if ! command -v cargo >/dev/null 2>&1; then
    echo "install.sh: cargo was not found." >&2
    echo "  faultline is built from source with Rust's cargo. Install the toolchain from your" >&2
    echo "  distribution (e.g. 'apt-get install cargo') or with rustup, then run ./install.sh again." >&2
    exit 1
fi

echo "install.sh: building faultline (release)..." >&2
cargo build --release --locked --quiet --bin faultline

mkdir -p "$PREFIX"
cp target/release/faultline "$PREFIX/faultline.tmp.$$"
mv -f "$PREFIX/faultline.tmp.$$" "$PREFIX/faultline"
echo "install.sh: installed $("$PREFIX/faultline" --version) to $PREFIX/faultline" >&2

case ":$PATH:" in
    *":$PREFIX:"*) ;;
    *) echo "install.sh: note: $PREFIX is not on your PATH; add it, or call $PREFIX/faultline" >&2 ;;
esac
