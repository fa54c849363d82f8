"""Property tests: whatever JSON arrives, the schemas answer valid data or a ValidationError,
and the endpoints answer a documented status, never a 500."""

from __future__ import annotations

from datetime import UTC

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError, fields
from sqlalchemy import select

from tests.factories import make_item
from webapp.database import db
from webapp.fields import NAME
from webapp.items.schemas import ItemCreateSchema, ItemSchema, ItemUpdateSchema
from webapp.models import Item, User
from webapp.pagination import Rows
from webapp.users.schemas import UserCreateSchema, UserSchema, UserUpdateSchema

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=10,
)
FIELDS = ["name", "description", "username", "password", "role_id", "activated", "id", "user_id"]
BODIES = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), JSON, max_size=5) | JSON
PROPERTY_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def load_or_reject(schema, data):
    """The loaded data, or None when the schema refused it with messages (and only then)."""
    try:
        return schema.load(data)
    except ValidationError as error:
        messages = error.messages
    assert messages
    return None


@PROPERTY_SETTINGS
@given(data=BODIES)
def test_item_schemas_return_valid_items_or_a_validation_error(app, data):
    for schema in (ItemCreateSchema(), ItemUpdateSchema()):
        loaded = load_or_reject(schema, data)
        if loaded is None:
            continue
        assert set(loaded) <= {"name", "description"}
        if "name" in loaded:
            assert 1 <= len(loaded["name"]) <= Item.NAME_LENGTH
            assert NAME.regex.fullmatch(loaded["name"])
        if loaded.get("description") is not None:
            assert len(loaded["description"]) <= Item.DESCRIPTION_LENGTH


@PROPERTY_SETTINGS
@given(data=BODIES)
def test_user_schemas_return_valid_users_or_a_validation_error(app, data):
    for schema in (UserCreateSchema(), UserUpdateSchema()):
        loaded = load_or_reject(schema, data)
        if loaded is None:
            continue
        assert set(loaded) <= {"username", "password", "role_id", "activated"}
        if "username" in loaded:
            assert 1 <= len(loaded["username"]) <= User.USERNAME_LENGTH
            assert loaded["username"].isascii()
        if "role_id" in loaded:
            assert loaded["role_id"] in (1, 2)
            assert type(loaded["role_id"]) is int
        if "activated" in loaded:
            assert type(loaded["activated"]) is bool


@pytest.mark.parametrize(
    ("method", "path"),
    [("post", "/items"), ("patch", "/items/{item}"), ("post", "/users"), ("patch", "/users/{user}")],
)
@PROPERTY_SETTINGS
@given(body=BODIES)
def test_any_json_body_gets_a_documented_answer_never_a_500(
    client, admin_headers, admin, user, method, path, body
):
    item = db.session.scalar(select(Item).limit(1)) or make_item(admin)
    url = path.format(item=item.id, user=user.id)
    response = getattr(client, method)(url, json=body, headers=admin_headers)

    assert response.status_code in {200, 201, 400, 403, 409, 415, 422}, response.get_json()
    if response.status_code >= 400:
        assert response.mimetype == "application/problem+json"
        assert response.get_json()["detail"]


ROW_VALUES = {
    "id": st.integers(min_value=1, max_value=2**63 - 1),
    "user_id": st.integers(min_value=1, max_value=2**63 - 1),
    "role_id": st.integers(min_value=1, max_value=2),
    "name": st.text(max_size=20),
    "username": st.text(max_size=20),
    "description": st.none() | st.text(max_size=20),
    "activated": st.booleans(),
    "created_at": st.datetimes(timezones=st.just(UTC)),
    "updated_at": st.datetimes(timezones=st.just(UTC)),
    "version": st.integers(min_value=1),
}


@pytest.mark.parametrize("schema", [ItemSchema, UserSchema])
@given(data=st.data())
@PROPERTY_SETTINGS
def test_a_page_dumps_its_rows_exactly_as_the_item_schema_would(schema, data):
    """The page's fast row dumping (webapp.pagination.Rows) and marshmallow's own agree."""
    keys = [field.attribute or name for name, field in schema().dump_fields.items()]
    rows = data.draw(st.lists(st.fixed_dictionaries({key: ROW_VALUES[key] for key in keys}), max_size=5))

    fast = Rows(schema)._serialize(rows, "rows", None)

    assert fast == fields.List(fields.Nested(schema))._serialize(rows, "rows", None)
