"""Per-worker caches for small tables that change rarely (versions, roles)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from flask import current_app


class TimedCache:
    """One value, reloaded by ``loader`` once it is older than ``ttl`` seconds."""

    def __init__(self, loader: Callable[[], Any], ttl: float) -> None:
        self._loader = loader
        self._ttl = ttl
        self._value: Any = None
        self._expires = 0.0

    def get(self) -> Any:
        now = time.monotonic()
        if now >= self._expires:
            # Racing threads may both reload; each stores a complete value, so either wins.
            self._value = self._loader()
            self._expires = now + self._ttl
        return self._value

    def clear(self) -> None:
        self._expires = 0.0


def cached(name: str, loader: Callable[[], Any]) -> Any:
    """The value of the app's cache ``name``, created on first use with VERSION_CACHE_SECONDS."""
    caches: dict[str, TimedCache] = current_app.extensions.setdefault("timed_caches", {})
    cache = caches.get(name)
    if cache is None:
        cache = caches.setdefault(name, TimedCache(loader, current_app.config["VERSION_CACHE_SECONDS"]))
    return cache.get()


def clear_caches() -> None:
    """Forget every cached table of the current app (after a write made in this process)."""
    for cache in current_app.extensions.get("timed_caches", {}).values():
        cache.clear()
