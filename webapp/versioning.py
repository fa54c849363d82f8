"""The X-Version gate: one before_request hook, answered from a per-worker cache."""

from __future__ import annotations

from flask import Flask, current_app, g, request
from werkzeug.exceptions import HTTPException

from webapp.metrics import VERSION_REJECTIONS
from webapp.models import Version


class UpgradeRequired(HTTPException):
    """426: the client must upgrade (werkzeug has no class for it)."""

    code = 426
    description = "Version not supported anymore"


def check_client_version() -> None:
    """Refuse a listed-but-unsupported or unknown X-Version on version-gated blueprints.

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
    table = Version.table()
    if not table.get(version, False):
        # Unlisted versions share one label: clients must not be able to grow the metric.
        VERSION_REJECTIONS.labels(version if version in table else "unlisted").inc()
        raise UpgradeRequired()


def init_app(app: Flask) -> None:
    app.before_request(check_client_version)
