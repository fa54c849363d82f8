"""Row counts kept beside big tables, so a list's ``total`` never scans the table.

The database keeps them: triggers on the counted table add to its counts in the same
transaction as every insert, delete and change of the counted column, whoever writes (the
app, `flask fake`, an operator's SQL), at no extra round trip. A counted table is declared
by one line after its model, ``keep_count(Item)`` for all its rows, or ``keep_count(User,
by=User.activated, names=...)`` per value of a column; its migration creates the triggers
(``create_count_triggers``) and clears stale counts (``RowCount.forget``), and everything
else reads the declarations (``KEPT_COUNTS``): the list totals and ``flask counts rebuild``.

Only a table that grows without bound needs this. A table of some thousands of rows (a list
an admin keeps) counts its rows along with each page (``PageQuery.of(query)``, a window count),
which costs less than a write on every insert.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    BigInteger,
    Delete,
    ScalarSelect,
    SmallInteger,
    String,
    case,
    delete,
    func,
    literal,
    literal_column,
    or_,
    select,
)
from sqlalchemy.dialects import mysql as mysql_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import InstrumentedAttribute, Mapped, mapped_column

from webapp.database import MYSQL_TABLE_ARGS, db
from webapp.dialects import NODE_VARIABLE

# Writers add to one of a node's SHARDS rows at random, so concurrent inserts seldom wait on
# one lock; each node of a Galera cluster has rows of its own (the connection's shard base,
# set when it opens: webapp.database.galera_session), so writes on different nodes never
# conflict over a count.
SHARDS = 8


class RowCount(db.Model):
    """Part of the number of rows under ``name``; the total is the sum of its shards.

    Counts change in the same transaction as the rows they count, so they are exact, on every
    worker, at once. Names start with their table's name ("items", "users.active").
    """

    __tablename__ = "row_counts"
    __table_args__ = MYSQL_TABLE_ARGS

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    rows: Mapped[int] = mapped_column(BigInteger, default=0)

    @classmethod
    def total(cls, name: str) -> ScalarSelect:
        """The count of ``name`` as an SQL expression, to read along with a page of rows."""
        return select(func.coalesce(func.sum(cls.rows), 0)).where(cls.name == name).scalar_subquery()

    @classmethod
    def forget(cls, table: str) -> Delete:
        """A statement deleting every count of ``table``: a migration that creates or drops a
        counted table runs it, so no count outlives its rows (``op.execute(RowCount.forget("t"))``)."""
        return delete(cls.__table__).where(or_(cls.name == table, cls.name.startswith(f"{table}.")))


@dataclass(frozen=True)
class KeptCount:
    """The counts kept for one model's table: of every row, or per value of ``by``."""

    model: type
    by: InstrumentedAttribute | None = None
    # The count's name for each value of ``by`` (each starts with the table's name).
    names: dict[Any, str] = field(default_factory=dict)

    @property
    def table(self) -> str:
        return self.model.__tablename__

    def name(self, value: Any = None) -> str:
        return self.names[value] if self.by is not None else self.table

    @property
    def values(self) -> list:
        """The values of ``by`` that have a count ([None]: the one count of the whole table)."""
        return list(self.names) if self.by is not None else [None]

    def total(self, value: Any = None) -> ScalarSelect:
        """The count (of the rows whose ``by`` is ``value``), as an SQL expression."""
        return RowCount.total(self.name(value))

    def recount(self) -> dict[str, int]:
        """Every count of this table, counted from its rows (a scan)."""
        if self.by is None:
            return {self.name(): db.session.scalar(select(func.count()).select_from(self.model))}
        found = dict(db.session.execute(select(self.by, func.count()).group_by(self.by)).all())
        return {name: found.get(value, 0) for value, name in self.names.items()}

    def triggers(self, dialect: str) -> list[str]:
        """The statements creating this table's count triggers on ``dialect``."""
        column = self.by.key if self.by is not None else None
        return count_triggers(dialect, self.table, column, self.names)


# Every table that keeps counts, in declaration order.
KEPT_COUNTS: list[KeptCount] = []


def keep_count(
    model: type, *, by: InstrumentedAttribute | None = None, names: dict | None = None
) -> KeptCount:
    """Declare that ``model``'s rows are counted (per value of ``by``, named by ``names``) by
    triggers its migration creates (``create_count_triggers``)."""
    kept = KeptCount(model, by, names or {})
    if by is not None and not kept.names:
        raise ValueError("counts by a column need a name for each of its values")
    KEPT_COUNTS.append(kept)
    return kept


def count_triggers(
    dialect: str, table: str, column: str | None = None, names: dict | None = None
) -> list[str]:
    """CREATE TRIGGER statements (MySQL/MariaDB or SQLite) that add to ``table``'s counts on
    every insert and delete, and, with ``column``, move a row between the counts of
    ``names`` (value -> count name) when its ``column`` changes."""
    mysql = dialect in ("mysql", "mariadb")
    shard = literal_column(
        f"COALESCE(@{NODE_VARIABLE}, 0) * {SHARDS} + FLOOR(RAND() * {SHARDS})"
        if mysql
        else f"ABS(RANDOM()) % {SHARDS}"
    )
    compiler = mysql_dialect.dialect() if mysql else sqlite_dialect.dialect()
    compiler.insert_returning = False  # an INSERT in a trigger returns nothing

    def add(row: str, delta: int) -> str:
        # A trigger's body takes no bind parameters: the statement is compiled with its values
        # inline, and they are the declaration's names and numbers, never input.
        name = (
            literal(table)
            if column is None
            else case(dict(names or {}), value=literal_column(f"{row}.{column}"))
        )
        counts = RowCount.__table__
        added = counts.c.rows + literal_column(str(delta))
        values = {"name": name, "shard": shard, "rows": delta}
        if mysql:
            statement = mysql_insert(counts).values(values).on_duplicate_key_update(rows=added)
        else:
            statement = sqlite_insert(counts).values(values)
            statement = statement.on_conflict_do_update(counts.primary_key, set_={"rows": added})
        return str(statement.compile(dialect=compiler, compile_kwargs={"literal_binds": True}))

    statements = [
        f"CREATE TRIGGER {table}_count_insert AFTER INSERT ON {table} FOR EACH ROW "
        + (add("NEW", 1) if mysql else f"BEGIN {add('NEW', 1)}; END"),
        f"CREATE TRIGGER {table}_count_delete AFTER DELETE ON {table} FOR EACH ROW "
        + (add("OLD", -1) if mysql else f"BEGIN {add('OLD', -1)}; END"),
    ]
    if column is not None:
        moved = f"{add('NEW', 1)}; {add('OLD', -1)};"
        statements.append(
            f"CREATE TRIGGER {table}_count_update AFTER UPDATE ON {table} FOR EACH ROW "
            f"BEGIN IF NOT (NEW.{column} <=> OLD.{column}) THEN {moved} END IF; END"
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


def rebuild_counts() -> dict[str, int]:
    """Replace every kept count with one counted from the rows (the caller commits)."""
    counts = {name: rows for kept in KEPT_COUNTS for name, rows in kept.recount().items()}
    for kept in KEPT_COUNTS:
        db.session.execute(RowCount.forget(kept.table))
    db.session.add_all(RowCount(name=name, shard=0, rows=rows) for name, rows in counts.items())
    return counts
