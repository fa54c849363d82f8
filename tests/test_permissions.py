"""Who may call what: every route of every blueprint is in its resource's permission rows.

The rows live beside each resource's other tests (PERMISSIONS in tests/test_<blueprint>.py,
run by tests/helpers.permission_test). This module reads the app's url_map, so a new
blueprint or route fails here, with the rows to add, until its module lists them.
"""

from __future__ import annotations

import importlib
import re

from tests.helpers import ACTORS, Permission

# Blueprints with no permission rows: flask-smorest's docs (HTTP Basic, tests/test_docs.py).
WITHOUT_ROWS = {"api-docs"}


def route_key(method: str, path: str) -> tuple[str, str]:
    """("PATCH", "/users/<id:user_id>"), ("PATCH", "/users/{owner}") and ("GET", "/roles/2") all
    give the route's method and shape, ids as "*"."""
    return method, re.sub(r"<[^>]+>|\{[^}]+\}|(?<=/)[0-9]+(?=/|$)", "*", path)


def blueprint_routes(app) -> dict[str, set[tuple[str, str]]]:
    """Each blueprint's routes, by method and shape."""
    routes: dict[str, set[tuple[str, str]]] = {}
    for rule in app.url_map.iter_rules():
        blueprint, dot, _ = rule.endpoint.partition(".")
        if dot and blueprint not in WITHOUT_ROWS:
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                routes.setdefault(blueprint, set()).add(route_key(method, rule.rule))
    return routes


def rows_of(blueprint: str) -> list[Permission] | None:
    """The PERMISSIONS of tests/test_<blueprint>.py, or None when it has none."""
    try:
        module = importlib.import_module(f"tests.test_{blueprint}")
    except ModuleNotFoundError:
        return None
    return getattr(module, "PERMISSIONS", None)


def test_every_route_of_every_blueprint_has_its_permission_rows(app):
    missing = []
    for blueprint, routes in sorted(blueprint_routes(app).items()):
        rows = rows_of(blueprint) or []
        covered = {route_key(row.method, row.path) for row in rows}
        lacking = sorted(routes - covered)
        if lacking:
            wanted = ", ".join(f"{method} {path}" for method, path in lacking)
            missing.append(
                f"tests/test_{blueprint}.py: add PERMISSIONS rows (see tests/test_items.py) for {wanted}"
            )
        stray = sorted(covered - routes)
        if stray:
            missing.append(
                f"tests/test_{blueprint}.py: PERMISSIONS rows for routes that do not exist: {stray}"
            )

    assert missing == [], "\n".join(missing)


def test_each_row_says_what_every_actor_gets(app):
    for blueprint in blueprint_routes(app):
        for row in rows_of(blueprint) or []:
            assert set(row.statuses) == set(ACTORS), f"{blueprint}: {row.label}"
