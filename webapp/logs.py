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


class _UTCTimeFormatter(logging.Formatter):
    """Times in UTC, the second formatted once per second (strftime on every line is most of
    an access line's formatting cost)."""

    time_pattern = "%Y-%m-%d %H:%M:%S"
    msec_format = "{},{:03d}"
    _second = -1
    _second_text = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        second = int(record.created)
        if second != self._second:
            self._second_text = time.strftime(self.time_pattern, time.gmtime(second))
            self._second = second
        return self.msec_format.format(self._second_text, int(record.msecs))


class JsonFormatter(_UTCTimeFormatter):
    """One JSON object per line: time, level, logger, message and any ``extra`` fields."""

    time_pattern = "%Y-%m-%dT%H:%M:%S"
    msec_format = "{}.{:03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = describe_exception(record.exc_info)
        entry.update((k, v) for k, v in vars(record).items() if k not in _RECORD_FIELDS)
        return json.dumps(entry, default=str)


class TextFormatter(_UTCTimeFormatter):
    """``time [LEVEL] logger: message`` in UTC, one line per record whatever the message holds
    (control characters escaped: a client's value cannot forge a line); an exception adds one
    line naming it."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escape(record.message)
        return super().formatMessage(record)

    def formatException(self, exc_info) -> str:
        return "exception: " + describe_exception(exc_info)

    def formatStack(self, stack_info: str) -> str:
        return ""


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


def escape(text: str) -> str:
    """``text`` with every character that is not printable (control characters, line and
    paragraph separators) written as a Python escape (``\\n``, ``\\x1b``, ``\\u2028``), so no
    value can start a line of its own."""
    if text.isprintable():
        return text  # nearly always: nothing to replace
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


_BARE = re.compile(r"[!-~]{1,512}")


def field(value: str) -> str:
    """A client's value as one field of a space-separated line: bare if it is printable ASCII
    without spaces, else a JSON string (quoted, escaped), so it cannot pose as other fields."""
    return value if _BARE.fullmatch(value) and '"' not in value else json.dumps(value)


def assign_request_id() -> None:
    incoming = request.headers.get("X-Request-ID", "")
    g.request_id = incoming if _SANE_REQUEST_ID.fullmatch(incoming) else os.urandom(16).hex()
    g.started = time.perf_counter()


ACCESS_LINE = (
    "%(request_id)s %(method)s %(path)s %(status)s %(duration_ms)sms %(size)sB v=%(client_version)s "
    "user=%(user_id)s ip=%(remote_addr)s ua=%(user_agent)s"
)
# The fields a client chooses: written with field() in the line, as they are in ``extra``.
CLIENT_FIELDS = ("path", "client_version", "user_agent")


def log_access(response: Response) -> Response:
    """Add X-Request-ID and write the access line (never the query string, body or headers
    that carry credentials). In the line, each value the client chose is one field (field());
    the json format gets them as they came, in fields of their own."""
    request_id = g.get("request_id") or os.urandom(16).hex()
    response.headers["X-Request-ID"] = request_id
    user = g.get("caller")
    # The caller's account, or the account a login or the docs' Basic auth tried.
    user_id = user.id if user is not None else g.get("account_id", "-")
    fields = {
        "request_id": request_id,
        "method": request.method,
        "path": request.path,
        "status": response.status_code,
        "duration_ms": round((time.perf_counter() - g.get("started", time.perf_counter())) * 1000, 2),
        "size": response.content_length or 0,
        "client_version": (g.get("client_version") or "-")[:64],
        "user_id": user_id,
        "remote_addr": request.remote_addr or "-",
        "user_agent": (request.headers.get("User-Agent") or "-")[:200],
    }
    line = {**fields, **{name: field(fields[name]) for name in CLIENT_FIELDS}}
    access_logger.info(ACCESS_LINE, line, extra=fields)
    return response


def init_app(app: Flask) -> None:
    if not app.testing:
        logging.config.dictConfig(logging_config(app.config["LOG_LEVEL"], app.config["LOG_FORMAT"]))
        # No format here shows them, so records need not collect them (logging HOWTO, "Optimization").
        logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
        logging._srcfile = None
    app.before_request(assign_request_id)
    app.after_request(log_access)
