#!/bin/sh
# The image's HEALTHCHECK: whichever service this container runs (FRAUDOPS_SERVICE) answers.
set -eu
case "${FRAUDOPS_SERVICE:?postgres, redis or balancer}" in
  postgres) exec pg_isready -q -h 127.0.0.1 -p "${POSTGRES_PORT:-5432}" ;;
  redis) [ "$(redis-cli -h 127.0.0.1 -p "${REDIS_PORT:-6379}" ping)" = PONG ] ;;
  balancer)
    exec python3 -c "import sys, urllib.request; urllib.request.urlopen(
'http://127.0.0.1:%s/health' % sys.argv[1], timeout=2)" "${FRAUDOPS_BALANCER_LISTEN##*:}" ;;
  *) echo "health: unknown FRAUDOPS_SERVICE=$FRAUDOPS_SERVICE" >&2; exit 2 ;;
esac
