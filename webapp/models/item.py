"""Items, owned by users."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from sqlalchemy import ForeignKey, RowMapping, String, bindparam, insert, select
from sqlalchemy.orm import Mapped, mapped_column

from webapp.database import MYSQL_TABLE_ARGS, UTCDateTime, utcnow
from webapp.extensions import db
from webapp.listing import Listing
from webapp.models.row_count import KeptCount, keep_count


class Item(db.Model):
    """A named item; names are unique across all items."""

    __tablename__ = "items"
    __table_args__ = MYSQL_TABLE_ARGS

    NAME_LENGTH = 100
    COUNT: ClassVar[KeptCount]  # the kept count of items (set below, once the class exists)
    LISTING: ClassVar[Listing]  # every item, by id
    DESCRIPTION_LENGTH = 1000

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)
    description: Mapped[str | None] = mapped_column(String(DESCRIPTION_LENGTH))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    # Moves on every change: the ETag, and what a conditional write compares and swaps.
    version: Mapped[int] = mapped_column(server_default="1")

    __mapper_args__ = {"version_id_col": version}

    @classmethod
    def read(cls, item_id: int) -> RowMapping | None:
        """The item's fields, read through Core (no ORM object to build: the hottest read)."""
        return db.session.connection().execute(_ITEM_BY_ID, {"id": item_id}).mappings().first()

    @classmethod
    def listing(cls):
        """A select of the fields a list shows, for pages of items (Core rows, see ``read``;
        no version: a list has no ETag, and every column is parsed on every row)."""
        return select(
            cls.id, cls.name, cls.description, cls.user_id, cls.created_at, cls.updated_at
        ).order_by(cls.id)

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
        inserted = db.session.connection().execute(_INSERT_ITEM, row)
        return {"id": inserted.inserted_primary_key[0], **row}

    def is_owned_by(self, user) -> bool:
        return self.user_id == user.id


Item.COUNT = keep_count(Item)

# Built once (read on every item request; every unfiltered list).
_ITEM_BY_ID = select(Item.__table__).where(Item.__table__.c.id == bindparam("id"))
_INSERT_ITEM = insert(Item.__table__)
Item.LISTING = Listing.of(Item.listing(), kept_total=Item.COUNT.total())
