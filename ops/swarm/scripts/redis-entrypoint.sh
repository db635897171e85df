#!/bin/bash
# Entrypoint of the Swarm Redis Cluster nodes (ops/swarm/data.yml, redis-1..6; mounted as a config at
# /usr/local/bin/shop-redis-entrypoint). Runs as root, under tini (init: true in data.yml), then hands
# over to the official image's entrypoint, which drops to the redis user:
#
# 1. writes the node's own configuration file: the shared redis.conf (a config) included, plus the
#    password from the redis_password secret as requirepass and masterauth (redis.conf takes no file
#    for them) and cluster-announce-hostname (REDIS_NODE's host, redis-N);
# 2. corrects the peers' addresses in nodes.conf from DNS (shop-redis-cluster fix-addresses);
# 3. starts shop-redis-cluster bootstrap in the background, which creates the cluster on first start
#    (on the node with REDIS_CLUSTER_CREATOR=yes) or joins this node to it when its volume is new;
# 4. execs redis-server.
set -euo pipefail

SECRET=${REDIS_PASSWORD_FILE:-/run/secrets/redis_password}
BASE_CONF=${REDIS_BASE_CONF:-/usr/local/etc/redis/redis.conf}
NODE_CONF=${REDIS_NODE_CONF:-/tmp/shop-redis.conf}
DATA_DIR=${REDIS_DATA_DIR:-/data}
CLUSTER=${REDIS_CLUSTER_SCRIPT:-/usr/local/bin/shop-redis-cluster}
OWNER=${REDIS_FILES_OWNER:-redis:redis}
NEXT=${REDIS_NEXT_ENTRYPOINT:-docker-entrypoint.sh}
NODE=${REDIS_NODE:?set REDIS_NODE (redis-N:6379)}

die() { printf 'shop-redis-entrypoint: %s\n' "$*" >&2; exit 1; }

[ -r "$SECRET" ] || die "the redis_password secret is not mounted at $SECRET"
password=$(<"$SECRET")
[ -n "$password" ] || die "the redis_password secret is empty"
[[ $password == *[[:cntrl:]]* ]] && die "the redis password contains a control character"

# A double-quoted string in redis.conf: backslash and double quote escaped.
quoted() {
  local s=${1//\\/\\\\}
  printf '"%s"' "${s//\"/\\\"}"
}

tmp=$(mktemp "$NODE_CONF.XXXXXX")
cat >"$tmp" <<EOF
# Written by shop-redis-entrypoint at each start: $BASE_CONF plus this node's own settings.
include $BASE_CONF
requirepass $(quoted "$password")
masterauth $(quoted "$password")
cluster-announce-hostname $(quoted "${NODE%:*}")
EOF
chmod 0400 "$tmp"
chown "$OWNER" "$tmp"
mv -f "$tmp" "$NODE_CONF"

"$CLUSTER" fix-addresses "$DATA_DIR/nodes.conf" || echo "shop-redis-entrypoint: nodes.conf left as it was" >&2

REDISCLI_AUTH=$password "$CLUSTER" bootstrap &
unset password

exec "$NEXT" redis-server "$NODE_CONF"
