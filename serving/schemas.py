"""Request and response bodies of the scoring API (DESIGN §6), with OpenAPI examples."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_type_hints

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    TypeAdapter,
    with_config,
)
from pydantic_core import PydanticCustomError
from typing_extensions import TypedDict  # pydantic needs it on Python < 3.12

from pipelines.schema import MAX_AMOUNT, MAX_ID, MIN_AMOUNT, MIN_ID

if TYPE_CHECKING:
    from pipelines.config import DeclaredColumn, Features

# Which path scores: the verified compiled scorer (serving/compiled.py) or predict_proba.
ScorerName = Literal["compiled", "predict_proba"]
EXAMPLE: dict[str, Any] = {
    "transaction_id": 1789267,
    "tx_datetime": "2018-10-01T12:30:05",
    "customer_id": 4211,
    "terminal_id": 8187,
    "tx_amount": 57.16,
}


def _iso_text(value: object) -> object:
    """Only an ISO 8601 string: pydantic, even strict, also reads a number or a string of
    digits as a Unix timestamp (`1700000000`)."""
    if isinstance(value, dt.datetime):  # from Python (a test, a benchmark), not from JSON
        return value
    if not isinstance(value, str) or value[4:5] != "-":
        raise PydanticCustomError(
            "datetime_type", "Input should be a valid datetime in ISO 8601 format"
        )
    return value


# The value rules of pipelines/schema.py, the `validate` stage's, with JSON's own types only
# (Strict): an id is a JSON integer (not "123", true or 1.0), an amount a JSON number (not
# true). The datetime range comes from the configuration: the routes check it after this.
Id = Annotated[int, Strict(), Field(ge=MIN_ID, le=MAX_ID, json_schema_extra={"format": "int64"})]
Amount = Annotated[float, Strict(), Field(ge=MIN_AMOUNT, lt=MAX_AMOUNT, allow_inf_nan=False)]
When = Annotated[dt.datetime, BeforeValidator(_iso_text)]


@with_config(ConfigDict(extra="forbid", json_schema_extra={"examples": [EXAMPLE]}))
class Transaction(TypedDict):
    """One raw card payment, without labels: what a payment system knows when it asks."""

    # A TypedDict, not a model: requests are validated into plain dicts, about 40 % less CPU
    # than building a model object per row of a batch.
    transaction_id: Annotated[Id, Field(description="Unique id of the payment")]
    tx_datetime: Annotated[
        When,
        Field(
            description="When it happened: ISO 8601, naive = UTC, within validate.min_datetime"
            " and validate.max_datetime of configs/pipeline.yaml (a 422 names them)"
        ),
    ]
    customer_id: Annotated[Id, Field(description="Card or customer id")]
    terminal_id: Annotated[Id, Field(description="Terminal (merchant device) id")]
    tx_amount: Annotated[Amount, Field(description="Amount, >= 0 and below 10^12")]


class Reason(BaseModel):
    """One feature's contribution to the model's raw score (log-odds for boosted trees and
    the logistic regression, the probability for a random forest): how far it moved this
    transaction's score from the base value, given the other features. Not a cause."""

    feature: str
    contribution: float


class Explanation(BaseModel):
    """What the reasons of an answer are (with `?explain=true`): base value + every
    feature's contribution = the model's raw score; the answer lists the largest ones."""

    method: Literal["exact", "approximate"]
    output: Literal["log_odds", "probability"]
    base_value: float


class Score(BaseModel):
    """The answer for one transaction (`reasons` only with `?explain=true`: the largest
    contributions, by magnitude; null for a replayed transaction, answered as before)."""

    transaction_id: int
    fraud_probability: float
    is_fraud: bool
    model_version: int
    reasons: list[Reason] | None = None
    explanation: Explanation | None = None


@with_config(
    ConfigDict(extra="forbid", json_schema_extra={"examples": [{"transactions": [EXAMPLE]}]})
)
class Batch(TypedDict):
    """Up to `limits.max_batch_rows` transactions, scored in one call."""

    transactions: Annotated[list[Transaction], Field(min_length=1)]


TRANSACTION: TypeAdapter[Transaction] = TypeAdapter(Transaction)
BATCH: TypeAdapter[Batch] = TypeAdapter(Batch)


@dataclass(frozen=True)
class RequestTypes:
    """The request bodies of one feature declaration: the contract's fields, then a typed
    field per declared column (`features.columns`)."""

    transaction: type[Transaction]
    batch: type[Batch]


def _declared_field(column: DeclaredColumn) -> Any:
    """A declared column's request type: a finite JSON number (within its bounds), or one
    of its categories."""
    if column.kind == "numeric":
        bounds = Field(ge=column.min, le=column.max, allow_inf_nan=False)
        described = Field(description=f"{column.name} (features.columns): a finite number")
        return Annotated[float, Strict(), bounds, described]
    return Annotated[
        Literal[tuple(column.categories)],
        Field(description=f"{column.name} (features.columns): one of its categories"),
    ]


def _example(column: DeclaredColumn) -> object:
    """A valid value of a declared column, for the OpenAPI examples."""
    if column.kind == "categorical":
        return column.categories[0]
    low = column.min if column.min is not None else float("-inf")
    high = column.max if column.max is not None else float("inf")
    return min(max(0.0, low), high)


def request_types(cfg: Features) -> RequestTypes:
    """`Transaction` and `Batch` with the declared columns as required fields."""
    if not cfg.columns:
        return RequestTypes(Transaction, Batch)
    example = {**EXAMPLE, **{c.name: _example(c) for c in cfg.columns}}
    fields = get_type_hints(Transaction, include_extras=True)
    fields.update({c.name: _declared_field(c) for c in cfg.columns})
    config = ConfigDict(extra="forbid", json_schema_extra={"examples": [example]})
    transaction = with_config(config)(TypedDict("Transaction", fields))  # type: ignore[operator]
    batch_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"transactions": [example]}]}
    )
    many = Annotated[list[transaction], Field(min_length=1)]  # type: ignore[valid-type]
    batch = with_config(batch_config)(TypedDict("Batch", {"transactions": many}))  # type: ignore[operator]
    transaction.__doc__, batch.__doc__ = Transaction.__doc__, Batch.__doc__
    return RequestTypes(transaction, batch)


class BatchScores(BaseModel):
    """Scores in the order of the request."""

    model_version: int
    scores: list[Score]
    explanation: Explanation | None = None


class Label(BaseModel):
    """Ground truth for an earlier transaction (a chargeback, a confirmed fraud, ...)."""

    model_config = ConfigDict(extra="forbid")

    transaction_id: Id
    tx_fraud: Annotated[int, Strict(), Field(ge=0, le=1)]


class Labels(BaseModel):
    """A batch of delayed labels."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"labels": [{"transaction_id": 1789267, "tx_fraud": 1}]}]},
    )

    labels: list[Label] = Field(min_length=1)


class Detail(BaseModel):
    """Why a request was refused (413, 415, 503)."""

    detail: str


class LabelsAccepted(BaseModel):
    """What happened to each label: matched a scored transaction, or kept aside as unknown."""

    received: int
    matched: int
    unknown: int


class ModelInfo(BaseModel):
    """The model answering requests now."""

    name: str
    version: int
    alias: str
    data_version: str
    threshold: float
    features: list[str]
    loaded_at: dt.datetime
    scorer: ScorerName = Field(
        description="compiled: the verified compiled scorer (serving/compiled.py); "
        "predict_proba: the model's own, when the compiled one does not apply (logged)"
    )
