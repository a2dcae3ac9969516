"""Configuration models: the types and limits of every value in `configs/*.yaml`.

Values live in the YAML files; this module only validates them, once, at the boundary.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, get_args

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from pipelines.errors import ConfigError

DEFAULT_PIPELINE_CONFIG = Path("configs/pipeline.yaml")
DEFAULT_PROJECT_CONFIG = Path("configs/project.yaml")

DriftScenario = Literal["none", "new_fraud_pattern", "amount_inflation", "new_terminals"]


class Strict(BaseModel):
    """Base model: unknown keys are an error, values are not coerced silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ProjectConfig(Strict):
    """Identity of the project (`configs/project.yaml`)."""

    name: str = Field(min_length=1)
    slug: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    experiment_name: str = Field(min_length=1)
    monitoring_experiment_name: str = Field(min_length=1)
    registered_model_name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class Paths(Strict):
    """Where each stage reads and writes, relative to the project root."""

    raw: Path
    production: Path
    clean: Path
    quarantine: Path
    features: Path
    online: Path
    model: Path
    model_params: Path
    reports: Path
    metrics: Path
    reference: Path
    feedback: Path


# Units of numeric timestamps: epochs (`epoch_*`) and offsets (`source.timestamp_unit`).
TimeUnit = Literal["days", "hours", "minutes", "seconds", "ms", "us"]
# `source.timestamp_format` values for numbers since 1970-01-01 -> their unit.
EPOCH_UNITS: dict[str, TimeUnit] = {
    "epoch_s": "seconds",
    "epoch_ms": "ms",
    "epoch_us": "us",
}
# `source.timestamp_format` for numbers since `source.timestamp_origin`, in `timestamp_unit`.
OFFSET = "offset"
IdColumn = Literal["transaction_id", "customer_id", "terminal_id"]
# Where `transaction_id` comes from: the file's column (after column_map), or the row's
# position in the file (pipelines/source.py, `row_numbers`).
TransactionIdSource = Literal["column", "row_number"]
_NUMBER = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*")


class Source(Strict):
    """Where raw transactions come from: the simulator or the user's own file, and how the
    file writes its values (each option's default leaves the values as they are)."""

    kind: Literal["simulator", "file"]
    # The file the raw data comes from: a `dvc.yaml` dependency of `generate`, so a changed
    # file always re-runs it. For the simulator, its code (pipelines/generate.py).
    path: Path
    column_map: dict[str, str] = Field(default_factory=dict)
    # strftime format of text timestamps, epoch_s | epoch_ms | epoch_us for numbers since
    # 1970, or `offset`: numbers of `timestamp_unit` since `timestamp_origin`.
    timestamp_format: str | None = Field(default=None, min_length=1)
    timestamp_origin: dt.datetime | None = None  # offset 0; zoned values are taken in UTC
    timestamp_unit: TimeUnit | None = None
    amount_divisor: float = Field(default=1.0, gt=0)  # 100: amounts are integer cents
    hashed_ids: list[IdColumn] = Field(default_factory=list)  # string ids -> stable int64
    transaction_id: TransactionIdSource = "column"

    @field_validator("timestamp_origin", mode="before")
    @classmethod
    def _origin_is_a_date(cls, value: object) -> object:
        # pydantic reads a number (or a numeric text) as seconds since 1970: `2024` would be
        # 1970-01-01 00:33:44, silently.
        if isinstance(value, int | float) or (isinstance(value, str) and _NUMBER.fullmatch(value)):
            raise ValueError(
                f'source.timestamp_origin must be a date or datetime ("2024-01-01"), got {value!r}'
            )
        return value

    @model_validator(mode="after")
    def _file_needs_path(self) -> Source:
        if self.kind == "file" and self.path.suffix.lower() not in {".parquet", ".csv"}:
            raise ValueError(f"source.path must end in .parquet or .csv, got {self.path}")
        return self

    @model_validator(mode="after")
    def _timestamp_options(self) -> Source:
        fmt = self.timestamp_format
        if fmt is not None and "%" not in fmt and fmt not in EPOCH_UNITS and fmt != OFFSET:
            raise ValueError(
                f"source.timestamp_format must be a strftime format (with %), one of "
                f"{', '.join(EPOCH_UNITS)} or {OFFSET}, got {fmt!r}"
            )
        given = [k for k in ("timestamp_origin", "timestamp_unit") if getattr(self, k) is not None]
        if fmt == OFFSET and len(given) < 2:
            raise ValueError(
                "source.timestamp_format offset needs source.timestamp_origin (the time of "
                'offset 0, e.g. "2024-01-01") and source.timestamp_unit '
                f"({' | '.join(get_args(TimeUnit))})"
            )
        if fmt != OFFSET and given:
            raise ValueError(
                f"source.{given[0]} applies only with source.timestamp_format offset, not {fmt!r}"
            )
        return self

    @model_validator(mode="after")
    def _id_options(self) -> Source:
        if len(set(self.hashed_ids)) != len(self.hashed_ids):
            raise ValueError("source.hashed_ids must not repeat a column")
        if self.transaction_id != "row_number":
            return self
        mapped = [k for k, v in self.column_map.items() if v == "transaction_id"]
        if mapped or "transaction_id" in self.hashed_ids:
            where = f"column_map maps {mapped[0]!r} to it" if mapped else "hashed_ids lists it"
            raise ValueError(
                f"source.transaction_id row_number generates the id, but source.{where}: "
                "remove one of the two"
            )
        return self


class FraudScenarios(Strict):
    """The handbook's three fraud scenarios."""

    amount_threshold: float = Field(gt=0)
    compromised_terminals_per_day: int = Field(ge=0)
    terminal_compromise_days: int = Field(ge=1)
    compromised_customers_per_day: int = Field(ge=0)
    customer_compromise_days: int = Field(ge=1)
    customer_fraud_share: float = Field(ge=0, le=1)
    customer_amount_factor: float = Field(gt=0)


class Production(Strict):
    """A later production period, optionally with injected drift, for monitoring."""

    n_days: int = Field(ge=1, le=3650)
    drift: DriftScenario
    new_pattern_customers_per_day: int = Field(ge=0)
    new_pattern_tx_per_customer: int = Field(ge=1)
    new_pattern_amount_max: float = Field(gt=0)
    amount_inflation_factor: float = Field(gt=0)
    new_terminals: int = Field(ge=1)
    new_terminal_share: float = Field(ge=0, le=1)


class Generate(Strict):
    """Simulator parameters (the handbook's design and default values)."""

    seed: int = Field(ge=0)
    start_date: dt.date
    n_customers: int = Field(ge=1, le=10_000_000)
    n_terminals: int = Field(ge=1, le=10_000_000)
    n_days: int = Field(ge=1, le=3650)
    area_size: float = Field(gt=0)
    terminal_radius: float = Field(gt=0)
    reference_terminals: int = Field(ge=1)
    amount_mean_min: float = Field(ge=0)
    amount_mean_max: float = Field(gt=0)
    tx_per_day_max: float = Field(gt=0)
    time_of_day_mean_s: float = Field(ge=0, le=86_400)
    time_of_day_sd_s: float = Field(gt=0)
    fraud: FraudScenarios

    @model_validator(mode="after")
    def _amount_range(self) -> Generate:
        if self.amount_mean_min > self.amount_mean_max:
            raise ValueError("generate.amount_mean_min must not exceed generate.amount_mean_max")
        return self


class Validate(Strict):
    """Data contract limits applied by the `validate` stage."""

    max_quarantine_share: float = Field(ge=0, le=1)
    min_datetime: dt.datetime
    max_datetime: dt.datetime

    @model_validator(mode="after")
    def _range(self) -> Validate:
        if self.min_datetime >= self.max_datetime:
            raise ValueError("validate.min_datetime must be before validate.max_datetime")
        return self


# A declared column's name: a plain identifier (it becomes a SQL column, a JSON field and a
# model feature name unquoted), not one of the contract's own columns.
ColumnName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")]
CONTRACT_COLUMNS = frozenset(
    {
        "transaction_id",
        "tx_datetime",
        "customer_id",
        "terminal_id",
        "tx_amount",
        "tx_fraud",
        "tx_fraud_scenario",
    }
)  # pipelines/schema.py's RAW_COLUMNS (schema imports this module's types, not the reverse)


class NumericColumn(Strict):
    """A number of the transaction (a balance, a quantity): the feature is its value.

    Kept by `source`, required and finite (and within `min`..`max`, inclusive, if set) in
    `validate` and in every scoring request, where it is a JSON number field."""

    name: ColumnName
    kind: Literal["numeric"]
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _bounds(self) -> NumericColumn:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"features.columns {self.name}: min {self.min} > max {self.max}")
        return self

    def feature_names(self) -> list[str]:
        return [self.name]


class CategoricalColumn(Strict):
    """A category of the transaction (its type, its channel): one 0/1 feature per declared
    category, `<name>_is_<category>`. A value outside `categories` is quarantined by
    `validate` and refused (422) by the scoring API: add it to the list and retrain."""

    name: ColumnName
    kind: Literal["categorical"]
    categories: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_]{1,64}$")]] = Field(min_length=1)

    @model_validator(mode="after")
    def _distinct(self) -> CategoricalColumn:
        if len(set(self.categories)) != len(self.categories):
            raise ValueError(f"features.columns {self.name}: categories must not repeat")
        return self

    def feature_names(self) -> list[str]:
        return [f"{self.name}_is_{category}" for category in self.categories]


DeclaredColumn = Annotated[NumericColumn | CategoricalColumn, Field(discriminator="kind")]


class Features(Strict):
    """The feature set, declared once: the SQL of the `features` stage, the scoring
    service's online features, its request fields, the model's inputs and the monitored
    columns all derive from it (pipelines/schema.py `feature_columns`).

    Windows: customer windows apply to the `customer_id` column, terminal windows to
    `terminal_id` (`source.column_map` says which of a file's columns those are); an empty
    list of windows turns that group off. `customer_amount_ratio` adds, per customer window,
    the amount over the window's mean amount; off, the features are the handbook's (15 with
    its windows). `hour_of_day` adds the transaction's hour (0-23);
    `customer_since_previous_days` / `terminal_since_previous_days` the days since the
    entity's previous transaction (capped). `columns` declares the per-transaction columns
    of your own data (numeric or categorical), each a feature."""

    label_delay_days: int = Field(ge=0, le=365)
    customer_windows_days: list[int]
    customer_amount_ratio: bool = True
    terminal_windows_days: list[int]
    night_max_hour: int = Field(ge=0, le=23)
    hour_of_day: bool = False
    # Days since the customer's (terminal's) previous transaction, capped at this many days
    # (and this value when there is none within them); 0 leaves the feature out.
    customer_since_previous_days: int = Field(default=0, ge=0, le=365)
    terminal_since_previous_days: int = Field(default=0, ge=0, le=365)
    columns: list[DeclaredColumn] = Field(default_factory=list)

    @model_validator(mode="after")
    def _windows(self) -> Features:
        for name in ("customer_windows_days", "terminal_windows_days"):
            values = getattr(self, name)
            if any(v < 1 for v in values) or len(set(values)) != len(values):
                raise ValueError(f"features.{name} must be distinct whole days >= 1")
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            raise ValueError("features.columns must not declare a column twice")
        taken = sorted(CONTRACT_COLUMNS.intersection(names))
        if taken:
            raise ValueError(f"features.columns: {', '.join(taken)} is a contract column")
        from pipelines.schema import feature_columns  # the names are defined there

        features = feature_columns(self)
        twice = sorted({f for f in features if features.count(f) > 1})
        if twice:
            raise ValueError(f"features: {', '.join(twice)} would be two features")
        return self


EngineKind = Literal["duckdb", "spark"]


class Engine(Strict):
    """The engine of the `features` stage and its resources (not feature definitions: the
    same declaration gives the same feature table on either engine, so no DVC stage lists
    them as params). `spark` runs the stage's DuckDB SQL translated to Spark SQL
    (pipelines/spark_sql.py) on `spark_master`: `local[N]` (bound to 127.0.0.1) or a cluster's
    URL; `spark_conf` holds any further Spark setting (`spark.driver.memory`, ...)."""

    kind: EngineKind = "duckdb"
    duckdb_memory_limit: str = Field(default="2GB", pattern=r"^\d+(\.\d+)?\s*(KB|MB|GB|TB)$")
    duckdb_threads: int | None = Field(default=None, ge=1)
    spark_master: str = Field(default="local[2]", min_length=1)
    spark_conf: dict[str, str] = Field(default_factory=dict)

    @field_validator("spark_conf", mode="before")
    @classmethod
    def _conf_as_text(cls, value: object) -> object:
        # Spark takes every setting as text; YAML reads `4` and `true` as a number and a bool.
        if isinstance(value, dict):
            return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in value.items()}
        return value


EstimatorName = Literal["hist_gradient_boosting", "random_forest", "logistic_regression", "xgboost"]


class HistGradientBoosting(Strict):
    """Hyper-parameters of scikit-learn's HistGradientBoostingClassifier."""

    max_iter: int = Field(ge=1)
    learning_rate: float = Field(gt=0, le=1)
    max_leaf_nodes: int = Field(ge=2)
    min_samples_leaf: int = Field(ge=1)
    l2_regularization: float = Field(ge=0)
    max_features: float = Field(gt=0, le=1)
    early_stopping: bool


class RandomForest(Strict):
    """Hyper-parameters of scikit-learn's RandomForestClassifier."""

    n_estimators: int = Field(ge=1)
    max_depth: int | None = Field(default=None, ge=1)
    min_samples_leaf: int = Field(ge=1)


class LogisticRegression(Strict):
    """Hyper-parameters of scikit-learn's LogisticRegression (on standardised features)."""

    C: float = Field(gt=0)
    max_iter: int = Field(ge=1)


class XGBoost(Strict):
    """Hyper-parameters of XGBoost's XGBClassifier."""

    n_estimators: int = Field(ge=1)
    max_depth: int = Field(ge=1)
    learning_rate: float = Field(gt=0, le=1)
    subsample: float = Field(gt=0, le=1)


class Tuning(Strict):
    """The `make tune` search (pipelines/tune.py): its budget, pruning and study file. It
    never changes what `train` fits: it proposes a diff of `train.<estimator>` instead."""

    n_trials: int = Field(ge=1)  # per run: a rerun adds as many to the same study
    timeout_s: float | None = Field(default=None, gt=0)  # no new trial starts after this
    n_jobs: int = Field(default=1, ge=1)  # trials at a time (threads)
    seed: int = Field(default=0, ge=0)  # of the sampler (plus the trials already run)
    pruner_startup_trials: int = Field(default=5, ge=0)  # finished trials before any pruning
    pruner_warmup_folds: int = Field(default=1, ge=0)  # folds a trial runs before it can be pruned
    storage: Path = Path(".optuna/studies.db")  # SQLite file of every study (gitignored)


FoldAnchor = Literal["latest", "earliest"]


class Train(Strict):
    """Split protocol, estimator choice and hyper-parameters. `start_date` is the training
    start of the latest fold (`anchor: latest`, folds step back from it) or of the earliest
    (`anchor: earliest`, folds step forward from it); fold 0 is always the latest. `auto`
    places the folds from the data's dates (`pipelines/coverage.py`)."""

    start_date: dt.date | Literal["auto"]
    anchor: FoldAnchor = "latest"
    train_days: int = Field(ge=1)
    test_days: int = Field(ge=1)
    folds: int = Field(ge=1)
    random_state: int = Field(ge=0)
    estimator: EstimatorName
    hist_gradient_boosting: HistGradientBoosting
    random_forest: RandomForest
    logistic_regression: LogisticRegression
    xgboost: XGBoost
    tuning: Tuning

    def estimator_params(self) -> dict[str, Any]:
        """The hyper-parameters of the selected estimator."""
        params: BaseModel = getattr(self, self.estimator)
        return params.model_dump()


class Evaluate(Strict):
    """Metrics, threshold rule and explanation settings."""

    top_k: int = Field(ge=1)
    recall_at_fpr: float = Field(gt=0, lt=1)
    threshold_fpr: float = Field(gt=0, lt=1)
    permutation_repeats: int = Field(ge=1)
    amount_bands: list[float] = Field(min_length=2)
    short_history_max_tx: int = Field(ge=1)


class Gate(Strict):
    """The promotion gate: absolute floors and the margin over the current champion."""

    approval: Literal["auto", "manual"]
    min_average_precision: float = Field(ge=0, le=1)
    min_roc_auc: float = Field(ge=0, le=1)
    min_card_precision_at_k: float = Field(ge=0, le=1)
    min_improvement: float = Field(ge=-1, le=1)


class PipelineConfig(Strict):
    """Every value of the offline pipeline (`configs/pipeline.yaml`)."""

    paths: Paths
    source: Source
    generate: Generate
    production: Production
    validate_: Validate = Field(alias="validate")
    features: Features
    engine: Engine
    train: Train
    evaluate: Evaluate
    gate: Gate

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _declared_columns_need_a_file(self) -> PipelineConfig:
        if self.features.columns and self.source.kind != "file":
            names = ", ".join(c.name for c in self.features.columns)
            raise ValueError(
                f"features.columns ({names}) are columns of your own data: they need "
                "source.kind: file (the simulator writes none)"
            )
        return self


class Decisions(Strict):
    """Thresholds that turn a monitoring report into OK, WARN or RETRAIN."""

    warn_drift_share: float = Field(ge=0, le=1)
    retrain_drift_share: float = Field(ge=0, le=1)
    retrain_on_prediction_drift: bool
    min_labelled_rows: int = Field(ge=1)
    max_ap_drop: float = Field(ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> Decisions:
        if self.warn_drift_share > self.retrain_drift_share:
            raise ValueError("decisions.warn_drift_share must not exceed retrain_drift_share")
        return self


class Alerts(Strict):
    """How WARN and RETRAIN are posted to the webhook (its URL comes from the environment)."""

    retries: int = Field(ge=1, le=10)
    timeout_s: float = Field(gt=0, le=60)


class MonitoringConfig(Strict):
    """Every value of the monitoring loop (`configs/monitoring.yaml`)."""

    sample_rows: int = Field(ge=100)
    seed: int = Field(ge=0)
    reports_dir: Path
    window_days: int = Field(ge=1, le=366)
    decisions: Decisions
    alerts: Alerts
    retrain: bool


DEFAULT_MONITORING_CONFIG = Path("configs/monitoring.yaml")
Model = TypeVar("Model", bound=BaseModel)


def load_monitoring_config(
    path: Path = DEFAULT_MONITORING_CONFIG, overrides: dict[str, Any] | None = None
) -> MonitoringConfig:
    """Load and validate the monitoring config, with dotted `overrides` applied first."""
    return validate_with_overrides(MonitoringConfig, path, _read_yaml(path), overrides or {})[0]


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def apply_overrides(data: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Return a copy of `data` with dotted keys (`generate.n_days`) set to new values."""
    result: dict[str, Any] = copy.deepcopy(data)
    for dotted, value in overrides.items():
        node = result
        *parents, leaf = dotted.split(".")
        for key in parents:
            child = node.get(key)
            if not isinstance(child, dict):
                raise ConfigError(f"override {dotted!r}: {key!r} is not a section of the config")
            node = child
        if leaf not in node:
            raise ConfigError(f"override {dotted!r}: unknown key {leaf!r}")
        node[leaf] = value
    return result


def parse_override(text: str) -> tuple[str, str]:
    """`key.sub=value` -> (`key.sub`, the value's text): its type comes from the config model
    when it is applied (`validate_with_overrides`), not from how it looks."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ConfigError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def _readings(value: Any) -> list[Any]:
    """How a `--set` text may be meant: as YAML (numbers, lists, null), else as the text."""
    if not isinstance(value, str):
        return [value]
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:  # e.g. "%d/%m/%Y": a string, not a YAML directive
        return [value]
    return [parsed] if isinstance(parsed, str) else [parsed, value]


def validate_with_overrides(
    model: type[Model], path: Path, data: dict[str, Any], overrides: dict[str, Any]
) -> tuple[Model, dict[str, Any]]:
    """Validate `data` with `overrides` applied; return the model and each override's value
    as the model typed it, in JSON form (a date as "2018-08-15", a path as text).

    A text value is read as YAML first and as plain text if the model refuses that reading
    (`train.estimator=yes` is the text "yes"). An invalid override raises one line naming
    the key, the value and the rule; nothing is written anywhere.
    """
    choice = dict.fromkeys(overrides, 0)
    readings = {key: _readings(value) for key, value in overrides.items()}
    while True:
        current = {key: readings[key][choice[key]] for key in overrides}
        try:
            validated = model.model_validate(apply_overrides(data, current))
            break
        except ValidationError as exc:
            retry = _keys_to_reread(exc, choice, readings)
            if not retry:
                raise ConfigError(_override_error(path, exc, overrides)) from None
            for key in retry:
                choice[key] += 1
    dumped = validated.model_dump(mode="json", by_alias=True)
    return validated, {key: _get(dumped, key) for key in overrides}


def _keys_to_reread(
    exc: ValidationError, choice: dict[str, int], readings: dict[str, list[Any]]
) -> list[str]:
    locs = [".".join(str(p) for p in err["loc"]) for err in exc.errors()]
    return [
        key
        for key in choice
        if choice[key] + 1 < len(readings[key])
        and any(loc == key or loc.startswith(f"{key}.") for loc in locs)
    ]


def _get(data: dict[str, Any], dotted: str) -> Any:
    node: Any = data
    for key in dotted.split("."):
        node = node[key]
    return node


def _override_error(path: Path, exc: ValidationError, overrides: dict[str, Any]) -> str:
    """One line: the override that broke a rule, with its value, or the file's own error."""
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        for key, value in overrides.items():
            if loc == key or loc.startswith(f"{key}.") or (err["loc"] and key.startswith(loc)):
                return f"--set {key}={value}: {err['msg']}"
    return format_validation_error(path, exc)


def format_validation_error(path: Path, exc: ValidationError) -> str:
    problems = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "<root>"
        value = err.get("input")
        shown = "" if isinstance(value, dict) else f" (got {value!r})"
        problems.append(f"{key}: {err['msg']}{shown}")
    return f"{path}: " + "; ".join(problems)


def load_pipeline_config(
    path: Path = DEFAULT_PIPELINE_CONFIG, overrides: dict[str, Any] | None = None
) -> PipelineConfig:
    """Load and validate the pipeline config, with optional dotted-key overrides."""
    return validate_with_overrides(PipelineConfig, path, _read_yaml(path), overrides or {})[0]


def typed_overrides(
    path: Path = DEFAULT_PIPELINE_CONFIG, overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The pipeline config's `overrides` as the model types them (what a params file holds)."""
    return validate_with_overrides(PipelineConfig, path, _read_yaml(path), overrides or {})[1]


def load_project_config(path: Path = DEFAULT_PROJECT_CONFIG) -> ProjectConfig:
    """Load and validate the project identity."""
    try:
        return ProjectConfig.model_validate(_read_yaml(path))
    except ValidationError as exc:
        raise ConfigError(format_validation_error(path, exc)) from None
