#!/usr/bin/env bash
# Build libaqm_ffi, generate its uniffi Python module and run the pytest suite against it; check
# that the checked-in Kotlin and Swift bindings (ffi/bindings/) are what uniffi generates.
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

# Kotlin and Swift are generated here too and must equal the checked-in ffi/bindings/ (no test
# runs them on this machine: no JVM/JNA or Swift toolchain is installed by CI).
for lang in kotlin swift; do
  rm -rf "$target/aqm-ffi-$lang"
  "$target/debug/uniffi-bindgen" generate --no-format --library "$target/debug/libaqm_ffi.so" --language "$lang" \
    --out-dir "$target/aqm-ffi-$lang" >/dev/null
  if ! diff -r "ffi/bindings/$lang" "$target/aqm-ffi-$lang"; then
    echo "ffi/bindings/$lang is stale: regenerate it with the uniffi-bindgen command above (--out-dir ffi/bindings/$lang)" >&2
    exit 1
  fi
done
PYTHONPATH="$out:ffi/python/tests" python3 -m pytest -q -p no:cacheprovider ffi/python/tests "$@"
