"""flask-smorest set up for this API, through its public interface: problem+json errors, the
bearer scheme, id converters, strict JSON bodies, and the conventions every operation's
document follows (ConventionsPlugin, an apispec plugin)."""

from __future__ import annotations

import http
from typing import Any

import flask_smorest
from apispec import BasePlugin
from flask import Flask
from flask_smorest import abort
from marshmallow import Schema, fields
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.routing import IntegerConverter

from webapp import strict_json
from webapp.errors import PROBLEM_MIMETYPE, ProblemSchema, handle_http_exception

BEARER = "bearerAuth"
# Header parameters, as components the operations name.
VERSION_HEADER = "XVersion"
IF_NONE_MATCH = "IfNoneMatch"
IF_MATCH = "IfMatch"
HEADER_PARAMETERS = {
    VERSION_HEADER: ("X-Version", "Client version; an unsupported or unknown one is answered 426."),
    IF_NONE_MATCH: ("If-None-Match", "An ETag of this resource: 304, no body, while it is current."),
    IF_MATCH: ("If-Match", "The ETag of the version to change: 412 if the resource has moved on."),
}
# A bearer token or none: what `document(security=OPTIONAL)` declares.
OPTIONAL = "optional"
# Where document() leaves header parameters for ConventionsPlugin to add to the operation's
# own (a documented list would replace them instead of adding to them).
EXTRA_PARAMETERS = "x-extra-parameters"


class IdConverter(IntegerConverter):
    """A database id: 1 to 2**63 - 1, so an absurd id is a 404, not a driver overflow.
    ASCII digits only: werkzeug's ``\\d`` would also route other scripts' digits."""

    regex = r"[0-9]+"

    def __init__(self, map, *args: Any, **kwargs: Any) -> None:
        super().__init__(map, min=1, max=2**63 - 1)


class ConventionsPlugin(BasePlugin):
    """What every operation's document shares, added once here: errors in problem+json, 400
    and 415 wherever there is a body, 404 wherever the path names a row, X-Version and 426 on
    version-gated paths, and header parameters document() names."""

    def response_helper(self, response: dict, **kwargs: Any) -> dict:
        content = response.get("content", {})
        schema = content.get("application/json", {}).get("schema")
        if schema is not None and "Problem" in str(schema):
            return {**response, "content": {PROBLEM_MIMETYPE: content["application/json"]}}
        return response

    def path_helper(self, path: str, operations: dict, parameters: list, **kwargs: Any) -> None:
        statuses = [404] if "{" in path else []
        if any(VERSION_HEADER in str(parameter) for parameter in parameters):
            statuses.append(426)
        for operation in operations.values():
            for status in statuses:
                operation.setdefault("responses", {})[status] = http.HTTPStatus(status).name

    def operation_helper(self, path: str, operations: dict, **kwargs: Any) -> None:
        for operation in operations.values():
            operation.setdefault("parameters", []).extend(operation.pop(EXTRA_PARAMETERS, []))
            if "requestBody" in operation:
                for status in (400, 415):
                    operation.setdefault("responses", {})[status] = http.HTTPStatus(status).name


class Api(flask_smorest.Api):
    """The flask-smorest Api, documenting errors as problem+json."""

    ERROR_SCHEMA = ProblemSchema

    def init_app(self, app: Flask, **kwargs: Any) -> None:
        self.register_converter(IdConverter, lambda _: {"type": "integer", "minimum": 1})
        app.url_map.converters["id"] = IdConverter
        super().init_app(app, spec_kwargs={"extra_plugins": [ConventionsPlugin()]}, **kwargs)
        bearer = {"type": "http", "scheme": "bearer", "description": "An access token from POST /auth/token"}
        self.spec.components.security_scheme(BEARER, bearer)
        for component, (header, description) in HEADER_PARAMETERS.items():
            schema = {"type": "string", **({"example": "1.0"} if component == VERSION_HEADER else {})}
            self.spec.components.parameter(
                component,
                "header",
                {"name": header, "required": False, "schema": schema, "description": description},
            )

    def register_blueprint(self, blp: flask_smorest.Blueprint, **options: Any) -> None:
        """A version-gated blueprint's paths take X-Version (and may answer 426)."""
        gated = getattr(blp, "version_gated", False)
        super().register_blueprint(blp, parameters=[VERSION_HEADER] if gated else None, **options)

    def handle_http_exception(self, error):  # the renderer flask-smorest registers
        return handle_http_exception(error)


class JsonBodyParser(FlaskParser):
    """webargs' parser, strict about bodies: not JSON is 415, an empty body 400 (webargs alone
    would treat both as an empty object), and anything but strict JSON 400 (strict_json)."""

    def load_json(self, req, schema):
        if not is_json_request(req):
            abort(415, message="Send the body as JSON (Content-Type: application/json)")
        data = req.get_data(cache=True)
        if not data:
            abort(400, message="The request body is empty; send a JSON object")
        try:
            return strict_json.loads(data)
        except strict_json.InvalidJson as error:
            abort(400, message=str(error))


class Blueprint(flask_smorest.Blueprint):
    """A resource blueprint; ``version_gated`` routes take X-Version and may answer 426."""

    ARGUMENTS_PARSER = JsonBodyParser()

    def __init__(self, *args: Any, version_gated: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.version_gated = version_gated

    def arguments(self, schema, **kwargs: Any):
        # An instance, made once: given a class, webargs would build a schema per request.
        return super().arguments(schema() if isinstance(schema, type) else schema, **kwargs)


def document(
    *,
    security: bool | str = False,
    responses: tuple[int, ...] = (),
    parameters: tuple[str, ...] = (),
    headers: dict | None = None,
):
    """Add to a view's OpenAPI operation: bearer security (required, or OPTIONAL), responses
    and header parameters (components, by name), and ``headers`` of its 200 answer."""
    doc: dict[str, Any] = {"responses": {status: http.HTTPStatus(status).name for status in responses}}
    if security:
        bearer = [{BEARER: []}]
        doc["security"] = [{}, *bearer] if security == OPTIONAL else bearer
    if parameters:
        doc[EXTRA_PARAMETERS] = list(parameters)
    if headers:
        doc["responses"][200] = {"headers": headers}
    return flask_smorest.Blueprint.doc(**doc)


class MessageSchema(Schema):
    """A confirmation: ``{"detail": "..."}``."""

    detail = fields.String(metadata={"example": "Item deleted"})
