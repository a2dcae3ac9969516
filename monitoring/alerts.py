"""Alerts: WARN and RETRAIN decisions posted as JSON to a webhook.

A failed post is retried with backoff and logged; it never fails the monitoring run.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from typing import Any

log = logging.getLogger(__name__)


def post(
    url: str,
    payload: dict[str, Any],
    retries: int = 3,
    timeout_s: float = 5.0,
    backoff_s: float = 0.5,
) -> bool:
    """POST `payload` as JSON; True when a 2xx arrived, False after `retries` failed tries."""
    body = json.dumps(payload, default=str).encode()
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    for attempt in range(1, retries + 1):
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                if 200 <= response.status < 300:
                    return True
                problem = f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            problem = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            problem = str(getattr(exc, "reason", exc))
        log.warning("alert to %s failed (try %d of %d): %s", url, attempt, retries, problem)
        if attempt < retries:
            time.sleep(backoff_s * 2 ** (attempt - 1))
    log.error("alert to %s not delivered after %d tries; the monitoring run goes on", url, retries)
    return False
