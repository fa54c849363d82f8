"""The triggers that keep a table's row counts (webapp/models/row_count.py): generated SQL for
MySQL/MariaDB and SQLite, and the two calls a migration makes, ``create_count_triggers`` in
its upgrade() and ``drop_count_triggers`` in its downgrade().

On MySQL, triggers do not fire for rows a foreign key's ON DELETE CASCADE removes: a counted
table whose rows are deleted by a cascade must not keep counts (a window count, the default,
is right for it).
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, Table, case, literal, literal_column
from sqlalchemy.dialects import mysql as mysql_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from webapp.dialects import BULK_VARIABLE, NODE_VARIABLE
from webapp.models.row_count import SHARDS, RowCount


def shard(dialect: str) -> ColumnElement:
    """The counter row a trigger adds to: one of its node's SHARDS, at random (see
    webapp.models.row_count)."""
    if dialect in ("mysql", "mariadb"):
        return literal_column(f"COALESCE(@{NODE_VARIABLE}, 0) * {SHARDS} + FLOOR(RAND() * {SHARDS})")
    return literal_column(f"ABS(RANDOM()) % {SHARDS}")


def add_to_counter(dialect: str, counts: Table, key: dict[str, ColumnElement], delta: int) -> str:
    """The statement a trigger runs to add ``delta`` to the ``rows`` of the counter row
    ``key`` (column -> SQL expression) of ``counts``, inserting the row if it is new."""
    mysql = dialect in ("mysql", "mariadb")
    compiler = mysql_dialect.dialect() if mysql else sqlite_dialect.dialect()
    compiler.insert_returning = False  # an INSERT in a trigger returns nothing
    added = counts.c.rows + literal_column(str(delta))
    values = {**key, "rows": delta}
    if mysql:
        statement = mysql_insert(counts).values(values).on_duplicate_key_update(rows=added)
    else:
        statement = sqlite_insert(counts).values(values)
        statement = statement.on_conflict_do_update(counts.primary_key, set_={"rows": added})
    # A trigger's body takes no bind parameters: the statement is compiled with its values
    # inline, and they are declared names, numbers and columns, never input.
    return str(statement.compile(dialect=compiler, compile_kwargs={"literal_binds": True}))


def count_triggers(
    dialect: str, table: str, column: str | None = None, names: dict | None = None
) -> list[str]:
    """CREATE TRIGGER statements (MySQL/MariaDB or SQLite) that add to ``table``'s counts on
    every insert and delete, and, with ``column``, move a row between the counts of
    ``names`` (value -> count name) when its ``column`` changes."""
    mysql = dialect in ("mysql", "mariadb")

    def add(row: str, delta: int) -> str:
        name = (
            literal(table)
            if column is None
            else case(dict(names or {}), value=literal_column(f"{row}.{column}"))
        )
        return add_to_counter(dialect, RowCount.__table__, {"name": name, "shard": shard(dialect)}, delta)

    # On MySQL a bulk loader turns them off for its connection and counts in bulk instead.
    unless_bulk = f"@{BULK_VARIABLE} IS NULL"
    statements = [
        f"CREATE TRIGGER {table}_count_insert AFTER INSERT ON {table} FOR EACH ROW "
        + (
            f"BEGIN IF {unless_bulk} THEN {add('NEW', 1)}; END IF; END"
            if mysql
            else f"BEGIN {add('NEW', 1)}; END"
        ),
        f"CREATE TRIGGER {table}_count_delete AFTER DELETE ON {table} FOR EACH ROW "
        + (
            f"BEGIN IF {unless_bulk} THEN {add('OLD', -1)}; END IF; END"
            if mysql
            else f"BEGIN {add('OLD', -1)}; END"
        ),
    ]
    if column is not None:
        moved = f"{add('NEW', 1)}; {add('OLD', -1)};"
        statements.append(
            f"CREATE TRIGGER {table}_count_update AFTER UPDATE ON {table} FOR EACH ROW "
            f"BEGIN IF {unless_bulk} AND NOT (NEW.{column} <=> OLD.{column}) THEN {moved} END IF; END"
            if mysql
            else f"CREATE TRIGGER {table}_count_update AFTER UPDATE OF {column} ON {table} FOR EACH ROW "
            f"WHEN NEW.{column} IS NOT OLD.{column} BEGIN {moved} END"
        )
    return statements


def trigger_names(table: str, by_column: bool = False) -> list[str]:
    """The names of ``table``'s count triggers."""
    events = ["insert", "delete", "update"] if by_column else ["insert", "delete"]
    return [f"{table}_count_{event}" for event in events]


def create_count_triggers(op, table: str, column: str | None = None, names: dict | None = None) -> None:
    """In a migration's upgrade(): count ``table``'s rows from now on (a new table starts
    from nothing: run ``RowCount.forget(table)`` first, so no stale count survives)."""
    for statement in count_triggers(op.get_bind().dialect.name, table, column, names):
        op.execute(statement)


def drop_count_triggers(op, table: str, column: str | None = None) -> None:
    """In a migration's downgrade(): stop counting ``table``'s rows."""
    for name in trigger_names(table, column is not None):
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
