"""Overload: a request that waited too long for a worker is answered 503 at once, not served.

nginx stamps every request with the moment it took it (X-Request-Start, in seconds since the
epoch). Under a burst beyond capacity the requests queue for the workers; one that already
waited QUEUE_TIMEOUT_MS will be answered late whatever happens, and serving it would only
make every request behind it later still. So the first hook refuses it: 503, Retry-After, no
database work, counted in ``webapp_shed_requests_total``. The workers' time goes to requests
that can still be answered in time, and the queue drains instead of growing.

nginx also caps how many requests are in the API at once (API_MAX_IN_FLIGHT, see
docker/nginx/templates/default.conf.template): most of a flood is refused there, where it
costs next to nothing; this hook catches what queued too long anyway (slow requests, a slow
database). The stamp is believed only behind a trusted proxy (TRUSTED_PROXIES), which sets it.
"""

from __future__ import annotations

import time

from flask import Flask, request
from flask_smorest import abort

from webapp.metrics import SHED_REQUESTS


class QueueBudget:
    """The before_request hook: 503 for a request that waited longer than ``seconds`` for a
    worker.

    A request counts its wait from the later of its stamp and the moment this process took
    its first request: what queued while the workers were starting (a restart, a reload) did
    not wait for lack of capacity, and is served; a queue still old after a second of serving
    is overload, and is shed.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.serving_since: float | None = None  # each worker process keeps its own

    def __call__(self) -> None:
        now = time.time()
        if self.serving_since is None:
            self.serving_since = now
        stamp = request.headers.get("X-Request-Start", "")
        if not stamp.startswith("t="):
            return
        try:
            arrived = float(stamp[2:])
        except ValueError:
            return
        if now - max(arrived, self.serving_since) > self.seconds:
            SHED_REQUESTS.inc()
            abort(503, message="The API is at capacity; try again shortly", headers={"Retry-After": "1"})


def init_app(app: Flask) -> None:
    if app.config["TRUSTED_PROXIES"] and app.config["QUEUE_TIMEOUT_MS"] > 0:
        app.before_request(QueueBudget(app.config["QUEUE_TIMEOUT_MS"] / 1000))
