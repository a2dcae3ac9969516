#!/usr/bin/env bash
# The system packages the tests and benchmarks run for real, from Debian's packages: Redis
# (integration tests: the shared online store), PostgreSQL 15 (e2e: a throwaway cluster for
# MLflow and Prefect), podman with runc and debootstrap (container tests: images built offline
# on a debootstrapped base; only when tests/container exists; the compose tests use the same
# podman, with podman-compose from the dev group), a Java 17 runtime (the Spark
# tests and benchmark: PySpark's local mode) and wrk (the serving benchmark).
# `make test`, `make bench` and .ci/run call this. Nothing missing: prints nothing, exits 0.
# Otherwise one line says what it installs and why, then `apt-get install` (with sudo when not
# root); without apt-get or sudo it stops with one line naming the packages to install.
#   FRAUDOPS_SYSTEM_DEPS=skip   install nothing (you provide them, or run only `make test-fast`)
#   FRAUDOPS_PG_BIN=DIR         PostgreSQL's programs (default Debian's /usr/lib/postgresql/15/bin;
#                               tests/e2e/postgres.py reads the same variable)
# TEMPLATE: a package your tests run goes here, with the check that finds it.
set -euo pipefail
here=${BASH_SOURCE[0]%/*}
[ "$here" != "${BASH_SOURCE[0]}" ] || here=.
cd "$here/.."  # the project root, in bash alone

if [ "${FRAUDOPS_SYSTEM_DEPS:-}" = skip ]; then exit 0; fi

missing=()
reasons=()
need() {  # need REASON PACKAGE...: record packages that are missing and why they are needed
  local reason=$1
  shift
  missing+=("$@")
  reasons+=("$reason")
}
have() { command -v "$1" >/dev/null 2>&1; }

have redis-server || need "Redis for the integration tests" redis-server
[ -x "${FRAUDOPS_PG_BIN:-/usr/lib/postgresql/15/bin}/initdb" ] ||
  need "PostgreSQL for the e2e tests" postgresql-15
if [ -d tests/container ]; then
  # podman with the set its container tests ran with here (network backend, storage, init).
  have podman || need "podman for the container tests" \
    podman conmon netavark aardvark-dns fuse-overlayfs catatonit uidmap slirp4netns
  have runc || need "runc for podman (Debian's crun rejects hybrid-cgroup hosts)" runc
  have debootstrap || need "debootstrap for the images' base" debootstrap
fi
have java || need "a Java runtime for the Spark tests" openjdk-17-jre-headless
have wrk || need "wrk for the serving benchmark" wrk

((${#missing[@]})) || exit 0

packages="${missing[*]}"
why=${reasons[0]}
for reason in "${reasons[@]:1}"; do why+=", $reason"; done
fail() {
  echo "system-deps: $1; install them yourself: $packages ($why)," \
    "or set FRAUDOPS_SYSTEM_DEPS=skip" >&2
  exit 1
}
sudo=()
if [ "$EUID" -ne 0 ]; then
  have sudo || fail "not root and no sudo"
  sudo=(sudo)
fi
have apt-get || fail "no apt-get on this machine"

echo "system-deps: installing $packages with ${sudo[*]:+sudo }apt-get from Debian's packages" \
  "($why; FRAUDOPS_SYSTEM_DEPS=skip skips this)" >&2
"${sudo[@]}" apt-get update -qq || fail "apt-get update failed"
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
  fail "apt-get install failed"
