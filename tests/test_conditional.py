"""Conditional requests (RFC 9110): ETags on item, user and own-account reads; 304 for a
matching If-None-Match; If-Match on changes, compared and swapped with the row's version."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import event, select

from tests.factories import PASSWORD, make_item
from tests.helpers import assert_problem
from webapp.database import db
from webapp.models import Item, User


@pytest.fixture
def item(user):
    return make_item(user, "lamp", "bright")


@pytest.fixture
def resource(request, client, user, item, auth_headers):
    """An item (as its owner), the owner's account, or GET /auth/me: the path and headers
    to read it with, and a change the caller may make to it."""
    return {
        "item": (f"/items/{item.id}", f"/items/{item.id}", {"description": "dim"}),
        "user": (f"/users/{user.id}", f"/users/{user.id}", {"username": "alicia"}),
        "me": ("/auth/me", f"/users/{user.id}", {"username": "alicia"}),
    }[request.param] + (auth_headers,)


@pytest.mark.parametrize("resource", ["item", "user", "me"], indirect=True)
def test_a_read_sends_a_strong_etag_and_a_matching_if_none_match_gets_304_without_a_body(client, resource):
    path, _, _, headers = resource
    first = client.get(path, headers=headers)
    tag = first.headers["ETag"]
    assert first.status_code == 200
    assert tag.startswith('"')  # strong: no W/

    for sent in (tag, f'"nope", {tag}', f"W/{tag}", "*"):
        again = client.get(path, headers={**headers, "If-None-Match": sent})
        assert again.status_code == 304, sent
        assert again.get_data() == b""
        assert again.headers["ETag"] == tag

    other = client.get(path, headers={**headers, "If-None-Match": '"nope"'})
    assert other.status_code == 200
    assert other.get_json() == first.get_json()


@pytest.mark.parametrize("resource", ["item", "user", "me"], indirect=True)
def test_a_change_moves_the_etag(client, resource):
    read_path, change_path, change, headers = resource
    before = client.get(read_path, headers=headers).headers["ETag"]

    changed = client.patch(change_path, json=change, headers=headers)

    assert changed.status_code == 200, changed.get_json()
    after = client.get(read_path, headers={**headers, "If-None-Match": before})
    assert after.status_code == 200
    assert after.headers["ETag"] == changed.headers["ETag"] != before


@pytest.mark.parametrize("resource", ["item", "user"], indirect=True)
def test_if_match_with_the_current_etag_changes_and_a_stale_one_is_412_changing_nothing(client, resource):
    read_path, change_path, change, headers = resource
    tag = client.get(read_path, headers=headers).headers["ETag"]
    before = client.get(read_path, headers=headers).get_json()

    for stale in ('"999"', f"W/{tag}", '"0", "998"'):
        refused = client.patch(change_path, json=change, headers={**headers, "If-Match": stale})
        assert_problem(refused, 412)
        assert refused.headers["ETag"] == tag
        assert client.get(read_path, headers=headers).get_json() == before

    accepted = client.patch(change_path, json=change, headers={**headers, "If-Match": tag})
    assert accepted.status_code == 200, accepted.get_json()
    assert accepted.headers["ETag"] != tag
    # The old tag is now stale too.
    assert client.patch(change_path, json=change, headers={**headers, "If-Match": tag}).status_code == 412


def test_if_match_star_matches_any_version(client, item, auth_headers):
    response = client.patch(
        f"/items/{item.id}", json={"name": "any"}, headers={**auth_headers, "If-Match": "*"}
    )

    assert response.status_code == 200


@pytest.mark.parametrize(
    ("path", "ids"),
    [("/items/{}", lambda user, item: item.id), ("/users/{}", lambda user, item: user.id)],
    ids=["item", "user"],
)
def test_a_delete_with_a_stale_if_match_is_412_and_deletes_nothing(
    client, user, item, auth_headers, path, ids
):
    url = path.format(ids(user, item))
    tag = client.get(url, headers=auth_headers).headers["ETag"]

    assert_problem(client.delete(url, headers={**auth_headers, "If-Match": '"41"'}), 412)
    assert client.get(url, headers=auth_headers).status_code == 200

    assert client.delete(url, headers={**auth_headers, "If-Match": tag}).status_code == 200


def test_without_if_match_changes_go_ahead_as_before(client, item, auth_headers):
    for description in ("one", "two", "three"):
        response = client.patch(f"/items/{item.id}", json={"description": description}, headers=auth_headers)
        assert response.status_code == 200
    assert db.session.scalar(select(Item.description).where(Item.id == item.id)) == "three"


def test_two_changes_sent_at_once_with_one_if_match_one_wins_and_the_other_is_412(
    app, client, item, auth_headers
):
    """Both read the item and pass the If-Match check before either writes (a barrier holds
    them at the flush): the version compared in the UPDATE decides."""
    tag = client.get(f"/items/{item.id}", headers=auth_headers).headers["ETag"]
    both_read = threading.Barrier(2)

    def hold(mapper, connection, target) -> None:
        both_read.wait(timeout=10)

    event.listen(Item, "before_update", hold)
    answers: dict[str, int] = {}

    def change(description: str) -> None:
        response = client.patch(
            f"/items/{item.id}", json={"description": description}, headers={**auth_headers, "If-Match": tag}
        )
        answers[description] = response.status_code

    try:
        threads = [threading.Thread(target=change, args=(name,)) for name in ("left", "right")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    finally:
        event.remove(Item, "before_update", hold)

    assert sorted(answers.values()) == [200, 412], answers
    winner = next(name for name, status in answers.items() if status == 200)
    assert db.session.scalar(select(Item.description).where(Item.id == item.id)) == winner


def test_a_login_does_not_move_the_accounts_etag(client, user, auth_headers):
    tag = client.get("/auth/me", headers=auth_headers).headers["ETag"]

    assert (
        client.post("/auth/token", json={"username": user.username, "password": PASSWORD}).status_code == 200
    )

    assert client.get("/auth/me", headers={**auth_headers, "If-None-Match": tag}).status_code == 304
    assert db.session.scalar(select(User.last_login_at).where(User.id == user.id)) is not None
