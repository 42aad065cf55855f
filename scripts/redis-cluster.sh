#!/usr/bin/env bash
# A local Redis Cluster for aqm-storage-redis's cluster tests and benchmark: 3 masters + 3
# replicas on loopback ports BASE..BASE+5, each in its own directory under DIR.
#
#   scripts/redis-cluster.sh start [BASE] [DIR]   start every node that is not running; create the
#                                                 cluster once (idempotent); wait for cluster_state:ok
#   scripts/redis-cluster.sh stop  [BASE] [DIR]   shut every node down and remove DIR
#   scripts/redis-cluster.sh nodes [BASE]         print the seed list (redis://127.0.0.1:PORT,...)
#
# Defaults: BASE=7100 (AQM_CLUSTER_BASE), DIR=${TMPDIR:-/tmp}/aqm-redis-cluster-BASE.
# Nodes run in memory (no AOF, no RDB), like the machine's shared Redis the single-node figures
# use: what survives a failover is then exactly what a replica had received, which is what the
# durability option (WAIT) is about. cluster-node-timeout is 2000 ms so a failover takes seconds.
set -euo pipefail

cmd=${1:-start}
base=${2:-${AQM_CLUSTER_BASE:-7100}}
dir=${3:-${TMPDIR:-/tmp}/aqm-redis-cluster-$base}
ports=$(seq "$base" $((base + 5)))

up() { redis-cli -h 127.0.0.1 -p "$1" ping >/dev/null 2>&1; }

start_node() {
  local port=$1 d="$dir/$1"
  mkdir -p "$d"
  redis-server --port "$port" --bind 127.0.0.1 --dir "$d" --daemonize yes \
    --pidfile "$d/redis.pid" --logfile "$d/redis.log" \
    --cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 2000 \
    --cluster-replica-validity-factor 0 --appendonly no --save "" \
    --maxmemory-policy noeviction
  for _ in $(seq 100); do up "$port" && return 0; sleep 0.05; done
  echo "redis-cluster.sh: node $port did not start; see $d/redis.log" >&2
  return 1
}

case $cmd in
  start)
    command -v redis-server >/dev/null || { echo "redis-cluster.sh: redis-server not on PATH (apt-get install redis-server)" >&2; exit 1; }
    for p in $ports; do up "$p" || start_node "$p"; done
    known=$(redis-cli -h 127.0.0.1 -p "$base" cluster info | tr -d '\r' | sed -n 's/^cluster_known_nodes://p')
    if [ "${known:-1}" -lt 6 ]; then
      # shellcheck disable=SC2046
      redis-cli --cluster create $(for p in $ports; do printf '127.0.0.1:%s ' "$p"; done) \
        --cluster-replicas 1 --cluster-yes >"$dir/create.log"
    fi
    for _ in $(seq 200); do
      ok=1
      for p in $ports; do
        redis-cli -h 127.0.0.1 -p "$p" cluster info 2>/dev/null | grep -q '^cluster_state:ok' || ok=0
        # Every node knows the roles (gossip): 3 replicas, no failed node.
        nodes=$(redis-cli -h 127.0.0.1 -p "$p" cluster nodes 2>/dev/null || true)
        [ "$(grep -c slave <<<"$nodes")" = 3 ] && ! grep -q fail <<<"$nodes" || ok=0
        # Replication is up: a replica's link, a master's replica online (WAIT can succeed).
        repl=$(redis-cli -h 127.0.0.1 -p "$p" info replication 2>/dev/null | tr -d '\r' || true)
        if grep -q '^role:slave' <<<"$repl"; then
          grep -q '^master_link_status:up' <<<"$repl" || ok=0
        else
          grep -q 'state=online' <<<"$repl" || ok=0
        fi
      done
      [ $ok = 1 ] && break
      sleep 0.1
    done
    [ $ok = 1 ] || { echo "redis-cluster.sh: cluster on $base.. not ok; see $dir/*/redis.log" >&2; exit 1; }
    echo "redis cluster up: $("$0" nodes "$base")"
    ;;
  stop)
    for p in $ports; do up "$p" && redis-cli -h 127.0.0.1 -p "$p" shutdown nosave >/dev/null 2>&1 || true; done
    rm -rf "$dir"
    ;;
  nodes)
    printf '%s' "$(for p in $ports; do printf 'redis://127.0.0.1:%s,' "$p"; done)" | sed 's/,$//'
    echo
    ;;
  *)
    echo "usage: $0 start|stop|nodes [BASE] [DIR]" >&2
    exit 2
    ;;
esac
