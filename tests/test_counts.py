"""Kept row counts: declared once per table (webapp/models/row_count.py), moved by every insert,
delete and change of their column, rebuilt by `flask counts rebuild`, cleared by migrations."""

from __future__ import annotations

import pytest
from sqlalchemy import insert, select, update

from tests.factories import login, make_item, make_user
from webapp.database import utcnow
from webapp.extensions import db
from webapp.models import Item, Role, RowCount, User
from webapp.models.row_count import KEPT_COUNTS


def totals() -> dict[str, int]:
    """Every kept count, as the lists read it."""
    return {
        kept.name(value): db.session.scalar(select(kept.total(value)))
        for kept in KEPT_COUNTS
        for value in kept.values
    }


def test_the_counted_tables_are_declared_once_each(app):
    assert [(kept.table, kept.by) for kept in KEPT_COUNTS] == [("items", None), ("users", User.activated)]
    names = [kept.name(value) for kept in KEPT_COUNTS for value in kept.values]
    assert names == ["items", "users.active", "users.inactive"]
    assert all(name.partition(".")[0] == kept.table for kept in KEPT_COUNTS for name in kept.recount())


def test_counts_move_with_inserts_deletes_and_changes_of_their_column(client, admin_headers):
    before = totals()
    owner = make_user("owner")
    items = [make_item(owner) for _ in range(3)]
    db.session.delete(items[0])
    db.session.commit()
    owner.activated = False
    db.session.commit()
    assert client.delete(f"/users/{make_user('leaver').id}", headers=admin_headers).status_code == 200

    assert totals() == {
        "items": before["items"] + 2,
        "users.active": before["users.active"],
        "users.inactive": before["users.inactive"] + 2,
    }


def test_setting_the_column_to_its_value_moves_no_count(app):
    user = make_user("steady")
    before = totals()
    user.activated = True
    db.session.commit()
    assert totals() == before


def test_counts_rebuild_recounts_rows_changed_behind_the_apps_back(runner, client, admin):
    owner = make_user("owner")
    make_item(owner, "counted")
    now = utcnow()
    # Rows written without the ORM: no mapper event sees them, the counts go stale.
    db.session.execute(
        insert(Item),
        [{"name": f"raw {n}", "user_id": owner.id, "created_at": now, "updated_at": now} for n in range(4)],
    )
    db.session.execute(update(User).where(User.id == owner.id).values(activated=False))
    db.session.commit()
    assert totals()["items"] == 1

    result = runner.invoke(args=["counts", "rebuild"])

    assert result.exit_code == 0, result.output
    assert result.output == "items: 5, users.active: 1, users.inactive: 1\n"
    assert totals() == {"items": 5, "users.active": 1, "users.inactive": 1}
    # One shard per count, and the lists answer the real totals.
    assert db.session.execute(select(RowCount.name, RowCount.shard)).all() == [
        ("items", 0),
        ("users.active", 0),
        ("users.inactive", 0),
    ]
    headers = login(client, admin.username)["headers"]
    assert client.get("/items", headers=headers).get_json()["total"] == 5
    assert client.get("/users?activated=false").get_json()["total"] == 1


def test_counts_rebuild_on_an_empty_database_writes_zeros(runner):
    result = runner.invoke(args=["counts", "rebuild"])

    assert result.exit_code == 0, result.output
    assert totals() == {"items": 0, "users.active": 0, "users.inactive": 0}


@pytest.mark.parametrize(
    ("table", "left"),
    [("items", {"users.active", "users.inactive", "itemsets"}), ("users", {"items", "itemsets"})],
)
def test_a_migration_forgets_exactly_one_tables_counts(app, table, left):
    for name in ("items", "users.active", "users.inactive", "itemsets"):
        RowCount.add(db.session.connection(), name, 3)
    db.session.commit()

    db.session.execute(RowCount.forget(table))

    assert set(db.session.scalars(select(RowCount.name))) == left


def test_counts_by_a_column_need_a_name_for_each_value():
    from webapp.models.row_count import keep_count

    with pytest.raises(ValueError, match="a name for each"):
        keep_count(Role, by=Role.name)
    assert [kept.table for kept in KEPT_COUNTS] == ["items", "users"]
