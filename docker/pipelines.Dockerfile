# The Prefect worker image: runs the flows of prefect.yaml (lifecycle, training, monitoring) on
# a process work pool. Only the `pipelines` and `monitoring` extras, non-root, health-checked.
#   docker build -f docker/pipelines.Dockerfile -t fraudops-pipelines .
# Air-gapped builds: docker/wheelhouse.py pipelines monitoring (see docker/README.md).
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
      uv export --frozen --no-dev --extra pipelines --extra monitoring --no-emit-project --no-hashes -o /tmp/req.txt \
      && uv venv /app/.venv \
      && uv pip install --python /app/.venv/bin/python --no-index --find-links /wheels -r /tmp/req.txt; \
    else uv sync --frozen --no-dev --extra pipelines --extra monitoring --no-install-project --no-editable; fi
COPY README.md ./
COPY pipelines ./pipelines
COPY monitoring ./monitoring
RUN if ls /wheels/*.whl >/dev/null 2>&1; then \
      uv pip install --python /app/.venv/bin/python --no-index --find-links /wheels --no-deps . ; \
    else uv sync --frozen --no-dev --extra pipelines --extra monitoring --no-editable; fi

FROM ${BASE_IMAGE}
RUN useradd --create-home --uid 10001 app \
    && mkdir -p /app/.dvc /app/data/capture && chown -R 10001:10001 /app
WORKDIR /app
COPY --from=build /app/.venv /app/.venv
# The flows run from the project folder: deployments name their entrypoints by file path and
# the DVC stages read dvc.yaml, configs/ and write data/ here. (prefect.yaml: if present.)
COPY --chown=10001:10001 pipelines ./pipelines
COPY --chown=10001:10001 monitoring ./monitoring
COPY --chown=10001:10001 configs ./configs
COPY --chown=10001:10001 dvc.yaml dvc.lock .dvcignore prefect.yam[l] ./
COPY --chown=10001:10001 .dvc/config ./.dvc/config
COPY --chown=10001:10001 docker/worker.sh ./docker/worker.sh
ENV PATH=/app/.venv/bin:$PATH PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 \
    DO_NOT_TRACK=1 MLFLOW_DISABLE_TELEMETRY=true PREFECT_SERVER_ANALYTICS_ENABLED=false \
    DVC_NO_ANALYTICS=1
USER 10001
# No git in the image: DVC runs without an SCM (runs record git_commit "unknown"). data/ is
# not in the build context: the folders git keeps empty that stages read (data/feedback, a
# dependency of `generate`) are made here, and copied into a fresh data volume.
RUN dvc config --local core.no_scm true && mkdir -p data/feedback
# The worker's health server (PREFECT_WORKER_WEBSERVER_PORT, 8080 by default): 200 while it polls.
HEALTHCHECK --interval=15s --timeout=3s --start-period=120s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PREFECT_WORKER_WEBSERVER_PORT', '8080'), timeout=2)"]
CMD ["sh", "docker/worker.sh"]
