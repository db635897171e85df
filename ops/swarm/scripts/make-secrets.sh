#!/usr/bin/env bash
# Makes the files behind every Docker secret of the Swarm stack (ops/swarm/{data,stack,observability}.yml
# define them with `file: ./secrets/NAME`), in ops/swarm/secrets/ (or $SECRETS_DIR), with openssl:
#
#   data tier (data.yml)   pg_auth_password pg_catalog_password pg_orders_password (the contexts' roles),
#                          pg_postgres_password, pg_repmgr_password, pgpool_admin_password,
#                          rabbitmq_password, rabbitmq_erlang_cookie, redis_password
#   shop (stack.yml)       jwt_signing_key (Ed25519, PKCS#8 PEM), auth_code_pepper (32 bytes, hex)
#   observability          grafana_admin_password
#   the shop's URLs        shop_{auth,catalog,orders}_db_url and ..._db_replica_url, shop_redis_url,
#                          shop_rabbitmq_url: made from the passwords above, so always rewritten
#
# A secret that already has a file is kept (a cluster's passwords live in its volumes: a new password
# file does not change them); --force replaces them all, for a new cluster only. Passwords are 64 hex
# characters: nothing in them needs quoting in a URL, a config file or pgpool's comma-separated lists.
# The directory is 0700, the files 0600, none ends with a newline (PEM keys aside). Keep it out of git:
# ops/swarm/secrets/ is meant for .gitignore.
#
# usage: ops/swarm/scripts/make-secrets.sh [--force]
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=${SECRETS_DIR:-$here/secrets}
force=0
case "${1:-}" in
  "") ;;
  --force) force=1 ;;
  *) echo "usage: $0 [--force]" >&2; exit 2 ;;
esac

command -v openssl >/dev/null || { echo "make-secrets: openssl is needed" >&2; exit 1; }
umask 077
mkdir -p "$dir"
chmod 700 "$dir"

# put NAME: stdin into the secret's file, atomically.
put() {
  local tmp
  tmp=$(mktemp "$dir/.$1.XXXXXX")
  cat >"$tmp"
  chmod 600 "$tmp"
  mv -f "$tmp" "$dir/$1"
}

# make NAME COMMAND...: the secret from COMMAND's output, unless it exists (and no --force).
make() {
  local name=$1
  shift
  if [ "$force" = 0 ] && [ -s "$dir/$name" ]; then
    echo "kept  $name"
    return 0
  fi
  "$@" | put "$name"
  echo "made  $name"
}

hex() { openssl rand -hex "$1" | tr -d '\n'; }
ed25519() { openssl genpkey -algorithm ed25519; }
read_secret() { tr -d '\n' <"$dir/$1"; }

for name in pg_auth_password pg_catalog_password pg_orders_password pg_postgres_password \
  pg_repmgr_password pgpool_admin_password rabbitmq_password redis_password \
  rabbitmq_erlang_cookie auth_code_pepper grafana_admin_password; do
  make "$name" hex 32
done
make jwt_signing_key ed25519

# The URLs the shop's processes read (SHOP_X_FILE=/run/secrets/shop_x_url, stack.yml). Each database is
# reached through its pgpool-II, which follows repmgr's failovers: the primary URL's sessions are all
# sent to the primary (application_name=shop-primary), the replica URL's reads to a standby
# (application_name=shop-replica): ops/swarm/config/pgpool/shop.conf. TCP keepalives notice a pgpool
# that vanished with its node.
pg_options="connect_timeout=5&keepalives_idle=60&keepalives_interval=10&keepalives_count=6"
for ctx in auth catalog orders; do
  password=$(read_secret "pg_${ctx}_password")
  printf 'postgresql://%s:%s@pgpool-%s:5432/%s?application_name=shop-primary&%s' \
    "$ctx" "$password" "$ctx" "$ctx" "$pg_options" | put "shop_${ctx}_db_url"
  printf 'postgresql://%s:%s@pgpool-%s:5432/%s?application_name=shop-replica&%s' \
    "$ctx" "$password" "$ctx" "$ctx" "$pg_options" | put "shop_${ctx}_db_replica_url"
  echo "wrote shop_${ctx}_db_url shop_${ctx}_db_replica_url"
done
# `redis-cluster` is a network alias of all six nodes: any live one is a seed, the client learns the rest.
printf 'redis://:%s@redis-cluster:6379/0' "$(read_secret redis_password)" | put shop_redis_url
echo "wrote shop_redis_url"
password=$(read_secret rabbitmq_password)
printf 'amqp://shop:%s@rabbitmq-1:5672/shop,amqp://shop:%s@rabbitmq-2:5672/shop,amqp://shop:%s@rabbitmq-3:5672/shop' \
  "$password" "$password" "$password" | put shop_rabbitmq_url
echo "wrote shop_rabbitmq_url"
unset password

echo "secrets in $dir"
