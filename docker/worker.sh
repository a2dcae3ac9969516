#!/bin/sh
# The pipelines image's start command: create the process work pool, register the deployments
# of prefect.yaml (`prefect deploy` records /app as their working directory), then poll the
# pool with a health endpoint on :8080 (the image's HEALTHCHECK). Needs PREFECT_API_URL.
set -eu
POOL=${FRAUDOPS_WORK_POOL:-fraudops-process}  # TEMPLATE: the pool named in prefect.yaml
prefect --no-prompt work-pool create "$POOL" --type process --overwrite
if [ -f prefect.yaml ]; then
  prefect --no-prompt deploy --all
fi
exec prefect worker start --pool "$POOL" --type process --with-healthcheck
