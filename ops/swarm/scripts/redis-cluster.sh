#!/bin/bash
# Redis Cluster membership for the Swarm stack (ops/swarm/data.yml, redis-1..6; mounted as a config at
# /usr/local/bin/shop-redis-cluster and run by ops/swarm/scripts/redis-entrypoint.sh). Two commands:
#
#   fix-addresses NODES_CONF
#       Before redis-server starts: rewrite the peers' addresses in nodes.conf from Swarm's DNS. A task
#       gets a new overlay address whenever it is rescheduled, and Redis only ever connects to the
#       addresses in nodes.conf, so after the whole cluster restarts (a stack redeploy, a power cut)
#       no node could find any other. Each node is announced by its hostname (redis-N, in nodes.conf
#       next to the address): that hostname is looked up and the address replaced. A peer that does
#       not resolve yet keeps its old address; the cluster's gossip corrects it once that peer is up.
#
#   bootstrap
#       In the background, once the local node answers: make it a member of the cluster.
#       * already a member (it knows other nodes): nothing to do;
#       * alone, and another node belongs to a healthy cluster (this node's volume is new or was
#         lost): join it as a replica of this node's partner (below) when that one is a master, else of
#         the master with the fewest replicas, and make the cluster forget this node's former identity;
#       * alone, REDIS_CLUSTER_CREATOR=yes, and all six nodes answer and are empty: create the cluster,
#         the first three nodes of REDIS_CLUSTER_NODES as masters, each of the other three as the
#         replica of one of them (4 of 1, 5 of 2, 6 of 3: partners, placed on different Swarm nodes);
#       * otherwise wait and look again, until REDIS_CLUSTER_WAIT seconds have passed.
#
# Environment:
#   REDIS_CLUSTER_NODES   every node as host:port, masters first (redis-1:6379 ... redis-6:6379)
#   REDIS_NODE            this node as host:port (redis-N:6379)
#   REDIS_CLUSTER_CREATOR yes on the one node that creates a new cluster (redis-1)
#   REDIS_CLUSTER_WAIT    seconds bootstrap keeps trying (default 900)
#   REDISCLI_AUTH         the password (redis-cli reads it from there; never on a command line)
set -uo pipefail

# shellcheck disable=SC2206  # a space-separated list
NODES=(${REDIS_CLUSTER_NODES:?set REDIS_CLUSTER_NODES})
SELF=${REDIS_NODE:?set REDIS_NODE}
CREATOR=${REDIS_CLUSTER_CREATOR:-no}
WAIT=${REDIS_CLUSTER_WAIT:-900}
CLI_TIMEOUT=${REDIS_CLI_TIMEOUT:-10}
DNS_WAIT=${REDIS_DNS_WAIT:-20}

log() { printf '%s shop-redis-cluster[%s]: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$SELF" "$*" >&2; }

host_of() { printf '%s' "${1%:*}"; }
port_of() { printf '%s' "${1##*:}"; }

# resolve HOST: its IPv4 address (a literal is returned as is); empty when it does not resolve.
resolve() {
  if [[ $1 =~ ^[0-9]+(\.[0-9]+){3}$ ]]; then
    printf '%s' "$1"
  else
    getent ahostsv4 "$1" 2>/dev/null | awk 'NR == 1 { print $1 }'
  fi
}

# addr NODE: ip:port of host:port (redis-cli --cluster and CLUSTER MEET take addresses only).
addr() {
  local ip
  ip=$(resolve "$(host_of "$1")")
  [ -n "$ip" ] && printf '%s:%s' "$ip" "$(port_of "$1")"
}

# cli NODE ARGS...: redis-cli against host:port, bounded in time, \r stripped.
cli() {
  local node=$1
  shift
  timeout "$CLI_TIMEOUT" redis-cli -h "$(host_of "$node")" -p "$(port_of "$node")" "$@" 2>/dev/null | tr -d '\r'
}

# info NODE FIELD: a field of CLUSTER INFO (empty when the node does not answer).
info() { cli "$1" cluster info | awk -F: -v f="$2" '$1 == f { print $2 }'; }

answers() { [ "$(cli "$1" ping)" = PONG ]; }
known_nodes() { info "$1" cluster_known_nodes; }
alone() { [ "$(known_nodes "$1")" = 1 ] && [ "$(info "$1" cluster_slots_assigned)" = 0 ]; }
in_healthy_cluster() { [ "$(info "$1" cluster_state)" = ok ] && [ "${2:-$(known_nodes "$1")}" -gt 1 ] 2>/dev/null; }

index_of() {
  local i
  for i in "${!NODES[@]}"; do
    [ "${NODES[$i]}" = "$1" ] && { printf '%s' "$i"; return 0; }
  done
  return 1
}

# partner NODE: the node paired with it (first three with last three, in order).
partner() {
  local i half=$((${#NODES[@]} / 2))
  i=$(index_of "$1") || return 1
  printf '%s' "${NODES[$(((i + half) % ${#NODES[@]}))]}"
}

fix_addresses() {
  local conf=$1 node host ip map="" deadline=$((SECONDS + DNS_WAIT)) missing
  [ -s "$conf" ] || return 0
  # Wait a little for the peers' names: they start at about the same time as this node.
  while :; do
    map="" missing=""
    for node in "${NODES[@]}"; do
      host=$(host_of "$node")
      ip=$(resolve "$host")
      if [ -n "$ip" ]; then map+="$host=$ip "; else missing+="$host "; fi
    done
    [ -z "$missing" ] || ((SECONDS >= deadline)) && break
    sleep 2
  done
  [ -n "$missing" ] && log "not resolved (their addresses stay as they were): $missing"
  awk -v map="$map" '
    BEGIN { n = split(map, pairs, " "); for (i = 1; i <= n; i++) { split(pairs[i], kv, "="); ip[kv[1]] = kv[2] } }
    $1 != "vars" && NF >= 8 {
      m = split($2, part, ",")
      if (m >= 2 && (part[2] in ip)) {
        address = part[1]
        sub(/^[^:]*:/, ip[part[2]] ":", address)
        if (address != part[1]) {
          part[1] = address
          field = part[1]
          for (i = 2; i <= m; i++) field = field "," part[i]
          $2 = field
        }
      }
    }
    { print }
  ' "$conf" >"$conf.fixed" || { rm -f "$conf.fixed"; return 1; }
  if ! cmp -s "$conf" "$conf.fixed"; then
    log "peer addresses in $conf updated from DNS"
    cat "$conf.fixed" >"$conf"
  fi
  rm -f "$conf.fixed"
}

wait_state_ok() {
  local node=$1 deadline=$((SECONDS + 60))
  until [ "$(info "$node" cluster_state)" = ok ]; do
    ((SECONDS >= deadline)) && return 1
    sleep 1
  done
}

create_cluster() {
  local half=$((${#NODES[@]} / 2)) masters=() i master replica master_id
  for ((i = 0; i < half; i++)); do masters+=("$(addr "${NODES[$i]}")"); done
  log "creating the cluster: masters ${NODES[*]:0:half}"
  timeout 120 redis-cli --cluster create "${masters[@]}" --cluster-replicas 0 --cluster-yes >&2 || return 1
  wait_state_ok "${NODES[0]}" || { log "the new cluster did not reach state ok"; return 1; }
  for ((i = 0; i < half; i++)); do
    master=${NODES[$i]} replica=${NODES[$((i + half))]}
    # A replica may have joined on its own meanwhile (its bootstrap runs too).
    alone "$replica" || continue
    master_id=$(cli "$master" cluster myid)
    log "adding $replica as the replica of $master"
    timeout 120 redis-cli --cluster add-node "$(addr "$replica")" "$(addr "$master")" \
      --cluster-slave --cluster-master-id "$master_id" >&2 || log "adding $replica failed: its own bootstrap will retry"
  done
  return 0
}

join_cluster() {
  local via=$1 buddy buddy_id role self_id stale
  buddy=$(partner "$SELF")
  role=$(cli "$buddy" role | head -n 1)
  if [ "$role" = master ] && in_healthy_cluster "$buddy"; then
    buddy_id=$(cli "$buddy" cluster myid)
    log "joining the cluster through $via as the replica of $buddy"
    timeout 120 redis-cli --cluster add-node "$(addr "$SELF")" "$(addr "$via")" \
      --cluster-slave --cluster-master-id "$buddy_id" >&2 || return 1
  else
    log "joining the cluster through $via as the replica of the master with the fewest replicas"
    timeout 120 redis-cli --cluster add-node "$(addr "$SELF")" "$(addr "$via")" --cluster-slave >&2 || return 1
  fi
  # The identity this node had before its volume was lost is still listed (failed, same hostname).
  self_id=$(cli "$SELF" cluster myid)
  stale=$(cli "$via" cluster nodes | awk -v host="$(host_of "$SELF")" -v me="$self_id" '
    { split($2, part, ","); if (part[2] == host && $1 != me && $3 ~ /fail/) print $1 }')
  for id in $stale; do
    log "forgetting this node's former identity $id"
    timeout 60 redis-cli --cluster call "$(addr "$via")" cluster forget "$id" >/dev/null 2>&1 || true
  done
  return 0
}

bootstrap() {
  local deadline=$((SECONDS + WAIT)) node known all_alone
  until answers "$SELF"; do
    ((SECONDS >= deadline)) && { log "the local node never answered"; return 1; }
    sleep 1
  done
  while ((SECONDS < deadline)); do
    known=$(known_nodes "$SELF")
    if [ -n "$known" ] && [ "$known" -gt 1 ]; then
      log "member of the cluster ($known nodes known)"
      return 0
    fi
    if alone "$SELF"; then
      for node in "${NODES[@]}"; do
        [ "$node" = "$SELF" ] && continue
        known=$(known_nodes "$node")
        if [ -n "$known" ] && in_healthy_cluster "$node" "$known"; then
          join_cluster "$node" && return 0
          break
        fi
      done
      if [ "$CREATOR" = yes ]; then
        all_alone=1
        for node in "${NODES[@]}"; do
          if ! answers "$node" || ! alone "$node"; then all_alone=0; break; fi
        done
        if [ "$all_alone" = 1 ]; then
          create_cluster && return 0
          log "creating the cluster failed; trying again"
        fi
      fi
    fi
    sleep 5
  done
  log "gave up after ${WAIT}s: the node is not in a cluster; it tries again at its next start (docker service update --force)"
  return 1
}

case "${1:-}" in
  fix-addresses) fix_addresses "${2:?nodes.conf path}" ;;
  bootstrap) bootstrap ;;
  *)
    echo "usage: $0 fix-addresses NODES_CONF | bootstrap" >&2
    exit 2
    ;;
esac
