#!/usr/bin/env bash
# A minimal Debian bookworm base image (Python 3.11) built offline from Debian's packages:
# debootstrap, then `podman import`. For machines that can reach Debian's mirror but no
# container registry. Prints the image name; pass it as --build-arg BASE_IMAGE=<name>.
#   docker/base-image.sh            python3 (the serving and pipelines images build on it)
#   docker/base-image.sh services   plus PostgreSQL 15, Redis and nginx from Debian: the image
#                                   the compose stack runs its database, store and balancer from
#
# Cached twice: the image in podman's store, and a tarball in $FRAUDOPS_CACHE
# (default ~/.cache/fraudops) that re-imports in seconds after `podman system reset`.
# Needs root (debootstrap), podman and debootstrap (apt-get install podman debootstrap).
set -euo pipefail

SUITE=bookworm
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
PACKAGES=python3,python3-venv,ca-certificates
NAME=fraudops-base
case "${1:-}" in
  "") ;;
  services)  # TEMPLATE: the Debian packages of the stack's own services
    PACKAGES=$PACKAGES,postgresql-15,redis-server,nginx-light
    NAME=fraudops-services ;;
  *) echo "usage: $0 [services]" >&2; exit 2 ;;
esac
# The tag changes whenever what goes into the image does, so a stale cache is never used.
TAG=$(printf '%s %s %s' "$SUITE" "$PACKAGES" v1 | sha256sum | cut -c1-12)
IMAGE=localhost/${NAME}:${SUITE}-${TAG}
CACHE=${FRAUDOPS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fraudops}
TARBALL=$CACHE/${NAME#fraudops-}-${SUITE}-${TAG}.tar

if podman image exists "$IMAGE"; then
  echo "$IMAGE"
  exit 0
fi
mkdir -p "$CACHE"
if [ ! -s "$TARBALL" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "$0: debootstrap needs root (run as root, or with sudo, once; then it is cached)" >&2
    exit 1
  fi
  command -v debootstrap >/dev/null || { echo "$0: apt-get install debootstrap" >&2; exit 1; }
  rootfs=$(mktemp -d)
  trap 'rm -rf "$rootfs"' EXIT
  echo "debootstrap $SUITE ($PACKAGES) from $MIRROR" >&2
  debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$rootfs" "$MIRROR" >&2
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin \
    "$rootfs"/var/cache/apt/archives/*.deb
  tar --numeric-owner -C "$rootfs" -cf "$TARBALL.part" .
  mv "$TARBALL.part" "$TARBALL"
fi
podman import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["/bin/bash"]' \
  "$TARBALL" "$IMAGE" >&2
echo "$IMAGE"
