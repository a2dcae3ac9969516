"""The one module that talks to MLflow: tracking runs, logging models, the model registry.

Everything MLflow-specific (URIs, flavours, serialisation, aliases, tags) stays here, so the
next MLflow release that changes an API touches this file only.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pipelines.errors import FraudOpsError

if TYPE_CHECKING:  # a type hint only: the scoring service never imports pandas for it
    import pandas as pd

log = logging.getLogger(__name__)

LOCAL_STORE = Path(".mlflow")  # in the project (the working directory), gitignored
# Bounded retries against a tracking server: a few seconds, not MLflow's default minutes.
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
}


class TrackingError(FraudOpsError):
    """MLflow is unreachable or refused a request; nothing in the registry was changed."""


@dataclass(frozen=True)
class ModelVersion:
    """A registered version with its tags (metrics, lineage, audit records)."""

    name: str
    version: int
    run_id: str
    tags: dict[str, str]
    created_ms: int = 0  # when the registry created it (milliseconds since the epoch)


def tracking_uri() -> str:
    """`MLFLOW_TRACKING_URI` if set, else the embedded SQLite store inside the project."""
    return os.environ.get("MLFLOW_TRACKING_URI") or local_uri()


def local_uri() -> str:
    """The embedded store of the project in the working directory, as an absolute URI.

    Absolute, because MLflow caches stores by URI: a relative one would keep pointing at
    the first project's database after a change of directory.
    """
    return f"sqlite:///{LOCAL_STORE.resolve()}/mlflow.db"


def connect() -> str:
    """Point MLflow at the tracking store (no experiment: for readers such as the service)."""
    import mlflow

    for key, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(key, value)
    mlflow.set_tracking_uri(tracking_uri())
    return tracking_uri()


def configure(experiment: str) -> str:
    """Point MLflow at the tracking store and make sure `experiment` exists; return its id."""
    import mlflow

    uri = tracking_uri()
    local = uri == local_uri()
    if local:
        (LOCAL_STORE / "artifacts").mkdir(parents=True, exist_ok=True)
    connect()
    with errors(f"experiment {experiment!r}"):
        found = mlflow.get_experiment_by_name(experiment)
        if found is not None:
            return str(found.experiment_id)
        location = (LOCAL_STORE / "artifacts").resolve().as_uri() if local else None
        return str(mlflow.create_experiment(experiment, artifact_location=location))


@contextmanager
def errors(what: str) -> Iterator[None]:
    """Turn MLflow and connection failures into one clear `TrackingError`."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except (MlflowException, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TrackingError(f"MLflow at {tracking_uri()}: {what} failed: {first}") from None


def pip_requirements(estimator: str) -> list[str]:
    """Exact versions of what loading the model needs (no environment inference)."""
    names = ["scikit-learn", "numpy", "pandas", "scipy"]
    if estimator == "xgboost":
        names.append("xgboost-cpu")
    return [f"{n}=={installed_version(n)}" for n in names]


def log_run(
    experiment_id: str,
    params: dict[str, Any],
    metrics: dict[str, float],
    tags: dict[str, str],
    artifacts: list[Path],
    what: str = "logging the training run",
) -> str:
    """Create a finished run with params, metrics, tags and artifact files; return its id."""
    import mlflow

    with errors(what), mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_params({k: str(v)[:6000] for k, v in params.items()})
        mlflow.log_metrics(metrics)
        mlflow.set_tags(tags)
        for path in artifacts:
            if path.is_dir():
                mlflow.log_artifacts(str(path), artifact_path=path.name)
            elif path.exists():
                mlflow.log_artifact(str(path))
        return str(run.info.run_id)


def log_model(
    run_id: str, model: Any, example: pd.DataFrame, metadata: dict[str, Any], estimator: str
) -> str:
    """Log the sklearn model (skops format, probabilities from pyfunc); return its URI."""
    import mlflow
    import mlflow.sklearn
    import skops.io

    example = example.astype("float64")  # the model's input type: no integer-schema pitfalls
    proba = model.predict_proba(example)
    signature = mlflow.models.infer_signature(example, proba)
    # Trust exactly the types of the object we just built, nothing loaded from elsewhere.
    trusted = skops.io.get_untrusted_types(data=skops.io.dumps(model))
    with errors("logging the model"), mlflow.start_run(run_id=run_id):
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            serialization_format="skops",
            skops_trusted_types=trusted,
            signature=signature,
            input_example=example,
            pip_requirements=pip_requirements(estimator),
            pyfunc_predict_fn="predict_proba",
            metadata=metadata,
        )
    return str(info.model_uri)


def _client() -> Any:
    from mlflow import MlflowClient

    return MlflowClient()


def register(model_uri: str, name: str, tags: dict[str, str]) -> ModelVersion:
    """Create a new version of registered model `name` from `model_uri`."""
    import mlflow

    with errors(f"registering a version of {name!r}"):
        mv = mlflow.register_model(model_uri, name, tags=tags)
        return get_version(name, int(mv.version))


def _version(mv: Any) -> ModelVersion:
    created = int(mv.creation_timestamp or 0)
    return ModelVersion(str(mv.name), int(mv.version), str(mv.run_id), dict(mv.tags), created)


def get_version(name: str, version: int) -> ModelVersion:
    """One version with its tags; `TrackingError` if it does not exist."""
    with errors(f"reading {name!r} version {version}"):
        return _version(_client().get_model_version(name, str(version)))


def _search(name: str, condition: str = "") -> list[ModelVersion]:
    with errors(f"searching versions of {name!r}"):
        found = _client().search_model_versions(f"name = '{name}'{condition}")
    return sorted((_version(v) for v in found), key=lambda v: -v.version)


def find_versions(name: str, tag: str, value: str) -> list[ModelVersion]:
    """Versions of `name` whose tag `tag` equals `value`, newest first."""
    return _search(name, f" and tag.`{tag}` = '{value}'")


def list_versions(name: str) -> list[ModelVersion]:
    """Every version of `name` with its tags, newest first (none if there is no such model)."""
    return _search(name)


def alias_version(name: str, alias: str) -> int | None:
    """The version `alias` points at, or None (no such alias, or no such model yet)."""
    from mlflow.exceptions import MlflowException

    try:
        return int(_client().get_model_version_by_alias(name, alias).version)
    except MlflowException as exc:
        if getattr(exc, "error_code", "") in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}:
            return None
        raise TrackingError(f"MLflow at {tracking_uri()}: reading alias {alias!r}: {exc}") from None


def download_artifacts(name: str, version: int, artifact_path: str, dst: Path) -> Path:
    """Download `artifact_path` of the run that produced a model version into `dst`."""
    import mlflow

    run_id = get_version(name, version).run_id
    dst.mkdir(parents=True, exist_ok=True)
    with errors(f"downloading {artifact_path} of {name} version {version}"):
        local = mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path=artifact_path, dst_path=str(dst)
        )
    return Path(local)


def set_alias(name: str, alias: str, version: int) -> None:
    """Point `alias` at `version`."""
    with errors(f"setting alias {alias!r} of {name!r}"):
        _client().set_registered_model_alias(name, alias, str(version))


def set_version_tags(name: str, version: int, tags: dict[str, str]) -> None:
    """Set tags on one version (metrics, lineage, audit records)."""
    with errors(f"tagging {name!r} version {version}"):
        for key, value in tags.items():
            _client().set_model_version_tag(name, str(version), key, value)


def model_tag(name: str, key: str) -> str | None:
    """A tag of the registered model itself, or None."""
    with errors(f"reading {name!r}"):
        return _client().get_registered_model(name).tags.get(key)  # type: ignore[no-any-return]


def set_model_tag(name: str, key: str, value: str) -> None:
    """Set a tag of the registered model itself."""
    with errors(f"tagging {name!r}"):
        _client().set_registered_model_tag(name, key, value)


def load_model(name: str, version: int) -> tuple[Any, dict[str, Any]]:
    """The native sklearn model of a version and its metadata (threshold, features)."""
    import mlflow.models
    import mlflow.sklearn

    uri = f"models:/{name}/{version}"
    with errors(f"loading {uri}"):
        model = mlflow.sklearn.load_model(uri)
        metadata = mlflow.models.get_model_info(uri).metadata or {}
    return model, dict(metadata)


def to_json(data: Any) -> str:
    """Compact JSON for tag values (MLflow tags are strings)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)


RunStatus = Literal["FINISHED", "KILLED", "FAILED"]


def start_run(
    experiment_id: str,
    name: str,
    tags: dict[str, str],
    params: dict[str, Any] | None = None,
    parent_id: str | None = None,
) -> str:
    """Open a run (nested under `parent_id` when given) and return its id. Explicit run ids,
    not MLflow's active run, so trials running in threads each log to their own run."""
    from mlflow.entities import Param

    if parent_id is not None:
        tags = {**tags, "mlflow.parentRunId": parent_id}  # how MLflow nests a run
    with errors(f"starting run {name!r}"):
        run = _client().create_run(experiment_id, tags=tags, run_name=name)
        run_id = str(run.info.run_id)
        if params:
            logged = [Param(k, str(v)[:6000]) for k, v in params.items()]
            _client().log_batch(run_id, params=logged)
    return run_id


def log_metrics(run_id: str, metrics: dict[str, float], step: int = 0) -> None:
    """Log metrics of an open run at `step` (a fold's position, for a trial)."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    batch = [Metric(k, float(v), now, step) for k, v in metrics.items()]
    with errors("logging metrics"):
        _client().log_batch(run_id, metrics=batch)


def end_run(run_id: str, status: RunStatus, tags: dict[str, str] | None = None) -> None:
    """Close a run with its final tags: FINISHED, KILLED (stopped early) or FAILED."""
    with errors("ending a run"):
        for key, value in (tags or {}).items():
            _client().set_tag(run_id, key, value)
        _client().set_terminated(run_id, status=status)
