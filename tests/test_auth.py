"""The auth endpoints over HTTP: login, session cap, refresh rotation, logout and bearer checks."""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from tests.conftest import IsolatedClient, make_app
from tests.factories import PASSWORD, bearer, login, make_user
from tests.helpers import Permission, assert_problem, expect, permission_test, utc_time
from webapp.database import db
from webapp.models import Role, Token, User

BAD_CREDENTIALS = "Incorrect username or password"
USER_FIELDS = {"id", "username", "role_id", "activated", "created_at", "updated_at"}
TOKEN_FIELDS = {"id", "access_token", "refresh_token", "expires", "token_type"}


PERMISSIONS = [
    Permission(
        "login",
        "POST",
        "/auth/token",
        {"username": "nobody", "password": "wrong password"},
        expect(401, 401, 401, 401),
    ),
    Permission(
        "refresh", "POST", "/auth/refresh", {"refresh_token": "not a token"}, expect(401, 401, 401, 401)
    ),
    Permission("me", "GET", "/auth/me", None, expect(401, 200, 200, 200)),
    Permission("logout", "POST", "/auth/logout", None, expect(401, 200, 200, 200)),
    Permission("my sessions", "GET", "/auth/sessions", None, expect(401, 200, 200, 200)),
    # The owner's own session: anyone else's token finds no such session of theirs.
    Permission("end my session", "DELETE", "/auth/sessions/{session}", None, expect(401, 404, 200, 404)),
]
test_each_actor_gets_the_status_the_contract_gives = permission_test(PERMISSIONS)


@pytest.fixture
def targets(world) -> dict[str, int]:
    """``{session}``: the owner's session (the one its headers use)."""
    return {"session": db.session.scalar(select(Token.id).where(Token.user_id == world["owner"].id))}


def assert_unauthorized(response) -> dict:
    body = assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"] == "Bearer"
    return body


def me(client, access_token: str):
    return client.get("/auth/me", headers=bearer(access_token))


def refresh(client, refresh_token: str):
    return client.post("/auth/refresh", json={"refresh_token": refresh_token})


def expire_sessions(user_id: int, *columns: str) -> None:
    """Move the given expiry columns of the user's (single) session one second into the past."""
    past = datetime.now(UTC) - timedelta(seconds=1)
    result = db.session.execute(
        update(Token).where(Token.user_id == user_id).values(dict.fromkeys(columns, past))
    )
    db.session.commit()
    assert result.rowcount == 1


def deactivate(user_id: int) -> None:
    db.session.execute(update(User).where(User.id == user_id).values(activated=False))
    db.session.commit()


# POST /auth/token


def test_login_returns_token_pair_for_the_user(client, user, app):
    response = client.post("/auth/token", json={"username": "alice", "password": PASSWORD})

    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == TOKEN_FIELDS
    assert body["id"] == user.id
    assert body["token_type"] == "bearer"
    assert body["expires"] == app.config["ACCESS_TOKEN_MINUTES"] * 60 == 7200
    assert isinstance(body["access_token"], str)
    assert isinstance(body["refresh_token"], str)
    assert len(body["access_token"]) >= 43
    assert len(body["refresh_token"]) >= 43
    assert body["access_token"] != body["refresh_token"]
    assert me(client, body["access_token"]).get_json()["id"] == user.id


@pytest.mark.parametrize("app_config", [{"ACCESS_TOKEN_MINUTES": 5}])
def test_login_expires_follows_access_token_minutes(client, user):
    assert login(client, "alice")["expires"] == 300


@pytest.mark.parametrize(
    ("username", "password", "activated"),
    [
        ("alice", "wrong password", True),
        ("alice", PASSWORD.upper(), True),
        ("ALICE", PASSWORD, True),
        ("nobody", PASSWORD, True),
        ("alice", PASSWORD, False),
    ],
    ids=["wrong-password", "password-case", "username-case", "unknown-username", "deactivated"],
)
def test_login_rejects_bad_credentials_with_one_message(client, username, password, activated):
    make_user("alice", activated=activated)

    response = client.post("/auth/token", json={"username": username, "password": password})

    body = assert_unauthorized(response)
    assert body["detail"] == BAD_CREDENTIALS
    assert password not in response.get_data(as_text=True)
    assert db.session.scalar(select(Token).limit(1)) is None


@pytest.mark.parametrize(
    ("payload", "bad_fields"),
    [
        ({}, {"username", "password"}),
        ({"username": "alice"}, {"password"}),
        ({"password": PASSWORD}, {"username"}),
        ({"username": 1, "password": PASSWORD}, {"username"}),
        ({"username": ["alice"], "password": PASSWORD}, {"username"}),
        ({"username": None, "password": PASSWORD}, {"username"}),
        ({"username": "alice", "password": 12345678}, {"password"}),
        ({"username": "alice", "password": {"value": PASSWORD}}, {"password"}),
        ({"username": "alice", "password": True}, {"password"}),
        ({"username": "", "password": PASSWORD}, {"username"}),
        ({"username": "alice", "password": ""}, {"password"}),
        ({"username": "", "password": ""}, {"username", "password"}),
        ({"username": "a" * 256, "password": PASSWORD}, {"username"}),
        ({"username": "alice", "password": "p" * 1025}, {"password"}),
        ({"username": "alice", "password": PASSWORD, "remember": True}, {"remember"}),
        ({"username": "alice", "password": PASSWORD, "role_id": Role.ADMIN}, {"role_id"}),
    ],
    ids=[
        "empty-object",
        "missing-password",
        "missing-username",
        "username-int",
        "username-list",
        "username-null",
        "password-int",
        "password-object",
        "password-bool",
        "username-empty",
        "password-empty",
        "both-empty",
        "username-too-long",
        "password-too-long",
        "unknown-field",
        "unknown-field-role",
    ],
)
def test_login_rejects_invalid_fields_with_422(client, user, payload, bad_fields):
    response = client.post("/auth/token", json=payload)

    body = assert_problem(response, 422)
    assert set(body["errors"]) == bad_fields
    assert PASSWORD not in response.get_data(as_text=True)
    assert db.session.scalar(select(Token).limit(1)) is None


# Whole bodies that are not a JSON object: malformed JSON may be 400, the rest is 422.
MALFORMED_BODIES = [
    pytest.param({"data": "{bad json", "content_type": "application/json"}, {400, 422}, id="malformed-json"),
    pytest.param(
        {"data": '{"username": "alice",}', "content_type": "application/json"},
        {400, 422},
        id="trailing-comma",
    ),
    pytest.param({"data": b"\xff\xfe", "content_type": "application/json"}, {400, 422}, id="not-utf8"),
    pytest.param({"json": ["alice", PASSWORD]}, {422}, id="json-array"),
    pytest.param({"json": "alice"}, {422}, id="json-string"),
    pytest.param({"json": 42}, {422}, id="json-number"),
    pytest.param({}, {415}, id="no-body"),
    pytest.param(
        {"data": f"username=alice&password={PASSWORD}", "content_type": "application/x-www-form-urlencoded"},
        {415},
        id="form-encoded",
    ),
]


@pytest.mark.parametrize(("request_kwargs", "statuses"), MALFORMED_BODIES)
def test_login_rejects_malformed_body_without_500(client, user, request_kwargs, statuses):
    response = client.post("/auth/token", **request_kwargs)

    assert response.status_code in statuses
    assert_problem(response, response.status_code)


# Session cap


@pytest.mark.parametrize(
    ("app_config", "cap"),
    [({}, 2), ({"MAX_SESSIONS_PER_USER": 1}, 1), ({"MAX_SESSIONS_PER_USER": 3}, 3)],
    ids=["default-2", "cap-1", "cap-3"],
)
def test_login_beyond_session_cap_evicts_oldest_session(client, app, user, cap):
    assert app.config["MAX_SESSIONS_PER_USER"] == cap
    sessions = [login(client, "alice") for _ in range(cap + 1)]

    oldest, *kept = sessions
    assert_unauthorized(me(client, oldest["access_token"]))
    assert_unauthorized(refresh(client, oldest["refresh_token"]))
    for session in kept:
        assert me(client, session["access_token"]).status_code == 200
    assert db.session.scalar(select(func.count()).select_from(Token)) == cap


def test_session_cap_counts_each_account_separately(client, user):
    bob = make_user("bob")
    bobs_session = login(client, "bob")

    alices_sessions = [login(client, "alice") for _ in range(3)]

    assert me(client, bobs_session["access_token"]).get_json()["id"] == bob.id
    assert_unauthorized(me(client, alices_sessions[0]["access_token"]))
    assert me(client, alices_sessions[2]["access_token"]).status_code == 200


def test_refresh_does_not_open_a_new_session(client, user):
    first = login(client, "alice")
    second = login(client, "alice")

    rotated = refresh(client, first["refresh_token"]).get_json()

    assert me(client, rotated["access_token"]).status_code == 200
    assert me(client, second["access_token"]).status_code == 200


# POST /auth/refresh


def test_refresh_returns_new_pair(client, user, app):
    session = login(client, "alice")

    response = refresh(client, session["refresh_token"])

    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == TOKEN_FIELDS
    assert body["id"] == user.id
    assert body["token_type"] == "bearer"
    assert body["expires"] == app.config["ACCESS_TOKEN_MINUTES"] * 60
    assert body["access_token"] not in {session["access_token"], session["refresh_token"]}
    assert body["refresh_token"] not in {session["access_token"], session["refresh_token"]}
    assert me(client, body["access_token"]).get_json()["id"] == user.id
    assert refresh(client, body["refresh_token"]).status_code == 200


def test_refresh_ends_old_pair_at_once(client, user):
    session = login(client, "alice")

    rotated = refresh(client, session["refresh_token"]).get_json()

    body = assert_unauthorized(me(client, session["access_token"]))
    assert session["access_token"] not in str(body)
    assert me(client, rotated["access_token"]).status_code == 200
    assert_unauthorized(refresh(client, session["refresh_token"]))


def test_reused_refresh_token_revokes_its_whole_session(client, user):
    other_device = login(client, "alice")
    session = login(client, "alice")
    rotated = refresh(client, session["refresh_token"]).get_json()

    assert_unauthorized(refresh(client, session["refresh_token"]))

    assert_unauthorized(me(client, rotated["access_token"]))
    assert_unauthorized(refresh(client, rotated["refresh_token"]))
    assert me(client, other_device["access_token"]).status_code == 200


@pytest.mark.parametrize(
    "make_token",
    [
        lambda session: secrets.token_urlsafe(32),
        lambda session: "x",
        lambda session: session["access_token"],
        lambda session: session["refresh_token"] + "x",
        lambda session: session["refresh_token"].upper(),
    ],
    ids=["random", "short", "access-token", "suffixed", "case-changed"],
)
def test_refresh_rejects_unknown_token(client, user, make_token):
    session = login(client, "alice")

    body = assert_unauthorized(refresh(client, make_token(session)))

    assert session["refresh_token"] not in str(body)
    assert me(client, session["access_token"]).status_code == 200


def test_refresh_rejects_expired_refresh_token(client, user):
    session = login(client, "alice")
    expire_sessions(user.id, "refresh_expires_at")

    assert_unauthorized(refresh(client, session["refresh_token"]))


@pytest.mark.parametrize("app_config", [{"REFRESH_TOKEN_DAYS": 0}])
def test_refresh_token_lifetime_follows_config(client, user):
    session = login(client, "alice")

    assert_unauthorized(refresh(client, session["refresh_token"]))


def test_refresh_rejects_deactivated_account(client, user):
    session = login(client, "alice")
    deactivate(user.id)

    assert_unauthorized(refresh(client, session["refresh_token"]))


def test_refresh_rejects_logged_out_session(client, user):
    session = login(client, "alice")
    assert client.post("/auth/logout", headers=bearer(session["access_token"])).status_code == 200

    assert_unauthorized(refresh(client, session["refresh_token"]))


# The absolute session lifetime (SESSION_MAX_AGE, OWASP ASVS V3.3.2)


def age_session(user_id: int, seconds: float) -> None:
    """Make the user's (single) session as old as ``seconds``: its login moved into the past."""
    login_time = datetime.now(UTC) - timedelta(seconds=seconds)
    result = db.session.execute(update(Token).where(Token.user_id == user_id).values(created_at=login_time))
    db.session.commit()
    assert result.rowcount == 1


@pytest.mark.parametrize("app_config", [{"SESSION_MAX_AGE": 3600}])
def test_a_session_ends_at_its_max_age_however_often_it_was_refreshed(client, user):
    session = login(client, "alice")
    for _ in range(3):
        session = refresh(client, session["refresh_token"]).get_json()
    age_session(user.id, 3600 - 5)
    assert me(client, session["access_token"]).status_code == 200

    age_session(user.id, 3600 + 1)

    assert_unauthorized(me(client, session["access_token"]))
    assert_unauthorized(refresh(client, session["refresh_token"]))
    relogin = login(client, "alice")
    assert me(client, relogin["access_token"]).status_code == 200


@pytest.mark.parametrize("app_config", [{"SESSION_MAX_AGE": 1800}])
def test_no_token_outlives_its_session(client, user):
    body = login(client, "alice")
    token = db.session.scalar(select(Token).where(Token.user_id == user.id))

    assert body["expires"] == 1800  # the access token's lifetime is cut to the session's
    assert token.access_expires_at == token.refresh_expires_at == token.created_at + timedelta(seconds=1800)
    age_session(user.id, 1000)
    rotated = refresh(client, body["refresh_token"]).get_json()
    assert 795 <= rotated["expires"] <= 800


def test_lowering_the_max_age_ends_sessions_already_older(client, user, migrated_database):
    session = login(client, "alice")
    age_session(user.id, 7200)
    assert me(client, session["access_token"]).status_code == 200
    stricter = make_app(migrated_database, SESSION_MAX_AGE=3600)
    stricter.test_client_class = IsolatedClient
    try:
        assert_unauthorized(me(stricter.test_client(), session["access_token"]))
        assert_unauthorized(refresh(stricter.test_client(), session["refresh_token"]))
    finally:
        with stricter.app_context():
            db.engine.dispose()


def test_the_default_max_age_is_30_days(app):
    assert app.config["SESSION_MAX_AGE"] == 30 * 86400


@pytest.mark.parametrize(
    ("request_kwargs", "statuses"),
    [
        pytest.param({"json": {}}, {422}, id="missing"),
        pytest.param({"json": {"refresh_token": ""}}, {422}, id="empty"),
        pytest.param({"json": {"refresh_token": None}}, {422}, id="null"),
        pytest.param({"json": {"refresh_token": 12345}}, {422}, id="int"),
        pytest.param({"json": {"refresh_token": ["a", "b"]}}, {422}, id="list"),
        pytest.param({"json": {"refresh_token": "r" * 513}}, {422}, id="too-long"),
        pytest.param({"json": {"refresh_token": "abc", "access_token": "abc"}}, {422}, id="unknown-field"),
        pytest.param({"json": ["abc"]}, {422}, id="json-array"),
        pytest.param({}, {415}, id="no-body"),
        pytest.param({"data": "{", "content_type": "application/json"}, {400, 422}, id="malformed-json"),
    ],
)
def test_refresh_rejects_invalid_body(client, request_kwargs, statuses):
    response = client.post("/auth/refresh", **request_kwargs)

    assert response.status_code in statuses
    body = assert_problem(response, response.status_code)
    if response.status_code == 422:
        assert body["errors"]


# Bearer authentication


def test_expired_access_token_is_rejected_but_session_can_refresh(client, user):
    session = login(client, "alice")
    expire_sessions(user.id, "access_expires_at")

    body = assert_unauthorized(me(client, session["access_token"]))
    assert session["access_token"] not in str(body)

    rotated = refresh(client, session["refresh_token"])
    assert rotated.status_code == 200
    assert me(client, rotated.get_json()["access_token"]).status_code == 200


def test_access_token_of_deactivated_account_is_rejected(client, user):
    session = login(client, "alice")
    deactivate(user.id)

    assert_unauthorized(me(client, session["access_token"]))


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Bearer  ",
        "Basic YWxpY2U6cGFzc3dvcmQ=",
        "Basic {access}",
        "Token {access}",
        "{access}",
        "Bearer {refresh}",
        "Bearer {random}",
        "Bearer {access}x",
        "Bearer {access} {access}",
    ],
    ids=[
        "no-header",
        "empty",
        "scheme-only",
        "scheme-space",
        "scheme-two-spaces",
        "basic",
        "basic-with-valid-token",
        "other-scheme",
        "no-scheme",
        "refresh-token-as-access",
        "random-token",
        "suffixed-token",
        "two-tokens",
    ],
)
def test_bad_authorization_header_gets_401(client, user, authorization):
    session = login(client, "alice")
    headers = {}
    if authorization is not None:
        headers["Authorization"] = authorization.format(
            access=session["access_token"], refresh=session["refresh_token"], random=secrets.token_urlsafe(32)
        )

    response = client.get("/auth/me", headers=headers)

    body = assert_unauthorized(response)
    assert session["access_token"] not in str(body)


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_bearer_scheme_is_case_insensitive(client, user, scheme):
    session = login(client, "alice")

    response = client.get("/auth/me", headers={"Authorization": f"{scheme} {session['access_token']}"})

    assert response.status_code == 200
    assert response.get_json()["id"] == user.id


# GET /auth/me


def test_me_returns_public_fields_only(client, user, auth_headers):
    response = client.get("/auth/me", headers=auth_headers)

    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == USER_FIELDS
    assert body["id"] == user.id
    assert body["username"] == "alice"
    assert body["role_id"] == Role.USER
    assert body["activated"] is True
    for stamp in ("created_at", "updated_at"):
        assert datetime.fromisoformat(body[stamp]).utcoffset() == timedelta(0)
    text = response.get_data(as_text=True)
    assert user.password_hash not in text
    assert PASSWORD not in text
    assert auth_headers["Authorization"].removeprefix("Bearer ") not in text


def test_me_reports_admin_role(client, admin, admin_headers):
    body = client.get("/auth/me", headers=admin_headers).get_json()

    assert body["id"] == admin.id
    assert body["role_id"] == Role.ADMIN


# POST /auth/logout


def test_logout_ends_only_that_session(client, user):
    kept = login(client, "alice")
    ended = login(client, "alice")

    response = client.post("/auth/logout", headers=bearer(ended["access_token"]))

    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"detail"}
    assert isinstance(body["detail"], str)
    assert body["detail"]
    assert_unauthorized(me(client, ended["access_token"]))
    assert_unauthorized(client.post("/auth/logout", headers=bearer(ended["access_token"])))
    assert me(client, kept["access_token"]).status_code == 200


def test_logout_without_token_gets_401(client):
    assert_unauthorized(client.post("/auth/logout"))


# Token storage and logs


def test_tokens_are_stored_only_as_sha256_digests(client, user):
    first = login(client, "alice")
    second = refresh(client, first["refresh_token"]).get_json()
    plain = [first["access_token"], first["refresh_token"], second["access_token"], second["refresh_token"]]

    for table in db.metadata.sorted_tables:
        for row in db.session.execute(select(table)):
            for value in row:
                assert not any(token in str(value) for token in plain), f"plain token in {table.name}"
    stored = db.session.scalars(select(Token).where(Token.user_id == user.id)).one()
    assert stored.access_hash == hashlib.sha256(second["access_token"].encode()).hexdigest()
    assert stored.refresh_hash == hashlib.sha256(second["refresh_token"].encode()).hexdigest()


def test_tokens_and_passwords_never_reach_the_logs(client, user, caplog):
    caplog.set_level(logging.DEBUG)
    session = login(client, "alice")
    client.post("/auth/token", json={"username": "alice", "password": "a wrong guess"})
    rotated = refresh(client, session["refresh_token"]).get_json()
    refresh(client, session["refresh_token"])
    client.post("/auth/logout", headers=bearer(rotated["access_token"]))

    secrets_sent = [PASSWORD, "a wrong guess", *(session[k] for k in ("access_token", "refresh_token"))]
    secrets_sent += [rotated["access_token"], rotated["refresh_token"]]
    messages = [record.getMessage() for record in caplog.records]
    assert messages
    for message in messages:
        assert not any(secret in message for secret in secrets_sent), message


def sessions_of(client, headers) -> list[dict]:
    response = client.get("/auth/sessions", headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_my_sessions_are_listed_newest_first_with_the_current_one_marked(client, user):
    phone = login_from(client, "alice", "Phone/1.0")
    laptop = login_from(client, "alice", "Laptop/2.0 " + "x" * 400)

    listed = sessions_of(client, phone["headers"])

    assert [session["user_agent"] for session in listed] == [("Laptop/2.0 " + "x" * 400)[:255], "Phone/1.0"]
    assert [session["current"] for session in listed] == [False, True]
    assert [session["current"] for session in sessions_of(client, laptop["headers"])] == [True, False]
    for session in listed:
        assert set(session) == {"id", "created_at", "last_refreshed_at", "user_agent", "current"}
        assert session["last_refreshed_at"] is None
    # No token nor digest, in any form.
    text = str(listed)
    digests = [
        digest for row in db.session.execute(select(Token.access_hash, Token.refresh_hash)) for digest in row
    ]
    for secret in [phone["access_token"], phone["refresh_token"], laptop["access_token"], *digests]:
        assert secret not in text


def login_from(client, username: str, user_agent: str | None) -> dict:
    headers = {"User-Agent": user_agent} if user_agent else {}
    response = client.post("/auth/token", json={"username": username, "password": PASSWORD}, headers=headers)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    return {**body, "headers": bearer(body["access_token"])}


def test_a_refresh_is_noted_on_its_session(client, user):
    first = login(client, "alice")

    refreshed = client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})

    assert refreshed.status_code == 200
    (session,) = sessions_of(client, bearer(refreshed.get_json()["access_token"]))
    assert utc_time(session["last_refreshed_at"]) >= utc_time(session["created_at"])


def test_ending_one_of_my_sessions_stops_its_tokens_at_once_and_keeps_the_others(client, user):
    kept, lost = login(client, "alice"), login(client, "alice")
    lost_id = next(s["id"] for s in sessions_of(client, lost["headers"]) if s["current"])

    response = client.delete(f"/auth/sessions/{lost_id}", headers=kept["headers"])

    assert response.status_code == 200
    assert response.get_json() == {"detail": "Session ended"}
    assert client.get("/auth/me", headers=lost["headers"]).status_code == 401
    assert client.post("/auth/refresh", json={"refresh_token": lost["refresh_token"]}).status_code == 401
    assert [s["current"] for s in sessions_of(client, kept["headers"])] == [True]


def test_another_accounts_session_or_an_unknown_one_is_not_found_and_not_ended(client, user):
    make_user("bob")
    bob = login(client, "bob")
    bobs = sessions_of(client, bob["headers"])[0]["id"]
    alice = login(client, "alice")

    for session_id in (bobs, 2**40):
        assert_problem(client.delete(f"/auth/sessions/{session_id}", headers=alice["headers"]), 404)
    assert client.get("/auth/me", headers=bob["headers"]).status_code == 200


def test_expired_sessions_are_not_listed(client, user):
    old, live = login(client, "alice"), login(client, "alice")
    db.session.execute(
        update(Token)
        .where(Token.access_hash == hashlib.sha256(old["access_token"].encode()).hexdigest())
        .values(refresh_expires_at=datetime.now(UTC) - timedelta(seconds=1))
    )
    db.session.commit()

    assert [s["current"] for s in sessions_of(client, live["headers"])] == [True]
