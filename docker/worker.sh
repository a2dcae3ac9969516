#!/bin/sh
# The pipelines image's start command: create the process work pool, register the deployments
# of prefect.yaml whose entrypoint file is in the image, on that pool (`prefect deploy`
# records /app as their working directory), then poll the pool with a health endpoint (the
# image's HEALTHCHECK). Needs PREFECT_API_URL.
set -eu
export POOL="${FRAUDOPS_WORK_POOL:-fraudops-process}"  # TEMPLATE: the pool of prefect.yaml
# Created only when missing, so a pool customised in the UI keeps its settings.
prefect --no-prompt work-pool inspect "$POOL" >/dev/null 2>&1 \
  || prefect --no-prompt work-pool create "$POOL" --type process
if [ -f prefect.yaml ]; then
  python - <<'PY'
import os, pathlib, yaml
config = yaml.safe_load(pathlib.Path("prefect.yaml").read_text())
here = [d for d in config["deployments"] if pathlib.Path(d["entrypoint"].split(":")[0]).is_file()]
for d in config["deployments"]:
    if d not in here:
        print(f"not deployed (entrypoint not in the image): {d['entrypoint']}")
    d["work_pool"]["name"] = os.environ["POOL"]
config["deployments"] = here
pathlib.Path("/tmp/prefect.deploy.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
PY
  prefect --no-prompt deploy --all --prefect-file /tmp/prefect.deploy.yaml
fi
exec prefect worker start --pool "$POOL" --type process --with-healthcheck
