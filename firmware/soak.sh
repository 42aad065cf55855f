#!/usr/bin/env bash
# Power-cut soak of the firmware vault (not run in CI): the power-fail tests of
# firmware/tests/power_fail.rs and the random last-resort scripts of
# firmware/tests/power_fail_last_resort.rs at a larger scale, on seeds the CI run never uses, under both
# cut models of the emulated flash (clean prefix; any state per word, with the erase journal).
#
#   firmware/soak.sh [ROUNDS] [FIRST_SEED]
#
# ROUNDS (default 25) rounds of the nine cut-every-k-th sequences (about 55 cuts each) and of the
# device-level sequence (about 75 cuts), per model; 25 rounds are over 10^4 cuts per model.
# FIRST_SEED (default: from the clock) is added to every seed; pass it to replay a run. Prints,
# per test and model, the cuts survived and every failing sequence; exits non-zero on a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-25}
seed=${2:-$(( $(date +%s) * 1000 ))}
echo "soak: $rounds rounds from seed $seed"
status=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for model in prefix any; do
  rc=0
  AQM_POWERFAIL_ROUNDS=$rounds AQM_POWERFAIL_SEED=$seed AQM_POWERFAIL_MODEL=$model \
    cargo test -q -p aqm-firmware --test power_fail -- --nocapture --test-threads 2 \
    cut_every_kth_write_or_erase device_mint_and_open_survive_cuts >"$log" 2>&1 || rc=$?
  grep -o -E '(cut_every_kth_write_or_erase|device_mint_and_open_survive_cuts): [0-9]+ sequences.*|  FAILED .*' "$log" || true
  if [ "$rc" -ne 0 ]; then
    status=1
    grep -q -E ' sequences \(' "$log" || tail -40 "$log"
  fi
done
# Last-resort coins (issue 14): random scripts of puts, opens, retirements, burns and purges,
# each cut at every one of its flash operations under both models (about 300 cuts a round).
rc=0
AQM_POWERFAIL_ROUNDS=$rounds AQM_POWERFAIL_SEED=$seed \
  cargo test -q -p aqm-firmware --test power_fail_last_resort -- --nocapture \
  random_last_resort_scripts_survive_every_cut >"$log" 2>&1 || rc=$?
grep -o -E 'random last-resort scripts: .*' "$log" || true
if [ "$rc" -ne 0 ]; then
  status=1
  tail -40 "$log"
fi
[ "$status" -eq 0 ] && echo "soak: 0 failures" || echo "soak: FAILURES (see above)"
exit "$status"
