"""Factory functions for test data; each commits and returns the new row."""

from __future__ import annotations

import base64
import itertools

from webapp.database import db
from webapp.models import Item, Role, User

PASSWORD = "correct horse battery"
_sequence = itertools.count(1)


def make_user(
    username: str | None = None, *, role: int = Role.USER, password: str = PASSWORD, activated: bool = True
) -> User:
    user = User(username=username or f"user{next(_sequence)}", role_id=role, activated=activated)
    user.set_password(password)
    db.session.add(user)
    db.session.commit()
    return user


def make_item(owner: User, name: str | None = None, description: str | None = None) -> Item:
    item = Item(name=name or f"item {next(_sequence)}", description=description, user_id=owner.id)
    db.session.add(item)
    db.session.commit()
    return item


def bearer(access_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token}"}


def basic(username: str, password: str = PASSWORD) -> dict[str, str]:
    """HTTP Basic credentials (the docs)."""
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


def login(client, username: str, password: str = PASSWORD) -> dict:
    """Log in through the API; the token body plus ready-made ``headers``."""
    response = client.post("/auth/token", json={"username": username, "password": password})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    return {**body, "headers": bearer(body["access_token"])}
