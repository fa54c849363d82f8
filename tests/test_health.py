"""Liveness (/healthz) and readiness (/readyz) probes, with and without a reachable database,
and on a Galera node that cannot serve."""

import os

import pytest

from tests.conftest import TEST_CONFIG
from tests.helpers import Permission, assert_problem, expect, permission_test
from tests.test_errors import UnreadyNode
from webapp import create_app
from webapp.database import db
from webapp.health import READINESS

PERMISSIONS = [
    Permission("liveness", "GET", "/healthz", None, expect(200, 200, 200, 200)),
    Permission("readiness", "GET", "/readyz", None, expect(200, 200, 200, 200)),
]
test_each_actor_gets_the_status_the_contract_gives = permission_test(PERMISSIONS)


def test_healthz_answers_ok(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_answers_ready_when_the_database_answers(client):
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.get_json() == {"status": "ready"}


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_probes_need_no_token_and_ignore_x_version(client, path):
    response = client.get(path, headers={"X-Version": "0.9", "Authorization": "Bearer nonsense"})

    assert response.status_code == 200


@pytest.fixture(params=["sqlite-missing-directory", "mysql-closed-port"])
def unreachable_app(request, tmp_path):
    """An app whose database cannot be connected to."""
    url = {
        "sqlite-missing-directory": f"sqlite:///{tmp_path / 'missing' / 'app.db'}",
        "mysql-closed-port": "mysql+pymysql://nobody@127.0.0.1:1/x",
    }[request.param]
    app = create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": url, "DATABASE_CONNECT_TIMEOUT": 1})
    yield app
    with app.app_context():
        db.engine.dispose()


def test_readyz_is_503_problem_when_the_database_cannot_connect(unreachable_app):
    response = unreachable_app.test_client().get("/readyz")

    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["status"] == 503
    assert body["detail"] == "Database unavailable"
    assert "sqlite" not in response.get_data(as_text=True).lower()
    assert "pymysql" not in response.get_data(as_text=True).lower()


def test_healthz_stays_200_when_the_database_cannot_connect(unreachable_app):
    client = unreachable_app.test_client()
    client.get("/readyz")

    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_is_503_while_the_node_refuses_to_serve(app, client, monkeypatch):
    # A Galera node cut off from its cluster refuses the query, and new connections too.
    UnreadyNode(db.engine, monkeypatch).refused = {"execute", "commit", "rollback"}

    response = client.get("/readyz")

    assert assert_problem(response, 503)["detail"] == "Database node not ready"


def answering(monkeypatch, rows: list[tuple[str, str]]) -> None:
    """The server answers the readiness query with these status variables."""
    dialect = db.engine.dialect
    execute = dialect.do_execute
    answer = " UNION ALL ".join(f"SELECT '{name}', '{value}'" for name, value in rows) or "SELECT 1 WHERE 0"

    def do_execute(cursor, statement, parameters, context=None):
        if statement == READINESS.text:
            statement = answer
        return execute(cursor, statement, parameters, context)

    monkeypatch.setattr(dialect, "do_execute", do_execute)


STATUSES = {
    # A Galera node outside the primary component, or joining: it answers a plain SELECT 1.
    "galera-not-ready": ([("wsrep_provider_name", "Galera"), ("wsrep_ready", "OFF")], 503),
    "galera-ready": ([("wsrep_provider_name", "Galera"), ("wsrep_ready", "ON")], 200),
    "mariadb-without-galera": ([("wsrep_provider_name", ""), ("wsrep_ready", "OFF")], 200),
    "mysql": ([], 200),
}


@pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL", "").startswith("mysql"),
    reason="needs MariaDB (TEST_DATABASE_URL): SQLite has no server status to read",
)
@pytest.mark.parametrize(("rows", "status"), STATUSES.values(), ids=STATUSES.keys())
def test_readyz_on_mysql_reads_whether_a_galera_node_can_serve(app, client, monkeypatch, rows, status):
    answering(monkeypatch, rows)

    response = client.get("/readyz")

    assert response.status_code == status
    if status == 503:
        assert assert_problem(response, 503)["detail"] == "Database node not ready"
