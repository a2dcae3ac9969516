"""The request types take JSON's own types only: an id is a JSON integer, an amount a JSON
number, a time an ISO 8601 string; the ranges are the `validate` stage's (pipelines/schema)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from pipelines.config import Features
from pipelines.schema import MAX_AMOUNT, MAX_ID
from serving.schemas import EXAMPLE as TX
from serving.schemas import TRANSACTION, Labels, Transaction, request_types


def _errors(change: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as exc:
        TRANSACTION.validate_json(json.dumps({**TX, **change}))
    return [(str(e["loc"][-1]), e["type"]) for e in exc.value.errors()]


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"tx_amount": True}, ("tx_amount", "float_type")),
        ({"tx_amount": "57.16"}, ("tx_amount", "float_type")),
        ({"tx_amount": MAX_AMOUNT}, ("tx_amount", "less_than")),
        ({"tx_amount": -0.01}, ("tx_amount", "greater_than_equal")),
        ({"transaction_id": "123"}, ("transaction_id", "int_type")),
        ({"transaction_id": True}, ("transaction_id", "int_type")),
        ({"customer_id": 1.5}, ("customer_id", "int_type")),
        ({"terminal_id": 1.0}, ("terminal_id", "int_type")),
        ({"terminal_id": -1}, ("terminal_id", "greater_than_equal")),
        ({"transaction_id": MAX_ID + 1}, ("transaction_id", "less_than_equal")),
        ({"tx_datetime": 1526041805}, ("tx_datetime", "datetime_type")),
        ({"tx_datetime": "1526041805"}, ("tx_datetime", "datetime_type")),
        ({"tx_datetime": True}, ("tx_datetime", "datetime_type")),
    ],
)
def test_strict_types_and_the_shared_ranges(change: dict[str, Any], error: tuple[str, str]) -> None:
    assert _errors(change) == [error]


def test_what_the_contract_accepts() -> None:
    tx = TRANSACTION.validate_json(
        json.dumps(
            {
                **TX,
                "tx_amount": 5,
                "transaction_id": MAX_ID,
                "tx_datetime": "2018-05-11 12:30:05+02:00",
            }
        )
    )
    assert tx["tx_amount"] == 5.0
    assert isinstance(tx["tx_amount"], float)
    assert tx["transaction_id"] == MAX_ID
    assert tx["tx_datetime"] == dt.datetime(2018, 5, 11, 10, 30, 5, tzinfo=dt.UTC)


def test_labels_take_json_integers_only() -> None:
    for label in ({"transaction_id": "1", "tx_fraud": 1}, {"transaction_id": 1, "tx_fraud": True}):
        with pytest.raises(ValidationError):
            Labels.model_validate_json(json.dumps({"labels": [label]}))


DECLARED = Features.model_validate(
    {
        "label_delay_days": 7,
        "customer_windows_days": [1],
        "terminal_windows_days": [1],
        "night_max_hour": 6,
        "columns": [
            {"name": "type", "kind": "categorical", "categories": ["PAYMENT", "TRANSFER"]},
            {"name": "balance", "kind": "numeric", "min": 0, "max": 1e9},
        ],
    }
)


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"type": "CASH_IN"}, ("type", "literal_error")),
        ({"type": 1}, ("type", "literal_error")),
        ({"balance": -1}, ("balance", "greater_than_equal")),
        ({"balance": 2e9}, ("balance", "less_than_equal")),
        ({"balance": "5"}, ("balance", "float_type")),
        ({"balance": True}, ("balance", "float_type")),
        ({"balance": None}, ("balance", "float_type")),
        ({"channel": "web"}, ("channel", "extra_forbidden")),
    ],
)
def test_declared_columns_are_typed_request_fields(
    change: dict[str, Any], error: tuple[str, str]
) -> None:
    """`features.columns`: each declared column is a required field of its type."""
    types = request_types(DECLARED)
    adapter = TypeAdapter(types.transaction)
    good = {**TX, "type": "PAYMENT", "balance": 10}
    assert adapter.validate_json(json.dumps(good))["balance"] == 10.0
    with pytest.raises(ValidationError) as exc:
        adapter.validate_json(json.dumps({**good, **change}))
    assert [(str(e["loc"][-1]), e["type"]) for e in exc.value.errors()] == [error]
    without = {k: v for k, v in good.items() if k != "type"}
    with pytest.raises(ValidationError, match="type\n  Field required"):
        adapter.validate_json(json.dumps(without))
    batch = TypeAdapter(types.batch).json_schema()
    fields = batch["$defs"]["Transaction"]["properties"]
    assert fields["type"]["enum"] == ["PAYMENT", "TRANSFER"]
    assert fields["balance"]["type"] == "number"
    assert request_types(DECLARED.model_copy(update={"columns": []})).transaction is Transaction
