"""docker/compose.yaml: valid against the Compose specification, secrets only from the
environment, health-checked, published on loopback only.

The schema is the Compose specification's JSON schema as vendored by check-jsonschema (dev
group, pinned by uv.lock; `check-jsonschema --builtin-schema vendor.compose-spec` is the same
check). Debian's docker-compose 1.29 is too old to judge: it rejects a top-level `name:`.
"""

from __future__ import annotations

import copy
import json
import re
from importlib.resources import files
from typing import Any

import jsonschema
import pytest
import yaml

from pipelines.config import load_project_config
from tests.conftest import REPO_ROOT

COMPOSE = REPO_ROOT / "docker/compose.yaml"
HOSTNET = REPO_ROOT / "docker/compose.hostnet.yaml"
ENV_EXAMPLE = REPO_ROOT / "docker/.env.example"


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema = json.loads(
        (files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json").read_text()
    )
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def test_compose_file_is_valid_compose_spec(
    validator: jsonschema.protocols.Validator, compose: dict[str, Any]
) -> None:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(compose)]
    assert not errors, errors
    assert compose["name"] == load_project_config(REPO_ROOT / "configs/project.yaml").slug
    assert set(compose["services"]) == {
        "postgres",
        "mlflow",
        "prefect-server",
        "prefect-worker",
        "redis",
        "serving-a",
        "serving-b",
        "balancer",
    }


def test_the_schema_rejects_what_compose_rejects(
    validator: jsonschema.protocols.Validator, compose: dict[str, Any]
) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["mlflow"]["helthcheck"] = broken["services"]["mlflow"]["healthcheck"]
    assert not validator.is_valid(broken)
    broken = copy.deepcopy(compose)
    broken["services"]["postgres"]["depends_on"] = {"mlflow": {"condition": "service_ready"}}
    assert not validator.is_valid(broken)


def test_no_secret_in_the_file_and_every_variable_documented() -> None:
    text = COMPOSE.read_text()
    assert not re.search(r"(?i)(password|token|secret)\s*[:=]\s*[\"']?[A-Za-z0-9]", text), (
        "a literal secret in docker/compose.yaml"
    )
    used = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", text))
    documented = set(re.findall(r"^#?\s*([A-Z_][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), re.M))
    assert used <= documented, f"not in docker/.env.example: {sorted(used - documented)}"
    assert "${POSTGRES_PASSWORD:?" in text  # required, with a message naming the file


def test_every_service_is_health_checked_and_waits_for_health(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        dockerfile = service.get("build", {}).get("dockerfile")
        image_check = dockerfile and "HEALTHCHECK" in (REPO_ROOT / dockerfile).read_text()
        assert "healthcheck" in service or image_check, f"{name}: no healthcheck"
        for dep, how in service.get("depends_on", {}).items():
            assert how == {"condition": "service_healthy"}, f"{name} -> {dep}: {how}"


def test_ports_are_published_on_loopback_only(compose: dict[str, Any]) -> None:
    ports = [p for s in compose["services"].values() for p in s.get("ports", [])]
    assert ports
    assert all(p.startswith("127.0.0.1:") for p in ports), ports


def test_mlflow_names_its_driver_and_takes_its_artifacts_destination_as_a_setting(
    compose: dict[str, Any],
) -> None:
    """A bare postgresql:// means psycopg 3 under SQLAlchemy 2.1, which is not installed; the
    artifact store is the volume unless FRAUDOPS_MLFLOW_ARTIFACTS_DESTINATION names a bucket,
    with the endpoint and credentials passed through from the environment, never written."""
    mlflow = compose["services"]["mlflow"]
    flags = dict(
        arg.split("=", 1) for arg in mlflow["command"] if arg.startswith("--") and "=" in arg
    )
    assert flags["--backend-store-uri"].startswith("postgresql+psycopg2://")
    assert flags["--artifacts-destination"] == (
        "${FRAUDOPS_MLFLOW_ARTIFACTS_DESTINATION:-/mlflow/artifacts}"
    )
    passed = ("MLFLOW_S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    assert all(mlflow["environment"][name] is None for name in passed)


def test_the_host_network_overlay_covers_every_service_and_name(compose: dict[str, Any]) -> None:
    """On a host network every service name must resolve (to loopback), and each service
    listens on a port of its own: the URLs of compose.yaml work unchanged."""
    overlay = yaml.safe_load(HOSTNET.read_text())
    assert set(overlay["services"]) == set(compose["services"])
    for service in overlay["services"].values():
        assert service["network_mode"] == "host"
        names = {entry.split(":")[0] for entry in service["extra_hosts"]}
        assert names == set(compose["services"]) - {"prefect-worker", "balancer"}
    services = compose["services"].values()
    published = [p.rsplit(":", 1)[1] for s in services for p in s.get("ports", [])]
    assert len(published) == len(set(published)), published


def test_two_replicas_share_redis_behind_the_balancer(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("serving-a", "serving-b"):
        env = services[name]["environment"]
        assert env["FRAUDOPS_SERVING_ONLINE_STORE__BACKEND"] == "redis"
        assert env["FRAUDOPS_REDIS_URL"] == "redis://redis:${REDIS_PORT:-6379}/0"
        assert services[name]["hostname"] == name  # one capture file each
    upstreams = services["balancer"]["environment"]["FRAUDOPS_UPSTREAMS"].split()
    assert [u.split(":")[0] for u in upstreams] == ["serving-a", "serving-b"]
