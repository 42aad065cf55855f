#!/usr/bin/env bash
# The whole AQM test suite, from a fresh machine: installs what is missing, starts the local
# Redis and PostgreSQL if they are down, then runs formatting, lints, every test (nextest, in
# parallel; the aqm-server tests use the local PostgreSQL and start private ones), the Redis
# store on a local Redis Cluster (scripts/redis-cluster.sh; failover and slot migration), the
# conformance kit's case count per backend, schemathesis against the server's OpenAPI document,
# doc tests, the known-answer vectors with their counts, the valgrind constant-time check,
# bounded fuzzing, the no_std build of the core for Cortex-M, the firmware under QEMU, and the
# demo (embedded, then with its directory on aqm-server) and chat --auto.
# Usage: scripts/test.sh            (from the repository root or anywhere)
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }
SECONDS=0

step "toolchain and packages"
rustup target list --installed | grep -qx thumbv7em-none-eabihf || rustup target add thumbv7em-none-eabihf || echo "warning: cannot add thumbv7em-none-eabihf"
rustup component list --installed | grep -q '^rustfmt' || rustup component add rustfmt
rustup component list --installed | grep -q '^clippy' || rustup component add clippy
need_apt=()
command -v qemu-system-arm >/dev/null || need_apt+=(qemu-system-arm)
command -v valgrind >/dev/null || need_apt+=(valgrind)
command -v redis-server >/dev/null || need_apt+=(redis-server)
command -v pg_ctlcluster >/dev/null || need_apt+=(postgresql)
command -v chromium >/dev/null || need_apt+=(chromium) # aqm-sim simulate's HTML report test
if [ ${#need_apt[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
command -v cargo-nextest >/dev/null || cargo install cargo-nextest --locked
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

step "services"
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 50); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.1; done
fi
redis-cli -h 127.0.0.1 -p 6379 ping
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  for _ in $(seq 50); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.2; done
fi
pg_isready -h 127.0.0.1 -p 5432 # the aqm-server tests and conformance kit need it

step "format"
cargo fmt --all --check

step "build once (tests, benches, examples)"
cargo build --workspace --all-targets --locked

step "clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
# Feature small-stack-mldsa no longer changes the code (every build signs with small_mldsa65), but
# the board crates still turn it on: keep it building.
cargo clippy -p aqm-core --all-targets --features small-stack-mldsa --locked -- -D warnings

step "tests (nextest)"
# The simulator's HTML report test renders the report in headless Chromium; here it must run.
# The Redis Cluster tests run in their own step below.
AQM_REQUIRE_CHROMIUM=1 cargo nextest run --workspace --locked --no-fail-fast \
  -E 'not (package(aqm-storage-redis) and binary(~cluster))'

step "aqm-storage-redis on Redis Cluster: kit, users over all slots, failover with/without WAIT, slot migration"
# A local 3-master + 3-replica cluster on 127.0.0.1:7100-7105 (the failover and migration tests
# start private ones on 7200.., 7210.., 7220.. and remove them).
scripts/redis-cluster.sh start 7100
cargo nextest run -p aqm-storage-redis --locked --no-fail-fast -E 'binary(~cluster)'

step "conformance kit: generated cases per backend"
scripts/kit-counts.sh

step "aqm-server API: schemathesis against its generated /v1/openapi.json (no 5xx, responses as documented)"
scripts/schemathesis.sh "${AQM_SCHEMATHESIS_EXAMPLES:-40}"

step "doc tests"
cargo test --workspace --doc --locked

step "API docs (rustdoc warnings and broken intra-doc links denied) and Markdown links"
RUSTDOCFLAGS="-D warnings -D rustdoc::broken_intra_doc_links" cargo doc --workspace --no-deps --locked
scripts/check-links.sh

step "known-answer vectors through our wrappers (counts per expected result; fails on zero)"
scripts/kat.sh

step "constant-time check under valgrind (secrets marked undefined)"
scripts/ct-check.sh

step "bounded fuzzing (${AQM_FUZZ_SECONDS:-20} s per target)"
scripts/fuzz.sh "${AQM_FUZZ_SECONDS:-20}"

if rustup target list --installed | grep -qx thumbv7em-none-eabihf; then
  step "no_std: aqm-core for thumbv7em-none-eabihf (default-features = false, no allocator)"
  cargo build -p aqm-core --no-default-features --target thumbv7em-none-eabihf --locked
else
  step "no_std: thumbv7em-none-eabihf could not be installed; FALLBACK host check (core/nostd-check, #![no_std] + own panic handler)"
  (cd core/nostd-check && cargo build)
fi

if [ -x firmware/ci.sh ]; then
  step "firmware: build for thumbv7em-none-eabihf, run under QEMU, measure footprint"
  firmware/ci.sh
fi

step "aqm-ffi: uniffi Python bindings under pytest, Kotlin/Swift bindings regenerated, C example under valgrind"
python3 -m pytest --version >/dev/null 2>&1 || python3 -m pip install -q pytest
command -v cbindgen >/dev/null || cargo install cbindgen --version 0.29.4 --locked
ffi/python/run-tests.sh
ffi/c/run-example.sh

step "demo smoke run"
cargo run --locked -q -p aqm-sim -- demo

step "chat --auto: BESTIE, MATE and STRANGER in one process, every outcome checked"
cargo run --locked -q -p aqm-sim -- chat --auto

step "simulate smoke run (2,000 users × 7 days, table and JSON)"
cargo run --locked -q -p aqm-sim -- simulate --users 2000 --days 7 --no-html
cargo run --locked -q -p aqm-sim -- simulate --users 500 --days 2 --no-html --json >/dev/null

step "demo smoke run with the directory on aqm-server (PostgreSQL)"
scripts/demo-server.sh

printf '\nAll checks passed in %dm%02ds.\n' $((SECONDS / 60)) $((SECONDS % 60))
