"""flask-smorest set up for this API, through its public interface: problem+json errors, the
bearer scheme, id converters, strict JSON bodies, and document() for what a view declares
beyond flask-smorest's own decorators (the conventions every operation follows:
webapp/openapi_conventions.py)."""

from __future__ import annotations

import http
from typing import Any

import flask_smorest
from flask import Flask
from flask_smorest import abort
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.routing import IntegerConverter

from webapp import strict_json
from webapp.errors import ProblemSchema, handle_http_exception
from webapp.openapi_conventions import (
    BEARER,
    EXTRA_PARAMETERS,
    OPTIONAL,
    VERSION_HEADER,
    ConventionsPlugin,
    add_components,
    spec_options,
)


class IdConverter(IntegerConverter):
    """A database id: 1 to 2**63 - 1, so an absurd id is a 404, not a driver overflow.
    ASCII digits only: werkzeug's ``\\d`` would also route other scripts' digits."""

    regex = r"[0-9]+"

    def __init__(self, map, *args: Any, **kwargs: Any) -> None:
        super().__init__(map, min=1, max=2**63 - 1)


class Api(flask_smorest.Api):
    """The flask-smorest Api, documenting errors as problem+json."""

    ERROR_SCHEMA = ProblemSchema

    def init_app(self, app: Flask, **kwargs: Any) -> None:
        app.config["API_SPEC_OPTIONS"] = spec_options(app.config)
        self.register_converter(IdConverter, lambda _: {"type": "integer", "minimum": 1})
        app.url_map.converters["id"] = IdConverter
        super().init_app(app, spec_kwargs={"extra_plugins": [ConventionsPlugin()]}, **kwargs)
        add_components(self.spec)

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
