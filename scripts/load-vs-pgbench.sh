#!/usr/bin/env bash
# The directory's claim throughput beside PostgreSQL's own floor, from one run on one database:
# `aqm-sim load` (HTTP → aqm-server → PostgreSQL, closed-loop at C connections), then pgbench
# running the claim's core statement (oldest unclaimed coin of an owner and tier, FOR UPDATE
# SKIP LOCKED, marked claimed; one statement per claim) at C clients on the same rows, reset to
# unclaimed between the two. Then an open-loop run at a fixed arrival rate for the latency figure.
#
# Usage: scripts/load-vs-pgbench.sh [users=2000] [connections=64] [seconds=20] [rate=1000] [coins=10]
# `coins` is BRONZE coins per user, uploaded that many per request. Extra aqm-server flags (e.g.
# `--claim-batch 1` to measure one transaction per claim) come from AQM_SERVER_FLAGS.
# Builds release binaries (AQM_NO_BUILD=1: use those in $CARGO_TARGET_DIR/release); uses
# databases aqm_load and aqm_load_open on the machine's PostgreSQL (recreated).
set -euo pipefail
cd "$(dirname "$0")/.."
users=${1:-2000}
conns=${2:-64}
secs=${3:-20}
rate=${4:-1000}
coins=${5:-10}
# shellcheck disable=SC2206 # flags are meant to split
server_flags=(${AQM_SERVER_FLAGS:-})
db=aqm_load
url="postgres://postgres@127.0.0.1:5432/$db"
psql() { command psql -q -X -h 127.0.0.1 -U postgres "$@"; }

[ -n "${AQM_NO_BUILD:-}" ] || cargo build --release -q --locked -p aqm-server -p aqm-sim
bin=${CARGO_TARGET_DIR:-target}/release
psql -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log=$(mktemp)
RUST_LOG=warn "$bin/aqm-server" --database-url "$url" --bind "127.0.0.1:$port" --pool-size "$conns" \
    --register-per-minute 100000000 "${server_flags[@]}" >"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 100); do grep -q "listening on" "$log" && break; sleep 0.1; done

echo "== aqm-sim load: $users users × $coins BRONZE coins, closed-loop at $conns connections for $secs s"
"$bin/aqm-sim" load --server "http://127.0.0.1:$port" --users "$users" --coins "$coins" \
    --connections "$conns" --duration "$secs" | tee /tmp/aqm-load-closed.txt
aqm_tps=$(awk '$1 == "claims" {print $7}' /tmp/aqm-load-closed.txt)

echo "== pgbench: the claim statement at $conns clients on the same coins (reset to unclaimed)"
# The server's pool would take the connections pgbench needs.
kill $server; wait $server 2>/dev/null || true
psql -d "$db" -c "UPDATE coin_inventory SET fetched_by = NULL, fetched_at = NULL" \
    -c "DROP TABLE IF EXISTS pgbench_owners" \
    -c "CREATE TABLE pgbench_owners AS SELECT row_number() OVER (ORDER BY user_id) AS n, user_id FROM identities" \
    -c "CREATE UNIQUE INDEX ON pgbench_owners (n)" -c "VACUUM ANALYZE"
script=$(mktemp)
cat >"$script" <<'SQL'
\set n random(1, :users)
UPDATE coin_inventory SET fetched_by = '00000000-0000-4000-8000-000000000001', fetched_at = 1
WHERE (user_id, key_id) IN (
    SELECT c.user_id, c.key_id FROM coin_inventory c
    WHERE c.user_id = (SELECT user_id FROM pgbench_owners WHERE n = :n)
      AND c.coin_category = 'BRONZE' AND c.fetched_by IS NULL
    ORDER BY c.record_id LIMIT 1 FOR UPDATE SKIP LOCKED);
SQL
pg_tps=$(pgbench -h 127.0.0.1 -U postgres -n -c "$conns" -j 2 -T "$secs" -D users="$users" -f "$script" "$db" |
    tee /dev/stderr | awk '/^tps/ {print $3; exit}')
rm -f "$script"
echo "== claims/s: aqm-server $aqm_tps, pgbench $pg_tps (ratio $(python3 -c "print(f'{$aqm_tps/$pg_tps:.2f}')"))"

echo "== open loop: a fresh population, $rate claims/s for $secs s"
psql -d postgres -c "DROP DATABASE IF EXISTS ${db}_open" -c "CREATE DATABASE ${db}_open"
RUST_LOG=warn "$bin/aqm-server" --database-url "postgres://postgres@127.0.0.1:5432/${db}_open" --bind "127.0.0.1:$port" \
    --pool-size "$conns" --register-per-minute 100000000 "${server_flags[@]}" >"$log" 2>&1 &
server=$!
for _ in $(seq 100); do grep -q "listening on" "$log" && break; sleep 0.1; done
"$bin/aqm-sim" load --server "http://127.0.0.1:$port" --users "$users" --coins "$coins" --rate "$rate" \
    --connections "$conns" --duration "$secs"
