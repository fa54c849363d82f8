"""flask-smorest customised for this API: problem bodies, bearer auth and the X-Version gate in the spec."""

from __future__ import annotations

import http
from copy import deepcopy
from typing import Any

import flask_smorest
from flask import Flask
from flask_smorest import abort
from flask_smorest.utils import prepare_response
from marshmallow import Schema, fields
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.routing import IntegerConverter

from webapp import strict_json
from webapp.conditional import IF_MATCH, IF_NONE_MATCH
from webapp.errors import PROBLEM_MIMETYPE, ProblemSchema, handle_http_exception

BEARER = "bearerAuth"
VERSION_HEADER = "XVersion"


class IdConverter(IntegerConverter):
    """A database id: 1 to 2**63 - 1, so an absurd id is a 404, not a driver overflow.
    ASCII digits only: werkzeug's ``\\d`` would also route other scripts' digits."""

    regex = r"[0-9]+"

    def __init__(self, map, *args: Any, **kwargs: Any) -> None:
        super().__init__(map, min=1, max=2**63 - 1)


class Api(flask_smorest.Api):
    """The flask-smorest Api, documenting errors as problem+json."""

    ERROR_SCHEMA = ProblemSchema

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.register_converter(IdConverter, lambda _: {"type": "integer", "minimum": 1})

    def init_app(self, app: Flask, **kwargs: Any) -> None:
        app.url_map.converters["id"] = IdConverter
        super().init_app(app, **kwargs)
        self.spec.components.security_scheme(
            BEARER,
            {"type": "http", "scheme": "bearer", "description": "An access token from POST /auth/token"},
        )
        for name, header, description in (
            (IF_NONE_MATCH, "If-None-Match", "An ETag of this resource: 304, no body, while it is current."),
            (IF_MATCH, "If-Match", "The ETag of the version to change: 412 if the resource has moved on."),
        ):
            self.spec.components.parameter(
                name,
                "header",
                {"name": header, "required": False, "schema": {"type": "string"}, "description": description},
            )
        self.spec.components.parameter(
            VERSION_HEADER,
            "header",
            {
                "name": "X-Version",
                "required": False,
                "schema": {"type": "string", "example": "1.0"},
                "description": "Client version; an unsupported or unknown one is answered 426.",
            },
        )

    def handle_http_exception(self, error):  # the renderer flask-smorest registers
        return handle_http_exception(error)

    def _register_responses(self) -> None:
        # Same as flask-smorest's, with the problem+json media type errors really have.
        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            if status >= 400:
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, PROBLEM_MIMETYPE)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "Unexpected error", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, PROBLEM_MIMETYPE)
        self.spec.components.response(self.DEFAULT_ERROR_RESPONSE_NAME, response, lazy=True)


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
        self._prepare_doc_cbks.append(self._document_body_errors)
        self._prepare_doc_cbks.append(self._document_parameters)
        if version_gated:
            self._prepare_doc_cbks.append(self._document_version_gate)

    def arguments(self, schema, **kwargs: Any):
        # An instance, made once: given a class, webargs would build a schema per request.
        return super().arguments(schema() if isinstance(schema, type) else schema, **kwargs)

    @staticmethod
    def _document_body_errors(doc: dict, doc_info: dict, **kwargs: Any) -> dict:
        if "requestBody" in doc:
            for status in (400, 415):
                doc.setdefault("responses", {})[status] = http.HTTPStatus(status).name
        return doc

    @staticmethod
    def _document_parameters(doc: dict, doc_info: dict, **kwargs: Any) -> dict:
        """Parameters ``document(parameters=...)`` names (components), after the view's own."""
        for name in doc_info.get("parameters_by_name", ()):
            doc.setdefault("parameters", []).append(name)
        return doc

    @staticmethod
    def _document_version_gate(doc: dict, doc_info: dict, **kwargs: Any) -> dict:
        doc.setdefault("parameters", []).append(VERSION_HEADER)
        doc.setdefault("responses", {})[426] = http.HTTPStatus(426).name
        return doc


# A bearer token or none: what `document(security=OPTIONAL)` declares.
OPTIONAL = "optional"


def document(
    *, security: bool | str = False, responses: tuple[int, ...] = (), parameters: tuple[str, ...] = ()
):
    """Add bearer security (required, or OPTIONAL), responses and header parameters
    (components, by name) to a view's OpenAPI operation."""

    def decorator(func):
        apidoc = func._apidoc = deepcopy(getattr(func, "_apidoc", {}))
        listed = apidoc.setdefault("response", {}).setdefault("responses", {})
        for status in responses:
            listed.setdefault(status, []).append(http.HTTPStatus(status).name)
        apidoc.setdefault("parameters_by_name", []).extend(parameters)
        if security:
            required = [{BEARER: []}]
            apidoc.setdefault("manual_doc", {})["security"] = (
                [{}, *required] if security == OPTIONAL else required
            )
        return func

    return decorator


class MessageSchema(Schema):
    """A confirmation: ``{"detail": "..."}``."""

    detail = fields.String(metadata={"example": "Item deleted"})
