"""What a JSON route does with a body before validating it: a non-JSON Content-Type is a 415,
bytes that are not UTF-8 a 422 like broken JSON; neither is ever a 5xx, and every refusal
says why. A tiny app with one such route: no model, no store."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.testclient import TestClient

from serving.errors import add_exception_handlers
from serving.json_body import BODY_ERRORS, JsonRoute, require_json
from serving.schemas import EXAMPLE as TX
from serving.schemas import Transaction

NOT_UTF8 = b'{"transaction_id": "\xff\xfe"}'


@pytest.fixture
def client() -> Iterator[TestClient]:
    router = APIRouter(
        route_class=JsonRoute, dependencies=[Depends(require_json)], responses=BODY_ERRORS
    )

    @router.post("/echo")
    async def echo(tx: Transaction) -> dict[str, Any]:
        return {"transaction_id": tx["transaction_id"]}

    app = FastAPI()
    app.include_router(router)
    add_exception_handlers(app)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "application/x+json"]
)
def test_json_media_types_are_read(client: TestClient, content_type: str) -> None:
    r = client.post("/echo", json=TX, headers={"content-type": content_type})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    ("headers", "got"),
    [
        ({"content-type": "text/plain"}, "got 'text/plain'"),
        ({"content-type": "application/x-www-form-urlencoded"}, "got 'application"),
        ({}, "none given"),
    ],
)
def test_another_content_type_is_415_with_the_reason(
    client: TestClient, headers: dict[str, str], got: str
) -> None:
    for body in (NOT_UTF8, b'{"transaction_id": 1}'):
        r = client.post("/echo", content=body, headers=headers)
        assert r.status_code == 415, r.text
        assert r.json()["detail"].startswith("Content-Type must be application/json")
        assert got in r.json()["detail"]


def test_a_body_that_is_not_utf8_is_422_json_invalid(client: TestClient) -> None:
    r = client.post("/echo", content=NOT_UTF8, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    [error] = r.json()["detail"]
    assert error["type"] == "json_invalid"
    assert error["loc"] == ["body", 20]  # the first byte that is not UTF-8
    assert error["ctx"]["error"] == "not UTF-8: invalid start byte at byte 20"


def test_the_openapi_document_names_the_refusals(client: TestClient) -> None:
    responses = client.get("/openapi.json").json()["paths"]["/echo"]["post"]["responses"]
    assert {"413", "415", "422"} <= set(responses)
