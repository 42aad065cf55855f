#!/usr/bin/env bash
# Known-answer tests through aqm-core's crypto wrappers (core/tests/kat_*.rs and the
# small_mldsa65 unit tests; small_mldsa65 is the identity's signer on every build), printing how
# many vectors each ran per expected result. Fails if any vector fails or a test ran none.
# Usage: scripts/kat.sh
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
printf '\n==> KATs, signer: small_mldsa65 (verifier: ml-dsa)\n'
args=(-p aqm-core --locked --no-fail-fast)
# Lines a test prints may follow its "test name ... " on the same line: keep from the marker on.
log=$(mktemp)
cargo test "${args[@]}" --test 'kat_*' -- --nocapture --test-threads=1 >"$log" 2>&1 || status=1
grep -oE '(KAT |BRONZE refused|test [a-z0-9_]+ \.\.\. FAILED|.*panicked at).*' "$log" | sed -E 's/^test ([a-z0-9_]+) \.\.\. FAILED.*/FAILED: \1/'
grep -A3 'panicked at' "$log" | grep -vE 'panicked at|^--$|stack backtrace' | head -20 || true
cargo test "${args[@]}" --lib small_mldsa65 -- --nocapture --test-threads=1 >"$log" 2>&1 || status=1
grep -oE 'small_mldsa65 (ACVP|Wycheproof).*' "$log"
rm -f "$log"
[ $status -eq 0 ] && echo "KATs: all passed" || echo "KATs: FAILED (see above)"
exit $status
