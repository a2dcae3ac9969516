"""The rate limit of /admin/*: a token bucket per client address, as a FastAPI dependency
that answers 429 with Retry-After.

It runs before the token check, so wrong tokens use up the bucket too: guessing the token
costs the same as using it. Ours rather than slowapi: slowapi wraps the `limits` library
behind a decorator, app state and an exception handler of its own, for what is here one
router's dependency and 40 lines; its shared backends (Redis) are not needed while the
limit is per worker. TEMPLATE: with several workers each keeps its own buckets (a client
gets up to `workers` times the burst); behind a proxy, the client is the address uvicorn
takes from X-Forwarded-For (its `forwarded_allow_ips`), or the proxy's own.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from fastapi import HTTPException, Request, status

MAX_CLIENTS = 10_000  # buckets kept; beyond, the full ones are dropped


@dataclass
class TokenBucket:
    """`burst` requests at once per client, refilled at `per_s` a second."""

    burst: int
    per_s: float
    buckets: dict[str, tuple[float, float]] = field(default_factory=dict)  # tokens, when

    def take(self, client: str, now: float) -> float:
        """Take a token for `client`: 0 when it had one, else the seconds until it will."""
        tokens, then = self.buckets.get(client, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - then) * self.per_s)
        if len(self.buckets) >= MAX_CLIENTS:
            self._drop_full(now)
        if tokens >= 1:
            self.buckets[client] = (tokens - 1, now)
            return 0.0
        self.buckets[client] = (tokens, now)
        return (1 - tokens) / self.per_s

    def _drop_full(self, now: float) -> None:
        refill_s = self.burst / self.per_s
        for client in [c for c, (_, then) in self.buckets.items() if now - then >= refill_s]:
            del self.buckets[client]


async def limit_admin(request: Request) -> None:
    """429 with Retry-After (whole seconds) when this client has used up its bucket."""
    bucket: TokenBucket = request.app.state.admin_bucket
    client = request.client.host if request.client else "unknown"
    wait_s = bucket.take(client, time.monotonic())
    if wait_s > 0:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            "too many /admin requests: retry later",
            headers={"Retry-After": str(math.ceil(wait_s))},
        )
