#!/bin/bash
# Entrypoint of the Swarm RabbitMQ nodes (ops/swarm/data.yml, rabbitmq-1..3; mounted as a config at
# /usr/local/bin/shop-rabbitmq-entrypoint). It turns two Docker secrets into what RabbitMQ reads, then
# hands over to the image's own entrypoint (docker-entrypoint.sh, which drops to the rabbitmq user):
#
#   /run/secrets/rabbitmq_erlang_cookie -> /var/lib/rabbitmq/.erlang.cookie (rabbitmq, 0400): the
#       node's cookie, and the CLI's (the image sets HOME=/var/lib/rabbitmq), so rabbitmqctl and
#       rabbitmq-diagnostics in the health check authenticate. RABBITMQ_ERLANG_COOKIE is deprecated
#       in 3.13 and would show the cookie in `docker inspect`.
#   /run/secrets/rabbitmq_password -> /etc/rabbitmq/shop-definitions.json (rabbitmq, 0400): the
#       definitions rabbitmq.conf imports at boot: user RABBITMQ_APP_USER with that password and the
#       administrator tag, vhost RABBITMQ_APP_VHOST with quorum as its default queue type, and the
#       user's permissions on it. rabbitmq.conf's default_pass takes a literal only, and the image
#       refuses RABBITMQ_DEFAULT_PASS_FILE since 3.9.
#
# Runs as root (the image's default user) so that it can write both files for the rabbitmq user.
set -euo pipefail

SECRETS=${RABBITMQ_SECRETS_DIR:-/run/secrets}
APP_USER=${RABBITMQ_APP_USER:-shop}
APP_VHOST=${RABBITMQ_APP_VHOST:-shop}
DATA_DIR=${RABBITMQ_DATA_DIR:-/var/lib/rabbitmq}
DEFINITIONS=${RABBITMQ_DEFINITIONS_FILE:-/etc/rabbitmq/shop-definitions.json}
OWNER=${RABBITMQ_FILES_OWNER:-rabbitmq:rabbitmq}
NEXT=${RABBITMQ_NEXT_ENTRYPOINT:-docker-entrypoint.sh}

die() { printf 'shop-rabbitmq-entrypoint: %s\n' "$*" >&2; exit 1; }

# read_secret NAME: the secret's content without trailing newlines.
read_secret() {
  local file="$SECRETS/$1" value
  [ -r "$file" ] || die "secret $1 is not mounted at $file"
  value=$(<"$file")
  [ -n "$value" ] || die "secret $1 is empty"
  printf '%s' "$value"
}

# json_string VALUE: VALUE as a JSON string literal. Control characters are refused rather than escaped.
json_string() {
  local s=$1
  [[ $s == *[[:cntrl:]]* ]] && die "a value for the definitions contains a control character"
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  printf '"%s"' "$s"
}

# install_file MODE PATH: stdin into PATH, atomically, owned by the broker's user.
install_file() {
  local mode=$1 path=$2 tmp
  tmp=$(mktemp "$path.XXXXXX")
  cat >"$tmp"
  chmod "$mode" "$tmp"
  chown "$OWNER" "$tmp"
  mv -f "$tmp" "$path"
}

cookie=$(read_secret rabbitmq_erlang_cookie)
password=$(read_secret rabbitmq_password)

mkdir -p "$DATA_DIR"
printf '%s' "$cookie" | install_file 0400 "$DATA_DIR/.erlang.cookie"

user_json=$(json_string "$APP_USER")
vhost_json=$(json_string "$APP_VHOST")
password_json=$(json_string "$password")
install_file 0400 "$DEFINITIONS" <<EOF
{
  "users": [
    {"name": $user_json, "password": $password_json, "tags": ["administrator"], "limits": {}}
  ],
  "vhosts": [
    {
      "name": $vhost_json,
      "description": "the shop",
      "tags": [],
      "default_queue_type": "quorum",
      "metadata": {"description": "the shop", "tags": [], "default_queue_type": "quorum"}
    }
  ],
  "permissions": [
    {"user": $user_json, "vhost": $vhost_json, "configure": ".*", "write": ".*", "read": ".*"}
  ],
  "topic_permissions": [],
  "parameters": [],
  "global_parameters": [],
  "policies": [],
  "queues": [],
  "exchanges": [],
  "bindings": []
}
EOF
unset cookie password password_json

exec "$NEXT" "$@"
