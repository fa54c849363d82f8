"""Bulk fake data for benchmarks and demos: multi-row inserts (the count triggers count them)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from sqlalchemy import insert, select

from webapp.database import db, utcnow
from webapp.models import Item, Role, User
from webapp.security import hash_password

FAKE_BATCH = 10_000
FAKE_PASSWORD = "fake-password"  # noqa: S105 (documented; flask fake is refused in production)


def _insert_in_batches(model: type, total: int, batch: int, row: Callable[[int], dict]) -> None:
    """Insert ``total`` rows made by ``row(n)``, one transaction per batch."""
    for start in range(0, total, batch):
        db.session.execute(insert(model), [row(n) for n in range(start, min(start + batch, total))])
        db.session.commit()


def load_fake_data(user_count: int, item_count: int, *, batch: int = FAKE_BATCH) -> tuple[int, int]:
    """Add ``user_count`` users and ``item_count`` items spread over them; returns both."""
    run = uuid.uuid4().hex[:8]
    now = utcnow()
    password_hash = hash_password(FAKE_PASSWORD)
    _insert_in_batches(
        User,
        user_count,
        batch,
        lambda n: {
            "username": f"fake-{run}-{n}",
            "password_hash": password_hash,
            "role_id": Role.USER,
            "activated": True,
            "created_at": now,
            "updated_at": now,
        },
    )
    owners = db.session.scalars(select(User.id).where(User.username.startswith(f"fake-{run}-"))).all()
    owners = owners or [db.session.scalar(select(User.id).order_by(User.id).limit(1))]
    _insert_in_batches(
        Item,
        item_count,
        batch,
        lambda n: {
            "name": f"item {run} {n}",
            "description": f"fake item number {n}",
            "user_id": owners[n % len(owners)],
            "created_at": now,
            "updated_at": now,
        },
    )
    return user_count, item_count
