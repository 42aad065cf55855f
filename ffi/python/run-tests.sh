#!/usr/bin/env bash
# Build libaqm_ffi, generate its uniffi Python module, and run the pytest suite against it.
# Usage: ffi/python/run-tests.sh [pytest args]   (CARGO_TARGET_DIR is honoured)
set -euo pipefail
cd "$(dirname "$0")/../.."
target="${CARGO_TARGET_DIR:-target}"
cargo build --locked -p aqm-ffi --lib
cargo build --locked -p aqm-ffi --features bindgen --bin uniffi-bindgen
out="$target/aqm-ffi-python"
rm -rf "$out" && mkdir -p "$out"
"$target/debug/uniffi-bindgen" generate --library "$target/debug/libaqm_ffi.so" --language python --out-dir "$out" >/dev/null
cp "$target/debug/libaqm_ffi.so" "$out/"
PYTHONPATH="$out:ffi/python/tests" python3 -m pytest -q -p no:cacheprovider ffi/python/tests "$@"
