#!/usr/bin/env bash
# The C ABI end to end: check that ffi/include/aqm.h is what cbindgen generates from the code,
# build libaqm_ffi, compile ffi/c/example.c with gcc (-Wall -Wextra -Werror), and run it under
# valgrind (memcheck: any invalid read or write, use of uninitialised memory or definitely /
# indirectly lost block fails the run).
# Usage: ffi/c/run-example.sh            (CARGO_TARGET_DIR is honoured)
set -euo pipefail
cd "$(dirname "$0")/../.."
target="${CARGO_TARGET_DIR:-target}"

fresh="$(mktemp)"
trap 'rm -f "$fresh"' EXIT
(cd ffi && cbindgen --quiet --config cbindgen.toml --crate aqm-ffi --output "$fresh" .)
if ! diff -u ffi/include/aqm.h "$fresh"; then
  echo "ffi/include/aqm.h is stale: regenerate it with (cd ffi && cbindgen --config cbindgen.toml --crate aqm-ffi --output include/aqm.h .)" >&2
  exit 1
fi

cargo build --locked -p aqm-ffi --lib
gcc -std=c11 -O1 -g -Wall -Wextra -Werror -I ffi/include ffi/c/example.c \
  -L "$target/debug" -Wl,-rpath,"$(cd "$target/debug" && pwd)" -laqm_ffi -lpthread -o "$target/aqm-c-example"
valgrind --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect \
  --errors-for-leak-kinds=definite,indirect --track-origins=yes "$target/aqm-c-example"
