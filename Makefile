# fraudops: every target a person runs is the one CI runs. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV_VERSION := 0.13.8
UV ?= $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
RUN := $(UV) run --frozen --no-sync
# make init needs only the standard library; with the environment installed it also edits a
# config laid out in any YAML style (ruamel.yaml keeps its comments).
INIT_PYTHON := $(if $(wildcard .venv/bin/python),.venv/bin/python,python3)
PYTEST_ARGS ?=

# Telemetry off and nothing reaches out to the internet, in every command started from here.
export DO_NOT_TRACK := 1
export MLFLOW_DISABLE_TELEMETRY := true
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DVC_NO_ANALYTICS := 1

DRIFT ?= new_fraud_pattern
DAYS ?=

.PHONY: help install system-deps init run tune serve simulate monitor up down status test test-fast lint format bench clean wheels images

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/python -m pip install --quiet "uv==$(UV_VERSION)"

# No bytecode compilation at install: Python writes a module's .pyc the first time it imports
# it, and a first run imports a sixth of the environment. Measured on 2 busy cores (warm uv
# cache): compiling all 35,000 modules made `uv sync` 50-100 s instead of 1.5-9 s, and saved
# the first import of what `make run` loads 13-20 s; every later `uv sync` (each target below
# runs `install`) spent 2.5 s more re-checking them. Where PYTHONDONTWRITEBYTECODE is set no
# .pyc is ever written, so every process would compile its imports again: there it compiles.
# The images compile at build time (UV_COMPILE_BYTECODE in docker/*.Dockerfile).
export UV_HINT := uv is in .tools/bin and not on your PATH: before the README's uv commands, run  export PATH="$$PWD/.tools/bin:$$PATH"
COMPILE_BYTECODE ?= $(if $(PYTHONDONTWRITEBYTECODE),--compile-bytecode)

install: $(if $(filter .tools/bin/uv,$(UV)),.tools/bin/uv) ## Create .venv from uv.lock (all extras, dev group)
	$(UV) sync --frozen --all-extras $(COMPILE_BYTECODE)
	@$(if $(filter .tools/bin/uv,$(UV)),echo "$$UV_HINT")

system-deps: ## Install the system packages tests and benchmarks run, if missing (scripts/system-deps.sh)
	@bash scripts/system-deps.sh

# TEMPLATE: make a clone your project (what a Copier render does): NAME and SLUG, optionally
# MODEL, EXPERIMENT, SOURCE=file SOURCE_PATH=... COLUMN_MAP='{"card": "customer_id"}', CONTAINERS=no.
init: ## Make this clone yours: make init NAME="Acme Risk" SLUG=acme-risk (see README)
	@test -n "$(NAME)" || { echo 'usage: make init NAME="Acme Risk" SLUG=acme-risk' >&2; exit 2; }
	@$(INIT_PYTHON) template/apply.py --name "$(NAME)" $(if $(SLUG),--slug "$(SLUG)") \
	  $(if $(MODEL),--registered-model-name "$(MODEL)") \
	  $(if $(EXPERIMENT),--experiment-name "$(EXPERIMENT)") \
	  $(if $(MONITORING_EXPERIMENT),--monitoring-experiment-name "$(MONITORING_EXPERIMENT)") \
	  $(if $(SOURCE),--source "$(SOURCE)") $(if $(SOURCE_PATH),--source-path "$(SOURCE_PATH)") \
	  $(if $(COLUMN_MAP),--column-map '$(COLUMN_MAP)') $(if $(CONTAINERS),--containers "$(CONTAINERS)")

run: install ## The whole lifecycle in-process (Prefect flow over DVC stages, MLflow registry)
	$(RUN) python -m pipelines.flows lifecycle
	$(RUN) dvc status

tune: install ## Optuna search over the folds (train.tuning); prints the best params as a config diff
	$(RUN) python -m pipelines tune

serve: install ## Serve the champion on 127.0.0.1:8000 (configs/serving.yaml; after make run)
	$(RUN) python -m serving

simulate: install ## The closed loop on simulated production days (DRIFT=new_fraud_pattern DAYS=42)
	$(RUN) python -m monitoring simulate --drift $(DRIFT) $(if $(DAYS),--days $(DAYS))

monitor: install ## Monitor the last window of captured predictions (configs/monitoring.yaml)
	$(RUN) python -m monitoring run

up: install ## Local stack on 127.0.0.1: MLflow + Prefect servers, worker, scoring service
	$(RUN) python -m stack up

down: ## Stop exactly what `make up` started (pid files in .run/)
	$(RUN) python -m stack down

status: ## Which services of the local stack run, with their pids and URLs
	$(RUN) python -m stack status

test: install system-deps ## Every test: unit, data, integration, e2e (what CI runs)
	$(RUN) pytest $(PYTEST_ARGS)

test-fast: install ## Unit, data and model tests only (no integration, e2e, slow, container, compose, fault or Spark tests)
	$(RUN) pytest -m "not integration and not e2e and not slow and not container and not compose and not fault and not spark" $(PYTEST_ARGS)

lint: install ## ruff (lint + format check) and mypy strict
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy

format: install ## Apply ruff's fixes and formatting
	$(RUN) ruff check --fix .
	$(RUN) ruff format .

wheels: install ## Wheelhouse for offline image builds: docker/wheels/ from uv.lock
	$(RUN) python docker/wheelhouse.py --uv $(UV) serving
	$(RUN) python docker/wheelhouse.py --uv $(UV) pipelines monitoring

# podman here (no Docker engine on our machines); runc because Debian's crun rejects hosts with
# hybrid cgroups, and ulimits this sandbox allows. docker build takes the same arguments.
PODMAN ?= podman $(if $(shell command -v runc 2>/dev/null),--runtime $(shell command -v runc))
PODMAN_FLAGS ?= --ulimit nofile=1024:1024 --ulimit nproc=1024:1024
images: wheels ## The images, built offline on debootstrapped bases (podman, debootstrap, root)
	$(eval BASE_IMAGE := $(shell docker/base-image.sh))
	$(eval SERVICES_BASE := $(shell docker/base-image.sh services))
	for name in serving pipelines services; do \
	  base=$(BASE_IMAGE); [ $$name != services ] || base=$(SERVICES_BASE); \
	  $(PODMAN) build --pull=never --network=none --format=docker $(PODMAN_FLAGS) \
	    --build-arg BASE_IMAGE=$$base -f docker/$$name.Dockerfile -t fraudops-$$name:local . \
	    || exit 1; \
	done

bench: install system-deps ## Benchmarks; results go to docs/benchmarks.md
	$(RUN) python -m benchmarks

clean: ## Remove the environment and local state (not DVC-tracked data in the cache)
	rm -rf .venv .tools .pytest_cache .mypy_cache .ruff_cache
