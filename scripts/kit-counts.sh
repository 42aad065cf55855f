#!/usr/bin/env bash
# Print the conformance kit's case count per backend: "memory N, redb N, redis N, redis-cluster N,
# flash N, postgres N".
#
# Each backend's tests/ declares its kit once (aqm_core::conformance!); the declaration's
# `case_count` test prints "kit cases: <generated> (<excluded> excluded)". Every case runs under
# two policies, so the counts are of generated #[test]s. Redis must be reachable
# (AQM_REDIS_URL, default redis://127.0.0.1:6379) only for the test binary to start; the count
# test itself touches no store.
#
# Usage: scripts/kit-counts.sh        (builds the six conformance test binaries if needed)
set -euo pipefail
cd "$(dirname "$0")/.."

count() { # <label> <cargo args...>
    local label=$1
    shift
    local out n excluded
    if out=$(cargo test --quiet "$@" conformance::case_count -- --exact --nocapture 2>/dev/null) &&
        [[ $out =~ kit\ cases:\ ([0-9]+)\ \(([0-9]+)\ excluded\) ]]; then
        n=${BASH_REMATCH[1]}
        excluded=${BASH_REMATCH[2]}
        if [[ $excluded == 0 ]]; then echo "$label $n"; else echo "$label $n ($excluded excluded)"; fi
    else
        echo "$label n/a"
    fi
}

parts=(
    "$(count memory -p aqm-core --features testkit --test conformance_memory)"
    "$(count redb -p aqm-storage-redb --test conformance)"
    "$(count redis -p aqm-storage-redis --test conformance)"
    "$(count redis-cluster -p aqm-storage-redis --test cluster_kit)"
    "$(count flash -p aqm-firmware --test conformance)"
    "$(count postgres -p aqm-server --test conformance)"
)
printf '%s, %s, %s, %s, %s, %s\n' "${parts[@]}"
