"""Pages of rows with their total, each page in one round trip: the query side of lists
(the models' ``search()`` methods build them; the HTTP side is webapp/pagination.py).

A list is ordered by its rows' ``id``. A page is read by its number (OFFSET: the contract's
``page``, whose cost grows with its depth) or after the last id of the page before it (a
keyset: what a ``next`` link's cursor holds, at the cost of page 1 at any depth).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import BindParameter, ColumnElement, Select, bindparam, func, select, union

from webapp.database import db
from webapp.dialects import BOUNDED

# page * limit must stay a valid SQL OFFSET on every database.
MAX_PAGE = 2**31 - 1


@dataclass(frozen=True)
class PageQuery:
    """Rows to read a page at a time, each page with its total in the same round trip.

    The total is a kept row count for a whole table (``kept_total``), else a count of the
    rows the query matches: a window count beside a page by number, a scalar subquery beside
    a page after a key (the window would count only the rows after it). The statements are
    built here, once, with the page as bound parameters: an unfiltered list reuses them on
    every request.
    """

    paged: Select  # a page by number: :limit rows from :offset
    after: Select  # a page after a key: :limit rows whose id is above :after
    count: Select  # the total alone, for a page past the end

    @classmethod
    def of(cls, query: Select, kept_total: ColumnElement | None = None) -> PageQuery:
        key = query.selected_columns.id
        count = select(func.count()).select_from(query.order_by(None).subquery())
        if kept_total is None:
            window, total = func.count().over(), count.scalar_subquery()
        else:
            window, total, count = kept_total, kept_total, select(kept_total)
        limited = bindparam("limit")
        paged = query.add_columns(window.label("total")).limit(limited).offset(bindparam("offset"))
        after = query.where(key > bindparam("after")).add_columns(total.label("total")).limit(limited)
        return cls(*_bounded(paged, after, count))

    @classmethod
    def through(cls, query: Select, ids: Select) -> PageQuery:
        """Rows of ``query`` whose id is among ``ids`` (one column, from an index: the word
        index's postings), paged and counted on the index alone: only the page's own rows
        are read from the table, however many match."""
        found = ids.selected_columns[0]
        total = ids.with_only_columns(func.count(func.distinct(found))).scalar_subquery()
        ordered = ids.distinct().order_by(found).limit(bindparam("limit"))
        paged = ordered.offset(bindparam("offset"))
        return cls._of_ids(query, paged, ordered.where(found > bindparam("after")), total)

    @classmethod
    def merged(cls, query: Select, lists: list[Select], total: ColumnElement) -> PageQuery:
        """Rows of ``query`` whose id is in any of ``lists`` (each one column, read from an
        index in key order: a word's postings), whose count is ``total``. Each list is read only
        as far as the page reaches, so the first page costs the same however long they are."""

        def ids(after: bool, reach: BindParameter) -> Select:
            branches = []
            for listed in lists:
                found = listed.selected_columns[0]
                listed = listed.where(found > bindparam("after")) if after else listed
                branch = listed.order_by(found).limit(reach).subquery()
                branches.append(select(branch.c[0]))
            merged = union(*branches).subquery()  # an id in several lists is one row
            return select(merged.c[0]).order_by(merged.c[0]).limit(bindparam("limit"))

        paged = ids(after=False, reach=bindparam("reach")).offset(bindparam("offset"))
        return cls._of_ids(query, paged, ids(after=True, reach=bindparam("limit")), total)

    @classmethod
    def _of_ids(cls, query: Select, paged_ids: Select, after_ids: Select, total: ColumnElement) -> PageQuery:
        """The rows of ``query`` whose ids a page of ids (by number, or after a key) selects."""
        key = query.selected_columns.id

        def rows(page_ids: Select) -> Select:
            chosen = page_ids.subquery()
            return query.join_from(key.table, chosen, key == chosen.c[0]).add_columns(total.label("total"))

        return cls(*_bounded(rows(paged_ids), rows(after_ids), select(total)))


def _bounded(*statements: Select) -> tuple[Select, ...]:
    """The statements, marked for the server to stop at DATABASE_STATEMENT_TIMEOUT: a list
    query never holds a worker longer (webapp.dialects.bounded_statements)."""
    return tuple(statement.execution_options(**{BOUNDED: True}) for statement in statements)


def read_page(
    query: PageQuery, *, key: str, page: int, limit: int, after: int | None = None
) -> dict[str, Any]:
    """One page of ``query``'s rows as mappings, with the total: page number ``page``, read
    by its offset, or (given ``after``, the last id of the page before it) by its key."""
    connection = db.session.connection()
    if after is None:
        offset = (page - 1) * limit
        rows = connection.execute(query.paged, {"limit": limit, "offset": offset, "reach": offset + limit})
    else:
        rows = connection.execute(query.after, {"limit": limit, "after": after})
    rows = rows.mappings().all()
    total = rows[0]["total"] if rows else connection.execute(query.count).scalar()
    return {"page": page, "limit": limit, "total": total, key: rows}
