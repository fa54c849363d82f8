"""The OpenAPI document as client generators read it: named operations, schemas per
direction, one RoleId, a Problem contract with examples, and every response header the
server sends (`make client` generates a typed client from it and runs a scenario)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from tests.factories import basic, make_item
from tests.helpers import PROBLEM
from tests.test_client_versions import deprecate
from tests.test_docs import operations, resolve
from webapp.config import Config
from webapp.models import Role
from webapp.openapi_conventions import PROBLEM_EXAMPLES, RESPONSE_HEADERS, operation_id

# A generated client names its functions after these: renaming one breaks every client. (A
# resource added later brings its own, checked for presence and uniqueness with the rest.)
OPERATION_IDS = {
    "post /auth/token": "login",
    "post /auth/refresh": "refreshTokens",
    "get /auth/me": "getMyAccount",
    "post /auth/logout": "logout",
    "get /auth/sessions": "listMySessions",
    "delete /auth/sessions/{session_id}": "endMySession",
    "get /items": "listItems",
    "post /items": "createItem",
    "get /items/{item_id}": "getItem",
    "patch /items/{item_id}": "updateItem",
    "delete /items/{item_id}": "deleteItem",
    "get /roles": "listRoles",
    "get /roles/{role_id}": "getRole",
    "get /users": "listUsers",
    "post /users": "createUser",
    "get /users/{user_id}": "getUser",
    "patch /users/{user_id}": "updateUser",
    "delete /users/{user_id}": "deactivateUser",
    "get /users/{user_id}/sessions": "listUserSessions",
    "delete /users/{user_id}/sessions": "endUserSessions",
    "get /versions": "listClientVersions",
    "get /healthz": "checkLiveness",
    "get /readyz": "checkReadiness",
}
# The headers of RESPONSE_HEADERS plus the ones documented inline (Link).
CHECKED_HEADERS = {name for name, _ in RESPONSE_HEADERS.values()} | {"Link"}


@pytest.fixture
def spec(client, user) -> dict:
    response = client.get("/openapi.json", headers=basic(user.username))
    assert response.status_code == 200
    return response.get_json()


def refs(node) -> set[str]:
    """The component names a part of the document refers to, directly or through others."""
    if isinstance(node, dict):
        found = {node["$ref"].rsplit("/", 1)[1]} if "$ref" in node else set()
        return found.union(*(refs(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(refs(value) for value in node))
    return set()


def closure(spec: dict, names: set[str]) -> set[str]:
    """Schema components ``names`` and every schema they refer to."""
    seen: set[str] = set()
    while names - seen:
        name = (names - seen).pop()
        seen.add(name)
        names |= refs(spec["components"]["schemas"].get(name, {}))
    return {name for name in seen if name in spec["components"]["schemas"]}


def test_every_operation_has_the_operation_id_clients_are_named_by(spec):
    found = {f"{method} {path}": operation.get("operationId") for path, method, operation in operations(spec)}

    assert {key: found.get(key) for key in OPERATION_IDS} == OPERATION_IDS
    assert None not in found.values()
    assert len(set(found.values())) == len(found)


@pytest.mark.parametrize(
    ("summary", "name"),
    [("List items", "listItems"), ("Get a user's sessions", "getUserSessions"), ("Login", "login")],
)
def test_an_operation_id_is_its_summary_as_a_function_name(summary, name):
    assert operation_id(summary) == name


def test_a_summary_that_makes_no_function_name_is_refused():
    with pytest.raises(ValueError, match="letters only"):
        operation_id("Liveness: the process answers")


def test_every_operation_has_a_description_and_explicit_security(spec):
    undescribed = [f"{m} {p}" for p, m, op in operations(spec) if not op.get("description")]
    unsecured = [f"{m} {p}" for p, m, op in operations(spec) if "security" not in op]

    assert undescribed == []
    assert unsecured == []
    assert spec["paths"]["/roles"]["get"]["security"] == []


def test_the_document_names_its_servers_contact_and_license(spec):
    assert spec["servers"] == [{"url": "/", "description": "This deployment"}]
    assert spec["info"]["contact"]["name"]
    assert spec["info"]["license"] == {"name": "MIT", "url": "https://opensource.org/license/mit"}


@pytest.mark.parametrize(
    "app_config",
    [{"API_SERVER_URL": "https://api.example.org", "API_CONTACT_EMAIL": "api@example.org"}],
)
def test_a_deployment_names_its_own_server_and_contact(spec):
    assert spec["servers"][0]["url"] == "https://api.example.org"
    assert spec["info"]["contact"]["email"] == "api@example.org"


def test_no_schema_serves_both_as_a_body_and_as_an_answer(spec):
    bodies, answers = set(), set()
    for _, _, operation in operations(spec):
        bodies |= refs(operation.get("requestBody", {}))
        for status, response in operation["responses"].items():
            if status != "default" and int(status) < 300:
                answers |= refs(response)
    bodies, answers = closure(spec, bodies), closure(spec, answers)

    assert bodies & answers <= {"RoleId"}
    assert {"ItemCreate", "ItemUpdate", "UserCreate", "UserUpdate", "Login", "Refresh"} <= bodies
    # Nothing in a body that the server would refuse or ignore: no read-only field.
    read_only = [
        f"{name}.{field}"
        for name in bodies
        for field, prop in spec["components"]["schemas"][name].get("properties", {}).items()
        if prop.get("readOnly")
    ]
    assert read_only == []
    assert set(spec["components"]["schemas"]["ItemCreate"]["properties"]) == {"name", "description"}


def test_every_field_of_an_answer_is_required(spec):
    answers: set[str] = set()
    for _, _, operation in operations(spec):
        for status, response in operation["responses"].items():
            if status != "default" and int(status) < 300:
                answers |= refs(response)
    optional = [
        f"{name}.{field}"
        for name in closure(spec, answers) - {"RoleId"}
        for field in spec["components"]["schemas"][name].get("properties", {})
        if field not in spec["components"]["schemas"][name].get("required", [])
    ]

    assert optional == []
    assert spec["components"]["schemas"]["Session"]["properties"]["current"]["type"] == "boolean"


def test_every_role_id_is_the_one_role_id_component_with_named_values(client, spec):
    role_ids = [
        prop
        for schema in spec["components"]["schemas"].values()
        for field, prop in schema.get("properties", {}).items()
        if field == "role_id"
    ]
    component = spec["components"]["schemas"]["RoleId"]
    served = client.get("/roles").get_json()

    assert len(role_ids) == 4  # User, UserCreate, UserCreated, UserUpdate
    assert all(prop == {"$ref": "#/components/schemas/RoleId"} for prop in role_ids)
    assert component["enum"] == [role["id"] for role in served] == [Role.ADMIN, Role.USER]
    assert component["x-enum-varnames"] == [role["name"].upper() for role in served]


def test_the_page_size_documents_its_default_and_the_page_number_none(spec):
    parameters = {p["name"]: p for p in spec["paths"]["/items"]["get"]["parameters"]}

    assert parameters["limit"]["schema"]["default"] == Config.PAGE_LIMIT_DEFAULT
    # A generated client sends a documented default with every call: page=1 with a cursor
    # would be a 400.
    assert "default" not in parameters["page"]["schema"]


def test_the_problem_schema_requires_its_members_and_allows_extensions(spec):
    schema = spec["components"]["schemas"]["Problem"]

    assert set(schema["required"]) == {"type", "title", "status", "detail"}
    assert schema.get("additionalProperties", True) is not False


@pytest.mark.parametrize("status", [401, 403, 404, 409, 412, 415, 422, 426, 429, 503])
def test_each_error_status_has_an_example_the_schema_accepts(spec, status):
    response = next(
        resolve(spec, op["responses"][str(status)])
        for _, _, op in operations(spec)
        if str(status) in op["responses"]
    )
    example = response["content"][PROBLEM]["example"]
    schema = spec["components"]["schemas"]["Problem"]

    assert example["status"] == status
    assert example["detail"] == PROBLEM_EXAMPLES[status]
    assert set(schema["required"]) <= set(example) <= set(schema["properties"])
    assert ("errors" in example) == (status == 422)


def documented_headers(spec: dict, method: str, path: str, status: int) -> set[str]:
    responses = spec["paths"][path][method]["responses"]
    response = resolve(spec, responses.get(str(status), responses["default"]))
    return set(response.get("headers", {}))


def sent_headers(response) -> set[str]:
    return {name for name in CHECKED_HEADERS if name in response.headers}


def test_every_header_the_server_sends_is_documented_on_that_answer(client, spec, user, auth_headers):
    item = make_item(user, "lamp")
    deprecate("1.0", deprecated_at=datetime(2026, 11, 30, tzinfo=UTC), sunset=date(2099, 6, 30))
    gated = {**auth_headers, "X-Version": "1.0"}
    etag = client.get(f"/items/{item.id}", headers=auth_headers).headers["ETag"]
    calls = [
        ("get", "/items", "/items?limit=1", gated),
        ("get", "/items/{item_id}", f"/items/{item.id}", gated),
        ("get", "/items/{item_id}", f"/items/{item.id}", {**gated, "If-None-Match": etag}),
        ("patch", "/items/{item_id}", f"/items/{item.id}", {**gated, "If-Match": '"0"'}),
        ("get", "/auth/me", "/auth/me", {"X-Version": "1.0"}),
        ("get", "/roles", "/roles", {"X-Version": "1.0"}),
        ("get", "/items", "/items?cursor=forged", gated),
    ]
    seen: dict[int, set[str]] = {}
    undocumented = []
    for method, path, url, headers in calls:
        response = client.open(
            url, method=method.upper(), headers=headers, json={} if method == "patch" else None
        )
        sent = sent_headers(response)
        seen.setdefault(response.status_code, set()).update(sent)
        missing = sent - documented_headers(spec, method, path, response.status_code)
        if missing:
            undocumented.append(f"{method} {url} {response.status_code}: {sorted(missing)}")

    assert undocumented == []
    # The calls met each header: the check above was not vacuous.
    assert set().union(*seen.values()) == CHECKED_HEADERS - {"Retry-After"}
    assert set(seen) == {200, 304, 400, 401, 412}


@pytest.mark.parametrize("status", [429, 503])
def test_answers_that_ask_to_wait_document_retry_after(spec, status):
    assert "Retry-After" in documented_headers(spec, "post", "/auth/token", status)
