"""Logging: one format for the app and gunicorn, a request id, and one access line per request.

This module imports nothing from the app, so gunicorn's master can use its formatters
without loading (and pinning) the application code.
"""

from __future__ import annotations

import json
import logging
import logging.config
import os
import re
import time
import traceback
import uuid
from typing import Any

from flask import Flask, Response, g, request

TEXT_FORMAT = "%(asctime)s [%(levelname)s] %(name)s: %(message)s"
# A client's id is reused only if it is short and plain, so it cannot forge log lines.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:@-]{1,128}")
# Attributes every LogRecord has; anything else was passed with ``extra=`` and is data.
_RECORD_FIELDS = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}

access_logger = logging.getLogger("webapp.access")


def describe_exception(exc_info) -> str:
    """An exception as its type and where it was raised, without the traceback's text or
    the message (either may quote SQL parameters, tokens or passwords)."""
    _, error, trace = exc_info
    frames = traceback.extract_tb(trace)
    where = f" at {frames[-1].filename}:{frames[-1].lineno} in {frames[-1].name}" if frames else ""
    return f"{type(error).__name__}{where}"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and any ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = describe_exception(record.exc_info)
        entry.update((k, v) for k, v in vars(record).items() if k not in _RECORD_FIELDS)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """``time [LEVEL] logger: message`` in UTC; an exception adds one line naming it."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatException(self, exc_info) -> str:
        return "exception: " + describe_exception(exc_info)

    def formatStack(self, stack_info: str) -> str:
        return ""


JsonFormatter.converter = TextFormatter.converter = time.gmtime


def formatter_class(log_format: str | None = None) -> type[logging.Formatter]:
    """The formatter for LOG_FORMAT: ``text`` (default) or ``json``."""
    log_format = (log_format or os.environ.get("LOG_FORMAT") or "text").lower()
    return JsonFormatter if log_format == "json" else TextFormatter


def logging_config(level: str = "INFO", log_format: str | None = None) -> dict[str, Any]:
    """A dictConfig: everything to stderr in LOG_FORMAT, libraries' chatter at WARNING."""
    formatter = formatter_class(log_format)
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": {"()": f"{__name__}.{formatter.__name__}"}},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "default", "stream": "ext://sys.stderr"}
        },
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {name: {"level": "WARNING"} for name in ("alembic", "apscheduler")},
    }


def _printable(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, without quotes or control characters."""
    return "".join(c if c.isprintable() and c != '"' else "?" for c in text[:limit])


def assign_request_id() -> None:
    incoming = request.headers.get("X-Request-ID", "")
    g.request_id = incoming if _SANE_REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
    g.started = time.perf_counter()


def log_access(response: Response) -> Response:
    """Add X-Request-ID and write the access line (never the query string, body or headers
    that carry credentials)."""
    response.headers["X-Request-ID"] = g.get("request_id") or uuid.uuid4().hex
    duration_ms = round((time.perf_counter() - g.get("started", time.perf_counter())) * 1000, 2)
    user = g.get("current_user")
    fields = {
        "request_id": response.headers["X-Request-ID"],
        "method": request.method,
        "path": request.path,
        "status": response.status_code,
        "duration_ms": duration_ms,
        "size": response.content_length or 0,
        "client_version": _printable(g.get("client_version") or "", 64) or "-",
        "user_id": user.id if user is not None else "-",
        "remote_addr": request.remote_addr or "-",
        "user_agent": _printable(request.user_agent.string, 200) or "-",
    }
    access_logger.info(
        "%(request_id)s %(method)s %(path)s %(status)s %(duration_ms)sms %(size)sB v=%(client_version)s "
        'user=%(user_id)s ip=%(remote_addr)s ua="%(user_agent)s"',
        fields,
        extra=fields,
    )
    return response


def init_app(app: Flask) -> None:
    if not app.testing:
        logging.config.dictConfig(logging_config(app.config["LOG_LEVEL"], app.config["LOG_FORMAT"]))
    app.before_request(assign_request_id)
    app.after_request(log_access)
