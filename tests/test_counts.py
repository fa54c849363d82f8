"""Kept row counts: declared once per table (webapp/models/row_count.py), moved by the database's
triggers on every insert, delete and change of their column (by whoever writes), rebuilt by
`flask counts rebuild`, cleared by migrations."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, insert, select, text, update

from tests.factories import login, make_item, make_user
from webapp.count_triggers import trigger_names
from webapp.database import db, utcnow
from webapp.models import Item, Role, RowCount, User
from webapp.models.row_count import KEPT_COUNTS
from webapp.models.word_index import ItemNameWordCount
from webapp.word_triggers import word_count_trigger_names


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


def test_rows_written_without_the_app_are_counted_too(app):
    owner = make_user("owner")
    make_item(owner, "counted")
    now = utcnow()
    before = totals()

    # Plain SQL, as a bulk load or an operator would write it: the triggers count it.
    db.session.execute(
        insert(Item),
        [{"name": f"raw {n}", "user_id": owner.id, "created_at": now, "updated_at": now} for n in range(4)],
    )
    db.session.execute(update(User).where(User.id == owner.id).values(activated=False))
    db.session.execute(delete(Item).where(Item.name == "raw 0"))
    db.session.commit()

    assert totals() == {
        "items": before["items"] + 3,
        "users.active": before["users.active"] - 1,
        "users.inactive": before["users.inactive"] + 1,
    }


def test_every_counted_table_has_its_triggers_in_the_database(app):
    dialect = db.engine.dialect.name
    query = (
        "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()"
        if dialect in ("mysql", "mariadb")
        else "SELECT name FROM sqlite_master WHERE type = 'trigger'"
    )
    present = set(db.session.scalars(text(query)))

    wanted = {name for kept in KEPT_COUNTS for name in trigger_names(kept.table, kept.by is not None)}
    assert wanted == {
        "items_count_insert",
        "items_count_delete",
        *(f"users_count_{e}" for e in ("insert", "delete", "update")),
    }
    assert wanted <= present
    assert {"item_name_words_insert", "item_name_words_delete"} == set(word_count_trigger_names()) <= present


def test_counts_rebuild_mends_counts_that_were_damaged(runner, client, admin):
    owner = make_user("owner")
    for n in range(5):
        make_item(owner, f"counted {n}")
    owner.activated = False
    db.session.commit()
    # A count damaged by hand (or restored from another backup than its rows).
    db.session.execute(update(RowCount).values(rows=RowCount.rows + 7))
    db.session.execute(update(ItemNameWordCount).values(rows=ItemNameWordCount.rows + 7))
    db.session.commit()
    assert totals()["items"] != 5

    result = runner.invoke(args=["counts", "rebuild"])

    assert result.exit_code == 0, result.output
    assert result.output == "items: 5, users.active: 1, users.inactive: 1, words of items.name: 6\n"
    assert totals() == {"items": 5, "users.active": 1, "users.inactive": 1}
    # One shard per count, and the lists answer the real totals.
    assert db.session.execute(select(RowCount.name, RowCount.shard)).all() == [
        ("items", 0),
        ("users.active", 0),
        ("users.inactive", 0),
    ]
    headers = login(client, admin.username)["headers"]
    assert client.get("/items", headers=headers).get_json()["total"] == 5
    assert client.get("/items?name=COUNTED", headers=headers).get_json()["total"] == 5
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
    names = ("items", "users.active", "users.inactive", "itemsets")
    db.session.add_all(RowCount(name=name, shard=0, rows=3) for name in names)
    db.session.commit()

    db.session.execute(RowCount.forget(table))

    assert set(db.session.scalars(select(RowCount.name))) == left


def test_counts_by_a_column_need_a_name_for_each_value():
    from webapp.models.row_count import keep_count

    with pytest.raises(ValueError, match="a name for each"):
        keep_count(Role, by=Role.name)
    assert [kept.table for kept in KEPT_COUNTS] == ["items", "users"]
