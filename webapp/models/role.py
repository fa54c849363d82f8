"""Roles: a fixed list (admin, user) that permissions are decided on."""

from __future__ import annotations

from sqlalchemy import String, select
from sqlalchemy.orm import Mapped, mapped_column

from webapp.cache import cached
from webapp.database import MYSQL_TABLE_ARGS, db


class Role(db.Model):
    """A role; ids are fixed so that code and clients can name them."""

    __tablename__ = "roles"
    __table_args__ = MYSQL_TABLE_ARGS

    ADMIN = 1
    USER = 2
    NAMES = {ADMIN: "admin", USER: "user"}

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(32), unique=True)

    @staticmethod
    def all_cached() -> list[dict]:
        """Every role as ``{id, name}``, from the per-worker cache."""
        return cached(
            "roles",
            lambda: [
                {"id": r.id, "name": r.name} for r in db.session.scalars(select(Role).order_by(Role.id))
            ],
        )

    @classmethod
    def missing(cls) -> dict[int, str]:
        """The fixed roles not in the table yet."""
        present = set(db.session.scalars(select(cls.id)))
        return {i: name for i, name in cls.NAMES.items() if i not in present}

    @classmethod
    def ensure_all(cls) -> int:
        """Insert the roles that are missing; returns how many were added."""
        missing = cls.missing()
        db.session.add_all(cls(id=i, name=name) for i, name in missing.items())
        return len(missing)
