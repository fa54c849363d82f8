"""Pages of rows with their total, each page in one round trip: the query side of lists
(the models' ``search()`` methods build them; the HTTP side is webapp/pagination.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, bindparam, func, select

from webapp.database import db

# page * limit must stay a valid SQL OFFSET on every database.
MAX_PAGE = 2**31 - 1


@dataclass(frozen=True)
class PageQuery:
    """Rows to read a page at a time, each page with its total in the same round trip.

    The total is a kept row count for a whole table (``kept_total``), else a window count of
    the rows the query matches. Both statements are built here, once, with the page as
    bound parameters: an unfiltered list reuses them on every request.
    """

    paged: Select
    count: Select  # the total alone, for a page past the end

    @classmethod
    def of(cls, query: Select, kept_total: ColumnElement | None = None) -> PageQuery:
        if kept_total is None:
            total: ColumnElement = func.count().over()
            count = select(func.count()).select_from(query.order_by(None).subquery())
        else:
            total, count = kept_total, select(kept_total)
        paged = query.add_columns(total.label("total")).limit(bindparam("limit")).offset(bindparam("offset"))
        return cls(paged, count)


def read_page(query: PageQuery, *, key: str, page: int, limit: int) -> dict[str, Any]:
    """One page of ``query``'s rows as mappings, with the total."""
    connection = db.session.connection()
    rows = connection.execute(query.paged, {"limit": limit, "offset": (page - 1) * limit}).mappings().all()
    total = rows[0]["total"] if rows else connection.execute(query.count).scalar()
    return {"page": page, "limit": limit, "total": total, key: rows}
