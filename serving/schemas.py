"""Request and response bodies of the scoring API (DESIGN §6), with OpenAPI examples."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, with_config
from typing_extensions import TypedDict  # pydantic needs it on Python < 3.12

from pipelines.schema import MAX_AMOUNT

# Which path scores: the verified compiled scorer (serving/compiled.py) or predict_proba.
ScorerName = Literal["compiled", "predict_proba"]
MAX_ID = 2**63 - 1  # ids are 64-bit integers everywhere (parquet, SQLite, Redis)
EXAMPLE: dict[str, Any] = {
    "transaction_id": 1789267,
    "tx_datetime": "2018-10-01T12:30:05",
    "customer_id": 4211,
    "terminal_id": 8187,
    "tx_amount": 57.16,
}


@with_config(ConfigDict(extra="forbid", json_schema_extra={"examples": [EXAMPLE]}))
class Transaction(TypedDict):
    """One raw card payment, without labels: what a payment system knows when it asks."""

    # A TypedDict, not a model: requests are validated into plain dicts, about 40 % less CPU
    # than building a model object per row of a batch.
    transaction_id: Annotated[int, Field(ge=0, le=MAX_ID, description="Unique id of the payment")]
    tx_datetime: Annotated[
        dt.datetime, Field(description="When it happened (ISO 8601; naive = UTC)")
    ]
    customer_id: Annotated[int, Field(ge=0, le=MAX_ID, description="Card or customer id")]
    terminal_id: Annotated[int, Field(ge=0, le=MAX_ID, description="Terminal (merchant device) id")]
    tx_amount: Annotated[
        float,
        Field(ge=0, lt=MAX_AMOUNT, allow_inf_nan=False, description="Amount, >= 0 and below 10^12"),
    ]


class Score(BaseModel):
    """The answer for one transaction."""

    transaction_id: int
    fraud_probability: float
    is_fraud: bool
    model_version: int


@with_config(
    ConfigDict(extra="forbid", json_schema_extra={"examples": [{"transactions": [EXAMPLE]}]})
)
class Batch(TypedDict):
    """Up to `limits.max_batch_rows` transactions, scored in one call."""

    transactions: Annotated[list[Transaction], Field(min_length=1)]


TRANSACTION: TypeAdapter[Transaction] = TypeAdapter(Transaction)
BATCH: TypeAdapter[Batch] = TypeAdapter(Batch)


class BatchScores(BaseModel):
    """Scores in the order of the request."""

    model_version: int
    scores: list[Score]


class Label(BaseModel):
    """Ground truth for an earlier transaction (a chargeback, a confirmed fraud, ...)."""

    model_config = ConfigDict(extra="forbid")

    transaction_id: int = Field(ge=0, le=MAX_ID)
    tx_fraud: int = Field(ge=0, le=1)


class Labels(BaseModel):
    """A batch of delayed labels."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"labels": [{"transaction_id": 1789267, "tx_fraud": 1}]}]},
    )

    labels: list[Label] = Field(min_length=1)


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
