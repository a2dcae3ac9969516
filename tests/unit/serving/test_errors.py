"""The 422 handler echoes what it was given and never fails on it: bytes, NaN, exceptions,
integers beyond 64 bits, objects JSON has no spelling for."""

from __future__ import annotations

import asyncio
import datetime as dt
import json

from fastapi.exceptions import RequestValidationError
from starlette.requests import Request

from serving.errors import invalid_request, json_safe


class Opaque:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<opaque>"


def test_any_echoed_input_becomes_json() -> None:
    errors = [
        {
            "type": "model_attributes_type",
            "loc": ("body",),
            "msg": "Input should be a valid dictionary",
            "input": b"\xff\xfe{}",
            "ctx": {"error": ValueError("boom"), "at": dt.datetime(2018, 1, 1)},
        },
        {"type": "x", "loc": ("body", 0), "msg": "m", "input": [float("nan"), 2**70, Opaque()]},
    ]
    scope = {"type": "http", "method": "POST", "path": "/", "headers": []}
    answer = asyncio.run(invalid_request(Request(scope), RequestValidationError(errors)))
    assert answer.status_code == 422
    first, second = json.loads(bytes(answer.body))["detail"]
    assert first["input"] == "\ufffd\ufffd{}"
    assert first["ctx"] == {"error": "boom", "at": "2018-01-01T00:00:00"}
    assert second["input"] == ["nan", 2**70, "<opaque>"]


def test_json_safe_keeps_plain_values() -> None:
    plain = {"a": [1, 2.5, "x", None, True]}
    assert json_safe(plain) == plain
