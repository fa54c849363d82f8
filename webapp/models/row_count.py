"""Row counts kept beside the tables, so a list's ``total`` never scans the table."""

from __future__ import annotations

import random

from sqlalchemy import BigInteger, Connection, ScalarSelect, SmallInteger, String, delete, func, select
from sqlalchemy.orm import Mapped, mapped_column

from webapp.database import MYSQL_TABLE_ARGS, add_to_counters, node_index
from webapp.extensions import db

# Writers add to one of a node's SHARDS rows at random, so concurrent inserts seldom wait on
# one lock; each node of a Galera cluster has rows of its own, so writes on different nodes
# never conflict over a count.
SHARDS = 8


class RowCount(db.Model):
    """Part of the number of rows under ``name``; the total is the sum of its shards.

    Counts change in the same transaction as the rows they count (see the mapper events in
    the Item and User models), so they are exact, on every worker, at once.
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
    def rebuild(cls, counts: dict[str, int]) -> None:
        """Replace the counts of ``counts``' names with these exact values (one shard each)."""
        db.session.execute(delete(cls).where(cls.name.in_(list(counts))))
        db.session.add_all(cls(name=name, shard=0, rows=rows) for name, rows in counts.items())

    @classmethod
    def total(cls, name: str) -> ScalarSelect:
        """The count of ``name`` as an SQL expression, to read along with a page of rows."""
        return select(func.coalesce(func.sum(cls.rows), 0)).where(cls.name == name).scalar_subquery()
