"""Who may call what: every protected route against anonymous, a user, the owner and an admin."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from tests.factories import login, make_item, make_user
from webapp.extensions import db
from webapp.models import Item, Role, Token, User

ANONYMOUS, USER, OWNER, ADMIN = "anonymous", "user", "owner", "admin"
ACTORS = (ANONYMOUS, USER, OWNER, ADMIN)


def expect(anonymous: int, user: int, owner: int, admin: int) -> dict[str, int]:
    return {ANONYMOUS: anonymous, USER: user, OWNER: owner, ADMIN: admin}


# (label, method, path template, JSON body, expected status by actor). Path fields: {owner}
# is the owner's account, {admin} the calling admin's, {other_admin} a second admin's,
# {item} an item of the owner.
MATRIX = [
    ("me", "GET", "/auth/me", None, expect(401, 200, 200, 200)),
    ("logout", "POST", "/auth/logout", None, expect(401, 200, 200, 200)),
    ("list users", "GET", "/users", None, expect(200, 200, 200, 200)),
    ("get user", "GET", "/users/{owner}", None, expect(200, 200, 200, 200)),
    (
        "create user",
        "POST",
        "/users",
        {"username": "newbie", "role_id": Role.USER},
        expect(401, 403, 403, 201),
    ),
    ("rename owner", "PATCH", "/users/{owner}", {"username": "renamed"}, expect(401, 403, 200, 200)),
    ("owner password", "PATCH", "/users/{owner}", {"password": "another secret"}, expect(401, 403, 200, 200)),
    ("owner to admin", "PATCH", "/users/{owner}", {"role_id": Role.ADMIN}, expect(401, 403, 403, 200)),
    ("owner to user", "PATCH", "/users/{owner}", {"role_id": Role.USER}, expect(401, 403, 200, 200)),
    ("deactivate owner", "PATCH", "/users/{owner}", {"activated": False}, expect(401, 403, 403, 200)),
    ("activate owner", "PATCH", "/users/{owner}", {"activated": True}, expect(401, 403, 403, 200)),
    ("rename self admin", "PATCH", "/users/{admin}", {"username": "renamed"}, expect(401, 403, 403, 200)),
    (
        "rename other admin",
        "PATCH",
        "/users/{other_admin}",
        {"username": "renamed"},
        expect(401, 403, 403, 403),
    ),
    ("delete owner", "DELETE", "/users/{owner}", None, expect(401, 403, 200, 200)),
    ("delete self admin", "DELETE", "/users/{admin}", None, expect(401, 403, 403, 200)),
    ("delete other admin", "DELETE", "/users/{other_admin}", None, expect(401, 403, 403, 403)),
    ("list items", "GET", "/items", None, expect(401, 200, 200, 200)),
    ("create item", "POST", "/items", {"name": "fresh item"}, expect(401, 201, 201, 201)),
    ("get item", "GET", "/items/{item}", None, expect(401, 200, 200, 200)),
    ("rename item", "PATCH", "/items/{item}", {"name": "renamed item"}, expect(401, 403, 200, 200)),
    ("delete item", "DELETE", "/items/{item}", None, expect(401, 403, 200, 200)),
]

# Routes anyone may call without a token: listed here so the coverage check below knows them.
PUBLIC_ROUTES = {("POST", "/auth/token"), ("POST", "/auth/refresh")}


@pytest.fixture
def world(client) -> dict:
    """A regular user, the owner, two admins and an item of the owner; ids and each actor's headers."""
    make_user("someone")
    owner = make_user("owner")
    admin = make_user("root", role=Role.ADMIN)
    other_admin = make_user("root2", role=Role.ADMIN)
    item = make_item(owner, name="owned item")
    return {
        "ids": {"owner": owner.id, "admin": admin.id, "other_admin": other_admin.id, "item": item.id},
        "headers": {
            ANONYMOUS: {},
            USER: login(client, "someone")["headers"],
            OWNER: login(client, "owner")["headers"],
            ADMIN: login(client, "root")["headers"],
        },
    }


def snapshot() -> dict:
    """Everything a refused request must leave untouched."""
    return {
        "users": db.session.execute(
            select(User.id, User.username, User.role_id, User.activated, User.password_hash).order_by(User.id)
        ).all(),
        "items": db.session.execute(select(Item.id, Item.name, Item.description).order_by(Item.id)).all(),
        "sessions": db.session.scalars(select(Token.id).order_by(Token.id)).all(),
    }


@pytest.mark.parametrize(
    ("method", "template", "body", "actor", "status"),
    [
        pytest.param(method, template, body, actor, statuses[actor], id=f"{label}-{actor}")
        for label, method, template, body, statuses in MATRIX
        for actor in ACTORS
    ],
)
def test_each_actor_gets_the_status_the_contract_gives(client, world, method, template, body, actor, status):
    before = snapshot()

    response = client.open(
        template.format(**world["ids"]), method=method, json=body, headers=world["headers"][actor]
    )

    assert response.status_code == status, response.get_data(as_text=True)
    payload = response.get_json()
    if status < 400:
        assert response.mimetype == "application/json"
        assert isinstance(payload, dict)
    else:
        # A refusal is a problem document and changes nothing.
        assert response.mimetype == "application/problem+json"
        assert (payload["status"], bool(payload["detail"])) == (status, True)
        assert snapshot() == before
    if status == 401:
        assert response.headers["WWW-Authenticate"] == "Bearer"


def _route_key(method: str, rule: str) -> tuple[str, str]:
    """("PATCH", "/users/<id:user_id>") and ("PATCH", "/users/{owner}") both give ("PATCH", "/users/*")."""
    return method, re.sub(r"<[^>]+>|\{[^}]+\}", "*", rule)


def test_permission_matrix_covers_every_users_items_and_auth_route(app):
    routes = {
        _route_key(method, rule.rule)
        for rule in app.url_map.iter_rules()
        if rule.endpoint.partition(".")[0] in {"users", "items", "auth"}
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    covered = {_route_key(method, template) for _, method, template, _, _ in MATRIX}

    assert routes - {_route_key(*route) for route in PUBLIC_ROUTES} == covered
