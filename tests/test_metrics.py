"""Metrics: per-app request metrics by route rule, the business counters and the docs' CSP."""

import re
import uuid

import pytest
from prometheus_client import REGISTRY, CollectorRegistry

from tests.factories import PASSWORD, basic, login, make_item
from webapp import create_app

ITEM_RULE = "/items/<id:item_id>"


def request_total(app, method: str, status: int) -> float:
    registry = app.extensions["metrics_registry"]
    labels = {"method": method, "status": str(status)}
    return registry.get_sample_value("flask_http_request_total", labels) or 0.0


def duration_count(app, method: str, status: int, url_rule: str) -> float:
    registry = app.extensions["metrics_registry"]
    labels = {"method": method, "status": str(status), "url_rule": url_rule}
    return registry.get_sample_value("flask_http_request_duration_seconds_count", labels) or 0.0


def url_rules(app) -> set[str]:
    """Every url_rule label value the app's request metrics hold."""
    return {
        sample.labels["url_rule"]
        for metric in app.extensions["metrics_registry"].collect()
        for sample in metric.samples
        if "url_rule" in sample.labels
    }


@pytest.fixture
def app(fresh_app):
    """Request metrics are counted from zero: an app of its own."""
    return fresh_app


def business(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_each_app_has_its_own_request_metrics_registry(app, client):
    other = create_app({"APP_ENV": "testing", "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    registry = app.extensions["metrics_registry"]

    client.get("/roles")

    assert isinstance(registry, CollectorRegistry)
    assert registry is not REGISTRY
    assert other.extensions["metrics_registry"] is not registry
    assert request_total(app, "GET", 200) == 1
    assert request_total(other, "GET", 200) == 0


@pytest.mark.parametrize(
    ("method", "path", "status", "url_rule"),
    [
        ("GET", "/roles", 200, "/roles"),
        ("GET", "/healthz", 200, "/healthz"),
        ("GET", "/auth/me", 401, "/auth/me"),
        ("POST", "/auth/token", 422, "/auth/token"),
        ("DELETE", "/roles", 405, "None"),
    ],
)
def test_request_metrics_count_by_method_status_and_route_rule(app, client, method, path, status, url_rule):
    total, count = request_total(app, method, status), duration_count(app, method, status, url_rule)

    response = client.open(path, method=method, json={} if method == "POST" else None)

    assert response.status_code == status
    assert request_total(app, method, status) == total + 1
    assert duration_count(app, method, status, url_rule) == count + 1


def test_request_metrics_label_the_route_rule_not_the_concrete_path(app, client, user, auth_headers):
    ids = [make_item(user).id for _ in range(3)] + [999_999]

    for item_id in ids:
        client.get(f"/items/{item_id}", headers=auth_headers)

    assert duration_count(app, "GET", 200, ITEM_RULE) == 3
    assert duration_count(app, "GET", 404, ITEM_RULE) == 1
    assert not [rule for rule in url_rules(app) if re.search(r"/items/\d", rule)]


def test_unknown_urls_do_not_create_per_path_labels(app, client):
    paths = [f"/no-such-page/{uuid.uuid4().hex}" for _ in range(3)]

    for path in paths:
        assert client.get(path).status_code == 404

    assert duration_count(app, "GET", 404, "None") == 3
    assert not [rule for rule in url_rules(app) if "no-such-page" in rule]


@pytest.mark.parametrize(
    ("password", "outcome"),
    [(PASSWORD, "ok"), ("a wrong guess", "failed")],
)
def test_login_counter_counts_by_outcome(client, user, password, outcome):
    before = {label: business("webapp_logins_total", outcome=label) for label in ("ok", "failed")}

    client.post("/auth/token", json={"username": user.username, "password": password})

    after = {label: business("webapp_logins_total", outcome=label) for label in ("ok", "failed")}
    assert after == {label: before[label] + (label == outcome) for label in before}


def test_login_of_an_unknown_user_counts_as_failed(client):
    failed = business("webapp_logins_total", outcome="failed")

    client.post("/auth/token", json={"username": "nobody", "password": PASSWORD})

    assert business("webapp_logins_total", outcome="failed") == failed + 1


REFRESH_OUTCOMES = ("ok", "rejected", "reuse")


def present_live(client, session) -> str:
    return session["refresh_token"]


def present_unknown(client, session) -> str:
    return "not-a-refresh-token-" + uuid.uuid4().hex


def present_rotated(client, session) -> str:
    response = client.post("/auth/refresh", json={"refresh_token": session["refresh_token"]})
    assert response.status_code == 200
    return session["refresh_token"]


def present_access_token(client, session) -> str:
    return session["access_token"]


@pytest.mark.parametrize(
    ("present", "status", "outcome"),
    [
        (present_live, 200, "ok"),
        (present_unknown, 401, "rejected"),
        (present_access_token, 401, "rejected"),
        (present_rotated, 401, "reuse"),
    ],
)
def test_refresh_counter_counts_by_outcome(client, user, present, status, outcome):
    session = login(client, user.username)
    refresh_token = present(client, session)
    before = {label: business("webapp_token_refreshes_total", outcome=label) for label in REFRESH_OUTCOMES}

    response = client.post("/auth/refresh", json={"refresh_token": refresh_token})

    after = {label: business("webapp_token_refreshes_total", outcome=label) for label in REFRESH_OUTCOMES}
    assert response.status_code == status
    assert after == {label: before[label] + (label == outcome) for label in before}


def test_listed_unsupported_version_is_counted_under_its_own_label(client):
    before = business("webapp_version_rejections_total", version="0.9")

    assert client.get("/roles", headers={"X-Version": "0.9"}).status_code == 426

    assert business("webapp_version_rejections_total", version="0.9") == before + 1


def test_unknown_versions_all_share_the_unlisted_label(client):
    versions = [f"9.{uuid.uuid4().hex[:8]}" for _ in range(3)]
    unlisted = business("webapp_version_rejections_total", version="unlisted")

    for version in versions:
        assert client.get("/roles", headers={"X-Version": version}).status_code == 426

    assert business("webapp_version_rejections_total", version="unlisted") == unlisted + 3
    for version in versions:
        assert REGISTRY.get_sample_value("webapp_version_rejections_total", {"version": version}) is None


@pytest.mark.parametrize("headers", [{}, {"X-Version": "1.0"}])
def test_accepted_or_missing_version_is_not_counted_as_a_rejection(client, headers):
    def rejections() -> float:
        return sum(
            sample.value
            for metric in REGISTRY.collect()
            for sample in metric.samples
            if sample.name == "webapp_version_rejections_total"
        )

    before = rejections()

    assert client.get("/roles", headers=headers).status_code == 200

    assert rejections() == before


@pytest.fixture
def docs_headers(user) -> dict[str, str]:
    return basic(user.username)


@pytest.mark.parametrize("path", ["/docs", "/openapi.json"])
def test_docs_content_security_policy_allows_only_the_own_origin(client, docs_headers, path):
    response = client.get(path, headers=docs_headers)

    assert response.status_code == 200
    policy = response.headers["Content-Security-Policy"]
    directives = [directive.strip() for directive in policy.split(";")]
    assert "default-src 'none'" in directives
    assert "script-src 'self'" in directives
    assert "http:" not in policy
    assert "https:" not in policy
    assert "*" not in policy


def test_docs_page_loads_only_scripts_its_policy_allows(client, docs_headers):
    page = client.get("/docs", headers=docs_headers).get_data(as_text=True)

    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", page, flags=re.DOTALL)
    assert scripts
    for attributes, body in scripts:
        assert body.strip() == ""  # no inline script: 'self' does not allow one
        (src,) = re.findall(r'\bsrc="([^"]+)"', attributes)
        assert src.startswith("/")
        assert not src.startswith("//")
