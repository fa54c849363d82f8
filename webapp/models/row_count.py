"""Row counts kept beside big tables, so a list's ``total`` never scans the table.

A table keeps counts when one line declares it, after its model: ``keep_count(Item)`` for all
its rows, ``keep_count(User, by=User.activated, names=...)`` for its rows per value of a
column. Everything else follows from that line (``KEPT_COUNTS``): the mapper events that move
the counts in the same transaction as the rows, ``flask counts rebuild``, and what a migration
clears (``RowCount.forget``).

Only a table that grows without bound needs this. A table of some thousands of rows (a list
an admin keeps) counts its rows along with each page (``Listing.of(query)``, a window count),
which costs less than a write on every insert.
"""

from __future__ import annotations

import random
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
    event,
    func,
    inspect,
    or_,
    select,
)
from sqlalchemy.orm import InstrumentedAttribute, Mapped, mapped_column

from webapp.database import MYSQL_TABLE_ARGS, add_to_counters, node_index
from webapp.extensions import db

# Writers add to one of a node's SHARDS rows at random, so concurrent inserts seldom wait on
# one lock; each node of a Galera cluster has rows of its own, so writes on different nodes
# never conflict over a count.
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
    def add(cls, connection: Connection, name: str, delta: int) -> None:
        shard = node_index(connection) * SHARDS + random.randrange(SHARDS)  # noqa: S311 (not a secret)
        add_to_counters(connection, cls, [{"name": name, "shard": shard, "rows": delta}], "rows")

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

    def _inserted(self, mapper, connection: Connection, row) -> None:
        RowCount.add(connection, self._name_of(row), 1)

    def _deleted(self, mapper, connection: Connection, row) -> None:
        RowCount.add(connection, self._name_of(row), -1)

    def _updated(self, mapper, connection: Connection, row) -> None:
        history = inspect(row).attrs[self.by.key].history
        if history.has_changes():
            RowCount.add(connection, self.names[history.deleted[0]], -1)
            RowCount.add(connection, self.names[history.added[0]], 1)

    def _name_of(self, row) -> str:
        return self.name(getattr(row, self.by.key) if self.by is not None else None)


def _keep_old_value(target, value, oldvalue, initiator):
    return value


# Every table that keeps counts, in declaration order.
KEPT_COUNTS: list[KeptCount] = []


def keep_count(
    model: type, *, by: InstrumentedAttribute | None = None, names: dict | None = None
) -> KeptCount:
    """Keep exact counts of ``model``'s rows (per value of ``by``, named by ``names``): the
    mapper events move them with each insert, delete and change of ``by``."""
    kept = KeptCount(model, by, names or {})
    if by is not None and not kept.names:
        raise ValueError("counts by a column need a name for each of its values")
    event.listen(model, "after_insert", kept._inserted)
    event.listen(model, "after_delete", kept._deleted)
    if by is not None:
        event.listen(model, "after_update", kept._updated)
        # Load the old value when ``by`` is set, so the update knows which count to decrement.
        event.listen(by, "set", _keep_old_value, active_history=True, retval=True)
    KEPT_COUNTS.append(kept)
    return kept


def rebuild_counts() -> dict[str, int]:
    """Replace every kept count with one counted from the rows (the caller commits)."""
    counts = {name: rows for kept in KEPT_COUNTS for name, rows in kept.recount().items()}
    for kept in KEPT_COUNTS:
        db.session.execute(RowCount.forget(kept.table))
    db.session.add_all(RowCount(name=name, shard=0, rows=rows) for name, rows in counts.items())
    return counts
