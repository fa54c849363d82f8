"""A steady load for the compose tests: requests at a fixed rate, each on a connection of its
own with its own X-Request-ID, every answer (or failure to get one) recorded with its time.
A write's body is made from its request id, so what was acknowledged can be looked for."""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass


@dataclass(frozen=True)
class Outcome:
    """One request: when it was sent, its id, the status (0: no answer) and what went wrong."""

    sent: float
    request_id: str
    status: int
    error: str = ""
    seconds: float = 0.0

    @property
    def answered(self) -> bool:
        return 200 <= self.status < 300


class SteadyLoad:
    """``method`` ``path`` on ``base`` ``rate`` times a second from a pool of threads until
    stopped (a context manager); ``outcomes`` holds every request's outcome, in the order
    sent. ``body``, if given, makes each request's JSON body from its request id."""

    def __init__(
        self,
        base: str,
        path: str = "/roles",
        rate: float = 10,
        prefix: str = "load",
        *,
        method: str = "GET",
        body: Callable[[str], dict] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.address = urllib.parse.urlsplit(base)
        self.path, self.rate, self.prefix = path, rate, prefix
        self.method, self.body, self.headers = method, body, headers or {}
        self.outcomes: list[Outcome] = []
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=32)
        self._scheduler = threading.Thread(target=self._schedule, daemon=True)
        self._lock = threading.Lock()

    def _send(self, sent: float, request_id: str) -> None:
        connection = http.client.HTTPConnection(self.address.hostname, self.address.port, timeout=30)
        try:
            headers = {**self.headers, "X-Request-ID": request_id}
            payload = None
            if self.body is not None:
                payload = json.dumps(self.body(request_id))
                headers["Content-Type"] = "application/json"
            connection.request(self.method, self.path, body=payload, headers=headers)
            response = connection.getresponse()
            response.read()
            outcome = Outcome(sent, request_id, response.status, seconds=time.monotonic() - sent)
        except OSError as error:
            outcome = Outcome(
                sent, request_id, 0, f"{type(error).__name__}: {error}", time.monotonic() - sent
            )
        finally:
            connection.close()
        with self._lock:
            self.outcomes.append(outcome)

    def _schedule(self) -> None:
        interval, next_at, count = 1 / self.rate, time.monotonic(), 0
        while not self._stop.is_set():
            count += 1
            self._pool.submit(self._send, time.monotonic(), f"{self.prefix}-{count}-{uuid.uuid4().hex[:8]}")
            next_at += interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def __enter__(self) -> SteadyLoad:
        self._scheduler.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._scheduler.join()
        self._pool.shutdown(wait=True)
        self.outcomes.sort(key=lambda outcome: outcome.sent)

    def tally(self) -> dict[int, int]:
        return dict(sorted(Counter(outcome.status for outcome in self.outcomes).items()))

    def failures(self) -> list[Outcome]:
        return [outcome for outcome in self.outcomes if not outcome.answered]
