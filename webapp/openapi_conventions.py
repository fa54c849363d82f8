"""The conventions every operation's OpenAPI document follows, added once for all of them
(ConventionsPlugin, an apispec plugin), and the components they name: response headers,
header parameters, problem examples per status, the bearer scheme and RoleId."""

from __future__ import annotations

import http
from collections.abc import Mapping
from typing import Any

from apispec import APISpec, BasePlugin
from apispec.ext.marshmallow.common import resolve_schema_cls

from webapp.errors import PROBLEM_MIMETYPE
from webapp.fields import ResponseSchema

BEARER = "bearerAuth"
# The shared RoleId component: a field naming it in metadata is documented as a reference to it.
COMPONENT = "x-component"
ROLE_ID = "RoleId"
# Header parameters, as components the operations name.
VERSION_HEADER = "XVersion"
IF_NONE_MATCH = "IfNoneMatch"
IF_MATCH = "IfMatch"
HEADER_PARAMETERS = {
    VERSION_HEADER: ("X-Version", "Client version; an unsupported or unknown one is answered 426."),
    IF_NONE_MATCH: ("If-None-Match", "An ETag of this resource: 304, no body, while it is current."),
    IF_MATCH: ("If-Match", "The ETag of the version to change: 412 if the resource has moved on."),
}
# Response headers, as components the responses name: what the server sends, where.
RESPONSE_HEADERS = {
    "XRequestID": (
        "X-Request-ID",
        "The request's id: the client's own if it sent a plain one, else a new one.",
    ),
    "ETag": ("ETag", "The entity tag of the row's current version, for If-None-Match and If-Match."),
    "Deprecation": (
        "Deprecation",
        "On a version-gated operation, while the client's X-Version is deprecated: since when (RFC 9745).",
    ),
    "Sunset": ("Sunset", "Sent with Deprecation when the version has an end date: from then on, 426."),
    "RetryAfter": ("Retry-After", "Seconds to wait before trying again."),
    "WWWAuthenticate": ("WWW-Authenticate", "The scheme to authenticate with: Bearer."),
}
# On any answer (Deprecation and Sunset: of a version-gated operation, to a deprecated client).
ANY_ANSWER_HEADERS = ["XRequestID", "Deprecation", "Sunset"]
# Headers of an error answer, by status, beyond those.
ERROR_HEADERS = {401: ["WWWAuthenticate"], 412: ["ETag"], 429: ["RetryAfter"], 503: ["RetryAfter"]}
# What each error status the API answers looks like (RFC 9457; ``instance`` is the request id).
PROBLEM_EXAMPLES = {
    400: "The cursor is not one this list gave",
    401: "Invalid or expired token",
    403: "Only an admin or the item's owner may do this",
    404: "Item not found",
    409: "This name is already taken.",
    412: "The resource changed since the version in If-Match; read it again",
    415: "Send the body as JSON (Content-Type: application/json)",
    422: "Invalid request. name: Missing data for required field.",
    426: "Version not supported anymore",
    429: "Too many failed attempts; try again in 60 seconds",
    500: "The server could not complete the request.",
    503: "The database is unavailable; try again shortly.",
}
# A bearer token or none: what `document(security=OPTIONAL)` declares.
OPTIONAL = "optional"
# Where document() leaves header parameters for ConventionsPlugin to add to the operation's
# own (a documented list would replace them instead of adding to them).
EXTRA_PARAMETERS = "x-extra-parameters"


def operation_id(summary: str) -> str:
    """An operation's id, from its summary as a client's function name: "List items" is
    listItems, "Get a user's sessions" getUserSessions (articles and possessives dropped)."""
    words = [word.removesuffix("'s") for word in summary.split() if word.lower() not in ("a", "an", "the")]
    name = words[0].lower() + "".join(word[:1].upper() + word[1:] for word in words[1:])
    if not name.isalpha():
        raise ValueError(f"summary {summary!r} does not make an operationId (letters only): {name!r}")
    return name


def problem_example(status: int) -> dict[str, Any]:
    example: dict[str, Any] = {
        "type": "about:blank",
        "title": http.HTTPStatus(status).phrase,
        "status": status,
        "detail": PROBLEM_EXAMPLES[status],
        "instance": "0f4c5d3e2b1a49c8a7e6d5c4b3a29180",
    }
    if status == 422:
        example["errors"] = {"name": ["Missing data for required field."]}
    return example


def header_refs(names: list[str]) -> dict[str, dict[str, str]]:
    """Response headers, by name, as references to their components (RESPONSE_HEADERS)."""
    return {RESPONSE_HEADERS[name][0]: {"$ref": f"#/components/headers/{name}"} for name in names}


class ConventionsPlugin(BasePlugin):
    """What every operation's document shares, added once here:

    - an operationId from the summary (``operation_id``), and ``security: []`` where no
      token is needed;
    - errors in problem+json with an example, 400 and 415 wherever there is a body or a
      cursor, 404 wherever the path names a row, 503 everywhere (the database or capacity),
      X-Version and 426 on version-gated paths;
    - the response headers the server sends: X-Request-ID on every answer, Deprecation and
      Sunset on a gated path's, WWW-Authenticate with a 401, Retry-After with a 429 or 503;
    - header parameters document() names, and fields naming a shared component
      (``COMPONENT`` in their metadata) as references to it.
    """

    def schema_helper(self, name: str, definition: dict, **kwargs: Any) -> None:
        properties = definition.get("properties", {})
        for field, prop in properties.items():
            if COMPONENT in prop:
                properties[field] = {"$ref": f"#/components/schemas/{prop[COMPONENT]}"}
        schema = kwargs.get("schema")
        if schema is not None and issubclass(resolve_schema_cls(schema), ResponseSchema):
            definition["required"] = list(properties)

    def response_helper(self, response: dict, **kwargs: Any) -> dict:
        if response.get("description") == http.HTTPStatus.NOT_MODIFIED.phrase:
            return {**response, "headers": header_refs([*ANY_ANSWER_HEADERS, "ETag"])}
        content = response.get("content", {})
        schema = content.get("application/json", {}).get("schema")
        if schema is None or "Problem" not in str(schema):
            return response
        status = next((s for s in http.HTTPStatus if s.phrase == response.get("description")), None)
        media: dict[str, Any] = {**content["application/json"]}
        if status in PROBLEM_EXAMPLES:
            media["example"] = problem_example(status)
        headers = header_refs([*ANY_ANSWER_HEADERS, *ERROR_HEADERS.get(status, [])])
        return {**response, "headers": headers, "content": {PROBLEM_MIMETYPE: media}}

    def path_helper(self, path: str, operations: dict, parameters: list, **kwargs: Any) -> None:
        statuses = [404] if "{" in path else []
        gated = any(VERSION_HEADER in str(parameter) for parameter in parameters)
        if gated:
            statuses.append(426)
        statuses.append(503)
        success_headers = header_refs(["XRequestID", *(["Deprecation", "Sunset"] if gated else [])])
        for operation in operations.values():
            operation.setdefault("operationId", operation_id(operation["summary"]))
            operation.setdefault("security", [])
            responses = operation.setdefault("responses", {})
            for status in statuses:
                responses.setdefault(status, http.HTTPStatus(status).name)
            for status, response in responses.items():
                if isinstance(response, dict) and int(status) < 400:
                    response["headers"] = {**success_headers, **response.get("headers", {})}

    def operation_helper(self, path: str, operations: dict, **kwargs: Any) -> None:
        for operation in operations.values():
            operation.setdefault("parameters", []).extend(operation.pop(EXTRA_PARAMETERS, []))
            takes_cursor = any(
                isinstance(parameter, dict) and parameter.get("name") == "cursor"
                for parameter in operation["parameters"]
            )
            statuses = (400, 415) if "requestBody" in operation else (400,) if takes_cursor else ()
            for status in statuses:
                operation.setdefault("responses", {})[status] = http.HTTPStatus(status).name


def spec_options(config: Mapping[str, Any]) -> dict[str, Any]:
    """API_SPEC_OPTIONS with the servers, contact and license the config gives."""
    options = dict(config["API_SPEC_OPTIONS"])
    contact = {"name": config["API_CONTACT_NAME"]}
    if config["API_CONTACT_EMAIL"]:
        contact["email"] = config["API_CONTACT_EMAIL"]
    license_ = {"name": config["API_LICENSE_NAME"], "url": config["API_LICENSE_URL"]}
    options["info"] = {**options.get("info", {}), "contact": contact, "license": license_}
    options["servers"] = [{"url": config["API_SERVER_URL"], "description": "This deployment"}]
    return options


def add_components(spec: APISpec) -> None:
    """The components the operations name: the bearer scheme, the response headers, RoleId and
    the header parameters."""
    bearer = {"type": "http", "scheme": "bearer", "description": "An access token from POST /auth/token"}
    spec.components.security_scheme(BEARER, bearer)
    for component, (_name, description) in RESPONSE_HEADERS.items():
        schema = {"type": "integer"} if component == "RetryAfter" else {"type": "string"}
        spec.components.header(component, {"description": description, "schema": schema})
    spec.components.schema(ROLE_ID, role_id_schema())
    # flask-smorest's X-Pagination header is not used: lists page with Link.
    spec.components.schemas.pop("PaginationMetadata", None)
    for component, (header, description) in HEADER_PARAMETERS.items():
        schema = {"type": "string", **({"example": "1.0"} if component == VERSION_HEADER else {})}
        spec.components.parameter(
            component,
            "header",
            {"name": header, "required": False, "schema": schema, "description": description},
        )


def role_id_schema() -> dict[str, Any]:
    """The RoleId component: an integer whose values have names in generated clients."""
    from webapp.models import Role

    return {
        "type": "integer",
        "enum": list(Role.NAMES),
        "x-enum-varnames": [name.upper() for name in Role.NAMES.values()],
        "description": ", ".join(f"{id_} {name}" for id_, name in Role.NAMES.items()),
    }
