"""Items, owned by users."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, RowMapping, String, bindparam, insert, select
from sqlalchemy.orm import Mapped, mapped_column

from webapp.database import MYSQL_TABLE_ARGS, CreatedAt, UTCDateTime, db, utcnow
from webapp.models.row_count import keep_count
from webapp.models.word_index import (
    ItemNameWord,
    ItemNameWordCount,
    by_word,
    name_contains,
    rows_with_word,
)
from webapp.pages import PageQuery


class Item(db.Model):
    """A named item; names are unique across all items."""

    __tablename__ = "items"
    __table_args__ = MYSQL_TABLE_ARGS

    NAME_LENGTH = 100
    DESCRIPTION_LENGTH = 1000

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)
    description: Mapped[str | None] = mapped_column(String(DESCRIPTION_LENGTH))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    # Moves on every change: the ETag, and what a conditional write compares and swaps.
    version: Mapped[int] = mapped_column(server_default="1")

    __mapper_args__ = {"version_id_col": version}

    @classmethod
    def read(cls, item_id: int) -> RowMapping | None:
        """The item's fields, read through Core (no ORM object to build: the hottest read)."""
        return db.session.connection().execute(_BY_ID, {"id": item_id}).mappings().first()

    @classmethod
    def search(cls, name: str | None = None, description: str | None = None) -> PageQuery:
        """Every item by id, or those whose name and description contain these (a
        case-insensitive substring; ``%`` and ``_`` are literal)."""
        if name is None and description is None:
            return _EVERY_ITEM
        if description is None and (ids := rows_with_word(ItemNameWord.item_id, name)) is not None:
            words = by_word(ItemNameWord.item_id, ItemNameWordCount, name)
            return PageQuery.merged(_LISTED, *words) if words else PageQuery.through(_LISTED, ids)
        query = _LISTED
        if name is not None:
            query = query.where(*name_contains(cls.name, cls.id, ItemNameWord.item_id, name))
        if description is not None:
            query = query.where(cls.description.icontains(description, autoescape=True))
        return PageQuery.of(query)

    @classmethod
    def create(cls, user_id: int, name: str, description: str | None = None) -> dict:
        """Insert an item and return its fields (one INSERT through Core: creation is the
        hottest write, and the unit of work would add nothing here but its cost)."""
        now = utcnow()
        row = {
            "name": name,
            "description": description,
            "user_id": user_id,
            "created_at": now,
            "updated_at": now,
        }
        inserted = db.session.connection().execute(_INSERT, row)
        return {"id": inserted.inserted_primary_key[0], **row}


# Statements built once: every item request and every unfiltered list reuses them. A list
# shows no version (it has no ETag), and every column is parsed on every row.
_BY_ID = select(Item.__table__).where(Item.__table__.c.id == bindparam("id"))
_INSERT = insert(Item.__table__)
_LISTED = select(
    Item.id, Item.name, Item.description, Item.user_id, Item.created_at, Item.updated_at
).order_by(Item.id)
# The kept count of items: every unfiltered list's total.
ITEM_COUNT = keep_count(Item)
_EVERY_ITEM = PageQuery.of(_LISTED, kept_total=ITEM_COUNT.total())
