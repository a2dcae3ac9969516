"""Alerts against a real HTTP receiver on 127.0.0.1: delivered, retried, never fatal."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from monitoring.alerts import post


class Receiver:
    """A webhook that fails its first `failures` requests, then accepts."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.received: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if outer.failures > 0:
                    outer.failures -= 1
                    self.send_response(503)
                else:
                    outer.received.append(json.loads(body))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver(request: pytest.FixtureRequest) -> Iterator[Receiver]:
    r = Receiver(getattr(request, "param", 0))
    yield r
    r.server.shutdown()


def test_delivered(receiver: Receiver) -> None:
    assert post(receiver.url, {"verdict": "WARN", "reasons": ["x"]}, backoff_s=0)
    assert receiver.received == [{"verdict": "WARN", "reasons": ["x"]}]


@pytest.mark.parametrize("receiver", [2], indirect=True)
def test_retried_until_delivered(receiver: Receiver) -> None:
    assert post(receiver.url, {"verdict": "RETRAIN"}, retries=3, backoff_s=0)
    assert len(receiver.received) == 1


@pytest.mark.parametrize("receiver", [5], indirect=True)
def test_gives_up_without_raising(receiver: Receiver) -> None:
    assert post(receiver.url, {"verdict": "RETRAIN"}, retries=2, backoff_s=0) is False


def test_unreachable_is_not_fatal() -> None:
    assert post("http://127.0.0.1:9/hook", {"verdict": "WARN"}, retries=2, backoff_s=0) is False
