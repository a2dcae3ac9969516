# The stack's own services from Debian's packages: PostgreSQL 15, Redis and nginx, one image
# that compose.yaml runs three ways (docker/services/*.sh), as uid 10001. No registry image.
#   docker build -f docker/services.Dockerfile -t fraudops-services .
# Offline (no registry, no network): BASE_IMAGE=$(docker/base-image.sh services) already has
# the packages, so the install step does nothing (docker/README.md).
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
# hadolint ignore=DL3008
RUN if [ ! -x /usr/lib/postgresql/15/bin/postgres ] || ! command -v redis-server >/dev/null \
      || ! command -v nginx >/dev/null; then \
      apt-get update \
      && apt-get install -y --no-install-recommends postgresql-15 redis-server nginx-light \
        python3-minimal \
      && rm -rf /var/lib/apt/lists/*; \
    fi \
    && useradd --create-home --uid 10001 app \
    && mkdir -p /var/lib/postgresql/data /var/lib/nginx /var/log/nginx \
    && chown -R 10001:10001 /var/lib/postgresql/data /var/lib/nginx /var/log/nginx
COPY docker/services/ /opt/fraudops/
COPY docker/nginx.conf /opt/fraudops/nginx.conf
ENV PATH=/usr/lib/postgresql/15/bin:$PATH LANG=C.UTF-8
USER 10001
HEALTHCHECK --interval=5s --timeout=3s --start-period=30s --retries=3 \
  CMD ["sh", "/opt/fraudops/health.sh"]
