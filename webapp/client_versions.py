"""The X-Version gate: one before_request hook, answered from a per-worker cache."""

from __future__ import annotations

import time

from flask import Flask, Response, current_app, g, request
from werkzeug.exceptions import HTTPException

from webapp.metrics import VERSION_REJECTIONS
from webapp.models import Version


class UpgradeRequired(HTTPException):
    """426: the client must upgrade (werkzeug has no class for it)."""

    code = 426
    description = "Version not supported anymore"


def check_client_version() -> None:
    """Refuse an unknown, unsupported or sunset X-Version on version-gated blueprints; note a
    deprecated one, whose answers then carry Deprecation and Sunset headers.

    No header means a client that does not version itself: allowed. The table is read
    through a cache of VERSION_CACHE_SECONDS, so a change reaches every worker within that.
    """
    version = request.headers.get("X-Version")
    g.client_version = version
    if version is None:
        return
    blueprint = current_app.blueprints.get(request.blueprint or "")
    if not getattr(blueprint, "version_gated", False):
        return
    lifecycle = Version.table().get(version)
    if lifecycle is None or not lifecycle.served(time.time()):
        # Unlisted versions share one label: clients must not be able to grow the metric.
        VERSION_REJECTIONS.labels(version if lifecycle is not None else "unlisted").inc()
        raise UpgradeRequired()
    if lifecycle.deprecation:
        g.deprecation = lifecycle


def announce_deprecation(response: Response) -> Response:
    """A deprecated client version is told so on every answer, with its sunset."""
    lifecycle = g.get("deprecation")
    if lifecycle is not None:
        response.headers["Deprecation"] = lifecycle.deprecation
        if lifecycle.sunset:
            response.headers["Sunset"] = lifecycle.sunset
    return response


def init_app(app: Flask) -> None:
    app.before_request(check_client_version)
    app.after_request(announce_deprecation)
