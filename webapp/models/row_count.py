"""Row counts kept beside big tables, so a list's ``total`` never scans the table.

The database keeps them: triggers on the counted table add to its counts in the same
transaction as every insert, delete and change of the counted column, whoever writes (the
app, `flask fake`, an operator's SQL), at no extra round trip. A counted table is declared
by one line after its model, ``keep_count(Item)`` for all its rows, or ``keep_count(User,
by=User.activated, names=...)`` per value of a column; its migration creates the triggers
(``create_count_triggers``) and clears stale counts (``RowCount.forget``), and everything
else reads the declarations (``KEPT_COUNTS``): the list totals and ``flask counts rebuild``.
The triggers themselves are written by webapp/count_triggers.py.

Only a table that grows without bound needs this. A table of some thousands of rows (a list
an admin keeps) counts its rows along with each page (``PageQuery.of(query)``, a window count),
which costs less than a write on every insert.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    Delete,
    ScalarSelect,
    SmallInteger,
    String,
    delete,
    func,
    or_,
    select,
)
from sqlalchemy.orm import InstrumentedAttribute, Mapped, mapped_column

from webapp.database import MYSQL_TABLE_ARGS, db
from webapp.dialects import add_to_counters, node_index

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
    def add(cls, connection: Connection, name: str, rows: int) -> None:
        """Add ``rows`` to the count ``name`` (a bulk loader's batch), in the connection's
        node's first shard."""
        add_to_counters(
            connection, cls, [{"name": name, "shard": node_index(connection) * SHARDS, "rows": rows}], "rows"
        )

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

    def count_range(self, connection: Connection, first: int, last: int) -> dict[str, int]:
        """The counts of the rows whose id is ``first`` to ``last`` (a bulk loader's batch)."""
        in_range = self.model.id.between(first, last)
        if self.by is None:
            return {self.name(): connection.execute(select(func.count()).where(in_range)).scalar()}
        found = dict(
            connection.execute(select(self.by, func.count()).where(in_range).group_by(self.by)).all()
        )
        return {name: found[value] for value, name in self.names.items() if found.get(value)}

    def recount(self) -> dict[str, int]:
        """Every count of this table, counted from its rows (a scan)."""
        if self.by is None:
            return {self.name(): db.session.scalar(select(func.count()).select_from(self.model))}
        found = dict(db.session.execute(select(self.by, func.count()).group_by(self.by)).all())
        return {name: found.get(value, 0) for value, name in self.names.items()}


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


def rebuild_counts() -> dict[str, int]:
    """Replace every kept count with one counted from the rows (the caller commits)."""
    counts = {name: rows for kept in KEPT_COUNTS for name, rows in kept.recount().items()}
    for kept in KEPT_COUNTS:
        db.session.execute(RowCount.forget(kept.table))
    db.session.add_all(RowCount(name=name, shard=0, rows=rows) for name, rows in counts.items())
    return counts
