"""The database as the models see it: the ``db`` extension, the declarative base and the
column types and table options every model shares. Nothing here knows HTTP or a dialect's
plumbing (engine settings, connection hooks: webapp/dialects.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import DateTime, MetaData, TypeDecorator
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Case- and accent-sensitive comparisons on MySQL, as on SQLite, so "Bob" and "bob"
# are two names on both databases.
MYSQL_TABLE_ARGS = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """A UTC timestamp stored naive (MySQL DATETIME has no zone), read back aware."""

    impl = DateTime
    cache_ok = True

    @property
    def python_type(self) -> type:
        return datetime

    def load_dialect_impl(self, dialect):
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None else None


# When a row was created, set on insert: ``created_at: Mapped[CreatedAt]``.
CreatedAt = Annotated[datetime, mapped_column(UTCDateTime(), default=utcnow)]


class Base(DeclarativeBase):
    """Base of every model."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)

    def update(self, data: dict[str, Any]) -> None:
        """Set the attributes named in ``data`` (a PATCH body: only what was sent)."""
        for name, value in data.items():
            setattr(self, name, value)


# Objects stay loaded after commit: a request that commits and then answers needs no reload.
db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})
