#!/usr/bin/env bash
# Constant-time check (ctgrind / TIMECOP method): runs ct-check/ — aqm-core's secret-handling
# paths with every secret marked undefined — under valgrind memcheck. Every build signs ML-DSA-65
# with the core's `small_mldsa65` (the `ml-dsa` crate's signer fails this check; see
# scripts/ct-check.supp), so there is one variant. Fails on any report that scripts/ct-check.supp
# does not explain.
# Usage: scripts/ct-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "ct-check: valgrind is not installed (apt-get install valgrind)"; exit 1; }
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}/ct-check"
supp=scripts/ct-check.supp
out="$CARGO_TARGET_DIR/reports"
mkdir -p "$out"
status=0
variant=host
(cd ct-check && cargo build --release --locked -q)
cp "$CARGO_TARGET_DIR/release/aqm-ct-check" "$CARGO_TARGET_DIR/aqm-ct-check-$variant"
# The method must be able to fail: a deliberate branch on a secret has to be reported.
if valgrind --tool=memcheck --error-exitcode=99 --suppressions="$supp" -q \
    "$CARGO_TARGET_DIR/aqm-ct-check-$variant" --canary >/dev/null 2>&1; then
  echo "ct-check ($variant): the canary's secret branch was NOT reported: the check is broken"; exit 1
fi
printf '\n==> ct-check under valgrind memcheck\n'
SECONDS=0
if valgrind --tool=memcheck --error-exitcode=99 --error-limit=no --num-callers=40 \
    --suppressions="$supp" --gen-suppressions=all --show-leak-kinds=none \
    "$CARGO_TARGET_DIR/aqm-ct-check-$variant" 2> "$out/$variant.log"; then
  echo "ct-check ($variant): no unexplained secret-dependent branch or index (${SECONDS}s)"
else
  status=1
  echo "ct-check ($variant): FAILED after ${SECONDS}s; valgrind's reports (with suggested suppressions) are in $out/$variant.log:"
  # One line per report: its kind and innermost frames (names cut short).
  awk '/^==[0-9]+== (Conditional|Use of uninit)/ {kind=$0; sub(/^==[0-9]+== /, "", kind); n=0; next}
       kind != "" && /^==[0-9]+==    (at|by) 0x/ && n < 3 {f=$0; sub(/^.*: /, "", f); fr[n++]=substr(f, 1, 90); next}
       kind != "" && n > 0 {print kind " | " fr[0] " | " fr[1] " | " fr[2]; kind=""}' "$out/$variant.log" | sort | uniq -c | sort -rn | head -40
fi
grep -E 'ERROR SUMMARY' "$out/$variant.log" | sed 's/^==[0-9]*== //'
exit $status
