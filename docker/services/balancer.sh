#!/bin/sh
# nginx (Debian's package) in front of the scoring replicas, with docker/nginx.conf's limits:
# its upstream becomes FRAUDOPS_UPSTREAMS (host:port, space-separated) and it listens on
# FRAUDOPS_BALANCER_LISTEN (address:port). Round robin; a replica that refuses a connection
# (a restart) is skipped for the next (proxy_next_upstream).
set -eu
: "${FRAUDOPS_UPSTREAMS:?host:port of each replica, space-separated}"
listen=${FRAUDOPS_BALANCER_LISTEN:-0.0.0.0:8080}
servers=""
for upstream in $FRAUDOPS_UPSTREAMS; do servers="$servers server $upstream;"; done
sed -e "s|^\( *\)server 127.0.0.1:8000;|\1$servers|" -e "s|listen 8080;|listen $listen;|" \
  /opt/fraudops/nginx.conf >/tmp/nginx.conf
grep -q "$listen" /tmp/nginx.conf || { echo "balancer: nginx.conf has no 'listen 8080;'" >&2; exit 1; }
exec nginx -c /tmp/nginx.conf -g "daemon off; pid /tmp/nginx.pid; error_log stderr;"
