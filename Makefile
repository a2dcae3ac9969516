# fraudops: every target a person runs is the one CI runs. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV_VERSION := 0.13.8
UV ?= $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
RUN := $(UV) run --frozen --no-sync
PYTEST_ARGS ?=

# Telemetry off and nothing reaches out to the internet, in every command started from here.
export DO_NOT_TRACK := 1
export MLFLOW_DISABLE_TELEMETRY := true
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DVC_NO_ANALYTICS := 1
export UV_COMPILE_BYTECODE := 1

.PHONY: help install run serve test test-fast lint format bench clean wheels images

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/python -m pip install --quiet "uv==$(UV_VERSION)"

install: $(if $(filter .tools/bin/uv,$(UV)),.tools/bin/uv) ## Create .venv from uv.lock (all extras, dev group)
	$(UV) sync --frozen --all-extras --compile-bytecode

run: install ## The whole lifecycle in-process (Prefect flow over DVC stages, MLflow registry)
	$(RUN) python -m pipelines.flows lifecycle
	$(RUN) dvc status

serve: install ## Serve the champion on 127.0.0.1:8000 (configs/serving.yaml; after make run)
	$(RUN) python -m serving

test: install ## Every test: unit, data, integration, e2e (what CI runs)
	$(RUN) pytest $(PYTEST_ARGS)

test-fast: install ## Unit and data tests only (no e2e, slow, or container tests)
	$(RUN) pytest -m "not e2e and not slow and not container" $(PYTEST_ARGS)

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
images: wheels ## Both images, built offline on a debootstrapped base (podman, debootstrap, root)
	$(eval BASE_IMAGE := $(shell docker/base-image.sh))
	for name in serving pipelines; do \
	  $(PODMAN) build --pull=never --network=none --format=docker $(PODMAN_FLAGS) \
	    --build-arg BASE_IMAGE=$(BASE_IMAGE) -f docker/$$name.Dockerfile -t fraudops-$$name:local . \
	    || exit 1; \
	done

bench: install ## Benchmarks; results go to docs/benchmarks.md
	$(RUN) python -m benchmarks

clean: ## Remove the environment and local state (not DVC-tracked data in the cache)
	rm -rf .venv .tools .pytest_cache .mypy_cache .ruff_cache
