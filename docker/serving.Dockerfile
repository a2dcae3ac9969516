# The scoring service image: only the `serving` extra, non-root, health-checked on /ready.
#   docker build -f docker/serving.Dockerfile -t fraudops-serving .
# Air-gapped builds: put wheels for the lockfile in docker/wheels/ (`make wheels`); when any
# are there, nothing is fetched from a package index. BASE_IMAGE is any Debian-like image
# with python3 (3.11) and its venv module, e.g. the one docker/base-image.sh makes offline.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
ARG UV_VERSION=0.13.8
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never UV_PYTHON=python3 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PATH=/opt/uv/bin:$PATH
WORKDIR /app
COPY docker/wheels/ /wheels/
# uv in a venv of its own: Debian's python3 refuses installs into the system (PEP 668).
RUN python3 -m venv /opt/uv \
    && if ls /wheels/*.whl >/dev/null 2>&1; then \
      /opt/uv/bin/pip install --no-index --find-links /wheels "uv==${UV_VERSION}"; \
    else /opt/uv/bin/pip install "uv==${UV_VERSION}"; fi
# Dependencies first (from the lockfile alone), then the project: a code change reinstalls
# only the project, not the dependencies.
COPY pyproject.toml uv.lock ./
RUN if ls /wheels/*.whl >/dev/null 2>&1; then \
      uv export --frozen --no-dev --extra serving --no-emit-project --no-hashes -o /tmp/req.txt \
      && uv venv /app/.venv \
      && uv pip install --python /app/.venv/bin/python --no-index --find-links /wheels -r /tmp/req.txt; \
    else uv sync --frozen --no-dev --extra serving --no-install-project --no-editable; fi
COPY README.md ./
COPY pipelines ./pipelines
COPY serving ./serving
RUN if ls /wheels/*.whl >/dev/null 2>&1; then \
      uv pip install --python /app/.venv/bin/python --no-index --find-links /wheels --no-deps . ; \
    else uv sync --frozen --no-dev --extra serving --no-editable; fi

FROM ${BASE_IMAGE}
RUN useradd --create-home --uid 10001 app \
    && mkdir -p /app/data/capture /app/.mlflow && chown -R 10001:10001 /app
WORKDIR /app
COPY --from=build /app/.venv /app/.venv
COPY configs ./configs
# One worker per container (scale by replicas); listening beyond loopback is the point of the
# container, so it is opted in here (the service refuses it otherwise).
ENV PATH=/app/.venv/bin:$PATH PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 \
    FRAUDOPS_SERVING_SERVER__HOST=0.0.0.0 FRAUDOPS_SERVING_SERVER__ALLOW_REMOTE=true \
    FRAUDOPS_SERVING_SERVER__WORKERS=1 DO_NOT_TRACK=1 MLFLOW_DISABLE_TELEMETRY=true
USER 10001
EXPOSE 8000
# On the port the service listens on (FRAUDOPS_SERVING_SERVER__PORT when overridden).
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/ready' % os.environ.get('FRAUDOPS_SERVING_SERVER__PORT', '8000'), timeout=2)"]
# The same start command the tests run (tests/unit/test_docker.py checks it).
CMD ["python", "-m", "serving"]
