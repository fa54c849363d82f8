"""API docs: HTTP Basic on /docs and /openapi.json, the offline ReDoc page and the OpenAPI document."""

import re

import pytest

from tests.factories import PASSWORD, basic, make_user
from tests.helpers import PROBLEM
from webapp.database import db

DOCS_PATHS = ["/docs", "/openapi.json"]
HTTP_METHODS = {"get", "post", "put", "patch", "delete"}


def openapi_path(rule: str) -> str:
    """/items/<id:item_id> -> /items/{item_id}"""
    return re.sub(r"<(?:[^<>:]+:)?([^<>]+)>", r"{\1}", rule)


def resolve(spec: dict, node: dict) -> dict:
    while "$ref" in node:
        *_, section, name = node["$ref"].split("/")
        node = spec["components"][section][name]
    return node


def operations(spec: dict):
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield path, method, operation


def parameters_of(spec: dict, path: str, operation: dict) -> list[dict]:
    """An operation's parameters: its path's (X-Version, ids) and its own, resolved."""
    listed = spec["paths"][path].get("parameters", []) + operation.get("parameters", [])
    return [resolve(spec, parameter) for parameter in listed]


def concrete(path: str) -> str:
    """A requestable URL for a spec path: every id is 1."""
    return re.sub(r"\{[^}]+\}", "1", path)


@pytest.fixture
def docs_headers(user) -> dict[str, str]:
    return basic(user.username, PASSWORD)


@pytest.fixture
def spec(client, docs_headers) -> dict:
    response = client.get("/openapi.json", headers=docs_headers)
    assert response.status_code == 200
    return response.get_json()


@pytest.fixture
def deactivated(app):
    return make_user("gone", activated=False)


@pytest.mark.parametrize("path", DOCS_PATHS)
@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-credentials"),
        pytest.param(basic("alice", "wrong password"), id="wrong-password"),
        pytest.param(basic("nobody", PASSWORD), id="unknown-user"),
        pytest.param(basic("gone", PASSWORD), id="deactivated-user"),
        pytest.param(basic("", PASSWORD), id="empty-username"),
        pytest.param({"Authorization": "Basic !!!not-base64"}, id="malformed"),
    ],
)
def test_docs_refuse_missing_or_bad_basic_credentials(client, user, deactivated, path, headers):
    response = client.get(path, headers=headers)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic ")
    assert response.mimetype == PROBLEM
    assert response.get_json()["detail"]


@pytest.mark.parametrize("path", DOCS_PATHS)
def test_docs_refuse_a_bearer_token(client, user, auth_headers, path):
    response = client.get(path, headers=auth_headers)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic ")


@pytest.mark.parametrize("path", DOCS_PATHS)
def test_docs_open_with_an_active_accounts_credentials(client, docs_headers, path):
    response = client.get(path, headers=docs_headers)

    assert response.status_code == 200


def test_docs_close_once_the_account_is_deactivated(client, user, docs_headers):
    user.activated = False
    db.session.commit()

    assert client.get("/docs", headers=docs_headers).status_code == 401


def test_redoc_page_loads_its_script_from_the_app_not_a_cdn(client, docs_headers):
    page = client.get("/docs", headers=docs_headers)

    assert page.status_code == 200
    assert page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert not re.search(r"(?:https?:)?//[\w.-]+\.\w", html)
    sources = re.findall(r"<script[^>]*\bsrc=\"([^\"]+)\"", html)
    assert sources
    for source in sources:
        with client.get(source) as script:
            assert script.status_code == 200
            assert "javascript" in script.mimetype
            assert len(script.get_data()) > 100_000


def test_root_redirects_to_docs(client):
    response = client.get("/")

    assert response.status_code in {301, 302, 303, 307, 308}
    assert response.headers["Location"].endswith("/docs")


def test_logo_is_a_png(client):
    with client.get("/logo.png") as response:
        assert response.status_code == 200
        assert response.mimetype == "image/png"
        assert response.get_data().startswith(b"\x89PNG\r\n\x1a\n")


@pytest.mark.parametrize(
    "path",
    [
        "/../setup.cfg",
        "/..%2fsetup.cfg",
        "/vendor/../../config.py",
        "/vendor/..%2f..%2fconfig.py",
        "/%2e%2e/%2e%2e/requirements.txt",
        "/.env",
        "/.flaskenv",
        "/vendor/",
        "/vendor/redoc/",
        "/static/logo.png",
    ],
)
def test_static_files_are_only_the_named_files_of_webapp_static(client, path):
    """No directory listing, no path out of webapp/static, no dotfile (OWASP ASVS V4.3.2, V5.3.9)."""
    with client.get(path) as response:
        assert response.status_code == 404
        assert response.mimetype == PROBLEM


def test_openapi_describes_every_route_and_method(app, spec):
    missing = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in {"static", "index"} or rule.endpoint.startswith("api-docs."):
            continue
        documented = spec["paths"].get(openapi_path(rule.rule), {})
        missing += [
            f"{method} {rule.rule}"
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"})
            if method.lower() not in documented
        ]

    assert missing == []


BEARER = [{"bearerAuth": []}]
OPTIONAL_BEARER = [{}, {"bearerAuth": []}]
# The contract's public reads of accounts: a token only with PUBLIC_USER_DIRECTORY=false.
USER_DIRECTORY = {"get /users", "get /users/{user_id}"}


def test_openapi_declares_bearer_security_exactly_and_with_its_401(spec):
    """An operation is secured with the bearer scheme alone (optionally on the user
    directory), and documents the 401 it answers (which ones answer 401 without a token is
    checked against the app just below)."""
    wrong = [
        f"{method} {path}: {operation['security']}"
        for path, method, operation in operations(spec)
        if operation.get("security")
        and (
            operation["security"] != (OPTIONAL_BEARER if f"{method} {path}" in USER_DIRECTORY else BEARER)
            or "401" not in operation["responses"]
        )
    ]
    optional = {
        f"{method} {path}"
        for path, method, operation in operations(spec)
        if operation.get("security") == OPTIONAL_BEARER
    }

    assert wrong == []
    assert optional == USER_DIRECTORY
    public = {
        f"{method} {path}" for path, method, operation in operations(spec) if not operation.get("security")
    }
    # The contract's public reads stay public.
    assert {"get /roles", "get /versions"} <= public


def test_openapi_bearer_scheme_is_http_bearer(spec):
    scheme = spec["components"]["securitySchemes"]["bearerAuth"]

    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")


def requires_a_token(operation: dict) -> bool:
    return bool(operation.get("security")) and {} not in operation["security"]


def test_openapi_security_matches_which_operations_answer_401_without_a_token(client, spec):
    mismatched = []
    for path, method, operation in operations(spec):
        response = getattr(client, method)(concrete(path))
        if requires_a_token(operation) != (response.status_code == 401):
            mismatched.append(f"{method} {path}: {response.status_code}")

    assert mismatched == []


@pytest.mark.parametrize("app_config", [{"PUBLIC_USER_DIRECTORY": False}])
@pytest.mark.parametrize("path", ["/users", "/users/1", "/users?username=a"])
def test_the_user_directory_needs_a_token_when_it_is_not_public(client, user, auth_headers, path):
    refused = client.get(path)
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"] == "Bearer"
    assert refused.get_json()["detail"] == "Not authenticated"

    assert client.get(path.replace("/1", f"/{user.id}"), headers=auth_headers).status_code == 200


def gated_paths(app) -> set[str]:
    """The paths of the blueprints the X-Version gate applies to (webapp/openapi.Blueprint)."""
    return {
        openapi_path(rule.rule)
        for rule in app.url_map.iter_rules()
        if getattr(app.blueprints.get(rule.endpoint.partition(".")[0]), "version_gated", False)
    }


def test_openapi_documents_the_version_gate_exactly_on_gated_operations(app, spec):
    gated_paths_ = gated_paths(app)
    assert {"/versions", "/healthz", "/readyz"}.isdisjoint(gated_paths_)  # the contract's ungated ones
    wrong = []
    for path, method, operation in operations(spec):
        parameters = parameters_of(spec, path, operation)
        has_header = any(p["in"] == "header" and p["name"] == "X-Version" for p in parameters)
        has_426 = "426" in operation["responses"]
        gated = path in gated_paths_
        if (has_header, has_426) != (gated, gated):
            wrong.append(f"{method} {path}: header={has_header} 426={has_426}")

    assert wrong == []


def test_openapi_version_gate_matches_which_operations_answer_426(client, spec):
    mismatched = []
    for path, method, operation in operations(spec):
        response = getattr(client, method)(concrete(path), headers={"X-Version": "0.9"})
        if ("426" in operation["responses"]) != (response.status_code == 426):
            mismatched.append(f"{method} {path}: {response.status_code}")

    assert mismatched == []


def test_openapi_error_responses_are_problem_documents_with_detail(spec):
    wrong = []
    for path, method, operation in operations(spec):
        for status, response in operation["responses"].items():
            if status != "default" and int(status) < 400:
                continue
            content = resolve(spec, response).get("content", {})
            schema = resolve(spec, content.get(PROBLEM, {}).get("schema", {}))
            if list(content) != [PROBLEM] or "detail" not in schema.get("properties", {}):
                wrong.append(f"{method} {path} {status}: {sorted(content)}")

    assert wrong == []


def test_openapi_problem_schema_has_detail_status_and_title(spec):
    schema = spec["components"]["schemas"]["Problem"]

    assert {"detail", "status", "title", "errors"} <= set(schema["properties"])


def test_openapi_post_items_documents_401_409_and_422(spec):
    responses = spec["paths"]["/items"]["post"]["responses"]

    assert {"201", "401", "409", "422"} <= set(responses)


@pytest.mark.parametrize(
    ("method", "path", "statuses"),
    [
        ("post", "/auth/token", {"401", "422", "429"}),
        ("post", "/auth/refresh", {"401", "422", "429"}),
        ("get", "/auth/me", {"401"}),
        ("post", "/auth/logout", {"401"}),
        ("post", "/users", {"401", "403", "409", "422"}),
        ("get", "/users/{user_id}", {"404"}),
        ("get", "/users", {"422"}),
        ("patch", "/users/{user_id}", {"401", "403", "404", "409", "422"}),
        ("delete", "/users/{user_id}", {"401", "403", "404"}),
        ("post", "/items", {"401", "409", "422"}),
        ("get", "/items/{item_id}", {"401", "404"}),
        ("get", "/items", {"401", "422"}),
        ("patch", "/items/{item_id}", {"401", "403", "404", "409", "422"}),
        ("delete", "/items/{item_id}", {"401", "403", "404"}),
        ("get", "/roles", {"426"}),
        ("get", "/roles/{role_id}", {"404", "426"}),
        ("get", "/readyz", {"503"}),
    ],
)
def test_openapi_documents_the_error_statuses_the_contract_lists(spec, method, path, statuses):
    assert statuses <= set(spec["paths"][path][method]["responses"])


def test_openapi_documents_the_status_of_a_malformed_or_non_json_body(client, spec, admin_headers):
    bodies = [
        (path, method, operation)
        for path, method, operation in operations(spec)
        if "requestBody" in operation
    ]
    assert len(bodies) >= 6
    for path, method, operation in bodies:
        for body, content_type in (("{", "application/json"), ("a=b", "application/x-www-form-urlencoded")):
            response = getattr(client, method)(
                concrete(path), data=body, content_type=content_type, headers=admin_headers
            )

            assert response.status_code in {400, 415}, f"{method} {path}"
            assert str(response.status_code) in operation["responses"], f"{method} {path}"


def test_every_patch_body_is_partial(spec):
    """PATCH changes the fields it is sent: no field is required, so {} is a valid body (and
    every {id} route can be asked about an unknown id, below)."""
    required = {
        f"patch {path}": resolve(spec, content["schema"]).get("required")
        for path, method, operation in operations(spec)
        if method == "patch"
        for content in operation["requestBody"]["content"].values()
        if resolve(spec, content["schema"]).get("required")
    }

    assert required == {}, "a PATCH schema must not require fields: " + repr(required)


def test_summaries_are_plain_text_and_every_query_argument_is_described(spec):
    """What /docs shows of each operation: its summary (a docstring's first line) as written,
    so no reStructuredText or Markdown markup in it, and a description of each query argument."""
    marked_up = [
        f"{method} {path}: {operation.get('summary')!r}"
        for path, method, operation in operations(spec)
        if not operation.get("summary") or re.search(r"[`*]|:\w+:", operation["summary"])
    ]
    undescribed = [
        f"{method} {path} ?{parameter['name']}"
        for path, method, operation in operations(spec)
        for parameter in parameters_of(spec, path, operation)
        if parameter["in"] == "query" and not parameter.get("description")
    ]

    assert marked_up == []
    assert undescribed == []


def requires_a_body(spec: dict, operation: dict) -> bool:
    """Whether an operation's body has required fields (it cannot be sent empty)."""
    for content in operation.get("requestBody", {}).get("content", {}).values():
        if resolve(spec, content["schema"]).get("required"):
            return True
    return False


def test_openapi_documents_a_404_wherever_an_unknown_id_is_answered_404(client, spec, admin_headers):
    """Every {id} route asked about an unknown id: 404, and documented. (A POST whose body
    needs fields is left out: its body is checked first, so an empty one is a 422.)"""
    undocumented = []
    for path, method, operation in operations(spec):
        if "{" not in path or (method == "post" and requires_a_body(spec, operation)):
            continue
        kwargs = {"json": {}} if method in {"post", "patch"} else {}
        response = getattr(client, method)(
            re.sub(r"\{[^}]+\}", "999999", path), headers=admin_headers, **kwargs
        )
        assert response.status_code == 404, f"{method} {path}"
        if "404" not in operation["responses"]:
            undocumented.append(f"{method} {path}")

    assert undocumented == []


def test_openapi_documents_a_401_wherever_a_token_is_refused(client, spec):
    """Every operation that answers 401 for a garbage token lists 401 among its responses."""
    headers = {"Authorization": "Bearer garbage"}
    undocumented = []
    for path, method, operation in operations(spec):
        response = getattr(client, method)(concrete(path), headers=headers)
        if response.status_code == 401 and "401" not in operation["responses"]:
            undocumented.append(f"{method} {path}")

    assert undocumented == []
