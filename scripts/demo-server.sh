#!/usr/bin/env bash
# The demo with its coin directory on a real aqm-server: a fresh database aqm_demo on the
# machine's PostgreSQL, the server on a free loopback port, `aqm-sim demo --server URL`.
# Usage: scripts/demo-server.sh
set -euo pipefail
cd "$(dirname "$0")/.."
db=aqm_demo
psql -q -X -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
cargo build -q --locked -p aqm-server -p aqm-sim
bin=${CARGO_TARGET_DIR:-target}/debug
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log=$(mktemp)
RUST_LOG=warn "$bin/aqm-server" --database-url "postgres://postgres@127.0.0.1:5432/$db" --bind "127.0.0.1:$port" >"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 100); do grep -q "listening on" "$log" && break; sleep 0.1; done
grep -q "listening on" "$log" || { cat "$log"; exit 1; }
"$bin/aqm-sim" demo --server "http://127.0.0.1:$port"
