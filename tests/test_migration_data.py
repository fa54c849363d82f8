"""The migrations with data present: stepping down from the newest revision to the first one
keeps every row of every table the older schema still has, value for value in the columns it
still has, and coming back up keeps them again and rebuilds the row counts; a round trip
through base leaves empty tables that the app works on again."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import downgrade, upgrade
from sqlalchemy import Column, MetaData, Table, insert, inspect, select, text

from tests.conftest import release_connections
from tests.factories import PASSWORD, login, make_item, make_user
from webapp.database import db, utcnow
from webapp.deploy_lock import DEPLOY_LOCK_TABLE
from webapp.extensions import migrate
from webapp.jobs import PURGE_JOB, purge_expired_sessions, run_once_per_slot
from webapp.models import Role, RowCount
from webapp.models.row_count import KEPT_COUNTS
from webapp.models.word_index import WORD_LENGTH

# Tables the migrations do not own: Alembic's own and `flask deploy`'s lock.
NOT_MIGRATED = {"alembic_version", DEPLOY_LOCK_TABLE}
# Counts kept beside their tables (revision 0004): rebuilt from the rows on upgrade.
COUNTED = {kept.name(value) for kept in KEPT_COUNTS for value in kept.values}


def revisions_newest_first() -> list[str]:
    script = ScriptDirectory.from_config(migrate.get_config())
    return [revision.revision for revision in script.walk_revisions()]


def current_revision() -> str | None:
    with db.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def table_names() -> set[str]:
    release_connections()
    return set(inspect(db.engine).get_table_names()) - NOT_MIGRATED


def dump() -> dict[str, dict]:
    """Every row of every application table, as the database returns it: per table its column
    names and its rows (tuples of every column) in primary-key order."""
    release_connections()
    dumped = {}
    with db.engine.connect() as connection:
        for name in set(inspect(connection).get_table_names()) - NOT_MIGRATED:
            table = Table(name, MetaData(), autoload_with=connection)
            rows = connection.execute(select(table).order_by(*table.primary_key.columns)).all()
            dumped[name] = {"columns": list(table.columns.keys()), "rows": [tuple(row) for row in rows]}
    release_connections()
    return dumped


def project(table: dict, columns: list[str]) -> list[tuple]:
    """A dumped table's rows reduced to ``columns``."""
    indexes = [table["columns"].index(column) for column in columns]
    return [tuple(row[index] for index in indexes) for row in table["rows"]]


def sample_value(column: Column, number: int):
    """A value ``column`` accepts, for a row nobody wrote through the API."""
    if column.foreign_keys:
        target = next(iter(column.foreign_keys)).column
        return db.session.scalar(select(target).order_by(target).limit(1))
    python_type = column.type.python_type
    if python_type is str:
        return f"sample {number}"[: getattr(column.type, "length", None) or None]
    if python_type is bool:
        return True
    if python_type is datetime:
        return utcnow()
    return number


def fill_empty_tables() -> None:
    """A row in every table the API calls above left empty (a resource added since), so that
    a lost row shows in every table."""
    for table in db.metadata.sorted_tables:
        if db.session.execute(select(table).limit(1)).first() is None:
            row = {
                column.name: sample_value(column, 1)
                for column in table.columns
                if not (column.primary_key and column.autoincrement in (True, "auto"))
            }
            db.session.execute(insert(table).values(row))
    db.session.commit()


def count_totals(rows: list[tuple]) -> dict[str, int]:
    """row_counts rows (name, shard, rows) summed per name."""
    totals: dict[str, int] = {}
    for name, _shard, count in rows:
        totals[name] = totals.get(name, 0) + count
    return totals


@pytest.fixture
def data(app, client) -> dict:
    """A lived-in database, made through the API where the API makes it: accounts (one an
    admin, one deactivated), items (with, without and with a cleared description, non-ASCII),
    live and rotated sessions, a claimed job run and failed logins."""
    admin = make_user("boss", role=Role.ADMIN)
    admin_headers = login(client, admin.username)["headers"]
    created = []
    for username in ("alice", "bob", "chloe", "gone"):
        response = client.post(
            "/users", json={"username": username, "role_id": Role.USER}, headers=admin_headers
        )
        assert response.status_code == 201, response.get_json()
        created.append(response.get_json())
    sessions = {user["username"]: login(client, user["username"], user["password"]) for user in created}

    item_ids = []
    for number in range(12):
        owner = created[number % 3]["username"]
        body = {"name": f"thing {number} ✓", "description": f"описание {number}" if number % 2 else None}
        response = client.post("/items", json=body, headers=sessions[owner]["headers"])
        assert response.status_code == 201, response.get_json()
        item_ids.append(response.get_json()["id"])
    patched = client.patch(
        f"/items/{item_ids[1]}", json={"description": None}, headers=sessions["bob"]["headers"]
    )
    assert patched.status_code == 200, patched.get_json()
    make_item(admin, "made by a factory", "x" * 1000)

    # A rotated session (a retired refresh token) and a second live session of one account.
    refreshed = client.post("/auth/refresh", json={"refresh_token": sessions["alice"]["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.get_json()
    login(client, "alice", created[0]["password"])
    # A claimed run of the scheduled purge, then failed logins (which the purge would clear).
    assert run_once_per_slot(PURGE_JOB, 86400, purge_expired_sessions) == 0
    for _ in range(2):
        failed = client.post("/auth/token", json={"username": "bob", "password": "not " + PASSWORD})
        assert failed.status_code == 401
    # A deactivated account (its sessions end, its items stay).
    gone = client.delete(f"/users/{created[3]['id']}", headers=admin_headers)
    assert gone.status_code == 200, gone.get_json()

    fill_empty_tables()
    counts = {name: rows for kept in KEPT_COUNTS for name, rows in kept.recount().items()}
    assert {name: counts[name] for name in ("items", "users.active", "users.inactive")} == {
        "items": len(item_ids) + 1,
        "users.active": 4,
        "users.inactive": 1,
    }
    release_connections()
    return {
        "counts": counts,
        "items": len(item_ids) + 1,
        "users.active": 4,
        "users.inactive": 1,
        "admin": admin.username,
        "bob_headers": sessions["bob"]["headers"],
    }


WORD_INDEX = {
    "search_positions",
    "search_words",
    "search_word_grams",
    "search_gram_counts",
    "item_name_words",
    "item_name_word_counts",
    "user_name_words",
}


def word_index() -> dict[str, set]:
    """The word index by the words' text: what it holds, whatever ids the words got."""
    queries = {
        "positions": "SELECT n FROM search_positions",
        "grams": "SELECT g.gram, w.word FROM search_word_grams g JOIN search_words w ON w.id = g.word_id",
        "gram counts": "SELECT gram, words FROM search_gram_counts",
        "items": "SELECT w.word, p.item_id FROM item_name_words p JOIN search_words w ON w.id = p.word_id",
        "users": "SELECT w.word, p.user_id FROM user_name_words p JOIN search_words w ON w.id = p.word_id",
        "item word counts": "SELECT w.word, SUM(c.`rows`) FROM item_name_word_counts c "
        "JOIN search_words w ON w.id = c.word_id GROUP BY w.word",
    }
    release_connections()
    with db.engine.connect() as connection:
        index = {
            name: {tuple(row) for row in connection.execute(text(query))} for name, query in queries.items()
        }
    release_connections()
    return index


@pytest.mark.usefixtures("upgraded_afterwards")
def test_each_downgrade_step_keeps_every_row_and_upgrade_restores_them(app, client, data):
    revisions = revisions_newest_first()
    head = revisions[0]
    assert current_revision() == head

    before = dump()
    index_before = word_index()
    assert set(before) == set(db.metadata.tables)
    # Every table holds data, so a lost row anywhere shows.
    assert {name for name, table in before.items() if not table["rows"]} == set(), before
    assert count_totals(before["row_counts"]["rows"]) == data["counts"]

    # Down one revision at a time: each older schema keeps every row of its tables, value for
    # value in the columns it still has.
    tables_down = {head: set(before)}
    kept_columns = {name: table["columns"] for name, table in before.items()}
    for step in revisions[1:]:
        downgrade(revision=step)
        assert current_revision() == step
        after = dump()
        tables_down[step] = set(after)
        for name in after:
            columns = after[name]["columns"]
            assert set(columns) <= set(before[name]["columns"]), f"table {name} gained columns at {step}"
            assert after[name]["rows"] == project(before[name], columns), f"{name} changed at {step}"
            kept_columns[name] = columns

    # Up one revision at a time: each schema has the tables it had on the way down.
    for step in reversed(revisions[:-1]):
        upgrade(revision=step)
        assert table_names() == tables_down[step], f"tables at {step}, up and down"
    assert current_revision() == head
    after = dump()
    first_tables = tables_down[revisions[-1]]
    for name in first_tables:
        assert after[name]["columns"] == before[name]["columns"]
        assert project(after[name], kept_columns[name]) == project(before[name], kept_columns[name]), (
            f"table {name} changed by the upgrade back to {head}"
        )
    # Tables the downgrade dropped come back empty, except what is derived from the rows and
    # rebuilt from them: the counts, and the word index (its word ids may differ).
    for name in set(db.metadata.tables) - first_tables - {"row_counts"} - WORD_INDEX:
        assert after[name]["rows"] == [], name
    assert word_index() == index_before
    assert count_totals(after["row_counts"]["rows"]) == data["counts"]
    assert db.session.scalar(select(RowCount.total("items"))) == data["items"]
    release_connections()

    # The app reads the rebuilt counts: the list totals are the real numbers of rows.
    headers = login(client, data["admin"])["headers"]
    items = client.get("/items?limit=100", headers=headers).get_json()
    assert items["total"] == data["items"] == len(items["items"])
    assert client.get("/users").get_json()["total"] == data["users.active"]
    assert client.get("/users?activated=false").get_json()["total"] == data["users.inactive"]
    # Sessions opened before the round trip still work, and counting goes on from the rebuild.
    assert client.get("/auth/me", headers=data["bob_headers"]).get_json()["username"] == "bob"
    assert client.post("/items", json={"name": "after the round trip"}, headers=headers).status_code == 201
    assert client.get("/items", headers=headers).get_json()["total"] == data["items"] + 1


@pytest.mark.usefixtures("upgraded_afterwards")
def test_round_trip_through_base_with_data_recreates_empty_tables_that_work(app, client, runner, data):
    assert all(table["rows"] for table in dump().values())

    downgrade(revision="base")

    assert current_revision() is None
    assert table_names() == set()

    upgrade()

    assert table_names() == set(db.metadata.tables)
    after = dump()
    derived = {"row_counts", "search_positions"}
    assert {name: table["rows"] for name, table in after.items() if name not in derived} == {
        name: [] for name in set(db.metadata.tables) - derived
    }
    assert count_totals(after["row_counts"]["rows"]) == dict.fromkeys(COUNTED, 0)
    assert word_index()["positions"] == {(n,) for n in range(1, WORD_LENGTH + 1)}

    # A fresh deployment's start: `flask seed`, then the API works on the new tables.
    result = runner.invoke(args=["seed"])
    assert result.exit_code == 0, result.output
    password = re.search(r"password \(shown once\): (\S+)", result.output).group(1)
    release_connections()
    admin = login(client, app.config["ADMIN_USERNAME"], password)
    created = client.post(
        "/users", json={"username": "newcomer", "role_id": Role.USER}, headers=admin["headers"]
    )
    assert created.status_code == 201, created.get_json()
    newcomer = login(client, "newcomer", created.get_json()["password"])
    item = client.post("/items", json={"name": "first", "description": "again"}, headers=newcomer["headers"])
    assert item.status_code == 201, item.get_json()
    listing = client.get("/items", headers=newcomer["headers"]).get_json()
    assert (listing["total"], [row["name"] for row in listing["items"]]) == (1, ["first"])
    assert client.get("/roles", headers={"X-Version": "1.0"}).get_json() == [
        {"id": Role.ADMIN, "name": "admin"},
        {"id": Role.USER, "name": "user"},
    ]
    assert client.get("/users").get_json()["total"] == 2
    # Sessions from before are gone with their table.
    assert client.get("/auth/me", headers=data["bob_headers"]).status_code == 401
