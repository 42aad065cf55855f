#!/usr/bin/env bash
# Bounded fuzzing of AQM's decoders with cargo-fuzz (libFuzzer + AddressSanitizer): each target in
# fuzz/ runs for SECONDS (default 60) from its committed seed corpus (fuzz/corpus/<target>/,
# copied, so the committed corpus stays small), and the script fails on any crash, panic, leak
# or timeout. A crashing input is left in fuzz/artifacts/<target>/.
# Usage: scripts/fuzz.sh [seconds]             all targets
#        FUZZ_TARGETS="session_open" scripts/fuzz.sh 300
#        FUZZ_FIRMWARE=0 scripts/fuzz.sh         without the firmware's targets (firmware_frame,
#                                                firmware_command: feature firmware, on by default)
# cargo fuzz needs a nightly compiler (-Zsanitizer): `cargo +nightly` when rustup has one, else
# the stable compiler with RUSTC_BOOTSTRAP=1.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${1:-60}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/../target}/fuzz"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  fuzz=(cargo +nightly fuzz)
else
  export RUSTC_BOOTSTRAP=1
  fuzz=(cargo fuzz)
fi
features=()
default_targets="envelope_decode session_open ratchet_receive redb_records redis_records"
if [ "${FUZZ_FIRMWARE:-1}" = 1 ]; then
  features=(--features firmware)
  default_targets="$default_targets firmware_frame firmware_command"
fi
targets="${FUZZ_TARGETS:-$default_targets}"
# Seed corpora come from the public API (fuzz/src/bin/gen_corpus.rs); regenerate if missing.
for t in $targets; do [ -d "corpus/$t" ] || cargo run -q "${features[@]}" --bin gen_corpus; done
work="$CARGO_TARGET_DIR/corpus-run"
status=0
for t in $targets; do
  printf '\n==> fuzz %s for %ss\n' "$t" "$seconds"
  "${fuzz[@]}" build -O "${features[@]}" "$t"
  rm -rf "${work:?}/$t" && mkdir -p "$work/$t" && cp "corpus/$t"/* "$work/$t"/
  SECONDS=0
  if "${fuzz[@]}" run -O "${features[@]}" "$t" "$work/$t" -- -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      > "$work/$t.log" 2>&1; then
    grep -E '^(#[0-9]+\s+DONE|Done )' "$work/$t.log" | tail -2
    echo "fuzz $t: no crash in ${SECONDS}s"
  else
    status=1
    echo "fuzz $t: FAILED after ${SECONDS}s (log: $work/$t.log; input: fuzz/artifacts/$t/)"
    grep -E 'panicked|ERROR|SUMMARY|Test unit written' "$work/$t.log" | head -10
  fi
done
exit $status
