"""Logging set-up and the request id every response and log line carries."""

from __future__ import annotations

import logging
import re
import uuid

from flask import Flask, Response, g, request

LOG_FORMAT = "%(asctime)s [%(levelname)s] %(name)s: %(message)s"
# A client's id is reused only if it is short and plain, so it cannot forge log lines.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:@-]{1,128}")


def configure_logging(app: Flask) -> None:
    """Plain lines on stderr at LOG_LEVEL (gunicorn collects stderr)."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        root.addHandler(handler)
    root.setLevel(app.config["LOG_LEVEL"])


def assign_request_id() -> None:
    incoming = request.headers.get("X-Request-ID", "")
    g.request_id = incoming if _SANE_REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex


def add_request_id(response: Response) -> Response:
    response.headers["X-Request-ID"] = g.get("request_id") or uuid.uuid4().hex
    return response


def init_app(app: Flask) -> None:
    if not app.testing:
        configure_logging(app)
    app.before_request(assign_request_id)
    app.after_request(add_request_id)
