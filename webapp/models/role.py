"""Roles: a fixed list (admin, user) that permissions are decided on."""

from __future__ import annotations

from sqlalchemy import String, select
from sqlalchemy.orm import Mapped, mapped_column

from webapp.cache import cached
from webapp.database import MYSQL_TABLE_ARGS
from webapp.extensions import db


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
    def ensure_all(cls) -> int:
        """Insert the roles that are missing; returns how many were added."""
        present = set(db.session.scalars(select(cls.id)))
        missing = [cls(id=i, name=n) for i, n in cls.NAMES.items() if i not in present]
        db.session.add_all(missing)
        return len(missing)
