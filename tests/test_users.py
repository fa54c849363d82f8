"""Users over HTTP: creating, reading, listing, changing and deactivating accounts."""

from __future__ import annotations

import itertools
import threading

import pytest
from sqlalchemy import event, func, select

from tests.factories import PASSWORD, bearer, login, make_user
from tests.helpers import PagedList, Permission, assert_problem, expect, permission_test
from webapp.database import db
from webapp.models import Role, User

PUBLIC_FIELDS = {"id", "username", "role_id", "activated", "created_at", "updated_at"}
NEW_PASSWORD = "a brand new passphrase"


PERMISSIONS = [
    Permission("list users", "GET", "/users", None, expect(200, 200, 200, 200)),
    Permission("get user", "GET", "/users/{owner}", None, expect(200, 200, 200, 200)),
    Permission(
        "create user",
        "POST",
        "/users",
        {"username": "newbie", "role_id": Role.USER},
        expect(401, 403, 403, 201),
    ),
    Permission(
        "rename owner", "PATCH", "/users/{owner}", {"username": "renamed"}, expect(401, 403, 200, 200)
    ),
    Permission(
        "owner password",
        "PATCH",
        "/users/{owner}",
        {"password": "another secret", "current_password": PASSWORD},
        expect(401, 403, 200, 200),
    ),
    Permission("owner sessions", "GET", "/users/{owner}/sessions", None, expect(401, 403, 200, 200)),
    Permission("end owner sessions", "DELETE", "/users/{owner}/sessions", None, expect(401, 403, 200, 200)),
    Permission(
        "owner to admin", "PATCH", "/users/{owner}", {"role_id": Role.ADMIN}, expect(401, 403, 403, 200)
    ),
    Permission(
        "owner to user", "PATCH", "/users/{owner}", {"role_id": Role.USER}, expect(401, 403, 200, 200)
    ),
    Permission(
        "deactivate owner", "PATCH", "/users/{owner}", {"activated": False}, expect(401, 403, 403, 200)
    ),
    Permission("activate owner", "PATCH", "/users/{owner}", {"activated": True}, expect(401, 403, 403, 200)),
    Permission(
        "rename self admin", "PATCH", "/users/{admin}", {"username": "renamed"}, expect(401, 403, 403, 200)
    ),
    Permission(
        "rename other admin",
        "PATCH",
        "/users/{other_admin}",
        {"username": "renamed"},
        expect(401, 403, 403, 403),
    ),
    Permission("delete owner", "DELETE", "/users/{owner}", None, expect(401, 403, 200, 200)),
    Permission("delete self admin", "DELETE", "/users/{admin}", None, expect(401, 403, 403, 200)),
    Permission("delete other admin", "DELETE", "/users/{other_admin}", None, expect(401, 403, 403, 403)),
]
test_each_actor_gets_the_status_the_contract_gives = permission_test(PERMISSIONS)


def paged_list(request) -> PagedList:
    """The public GET /users, grown by new accounts: none are active until rows are added
    (tests/test_pagination.py)."""
    return PagedList({}, lambda label: make_user(label).id, "username")


@pytest.fixture
def other_admin(app):
    return make_user("root2", role=Role.ADMIN)


@pytest.fixture
def bob(app):
    return make_user("bob")


def assert_public_user(body: dict, **expected) -> None:
    """Exactly the public fields (no password, hash or token), with the ``expected`` values."""
    assert set(body) == PUBLIC_FIELDS
    assert {key: body[key] for key in expected} == expected


def login_status(client, username: str, password: str = PASSWORD) -> int:
    return client.post("/auth/token", json={"username": username, "password": password}).status_code


def me_status(client, headers: dict) -> int:
    return client.get("/auth/me", headers=headers).status_code


def user_count() -> int:
    return db.session.scalar(select(func.count(User.id)))


# POST /users


def test_admin_creates_user_with_a_generated_password_that_logs_in(client, admin_headers):
    response = client.post("/users", json={"username": "bob", "role_id": Role.USER}, headers=admin_headers)

    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == PUBLIC_FIELDS | {"password"}
    assert body["username"] == "bob"
    assert body["role_id"] == Role.USER
    assert body["activated"] is True
    assert isinstance(body["password"], str)
    assert len(body["password"]) >= 16
    session = login(client, "bob", body["password"])
    assert session["id"] == body["id"]
    assert client.get("/auth/me", headers=session["headers"]).get_json()["username"] == "bob"


def test_admin_creates_an_admin_account(client, admin_headers):
    response = client.post("/users", json={"username": "boss", "role_id": Role.ADMIN}, headers=admin_headers)

    assert response.status_code == 201
    assert response.get_json()["role_id"] == Role.ADMIN


def test_created_user_is_stored_with_a_hash_not_the_plain_password(client, admin_headers):
    response = client.post("/users", json={"username": "bob", "role_id": Role.USER}, headers=admin_headers)
    password = response.get_json()["password"]

    row = db.session.scalar(select(User).where(User.username == "bob"))
    stored = [str(getattr(row, column.key)) for column in User.__table__.columns]
    assert not any(password in value for value in stored)
    assert row.password_hash.startswith("$2")
    assert row.check_password(password)


def test_each_created_user_gets_a_different_password(client, admin_headers):
    first = client.post("/users", json={"username": "bob", "role_id": Role.USER}, headers=admin_headers)
    second = client.post("/users", json={"username": "carol", "role_id": Role.USER}, headers=admin_headers)

    assert first.get_json()["password"] != second.get_json()["password"]


def test_create_user_with_a_taken_username_is_409(client, admin_headers, bob):
    response = client.post("/users", json={"username": "bob", "role_id": Role.USER}, headers=admin_headers)

    assert "username" in assert_problem(response, 409)["detail"]
    assert client.get("/users?username=bob").get_json()["total"] == 1


def test_usernames_differing_only_in_case_are_distinct(client, admin_headers, bob):
    response = client.post("/users", json={"username": "Bob", "role_id": Role.USER}, headers=admin_headers)

    assert response.status_code == 201
    assert response.get_json()["username"] == "Bob"
    assert login(client, "Bob", response.get_json()["password"])["id"] != bob.id


def test_create_user_with_an_unknown_role_is_422(client, admin_headers):
    response = client.post("/users", json={"username": "bob", "role_id": 99}, headers=admin_headers)

    assert list(assert_problem(response, 422)["errors"]) == ["role_id"]
    assert user_count() == 1


def test_create_user_accepts_a_64_character_username(client, admin_headers):
    username = "a" * 64
    response = client.post("/users", json={"username": username, "role_id": Role.USER}, headers=admin_headers)

    assert response.status_code == 201
    assert response.get_json()["username"] == username


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"role_id": Role.USER}, "username", id="missing username"),
        pytest.param({"username": "bob"}, "role_id", id="missing role_id"),
        pytest.param({"username": "bob", "role_id": "2"}, "role_id", id="role_id string"),
        pytest.param({"username": "bob", "role_id": 2.5}, "role_id", id="role_id float"),
        pytest.param({"username": "bob", "role_id": True}, "role_id", id="role_id boolean"),
        pytest.param({"username": "bob", "role_id": None}, "role_id", id="role_id null"),
        pytest.param({"username": 5, "role_id": Role.USER}, "username", id="username number"),
        pytest.param({"username": None, "role_id": Role.USER}, "username", id="username null"),
        pytest.param({"username": ["bob"], "role_id": Role.USER}, "username", id="username list"),
        pytest.param({"username": "", "role_id": Role.USER}, "username", id="username empty"),
        pytest.param({"username": "a" * 65, "role_id": Role.USER}, "username", id="username 65 chars"),
        pytest.param({"username": " ", "role_id": Role.USER}, "username", id="username blank"),
        pytest.param({"username": " bob", "role_id": Role.USER}, "username", id="username leading space"),
        pytest.param({"username": "bob ", "role_id": Role.USER}, "username", id="username trailing space"),
        pytest.param({"username": "bob\n", "role_id": Role.USER}, "username", id="username newline"),
        pytest.param({"username": "bo b", "role_id": Role.USER}, "username", id="username inner space"),
        pytest.param({"username": "bob/x", "role_id": Role.USER}, "username", id="username slash"),
        pytest.param({"username": "<bob>", "role_id": Role.USER}, "username", id="username angle brackets"),
        pytest.param({"username": "bob%", "role_id": Role.USER}, "username", id="username percent"),
        pytest.param({"username": "bob\x00", "role_id": Role.USER}, "username", id="username NUL"),
        pytest.param(
            {"username": "bob", "role_id": 2, "password": "x" * 20}, "password", id="unknown password"
        ),
        pytest.param(
            {"username": "bob", "role_id": 2, "activated": False}, "activated", id="dump-only activated"
        ),
        pytest.param({"username": "bob", "role_id": 2, "id": 7}, "id", id="dump-only id"),
        pytest.param({"username": "bob", "role_id": 2, "nickname": "b"}, "nickname", id="unknown field"),
    ],
)
def test_create_user_rejects_invalid_body_with_422(client, admin_headers, body, field):
    response = client.post("/users", json=body, headers=admin_headers)

    problem = assert_problem(response, 422)
    assert field in problem["errors"]
    assert all(isinstance(message, str) for message in problem["errors"][field])
    assert user_count() == 1


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        pytest.param('{"username": "bob", "role_id": 2', "application/json", id="truncated JSON"),
        pytest.param("{'username': 'bob'}", "application/json", id="single quotes"),
        pytest.param("", "application/json", id="empty body"),
        pytest.param('[{"username": "bob", "role_id": 2}]', "application/json", id="JSON list"),
        pytest.param('"bob"', "application/json", id="JSON string"),
        pytest.param("null", "application/json", id="JSON null"),
        pytest.param("username=bob&role_id=2", "application/x-www-form-urlencoded", id="form body"),
    ],
)
def test_create_user_rejects_a_body_that_is_not_a_json_object(client, admin_headers, data, content_type):
    response = client.post("/users", data=data, content_type=content_type, headers=admin_headers)

    assert response.status_code in {400, 415, 422}
    assert_problem(response, response.status_code)
    assert user_count() == 1


def test_create_user_as_a_regular_user_is_403(client, auth_headers):
    response = client.post("/users", json={"username": "bob", "role_id": Role.USER}, headers=auth_headers)

    assert_problem(response, 403)
    assert db.session.scalar(select(User).where(User.username == "bob")) is None


def test_create_user_without_a_token_is_401(client, admin):
    response = client.post("/users", json={"username": "bob", "role_id": Role.USER})

    assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert user_count() == 1


# GET /users/{id}


def test_get_user_is_public_and_shows_only_public_fields(client, user):
    response = client.get(f"/users/{user.id}")

    assert response.status_code == 200
    assert_public_user(response.get_json(), id=user.id, username="alice", role_id=Role.USER, activated=True)
    assert "$2" not in response.get_data(as_text=True)


def test_get_missing_user_is_404(client, user):
    assert_problem(client.get(f"/users/{user.id + 1000}"), 404)


def test_get_deactivated_user_is_404(client, app):
    gone = make_user("gone", activated=False)

    assert_problem(client.get(f"/users/{gone.id}"), 404)


@pytest.mark.parametrize(
    "user_id", ["0", "-1", "99999999999999999999999", str(2**63 - 1), str(2**63), "2147483648", "abc", "1.0"]
)
def test_get_user_with_an_impossible_id_is_404(client, user, user_id):
    assert_problem(client.get(f"/users/{user_id}"), 404)


# Arabic-Indic and fullwidth digits: int() reads them, a URL id must not.
@pytest.mark.parametrize("zero", [0x0660, 0xFF10], ids=["arabic-indic", "fullwidth"])
def test_an_id_in_other_scripts_digits_is_not_that_id(client, user, zero):
    digits = "".join(chr(zero + n) for n in range(10))
    spelled = str(user.id).translate(str.maketrans("0123456789", digits))

    assert client.get(f"/users/{user.id}").status_code == 200
    assert_problem(client.get(f"/users/{spelled}"), 404)


# GET /users


def test_list_users_is_public_and_shows_active_accounts_by_default(client, user, admin):
    make_user("gone", activated=False)

    response = client.get("/users")

    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"page", "limit", "total", "users"}
    assert (body["page"], body["limit"], body["total"]) == (1, 20, 2)
    assert [u["username"] for u in body["users"]] == ["alice", "root"]
    for listed in body["users"]:
        assert_public_user(listed, activated=True)


def test_list_users_with_activated_false_shows_only_deactivated_accounts(client, user):
    gone = make_user("gone", activated=False)

    body = client.get("/users?activated=false").get_json()

    assert body["total"] == 1
    assert [(u["id"], u["activated"]) for u in body["users"]] == [(gone.id, False)]


def test_list_users_filters_by_username_substring_ignoring_case(client, app):
    for name in ("Alice", "malice", "bob", "ALIBI"):
        make_user(name)

    body = client.get("/users?username=aLi").get_json()

    assert body["total"] == 3
    assert [u["username"] for u in body["users"]] == ["Alice", "malice", "ALIBI"]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        pytest.param("_", ["a_b"], id="underscore"),
        pytest.param("a_b", ["a_b"], id="a_b"),
        pytest.param("%", [], id="percent"),
        pytest.param("a%b", [], id="a%b"),
        pytest.param("/", [], id="escape character"),
    ],
)
def test_list_users_treats_like_wildcards_in_the_filter_literally(client, app, pattern, expected):
    for name in ("a_b", "axb", "ab"):
        make_user(name)

    response = client.get("/users", query_string={"username": pattern})

    assert response.status_code == 200
    assert [u["username"] for u in response.get_json()["users"]] == expected


def test_list_users_paginates_with_total(client, app):
    ids = [make_user(f"user{n}").id for n in range(5)]

    pages = [client.get(f"/users?page={page}&limit=2").get_json() for page in (1, 2, 3, 4)]

    assert [(p["page"], p["limit"], p["total"]) for p in pages] == [
        (1, 2, 5),
        (2, 2, 5),
        (3, 2, 5),
        (4, 2, 5),
    ]
    assert [[u["id"] for u in p["users"]] for p in pages] == [ids[0:2], ids[2:4], ids[4:], []]


def test_list_users_clamps_limit_to_the_maximum(client, user):
    body = client.get("/users?limit=1000").get_json()

    assert (body["limit"], body["total"], len(body["users"])) == (100, 1, 1)


@pytest.mark.parametrize(
    "query",
    [
        "page=0",
        "page=-1",
        "page=x",
        "page=1.5",
        "limit=0",
        "limit=-5",
        "limit=x",
        "activated=maybe",
        f"username={'a' * 65}",
    ],
)
def test_list_users_rejects_bad_query_with_422(client, user, query):
    assert_problem(client.get(f"/users?{query}"), 422)


# PATCH /users/{id}


def test_owner_changes_own_username(client, user, auth_headers):
    response = client.patch(f"/users/{user.id}", json={"username": "alicia"}, headers=auth_headers)

    assert response.status_code == 200
    assert_public_user(response.get_json(), id=user.id, username="alicia")
    assert client.get(f"/users/{user.id}").get_json()["username"] == "alicia"


def test_user_cannot_change_another_account(client, bob, auth_headers):
    response = client.patch(f"/users/{bob.id}", json={"username": "bobby"}, headers=auth_headers)

    assert_problem(response, 403)
    assert client.get(f"/users/{bob.id}").get_json()["username"] == "bob"


def test_admin_changes_a_regular_user(client, user, admin_headers):
    response = client.patch(f"/users/{user.id}", json={"username": "alicia"}, headers=admin_headers)

    assert response.status_code == 200
    assert_public_user(response.get_json(), id=user.id, username="alicia")


def test_admin_cannot_change_another_admin(client, other_admin, admin_headers):
    response = client.patch(f"/users/{other_admin.id}", json={"username": "demoted"}, headers=admin_headers)

    assert_problem(response, 403)
    assert client.get(f"/users/{other_admin.id}").get_json()["username"] == "root2"


def test_admin_can_change_themself(client, admin, admin_headers):
    response = client.patch(f"/users/{admin.id}", json={"username": "groot"}, headers=admin_headers)

    assert response.status_code == 200
    assert_public_user(response.get_json(), id=admin.id, username="groot", role_id=Role.ADMIN)


# The last active admin


def active_admins() -> set[str]:
    query = select(User.username).where(User.role_id == Role.ADMIN, User.activated.is_(True))
    return set(db.session.scalars(query))


LEAVING_NO_ADMIN = {
    "demote": ("PATCH", {"role_id": Role.USER}),
    "deactivate": ("PATCH", {"activated": False}),
    "delete": ("DELETE", None),
}


@pytest.mark.parametrize(("method", "body"), list(LEAVING_NO_ADMIN.values()), ids=list(LEAVING_NO_ADMIN))
def test_the_last_active_admin_cannot_remove_itself(client, admin, admin_headers, method, body):
    make_user("retired", role=Role.ADMIN, activated=False)  # an inactive admin does not count

    response = client.open(f"/users/{admin.id}", method=method, json=body, headers=admin_headers)

    assert "No active admin would be left" in assert_problem(response, 409)["detail"]
    assert active_admins() == {"root"}
    assert client.get("/auth/me", headers=admin_headers).status_code == 200


@pytest.mark.parametrize(("method", "body"), list(LEAVING_NO_ADMIN.values()), ids=list(LEAVING_NO_ADMIN))
def test_an_admin_may_remove_itself_while_another_admin_remains(
    client, admin, other_admin, admin_headers, method, body
):
    response = client.open(f"/users/{admin.id}", method=method, json=body, headers=admin_headers)

    assert response.status_code == 200
    assert active_admins() == {"root2"}


def test_two_admins_removing_themselves_at_once_leave_one(app, client, admin, other_admin, admin_headers):
    """Both have read their own row and are about to write it (a barrier holds the first two
    flushes) when both count the admins that would be left: only one may go."""
    headers = {"root": admin_headers, "root2": login(client, "root2")["headers"]}
    ids = {"root": admin.id, "root2": other_admin.id}
    both_read = threading.Barrier(2)
    flushes = itertools.count()

    def hold(mapper, connection, target) -> None:
        if next(flushes) < 2:  # a request retried after losing a deadlock goes straight on
            both_read.wait(timeout=10)

    answers: dict[str, int] = {}

    def demote(name: str) -> None:
        response = client.patch(f"/users/{ids[name]}", json={"role_id": Role.USER}, headers=headers[name])
        answers[name] = response.status_code

    event.listen(User, "before_update", hold)
    try:
        threads = [threading.Thread(target=demote, args=(name,)) for name in ids]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    finally:
        event.remove(User, "before_update", hold)

    assert sorted(answers.values()) == [200, 409], answers
    assert active_admins() == {name for name, status in answers.items() if status == 409}


def test_user_cannot_raise_own_role_to_admin(client, user, auth_headers):
    response = client.patch(f"/users/{user.id}", json={"role_id": Role.ADMIN}, headers=auth_headers)

    assert_problem(response, 403)
    assert client.get(f"/users/{user.id}").get_json()["role_id"] == Role.USER


def test_user_may_send_own_current_role(client, user, auth_headers):
    response = client.patch(f"/users/{user.id}", json={"role_id": Role.USER}, headers=auth_headers)

    assert response.status_code == 200
    assert response.get_json()["role_id"] == Role.USER


def test_admin_grants_the_admin_role(client, user, admin_headers):
    response = client.patch(f"/users/{user.id}", json={"role_id": Role.ADMIN}, headers=admin_headers)

    assert response.status_code == 200
    assert response.get_json()["role_id"] == Role.ADMIN


@pytest.mark.parametrize("activated", [True, False])
def test_owner_cannot_change_activated(client, user, auth_headers, activated):
    response = client.patch(f"/users/{user.id}", json={"activated": activated}, headers=auth_headers)

    assert_problem(response, 403)
    assert client.get(f"/users/{user.id}").get_json()["activated"] is True
    assert me_status(client, auth_headers) == 200


def test_admin_deactivates_and_reactivates_a_user(client, user, auth_headers, admin_headers):
    response = client.patch(f"/users/{user.id}", json={"activated": False}, headers=admin_headers)

    assert response.status_code == 200
    assert_public_user(response.get_json(), id=user.id, activated=False)
    assert_problem(client.get(f"/users/{user.id}"), 404)
    assert me_status(client, auth_headers) == 401
    assert login_status(client, "alice") == 401

    response = client.patch(f"/users/{user.id}", json={"activated": True}, headers=admin_headers)

    assert response.status_code == 200
    assert response.get_json()["activated"] is True
    assert client.get(f"/users/{user.id}").status_code == 200
    assert me_status(client, auth_headers) == 401
    assert login_status(client, "alice") == 200


def test_patch_to_a_username_held_by_another_account_is_409(client, user, bob, auth_headers):
    response = client.patch(f"/users/{user.id}", json={"username": "bob"}, headers=auth_headers)

    assert "username" in assert_problem(response, 409)["detail"]
    assert client.get(f"/users/{user.id}").get_json()["username"] == "alice"


def test_patch_to_a_username_held_by_a_deactivated_account_is_409(client, user, auth_headers):
    make_user("gone", activated=False)

    response = client.patch(f"/users/{user.id}", json={"username": "gone"}, headers=auth_headers)

    assert_problem(response, 409)


def test_patch_to_own_current_username_is_not_a_conflict(client, user, auth_headers):
    response = client.patch(f"/users/{user.id}", json={"username": "alice"}, headers=auth_headers)

    assert response.status_code == 200
    assert response.get_json()["username"] == "alice"


def test_patch_to_a_username_differing_only_in_case_is_allowed(client, user, bob, auth_headers):
    response = client.patch(f"/users/{user.id}", json={"username": "Bob"}, headers=auth_headers)

    assert response.status_code == 200
    assert response.get_json()["username"] == "Bob"


def test_owner_password_change_rehashes_and_ends_only_the_other_sessions(client, user):
    current, other = login(client, "alice"), login(client, "alice")
    old_hash = user.password_hash

    response = client.patch(
        f"/users/{user.id}",
        json={"password": NEW_PASSWORD, "current_password": PASSWORD},
        headers=current["headers"],
    )

    assert response.status_code == 200
    assert_public_user(response.get_json(), id=user.id)
    assert me_status(client, current["headers"]) == 200
    assert me_status(client, other["headers"]) == 401
    assert client.post("/auth/refresh", json={"refresh_token": other["refresh_token"]}).status_code == 401
    stored = db.session.scalar(select(User.password_hash).where(User.id == user.id))
    assert stored != old_hash
    assert NEW_PASSWORD not in stored
    assert login_status(client, "alice", PASSWORD) == 401
    assert login_status(client, "alice", NEW_PASSWORD) == 200


def test_admin_password_change_ends_every_session_of_that_user(client, user, admin_headers):
    sessions = [login(client, "alice"), login(client, "alice")]

    response = client.patch(f"/users/{user.id}", json={"password": NEW_PASSWORD}, headers=admin_headers)

    assert response.status_code == 200
    assert [me_status(client, s["headers"]) for s in sessions] == [401, 401]
    assert me_status(client, admin_headers) == 200
    assert login_status(client, "alice", PASSWORD) == 401
    assert login_status(client, "alice", NEW_PASSWORD) == 200


def test_patch_without_a_password_keeps_the_other_sessions(client, user):
    current, other = login(client, "alice"), login(client, "alice")

    response = client.patch(f"/users/{user.id}", json={"username": "alicia"}, headers=current["headers"])

    assert response.status_code == 200
    assert me_status(client, other["headers"]) == 200


@pytest.mark.parametrize("password", ["123456789012", "p" * 64, "Ünïcödé and spaces, any " * 5 + "12345678"])
def test_passwords_of_12_to_128_characters_of_any_kind_are_accepted(client, user, auth_headers, password):
    assert 12 <= len(password) <= 128
    body = {"password": password, "current_password": PASSWORD}
    response = client.patch(f"/users/{user.id}", json=body, headers=auth_headers)

    assert response.status_code == 200
    assert login_status(client, "alice", password) == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"password": "12345678901"}, "password", id="password 11 chars (ASVS V2.1.1: 12)"),
        pytest.param({"password": "p" * 129}, "password", id="password 129 chars (ASVS V2.1.2: 128)"),
        pytest.param({"password": "123456789012\x00"}, "password", id="password NUL"),
        pytest.param({"password": ""}, "password", id="password empty"),
        pytest.param({"password": 12345678}, "password", id="password number"),
        pytest.param({"password": None}, "password", id="password null"),
        pytest.param({"username": ""}, "username", id="username empty"),
        pytest.param({"username": "a" * 65}, "username", id="username 65 chars"),
        pytest.param({"username": "al ice"}, "username", id="username space"),
        pytest.param({"username": None}, "username", id="username null"),
        pytest.param({"role_id": 99}, "role_id", id="role_id unknown"),
        pytest.param({"role_id": "2"}, "role_id", id="role_id string"),
        pytest.param({"role_id": 2.5}, "role_id", id="role_id float"),
        pytest.param({"activated": None}, "activated", id="activated null"),
        pytest.param({"id": 5}, "id", id="dump-only id"),
        pytest.param({"created_at": "2020-01-01T00:00:00Z"}, "created_at", id="dump-only created_at"),
        pytest.param({"password_hash": "x"}, "password_hash", id="unknown password_hash"),
    ],
)
def test_patch_rejects_invalid_body_with_422(client, user, auth_headers, body, field):
    response = client.patch(f"/users/{user.id}", json=body, headers=auth_headers)

    assert field in assert_problem(response, 422)["errors"]
    assert client.get(f"/users/{user.id}").get_json()["username"] == "alice"
    assert login_status(client, "alice") == 200


@pytest.mark.parametrize("activated", ["false", "no", 0, 1, None])
def test_patch_rejects_a_non_boolean_activated_with_422(client, user, admin_headers, activated):
    response = client.patch(f"/users/{user.id}", json={"activated": activated}, headers=admin_headers)

    assert "activated" in assert_problem(response, 422)["errors"]
    assert client.get(f"/users/{user.id}").status_code == 200


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        pytest.param('{"username": ', "application/json", id="truncated JSON"),
        pytest.param('["username"]', "application/json", id="JSON list"),
    ],
)
def test_patch_rejects_a_body_that_is_not_a_json_object(client, user, auth_headers, data, content_type):
    response = client.patch(f"/users/{user.id}", data=data, content_type=content_type, headers=auth_headers)

    assert response.status_code in {400, 422}
    assert_problem(response, response.status_code)


def test_empty_patch_leaves_the_user_unchanged(client, user, auth_headers):
    before = client.get(f"/users/{user.id}").get_json()

    response = client.patch(f"/users/{user.id}", json={}, headers=auth_headers)

    assert response.status_code == 200
    assert response.get_json() == before
    assert client.get(f"/users/{user.id}").get_json() == before


@pytest.mark.parametrize("headers_fixture", ["auth_headers", "admin_headers"])
def test_patch_missing_user_is_404(client, request, headers_fixture):
    headers = request.getfixturevalue(headers_fixture)

    assert_problem(client.patch("/users/999999", json={"username": "x"}, headers=headers), 404)


def test_patch_without_a_token_is_401(client, user):
    response = client.patch(f"/users/{user.id}", json={"username": "alicia"})

    assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"] == "Bearer"


# DELETE /users/{id}


def test_owner_deactivates_own_account_and_every_session_ends(client, user):
    current, other = login(client, "alice"), login(client, "alice")

    response = client.delete(f"/users/{user.id}", headers=current["headers"])

    assert response.status_code == 200
    assert response.get_json() == {"detail": "User deactivated"}
    assert [me_status(client, s["headers"]) for s in (current, other)] == [401, 401]
    assert client.post("/auth/refresh", json={"refresh_token": other["refresh_token"]}).status_code == 401
    assert_problem(client.get(f"/users/{user.id}"), 404)
    assert login_status(client, "alice") == 401
    listed = client.get("/users?activated=false").get_json()["users"]
    assert [(u["id"], u["activated"]) for u in listed] == [(user.id, False)]


def test_admin_deactivates_a_user_and_its_sessions_end(client, user, auth_headers, admin_headers):
    response = client.delete(f"/users/{user.id}", headers=admin_headers)

    assert response.status_code == 200
    assert set(response.get_json()) == {"detail"}
    assert me_status(client, auth_headers) == 401
    assert me_status(client, admin_headers) == 200
    assert_problem(client.get(f"/users/{user.id}"), 404)
    assert login_status(client, "alice") == 401


def test_sessions_ended_by_delete_stay_ended_after_reactivation(client, user, admin_headers):
    session = login(client, "alice")
    client.delete(f"/users/{user.id}", headers=session["headers"])

    response = client.patch(f"/users/{user.id}", json={"activated": True}, headers=admin_headers)

    assert response.status_code == 200
    assert me_status(client, session["headers"]) == 401
    assert client.post("/auth/refresh", json={"refresh_token": session["refresh_token"]}).status_code == 401
    assert login_status(client, "alice") == 200


def test_user_cannot_delete_another_account(client, bob, auth_headers):
    bob_session = login(client, "bob")

    assert_problem(client.delete(f"/users/{bob.id}", headers=auth_headers), 403)
    assert client.get(f"/users/{bob.id}").status_code == 200
    assert me_status(client, bob_session["headers"]) == 200


def test_admin_cannot_delete_another_admin(client, other_admin, admin_headers):
    assert_problem(client.delete(f"/users/{other_admin.id}", headers=admin_headers), 403)
    assert client.get(f"/users/{other_admin.id}").status_code == 200
    assert login_status(client, "root2") == 200


def test_delete_missing_user_is_404(client, admin_headers):
    assert_problem(client.delete("/users/999999", headers=admin_headers), 404)


def test_delete_already_deactivated_user_is_404(client, admin_headers):
    gone = make_user("gone", activated=False)

    assert_problem(client.delete(f"/users/{gone.id}", headers=admin_headers), 404)


def test_delete_without_a_token_is_401(client, user):
    response = client.delete(f"/users/{user.id}")

    assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert client.get(f"/users/{user.id}").status_code == 200


def test_delete_with_an_unknown_token_is_401(client, user):
    assert_problem(client.delete(f"/users/{user.id}", headers=bearer("not-a-real-token")), 401)
    assert client.get(f"/users/{user.id}").status_code == 200


def test_an_admin_lists_and_ends_all_sessions_of_an_account(client, user, admin_headers):
    phone, laptop = login(client, "alice"), login(client, "alice")

    listed = client.get(f"/users/{user.id}/sessions", headers=admin_headers)

    assert listed.status_code == 200
    assert len(listed.get_json()) == 2
    assert {session["current"] for session in listed.get_json()} == {False}  # not the admin's sessions
    ended = client.delete(f"/users/{user.id}/sessions", headers=admin_headers)
    assert ended.get_json() == {"detail": "All sessions ended"}
    assert [me_status(client, s["headers"]) for s in (phone, laptop)] == [401, 401]
    assert client.get(f"/users/{user.id}/sessions", headers=admin_headers).get_json() == []
    assert me_status(client, admin_headers) == 200


def test_an_account_signs_itself_out_everywhere(client, user):
    phone, laptop = login(client, "alice"), login(client, "alice")

    assert client.get(f"/users/{user.id}/sessions", headers=phone["headers"]).status_code == 200
    assert client.delete(f"/users/{user.id}/sessions", headers=phone["headers"]).status_code == 200

    assert [me_status(client, s["headers"]) for s in (phone, laptop)] == [401, 401]


@pytest.mark.parametrize("method", ["get", "delete"])
def test_sessions_of_an_unknown_account_are_404(client, admin_headers, method):
    assert_problem(getattr(client, method)("/users/999999/sessions", headers=admin_headers), 404)


def test_changing_ones_own_password_needs_the_current_one(client, user, auth_headers):
    response = client.patch(f"/users/{user.id}", json={"password": NEW_PASSWORD}, headers=auth_headers)

    body = assert_problem(response, 422)
    assert set(body["errors"]) == {"current_password"}
    assert login_status(client, "alice", PASSWORD) == 200


def test_a_wrong_current_password_is_403_changes_nothing_and_counts_as_a_failed_login(app, client, user):
    headers = login(client, "alice")["headers"]
    wrong = {"password": NEW_PASSWORD, "current_password": "not my password"}

    for _ in range(app.config["MAX_FAILURES_PER_ACCOUNT"]):
        assert_problem(client.patch(f"/users/{user.id}", json=wrong, headers=headers), 403)

    # The stolen token guessed as often as the limit allows: logins and guesses now wait.
    assert login_status(client, "alice", PASSWORD) == 429
    right = {"password": NEW_PASSWORD, "current_password": PASSWORD}
    assert_problem(client.patch(f"/users/{user.id}", json=right, headers=headers), 429)
    assert db.session.scalar(select(User.password_hash).where(User.id == user.id)) == user.password_hash


def test_an_admin_sets_another_accounts_password_without_it_and_its_own_with_it(
    client, user, admin, admin_headers
):
    assert (
        client.patch(f"/users/{user.id}", json={"password": NEW_PASSWORD}, headers=admin_headers).status_code
        == 200
    )
    assert login_status(client, "alice", NEW_PASSWORD) == 200

    own = client.patch(f"/users/{admin.id}", json={"password": NEW_PASSWORD}, headers=admin_headers)
    assert set(assert_problem(own, 422)["errors"]) == {"current_password"}
    with_it = {"password": NEW_PASSWORD, "current_password": PASSWORD}
    assert client.patch(f"/users/{admin.id}", json=with_it, headers=admin_headers).status_code == 200


def test_a_current_password_without_a_new_one_changes_nothing(client, user, auth_headers):
    response = client.patch(f"/users/{user.id}", json={"current_password": "anything"}, headers=auth_headers)

    assert response.status_code == 200
    assert login_status(client, "alice", PASSWORD) == 200
