"""Security headers on every response, CORS for configured origins only, and request size limits."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tests.factories import PASSWORD, basic, login
from webapp.database import db
from webapp.models import Item, Role

API_CSP = "default-src 'none'; frame-ancestors 'none'"
APP = "https://app.example"
STRICT_REFERRER_POLICIES = {"no-referrer", "same-origin", "strict-origin", "strict-origin-when-cross-origin"}


def directives(policy: str) -> dict[str, list[str]]:
    """A Content-Security-Policy as {directive: [sources]}."""
    parsed = {}
    for part in policy.split(";"):
        name, *sources = part.split()
        parsed[name] = sources
    return parsed


def header_list(value: str | None) -> set[str]:
    return {part.strip().lower() for part in (value or "").split(",") if part.strip()}


def cors_headers(response) -> list[str]:
    return [name for name, _ in response.headers if name.lower().startswith("access-control-")]


# Headers on every response


# path, credentials, status, whether the body is API JSON (with the API's own policy)
@pytest.mark.parametrize(
    ("path", "headers", "status", "api_json"),
    [
        pytest.param("/roles", {}, 200, True, id="json-200"),
        pytest.param("/auth/me", "bearer", 200, True, id="json-200-authenticated"),
        pytest.param("/items", {}, 401, True, id="problem-401"),
        pytest.param("/users/999999", {}, 404, True, id="problem-404"),
        pytest.param("/roles", {"X-Version": "0.9"}, 426, True, id="problem-426"),
        pytest.param("/logo.png", {}, 200, False, id="static-file"),
        pytest.param("/docs", "basic", 200, False, id="docs-page"),
        pytest.param("/docs", {}, 401, False, id="docs-refused"),
    ],
)
def test_every_response_has_the_security_headers(client, user, path, headers, status, api_json):
    if headers == "bearer":
        headers = login(client, user.username)["headers"]
    elif headers == "basic":
        headers = basic(user.username, PASSWORD)

    with client.get(path, headers=headers) as response:
        assert response.status_code == status
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Referrer-Policy"] in STRICT_REFERRER_POLICIES
        policy = directives(response.headers["Content-Security-Policy"])
        assert policy["default-src"] == ["'none'"]
        assert policy["frame-ancestors"] == ["'none'"]
        if api_json:
            assert response.is_json
            assert response.headers["Content-Security-Policy"] == API_CSP


def test_docs_page_has_its_own_policy_with_only_its_own_scripts(client, user):
    response = client.get("/docs", headers=basic(user.username, PASSWORD))

    assert response.status_code == 200
    policy = directives(response.headers["Content-Security-Policy"])
    assert policy["default-src"] == ["'none'"]
    assert policy["script-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    for name, sources in policy.items():
        for source in sources:
            # Only keywords ('self', 'none', ...) and local schemes: no host, no wildcard.
            assert source.startswith("'") or source in {"data:", "blob:"}, (name, source)


CREDENTIALS = {"username": "alice", "password": PASSWORD}


# name, request (given the client and a fresh session), expected status
AUTH_EXCHANGES = [
    ("token-200", lambda client, session: client.post("/auth/token", json=CREDENTIALS), 200),
    (
        "token-401",
        lambda client, session: client.post("/auth/token", json={**CREDENTIALS, "password": "no"}),
        401,
    ),
    ("token-422", lambda client, session: client.post("/auth/token", json={"username": "alice"}), 422),
    (
        "refresh-200",
        lambda client, session: client.post(
            "/auth/refresh", json={"refresh_token": session["refresh_token"]}
        ),
        200,
    ),
    (
        "refresh-401",
        lambda client, session: client.post("/auth/refresh", json={"refresh_token": "forged"}),
        401,
    ),
    ("me-200", lambda client, session: client.get("/auth/me", headers=session["headers"]), 200),
    ("me-401", lambda client, session: client.get("/auth/me"), 401),
    ("logout-200", lambda client, session: client.post("/auth/logout", headers=session["headers"]), 200),
    ("logout-401", lambda client, session: client.post("/auth/logout"), 401),
]


@pytest.mark.parametrize(("request_", "status"), [pytest.param(r, s, id=n) for n, r, s in AUTH_EXCHANGES])
def test_auth_responses_are_never_cached(client, user, request_, status):
    session = login(client, user.username)

    response = request_(client, session)

    assert response.status_code == status
    assert "no-store" in header_list(response.headers.get("Cache-Control"))


@pytest.mark.parametrize("app_config", [{"MAX_FAILURES_PER_ACCOUNT": 1}])
def test_too_many_attempts_answer_is_not_cached(client, user):
    client.post("/auth/token", json={"username": user.username, "password": "wrong"})

    response = client.post("/auth/token", json={"username": user.username, "password": PASSWORD})

    assert response.status_code == 429
    assert "no-store" in header_list(response.headers.get("Cache-Control"))


def test_a_new_accounts_generated_password_is_never_cached(client, admin_headers):
    response = client.post("/users", json={"username": "newbie", "role_id": 2}, headers=admin_headers)

    assert response.status_code == 201
    assert response.get_json()["password"]
    assert "no-store" in header_list(response.headers.get("Cache-Control"))


# CORS


@pytest.mark.parametrize("origin", [APP, "https://evil.example"])
def test_cors_is_off_by_default(client, origin):
    simple = client.get("/roles", headers={"Origin": origin})
    preflight = client.options("/items", headers={"Origin": origin, "Access-Control-Request-Method": "POST"})

    for response in (simple, preflight):
        assert cors_headers(response) == []


@pytest.mark.parametrize("app_config", [{"CORS_ORIGINS": f"{APP}, https://admin.example"}])
@pytest.mark.parametrize(("path", "status"), [("/roles", 200), ("/items", 401)], ids=["success", "error"])
def test_allowed_origin_is_echoed_and_may_read_the_request_id(client, path, status):
    response = client.get(path, headers={"Origin": APP})

    assert response.status_code == status
    assert response.headers["Access-Control-Allow-Origin"] == APP
    assert "origin" in header_list(response.headers.get("Vary"))
    assert "x-request-id" in header_list(response.headers.get("Access-Control-Expose-Headers"))


@pytest.mark.parametrize("app_config", [{"CORS_ORIGINS": f"{APP}, https://admin.example"}])
def test_preflight_from_an_allowed_origin_names_methods_headers_and_max_age(client):
    response = client.options(
        "/items",
        headers={
            "Origin": APP,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, x-version",
        },
    )

    assert response.status_code in (200, 204)
    assert response.headers["Access-Control-Allow-Origin"] == APP
    assert "post" in header_list(response.headers.get("Access-Control-Allow-Methods"))
    assert {"authorization", "content-type", "x-version"} <= header_list(
        response.headers.get("Access-Control-Allow-Headers")
    )
    assert int(response.headers["Access-Control-Max-Age"]) > 0


@pytest.mark.parametrize("app_config", [{"CORS_ORIGINS": f"{APP}, https://admin.example"}])
@pytest.mark.parametrize(
    "origin", ["https://evil.example", "http://app.example", "https://app.example.evil.example", "null"]
)
def test_other_origins_get_no_cors_headers(client, origin):
    simple = client.get("/roles", headers={"Origin": origin})
    preflight = client.options("/items", headers={"Origin": origin, "Access-Control-Request-Method": "POST"})

    for response in (simple, preflight):
        assert cors_headers(response) == []


@pytest.mark.parametrize("app_config", [{"CORS_ORIGINS": APP}])
@pytest.mark.parametrize(
    "headers", [{}, {"Origin": "https://evil.example"}], ids=["no-origin", "other-origin"]
)
def test_answers_vary_by_origin_for_every_origin_when_origins_are_listed(client, headers):
    response = client.get("/roles", headers=headers)

    assert response.status_code == 200
    assert "origin" in header_list(response.headers.get("Vary"))


@pytest.mark.parametrize("app_config", [{"CORS_ORIGINS": "*"}])
def test_wildcard_cors_answers_any_origin_with_a_star(client):
    simple = client.get("/roles", headers={"Origin": "https://anyone.example"})
    preflight = client.options(
        "/items", headers={"Origin": "https://anyone.example", "Access-Control-Request-Method": "POST"}
    )

    assert simple.headers["Access-Control-Allow-Origin"] == "*"
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert "post" in header_list(preflight.headers.get("Access-Control-Allow-Methods"))


# Request size and field lengths


def item_count() -> int:
    db.session.rollback()  # see what the requests committed
    return db.session.scalar(select(func.count()).select_from(Item))


@pytest.mark.parametrize("app_config", [{"MAX_CONTENT_LENGTH": 1024}])
@pytest.mark.parametrize("size", [1025, 64 * 1024])
def test_body_over_max_content_length_is_413_and_creates_nothing(client, auth_headers, size):
    body = '{"name": "big", "description": "' + "d" * (size - 34) + '"}'
    assert len(body) == size

    response = client.post("/items", data=body, content_type="application/json", headers=auth_headers)

    assert response.status_code == 413
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["status"] == 413
    assert response.get_json()["detail"]
    assert item_count() == 0


@pytest.mark.parametrize("app_config", [{"MAX_CONTENT_LENGTH": 1024}])
def test_body_at_max_content_length_is_accepted(client, auth_headers):
    body = '{"name": "big", "description": "' + "d" * (1024 - 34) + '"}'
    assert len(body) == 1024

    response = client.post("/items", data=body, content_type="application/json", headers=auth_headers)

    assert response.status_code == 201
    assert item_count() == 1


@pytest.mark.parametrize("app_config", [{"MAX_CONTENT_LENGTH": 1024}])
def test_login_body_over_max_content_length_is_413(client, user):
    response = client.post("/auth/token", json={"username": user.username, "password": "p" * 1100})

    assert response.status_code == 413
    assert response.mimetype == "application/problem+json"


# (request, field, longest accepted length)
FIELD_LIMITS = [
    pytest.param("create-user", "username", 64, id="username"),
    pytest.param("change-password", "password", 128, id="password"),
    pytest.param("create-item", "name", 100, id="item-name"),
    pytest.param("create-item", "description", 1000, id="item-description"),
]


def send(client, kind: str, field: str, value: str, user, headers, admin_headers):
    if kind == "create-user":
        return client.post("/users", json={"username": value, "role_id": Role.USER}, headers=admin_headers)
    if kind == "change-password":
        body = {"password": value, "current_password": PASSWORD}
        return client.patch(f"/users/{user.id}", json=body, headers=headers)
    return client.post("/items", json={"name": "an item", field: value}, headers=headers)


@pytest.mark.parametrize(("kind", "field", "longest"), FIELD_LIMITS)
def test_string_at_its_maximum_length_is_accepted(
    client, user, auth_headers, admin_headers, kind, field, longest
):
    response = send(client, kind, field, "x" * longest, user, auth_headers, admin_headers)

    assert response.status_code in (200, 201), response.get_json()


@pytest.mark.parametrize(("kind", "field", "longest"), FIELD_LIMITS)
def test_string_one_over_its_maximum_length_is_422(
    client, user, auth_headers, admin_headers, kind, field, longest
):
    response = send(client, kind, field, "x" * (longest + 1), user, auth_headers, admin_headers)

    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert field in response.get_json()["errors"]
