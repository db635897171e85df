#!/usr/bin/env bash
# Rolls a change over the members of a clustered data service one at a time.
#
# `docker stack deploy` updates every service whose spec changed at once, and update_config's
# parallelism only orders the tasks of ONE service. The data tier runs one service per cluster member
# (kafka-1..3, rabbitmq-1..3, pg-<context>-1..3, redis-1..6): a new image or setting deployed to all three
# brokers by one `docker stack deploy` restarts all three together. This script applies the change
# with `docker service update` to one member, waits until that member's task runs and is healthy (the
# --detach=false update returns then; a failed update rolls back and stops the script), lets it settle,
# then goes on to the next. Afterwards put the same change in data.yml and `docker stack deploy` as
# usual: the members already have it (for an image: the same tag, resolved to the same digest), so the
# deploy normally does not restart them again. Check with `docker service ps` before relying on it for
# a change the deploy could spell differently (configs: see data.yml's header).
#
# usage: rolling-update.sh [-s STACK] [-w SETTLE_SECONDS] SERVICE... [-- UPDATE_FLAGS...]
#   SERVICE        the names in data.yml (kafka-1 ...); in the order to roll (standbys/followers first)
#   UPDATE_FLAGS   passed to `docker service update`, e.g. --image apache/kafka:4.1.2; without them
#                  each member is restarted in place (--force)
#   -s STACK       the stack's name (default shop); -w seconds to wait between members (default 60)
#
# examples:
#   rolling-update.sh kafka-1 kafka-2 kafka-3 -- --image apache/kafka:4.1.2
#   rolling-update.sh pg-auth-2 pg-auth-3 pg-auth-1          # restart, the primary (here -1) last
set -euo pipefail

stack=shop
settle=60
while getopts "s:w:h" opt; do
  case $opt in
    s) stack=$OPTARG ;;
    w) settle=$OPTARG ;;
    *) sed -n '2,23p' "$0"; exit 2 ;;
  esac
done
shift $((OPTIND - 1))

members=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do
  members+=("$1")
  shift
done
[ "${1:-}" = -- ] && shift
flags=("$@")
[ ${#flags[@]} -gt 0 ] || flags=(--force)
[ ${#members[@]} -gt 0 ] || { sed -n '2,23p' "$0"; exit 2; }

for member in "${members[@]}"; do
  docker service inspect "${stack}_${member}" >/dev/null || { echo "no service ${stack}_${member}" >&2; exit 1; }
done

last=${members[${#members[@]}-1]}
for member in "${members[@]}"; do
  service="${stack}_${member}"
  echo "==> $service: docker service update ${flags[*]}"
  docker service update --detach=false "${flags[@]}" "$service"
  state=$(docker service inspect --format '{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}' "$service")
  case "$state" in
    "" | completed) ;;
    *)
      echo "==> $service: update ended as '$state': stopping here" >&2
      exit 1
      ;;
  esac
  if [ "$member" != "$last" ]; then
    echo "==> $service is running and healthy; waiting ${settle}s for it to catch up"
    sleep "$settle"
  fi
done
echo "==> done: ${members[*]}"
