"""Logging: the access line's fields, no secrets in any record, both formatters and the dictConfig."""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.factories import PASSWORD, bearer, login
from webapp.logs import JsonFormatter, TextFormatter, field

ROOT = Path(__file__).resolve().parents[1]
ACCESS_FIELDS = {
    "request_id",
    "method",
    "path",
    "status",
    "duration_ms",
    "size",
    "client_version",
    "user_id",
    "remote_addr",
    "user_agent",
}


@pytest.fixture
def access(caplog):
    """A function returning the access records written so far."""
    caplog.set_level(logging.INFO, logger="webapp.access")
    return lambda: [record for record in caplog.records if record.name == "webapp.access"]


def everything_in(record: logging.LogRecord) -> str:
    """Every attribute of a record and its rendered message, as one string to search."""
    return json.dumps(vars(record), default=str) + record.getMessage()


def test_each_request_writes_one_access_record_with_every_field(client, access):
    client.get("/roles")
    client.get("/healthz")

    records = access()
    assert [record.path for record in records] == ["/roles", "/healthz"]
    for record in records:
        assert set(vars(record)) >= ACCESS_FIELDS


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/roles", 200),
        ("GET", "/no/such/page", 404),
        ("GET", "/auth/me", 401),
        ("DELETE", "/roles", 405),
        ("POST", "/auth/token", 422),
    ],
)
def test_access_record_has_method_path_status_and_body_size(client, access, method, path, status):
    response = client.open(path, method=method, json={} if method == "POST" else None)

    (record,) = access()
    assert response.status_code == status
    assert (record.method, record.path, record.status) == (method, path, status)
    assert record.size == len(response.get_data()) > 0
    assert isinstance(record.duration_ms, int | float)
    assert record.duration_ms >= 0


def test_access_record_request_id_is_the_response_header(client, access):
    response = client.get("/roles")

    (record,) = access()
    assert record.request_id == response.headers["X-Request-ID"]
    assert len(record.request_id) >= 16


@pytest.mark.parametrize(
    ("incoming", "reused"),
    [
        ("trace-42.a:b@c_d", True),
        ("has space", False),
        ('quote"', False),
        ("x" * 129, False),
        ("", False),
    ],
)
def test_client_request_id_is_reused_only_if_short_and_plain(client, access, incoming, reused):
    response = client.get("/roles", headers={"X-Request-ID": incoming})

    (record,) = access()
    assert record.request_id == response.headers["X-Request-ID"]
    assert (record.request_id == incoming) is reused


def test_access_record_never_contains_the_query_string(client, access):
    client.get("/roles?secret=abc", headers={"X-Request-ID": "fixed-id", "User-Agent": "probe"})

    (record,) = access()
    assert record.path == "/roles"
    assert "abc" not in everything_in(record)
    assert "abc" not in JsonFormatter().format(record)
    assert "abc" not in TextFormatter().format(record)


@pytest.mark.parametrize(
    ("headers", "client_version"),
    [({}, "-"), ({"X-Version": "1.0"}, "1.0"), ({"X-Version": "0.9"}, "0.9")],
)
def test_access_record_client_version_is_the_x_version_header(client, access, headers, client_version):
    client.get("/roles", headers=headers)

    (record,) = access()
    assert record.client_version == client_version


def test_access_record_user_id_is_a_dash_when_anonymous(client, access):
    client.get("/roles")

    (record,) = access()
    assert record.user_id == "-"


def test_access_record_user_id_is_the_bearer_tokens_user(client, user, auth_headers, access):
    response = client.get("/auth/me", headers=auth_headers)

    (record,) = access()
    assert response.status_code == 200
    assert record.user_id == user.id


def test_access_record_user_id_is_a_dash_for_a_rejected_token(client, user, access):
    response = client.get("/auth/me", headers=bearer("not-a-live-token"))

    (record,) = access()
    assert response.status_code == 401
    assert record.user_id == "-"


@pytest.mark.parametrize(
    ("username", "password", "status", "named"),
    [
        ("alice", PASSWORD, 200, True),
        ("alice", "wrong password", 401, True),
        ("nobody", PASSWORD, 401, False),  # no account: nothing to name, nothing typed is kept
    ],
    ids=["success", "wrong-password", "unknown-account"],
)
def test_a_login_names_the_account_it_tried_but_never_what_was_typed(
    client, user, access, username, password, status, named
):
    response = client.post("/auth/token", json={"username": username, "password": password})

    (record,) = access()
    assert response.status_code == status
    assert record.user_id == (user.id if named else "-")
    assert password not in everything_in(record)
    assert "nobody" not in everything_in(record)


def test_access_record_user_agent_is_cut_to_200_characters(client, access):
    client.get("/roles", headers={"User-Agent": "x" * 300})

    (record,) = access()
    assert record.user_agent == "x" * 200


# Values a client chooses, each trying to end the access line and forge another line or field.
FORGERIES = {
    "line-feed": "\n2026-12-07 10:00:00,000 [WARNING] webapp.auth: admin logged in",
    "carriage-return": "\r2026-12-07 10:00:00,000 [ERROR] forged",
    "crlf": 'x\r\n{"level": "ERROR"}',
    "terminal-escape": "\x1b[2J\x1b[31mred",
    "unicode-line-breaks": "a\u2028b\u2029c\x85d\x0b\x0ce",
    "nul-and-delete": "a\x00b\x7f",
    "fake-fields": '" 200 1ms 0B v=1.0 user=1 ip=10.0.0.1 ua="x',
}


@pytest.mark.parametrize("value", list(FORGERIES.values()), ids=list(FORGERIES))
def test_client_values_cannot_forge_log_lines_or_fields_in_either_format(client, access, value):
    path = "/nowhere/" + quote(value, safe="")  # the server decodes it back into request.path
    headers = {"User-Agent": value, "X-Version": value}
    client.get(
        path, environ_overrides={f"HTTP_{name.upper().replace('-', '_')}": v for name, v in headers.items()}
    )

    (record,) = access()
    assert (record.path, record.user_agent, record.client_version) == ("/nowhere/" + value, value, value)
    text = TextFormatter().format(record)
    assert text.isprintable(), repr(text)  # one line, no control characters at all
    fields = text.split(" webapp.access: ", 1)[1]
    # Each client value is one field, a JSON string when it is not plain: read back exactly.
    assert fields.startswith(f"{record.request_id} GET {field(record.path)} 404 ")
    assert f" v={field(value)} user=- ip=127.0.0.1 ua={field(value)}" in fields
    assert fields.endswith(f"ua={field(value)}")
    assert json.loads(field(value)) == value
    line = JsonFormatter().format(record)
    assert "\n" not in line
    assert "\r" not in line
    entry = json.loads(line)
    assert (entry["path"], entry["user_agent"], entry["client_version"]) == (record.path, value, value)


def test_other_log_lines_escape_what_could_break_them(caplog):
    caplog.set_level(logging.INFO, logger="webapp.test")
    logging.getLogger("webapp.test").warning("login of %s", "bob\n2026-12-07 [ERROR] forged\x1b")

    (record,) = caplog.records
    assert TextFormatter().format(record).endswith("login of bob\\n2026-12-07 [ERROR] forged\\x1b")


@pytest.mark.parametrize(
    ("app_config", "remote_addr"),
    [({}, "127.0.0.1"), ({"TRUSTED_PROXIES": 0}, "127.0.0.1"), ({"TRUSTED_PROXIES": 1}, "203.0.113.7")],
)
def test_x_forwarded_for_sets_remote_addr_only_behind_a_trusted_proxy(client, access, remote_addr):
    client.get("/roles", headers={"X-Forwarded-For": "203.0.113.7"})

    (record,) = access()
    assert record.remote_addr == remote_addr
    assert f"ip={remote_addr} " in record.getMessage()


def test_credentials_never_reach_any_log_record(client, user, caplog):
    caplog.set_level(logging.DEBUG)
    session = login(client, user.username)
    me = client.get("/auth/me", headers=session["headers"])
    rotated = client.post("/auth/refresh", json={"refresh_token": session["refresh_token"]}).get_json()
    failed = client.post("/auth/token", json={"username": user.username, "password": "a wrong guess"})

    assert (me.status_code, failed.status_code) == (200, 401)
    secrets = [
        PASSWORD,
        "a wrong guess",
        session["access_token"],
        session["refresh_token"],
        session["headers"]["Authorization"],
        rotated["access_token"],
        rotated["refresh_token"],
    ]
    assert len(caplog.records) >= 4
    for record in caplog.records:
        rendered = everything_in(record) + JsonFormatter().format(record) + TextFormatter().format(record)
        assert not [secret for secret in secrets if secret in rendered], record.name


def make_record(message: str, *args, **extra) -> logging.LogRecord:
    """A WARNING record of logger "webapp.test" created at 2023-11-14 22:13:20.123 UTC."""
    record = logging.getLogger("webapp.test").makeRecord(
        "webapp.test", logging.WARNING, __file__, 1, message, args, None, extra=extra
    )
    record.created, record.msecs = 1_700_000_000.123, 123.0
    return record


def test_json_formatter_writes_one_object_with_time_level_logger_message_and_extras():
    record = make_record("user %s logged\nin", "bob", request_id="r-1", status=200)

    line = JsonFormatter().format(record)

    assert "\n" not in line
    assert json.loads(line) == {
        "time": "2023-11-14T22:13:20.123Z",
        "level": "WARNING",
        "logger": "webapp.test",
        "message": "user bob logged\nin",
        "request_id": "r-1",
        "status": 200,
    }


def test_json_formatter_renders_unserialisable_extras_as_strings():
    line = JsonFormatter().format(make_record("hello", path=Path("/a/b")))

    assert json.loads(line)["path"] == "/a/b"


@pytest.mark.parametrize("formatter", [JsonFormatter(), TextFormatter()], ids=["json", "text"])
def test_a_logged_exception_is_named_and_located_without_its_message_or_traceback(formatter):
    try:
        raise ValueError("secret-sql SELECT password FROM users")
    except ValueError:
        record = logging.getLogger("webapp.test").makeRecord(
            "webapp.test", logging.ERROR, __file__, 1, "failed", (), sys.exc_info()
        )

    output = formatter.format(record)

    assert "ValueError at " in output
    assert "test_logs.py" in output
    assert "secret-sql" not in output
    assert "Traceback" not in output


def test_text_formatter_writes_time_level_logger_and_message_in_utc():
    line = TextFormatter().format(make_record("user %s logged in", "bob", request_id="r-1"))

    assert line == "2023-11-14 22:13:20,123 [WARNING] webapp.test: user bob logged in"


# A gunicorn worker in a fresh interpreter (the test process's logging stays as it is):
# gunicorn's logger set up from docker/gunicorn.conf.py, then the app created outside
# testing (so it applies logging_config), then one record per level from each logger.
WORKER_PROBE = """
import logging, os, runpy, sys
from gunicorn.config import Config
level, log_format = sys.argv[1:3]
os.environ.update(LOG_LEVEL=level, LOG_FORMAT=log_format)
settings = runpy.run_path("docker/gunicorn.conf.py")
cfg = Config()
for name, value in settings.items():
    if name in cfg.settings:
        cfg.set(name, value)
cfg.logger_class(cfg)
from webapp import create_app
create_app({"APP_ENV": "development", "SQLALCHEMY_DATABASE_URI": "sqlite://",
            "LOG_LEVEL": level, "LOG_FORMAT": log_format})
for name in ("webapp.probe", "gunicorn.error", "apscheduler.scheduler", "alembic.runtime"):
    logging.getLogger(name).info("info from %s", name)
    logging.getLogger(name).warning("warning from %s", name)
logging.getLogger("gunicorn.access").info("info from gunicorn.access")
"""


@pytest.fixture
def worker_log(tmp_path):
    """Runs WORKER_PROBE for (level, format); returns its stderr lines."""

    def run(level: str, log_format: str) -> list[str]:
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
        # A fixed interpreter running code written here: nothing untrusted reaches the command line.
        result = subprocess.run(
            [sys.executable, "-c", WORKER_PROBE, level, log_format],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return result.stderr.splitlines()

    return run


# At INFO: the app's and gunicorn's records at both levels, the libraries' only from WARNING,
# gunicorn's access log not at all (the app writes its own access line).
INFO_LINES = [
    ("webapp.probe", "INFO"),
    ("webapp.probe", "WARNING"),
    ("gunicorn.error", "INFO"),
    ("gunicorn.error", "WARNING"),
    ("apscheduler.scheduler", "WARNING"),
    ("alembic.runtime", "WARNING"),
]


def test_worker_json_logs_write_each_record_once_as_a_json_object(worker_log):
    entries = [json.loads(line) for line in worker_log("INFO", "json")]

    assert [(entry["logger"], entry["level"]) for entry in entries] == INFO_LINES
    for entry in entries:
        assert entry["message"] == f"{entry['level'].lower()} from {entry['logger']}"
        assert entry["time"].endswith("Z")


def test_worker_text_logs_write_each_record_once_in_the_text_format(worker_log):
    lines = worker_log("INFO", "text")

    assert [line.split(" ", 2)[2] for line in lines] == [
        f"[{level}] {name}: {level.lower()} from {name}" for name, level in INFO_LINES
    ]


def test_worker_log_level_applies_to_app_and_gunicorn_records(worker_log):
    entries = [json.loads(line) for line in worker_log("WARNING", "json")]

    assert [(entry["logger"], entry["level"]) for entry in entries] == [
        (name, level) for name, level in INFO_LINES if level == "WARNING"
    ]
