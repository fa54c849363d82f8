"""Client versions and whether each is still supported."""

from __future__ import annotations

from sqlalchemy import String, select
from sqlalchemy.orm import Mapped, mapped_column

from webapp.cache import cached
from webapp.database import MYSQL_TABLE_ARGS
from webapp.extensions import db


class Version(db.Model):
    """A client version string, as sent in X-Version."""

    __tablename__ = "versions"
    __table_args__ = MYSQL_TABLE_ARGS

    LENGTH = 32

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[str] = mapped_column(String(LENGTH), unique=True)
    supported: Mapped[bool] = mapped_column(default=True)

    @staticmethod
    def table() -> dict[str, bool]:
        """``{version: supported}`` for every listed version, from the per-worker cache."""
        return cached(
            "versions",
            lambda: dict(db.session.execute(select(Version.version, Version.supported)).all()),
        )
