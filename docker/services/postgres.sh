#!/bin/sh
# PostgreSQL 15 (Debian's package) for the stack, as the image's user: on an empty $PGDATA, a
# cluster whose superuser is POSTGRES_USER (password POSTGRES_PASSWORD, scram-sha-256 over
# TCP) with one database for MLflow and one for Prefect; then the server in the foreground.
#   POSTGRES_PORT (5432), POSTGRES_LISTEN (*: all addresses; 127.0.0.1 on a host network)
set -eu
: "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}"
user=${POSTGRES_USER:-fraudops}
data=${PGDATA:-/var/lib/postgresql/data}
sockets=/tmp

if [ ! -s "$data/PG_VERSION" ]; then
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  initdb -D "$data" -U "$user" --pwfile="$pwfile" -E UTF8 \
    --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  echo "host all all all scram-sha-256" >>"$data/pg_hba.conf"  # the other containers
  pg_ctl -D "$data" -s -w -o "-c listen_addresses='' -k $sockets" start
  for db in mlflow prefect; do  # TEMPLATE: the databases of the stack's servers
    psql -h "$sockets" -U "$user" -d postgres -qc "CREATE DATABASE $db"
  done
  pg_ctl -D "$data" -s -w -m fast stop
fi
exec postgres -D "$data" -p "${POSTGRES_PORT:-5432}" -k "$sockets" \
  -c listen_addresses="${POSTGRES_LISTEN:-*}"
