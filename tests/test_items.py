"""Items over HTTP: create, read, filtered lists, update and delete by owner or admin, input validation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.factories import login, make_item, make_user
from tests.helpers import PagedList, Permission, assert_problem, cases, expect, permission_test, utc_time
from webapp.database import db

ITEM_FIELDS = {"id", "name", "description", "user_id", "created_at", "updated_at"}


PERMISSIONS = [
    Permission("list items", "GET", "/items", None, expect(401, 200, 200, 200)),
    Permission(
        "create item",
        "POST",
        "/items",
        {"name": "fresh item", "description": "new"},
        expect(401, 201, 201, 201),
    ),
    Permission("get item", "GET", "/items/{item}", None, expect(401, 200, 200, 200)),
    Permission(
        "change item",
        "PATCH",
        "/items/{item}",
        {"name": "renamed", "description": "more"},
        expect(401, 403, 200, 200),
    ),
    Permission("delete item", "DELETE", "/items/{item}", None, expect(401, 403, 200, 200)),
]
test_each_actor_gets_the_status_the_contract_gives = permission_test(PERMISSIONS)


def paged_list(request) -> PagedList:
    """GET /items as a logged-in user, grown by items that user owns (tests/test_pagination.py)."""
    owner = request.getfixturevalue("user")
    return PagedList(
        request.getfixturevalue("auth_headers"), lambda label: make_item(owner, label).id, "name"
    )


@pytest.fixture
def targets(world) -> dict[str, int]:
    """The item the permission rows name: ``{item}``, owned by the owner."""
    return {"item": make_item(world["owner"], name="owned item").id}


def names(response) -> list[str]:
    assert response.status_code == 200, response.get_json()
    return [item["name"] for item in response.get_json()["items"]]


@pytest.fixture
def other(app):
    """A second regular account."""
    return make_user("bob")


@pytest.fixture
def other_headers(client, other) -> dict[str, str]:
    return login(client, other.username)["headers"]


@pytest.fixture
def item(user):
    """An item owned by ``user`` (alice)."""
    return make_item(user, "Desk lamp", "Brass, with a green shade")


# --- create ------------------------------------------------------------------------------


def test_create_returns_201_with_every_field_and_the_caller_as_owner(client, user, auth_headers):
    before = datetime.now(UTC)
    response = client.post(
        "/items", headers=auth_headers, json={"name": "Lamp", "description": "A desk lamp"}
    )

    assert response.status_code == 201
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == ITEM_FIELDS
    assert isinstance(body["id"], int)
    assert body["name"] == "Lamp"
    assert body["description"] == "A desk lamp"
    assert body["user_id"] == user.id
    created_at, updated_at = utc_time(body["created_at"]), utc_time(body["updated_at"])
    assert before - timedelta(seconds=5) <= created_at <= datetime.now(UTC) + timedelta(seconds=5)
    assert updated_at >= created_at


def test_created_item_is_readable_with_the_same_body(client, auth_headers):
    created = client.post("/items", headers=auth_headers, json={"name": "Lamp"}).get_json()

    response = client.get(f"/items/{created['id']}", headers=auth_headers)

    assert response.status_code == 200
    assert response.get_json() == created


@pytest.mark.parametrize("payload", [{"name": "Lamp"}, {"name": "Lamp", "description": None}])
def test_create_without_a_description_stores_null(client, auth_headers, payload):
    response = client.post("/items", headers=auth_headers, json=payload)

    assert response.status_code == 201
    assert response.get_json()["description"] is None


def test_create_with_a_name_another_account_holds_is_409_problem(client, other, auth_headers):
    make_item(other, "Lamp")

    response = client.post("/items", headers=auth_headers, json={"name": "Lamp"})

    body = assert_problem(response, 409)
    assert "name" in body["detail"]


# --- read --------------------------------------------------------------------------------


def test_any_account_reads_an_item_it_does_not_own(client, item, other_headers, user):
    response = client.get(f"/items/{item.id}", headers=other_headers)

    assert response.status_code == 200
    body = response.get_json()
    assert body["id"] == item.id
    assert body["name"] == "Desk lamp"
    assert body["description"] == "Brass, with a green shade"
    assert body["user_id"] == user.id


def test_reading_a_missing_item_is_404_problem(client, auth_headers):
    assert_problem(client.get("/items/4242", headers=auth_headers), 404)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": "Basic YWxpY2U6cHc="},
        {"Authorization": ""},
    ],
    ids=["none", "unknown-token", "basic-scheme", "empty"],
)
@pytest.mark.parametrize(
    ("method", "path", "payload"),
    [
        ("get", "/items", None),
        ("post", "/items", {"name": "Lamp"}),
        ("get", "/items/{id}", None),
        ("patch", "/items/{id}", {"name": "Lamp"}),
        ("delete", "/items/{id}", None),
    ],
)
def test_requests_without_a_valid_token_are_401_and_change_nothing(
    client, item, auth_headers, headers, method, path, payload
):
    response = getattr(client, method)(path.format(id=item.id), headers=headers, json=payload)

    assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    listed = client.get("/items", headers=auth_headers).get_json()
    assert [(i["id"], i["name"]) for i in listed["items"]] == [(item.id, "Desk lamp")]


# --- list filters ------------------------------------------------------------------------


def test_list_filters_names_by_case_insensitive_substring(client, user, auth_headers):
    for name in ("Red LAMP", "blue lamp", "Chair", "Lampshade"):
        make_item(user, name)

    response = client.get("/items", headers=auth_headers, query_string={"name": "lAmP"})

    assert names(response) == ["Red LAMP", "blue lamp", "Lampshade"]
    assert response.get_json()["total"] == 3


def test_list_filters_descriptions_by_case_insensitive_substring(client, user, auth_headers):
    make_item(user, "a", "Made of OAK")
    make_item(user, "b", "oak veneer")
    make_item(user, "c", None)
    make_item(user, "d", "steel")

    response = client.get("/items", headers=auth_headers, query_string={"description": "Oak"})

    assert names(response) == ["a", "b"]
    assert response.get_json()["total"] == 2


def test_list_combines_name_and_description_filters(client, user, auth_headers):
    make_item(user, "oak table", "solid oak")
    make_item(user, "oak chair", "pine really")
    make_item(user, "pine table", "solid oak legs")

    response = client.get(
        "/items", headers=auth_headers, query_string={"name": "table", "description": "oak"}
    )

    assert names(response) == ["oak table", "pine table"]


def test_list_filter_without_a_match_is_an_empty_page(client, item, auth_headers):
    response = client.get("/items", headers=auth_headers, query_string={"name": "sofa"})

    assert response.status_code == 200
    assert response.get_json() == {"page": 1, "limit": 20, "total": 0, "items": []}


@pytest.mark.parametrize(
    ("field", "needle", "expected"),
    [
        ("name", "%", ["100% cotton"]),
        ("name", "0%", ["100% cotton"]),
        ("name", "_", ["a_b"]),
        ("name", "a_b", ["a_b"]),
        ("name", "/", ["a/b"]),
        ("name", "\\", ["a\\b"]),
        ("description", "%", ["100% cotton"]),
        ("description", "_", ["a_b"]),
    ],
)
def test_list_filters_treat_wildcards_literally(client, user, auth_headers, field, needle, expected):
    for name in ("100% cotton", "100 cotton", "a_b", "axb", "a/b", "a\\b"):
        make_item(user, name, f"about {name}")

    response = client.get("/items", headers=auth_headers, query_string={field: needle})

    assert names(response) == expected


# --- update ------------------------------------------------------------------------------


@pytest.mark.parametrize("caller", ["owner", "admin"])
def test_owner_or_admin_updates_an_item(client, item, user, auth_headers, admin_headers, caller):
    headers = auth_headers if caller == "owner" else admin_headers

    response = client.patch(
        f"/items/{item.id}", headers=headers, json={"name": "Floor lamp", "description": "Tall"}
    )

    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == ITEM_FIELDS
    assert (body["id"], body["name"], body["description"], body["user_id"]) == (
        item.id,
        "Floor lamp",
        "Tall",
        user.id,
    )
    assert client.get(f"/items/{item.id}", headers=headers).get_json() == body


def test_patch_changes_only_the_fields_sent(client, item, auth_headers):
    response = client.patch(f"/items/{item.id}", headers=auth_headers, json={"description": "Chrome"})

    assert response.status_code == 200
    assert (response.get_json()["name"], response.get_json()["description"]) == ("Desk lamp", "Chrome")


def test_patch_by_another_account_is_403_and_changes_nothing(client, item, other_headers):
    response = client.patch(f"/items/{item.id}", headers=other_headers, json={"name": "Mine now"})

    assert_problem(response, 403)
    assert client.get(f"/items/{item.id}", headers=other_headers).get_json()["name"] == "Desk lamp"


def test_patch_of_a_missing_item_is_404_problem(client, auth_headers):
    assert_problem(client.patch("/items/4242", headers=auth_headers, json={"name": "x"}), 404)


def test_renaming_to_another_items_name_is_409_and_keeps_the_old_name(client, user, item, auth_headers):
    make_item(user, "Chair")

    response = client.patch(f"/items/{item.id}", headers=auth_headers, json={"name": "Chair"})

    body = assert_problem(response, 409)
    assert "name" in body["detail"]
    assert client.get(f"/items/{item.id}", headers=auth_headers).get_json()["name"] == "Desk lamp"


@pytest.mark.parametrize(
    "payload", [{"name": "Desk lamp"}, {"name": "Desk lamp", "description": "Re-sent name, new text"}]
)
def test_patch_with_the_items_own_current_name_is_not_a_conflict(client, item, auth_headers, payload):
    response = client.patch(f"/items/{item.id}", headers=auth_headers, json=payload)

    assert response.status_code == 200
    body = response.get_json()
    assert body["name"] == "Desk lamp"
    assert body["description"] == payload.get("description", "Brass, with a green shade")


def test_patch_description_null_clears_it(client, item, auth_headers):
    response = client.patch(f"/items/{item.id}", headers=auth_headers, json={"description": None})

    assert response.status_code == 200
    assert response.get_json()["description"] is None
    assert client.get(f"/items/{item.id}", headers=auth_headers).get_json()["description"] is None


def test_patch_moves_updated_at_forward_and_keeps_created_at(client, item, auth_headers):
    long_ago = datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)
    item.created_at = item.updated_at = long_ago
    db.session.commit()

    response = client.patch(f"/items/{item.id}", headers=auth_headers, json={"description": "New"})

    assert response.status_code == 200
    body = response.get_json()
    assert utc_time(body["created_at"]) == long_ago
    assert utc_time(body["updated_at"]) > long_ago + timedelta(days=365)


# --- delete ------------------------------------------------------------------------------


@pytest.mark.parametrize("caller", ["owner", "admin"])
def test_owner_or_admin_deletes_an_item_which_is_then_gone(client, item, auth_headers, admin_headers, caller):
    headers = auth_headers if caller == "owner" else admin_headers

    response = client.delete(f"/items/{item.id}", headers=headers)

    assert response.status_code == 200
    assert set(response.get_json()) == {"detail"}
    assert response.get_json()["detail"]
    assert_problem(client.get(f"/items/{item.id}", headers=headers), 404)
    assert client.get("/items", headers=headers).get_json()["total"] == 0


def test_delete_by_another_account_is_403_and_keeps_the_item(client, item, other_headers):
    assert_problem(client.delete(f"/items/{item.id}", headers=other_headers), 403)

    assert client.get(f"/items/{item.id}", headers=other_headers).status_code == 200


def test_delete_of_a_missing_item_is_404_problem(client, auth_headers):
    assert_problem(client.delete("/items/4242", headers=auth_headers), 404)


def test_deleted_name_can_be_used_again(client, item, auth_headers):
    assert client.delete(f"/items/{item.id}", headers=auth_headers).status_code == 200

    response = client.post("/items", headers=auth_headers, json={"name": "Desk lamp"})

    assert response.status_code == 201
    assert response.get_json()["name"] == "Desk lamp"


# --- validation --------------------------------------------------------------------------

JSON_ONLY = {422}
CLIENT_ERROR = {400, 422}

# (request keyword arguments, accepted statuses, the field a 422 must name or None)
BAD_BODIES = {
    "name-int": ({"json": {"name": 123}}, JSON_ONLY, "name"),
    "name-null": ({"json": {"name": None}}, JSON_ONLY, "name"),
    "name-list": ({"json": {"name": ["Lamp"]}}, JSON_ONLY, "name"),
    "name-object": ({"json": {"name": {"en": "Lamp"}}}, JSON_ONLY, "name"),
    "name-bool": ({"json": {"name": True}}, JSON_ONLY, "name"),
    "description-int": ({"json": {"name": "Lamp", "description": 5}}, JSON_ONLY, "description"),
    "description-list": ({"json": {"name": "Lamp", "description": ["x"]}}, JSON_ONLY, "description"),
    "unknown-field": ({"json": {"name": "Lamp", "colour": "red"}}, JSON_ONLY, "colour"),
    "read-only-id": ({"json": {"name": "Lamp", "id": 7}}, JSON_ONLY, "id"),
    "read-only-user_id": ({"json": {"name": "Lamp", "user_id": 1}}, JSON_ONLY, "user_id"),
    "read-only-created_at": (
        {"json": {"name": "Lamp", "created_at": "2020-01-01T00:00:00+00:00"}},
        JSON_ONLY,
        "created_at",
    ),
    "empty-name": ({"json": {"name": ""}}, JSON_ONLY, "name"),
    "name-101-chars": ({"json": {"name": "n" * 101}}, JSON_ONLY, "name"),
    "description-1001-chars": (
        {"json": {"name": "Lamp", "description": "d" * 1001}},
        JSON_ONLY,
        "description",
    ),
    "name-leading-space": ({"json": {"name": " Lamp"}}, JSON_ONLY, "name"),
    "name-trailing-space": ({"json": {"name": "Lamp "}}, JSON_ONLY, "name"),
    "name-trailing-newline": ({"json": {"name": "Lamp\n"}}, JSON_ONLY, "name"),
    "name-only-spaces": ({"json": {"name": "   "}}, JSON_ONLY, "name"),
    "name-inner-tab": ({"json": {"name": "La\tmp"}}, JSON_ONLY, "name"),
    "name-inner-nul": ({"json": {"name": "La\u0000mp"}}, JSON_ONLY, "name"),
    "description-nul": ({"json": {"name": "Lamp", "description": "a\u0000b"}}, JSON_ONLY, "description"),
    "name-trailing-ideographic-space": ({"json": {"name": "Lamp\u3000"}}, JSON_ONLY, "name"),
    "name-trailing-record-separator": ({"json": {"name": "Lamp\u001e"}}, JSON_ONLY, "name"),
    "malformed-json": ({"data": '{"name": ', "content_type": "application/json"}, CLIENT_ERROR, None),
    "json-list": ({"data": '[{"name": "Lamp"}]', "content_type": "application/json"}, CLIENT_ERROR, None),
    "json-number": ({"data": "5", "content_type": "application/json"}, CLIENT_ERROR, None),
    "json-null": ({"data": "null", "content_type": "application/json"}, CLIENT_ERROR, None),
    "json-string": ({"data": '"Lamp"', "content_type": "application/json"}, CLIENT_ERROR, None),
}
# Bodies a client means as data but the server must not read as JSON.
NOT_JSON = {
    "form-encoded": ({"data": {"name": "Lamp"}}, {415}, None),
    "text-plain": ({"data": '{"name": "Lamp"}', "content_type": "text/plain"}, {415}, None),
    "no-body": ({}, {415}, None),
    "empty-json-body": ({"data": "", "content_type": "application/json"}, {400}, None),
}
MISSING_NAME = {
    "empty-object": ({"json": {}}, JSON_ONLY, "name"),
    "description-only": ({"json": {"description": "No name"}}, JSON_ONLY, "name"),
}


def assert_rejected(response, statuses: set[int], field: str | None) -> None:
    body = assert_problem(response, *statuses)
    if response.status_code == 422:
        assert isinstance(body["errors"], dict)
        if field is not None:
            assert field in body["errors"]


@pytest.mark.parametrize(("request_kwargs", "statuses", "field"), cases(BAD_BODIES | NOT_JSON | MISSING_NAME))
def test_create_rejects_bad_input_with_a_problem(client, auth_headers, request_kwargs, statuses, field):
    response = client.post("/items", headers=auth_headers, **request_kwargs)

    assert_rejected(response, statuses, field)
    assert client.get("/items", headers=auth_headers).get_json()["total"] == 0


@pytest.mark.parametrize(
    ("request_kwargs", "statuses", "field"),
    cases(BAD_BODIES | NOT_JSON),
)
def test_patch_rejects_bad_input_with_a_problem_and_changes_nothing(
    client, item, auth_headers, request_kwargs, statuses, field
):
    before = client.get(f"/items/{item.id}", headers=auth_headers).get_json()

    response = client.patch(f"/items/{item.id}", headers=auth_headers, **request_kwargs)

    assert_rejected(response, statuses, field)
    assert client.get(f"/items/{item.id}", headers=auth_headers).get_json() == before


ODD_NAMES = {
    "100-ascii": "n" * 100,
    "100-accented": "é" * 100,
    "100-emoji": "😀" * 100,
    "mixed": "Café crème ☕ — naïve façade",
    "cjk": "日本語の名前",
    "astral-and-combining": "🦄𐍈 e\u0301",
    "inner-spaces": "a  b \u00a0c",
}


@pytest.mark.parametrize("name", ODD_NAMES.values(), ids=ODD_NAMES.keys())
def test_long_and_non_ascii_names_round_trip_exactly(client, auth_headers, name):
    description = f"{name} " * (1000 // (len(name) + 1))
    created = client.post("/items", headers=auth_headers, json={"name": name, "description": description})

    assert created.status_code == 201, created.get_json()
    assert created.get_json()["name"] == name
    fetched = client.get(f"/items/{created.get_json()['id']}", headers=auth_headers).get_json()
    assert (fetched["name"], fetched["description"]) == (name, description)
    assert names(client.get("/items", headers=auth_headers, query_string={"name": name})) == [name]


@pytest.mark.parametrize("name", ODD_NAMES.values(), ids=ODD_NAMES.keys())
def test_patch_to_long_and_non_ascii_names_round_trips_exactly(client, item, auth_headers, name):
    response = client.patch(f"/items/{item.id}", headers=auth_headers, json={"name": name})

    assert response.status_code == 200, response.get_json()
    assert client.get(f"/items/{item.id}", headers=auth_headers).get_json()["name"] == name
