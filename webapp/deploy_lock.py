"""The lock `flask deploy` holds while it brings the database up to date (webapp/deploy.py):
of the instances starting together, whatever node of a cluster each is connected to, one
holds it and the others wait.

The lock is a row: the instance that inserts ``deploy_lock``'s one row holds it. A primary key
holds across a whole Galera cluster (a second insert on another node fails certification),
on one MySQL server and on SQLite alike, where a named lock (``GET_LOCK``) or ``LOCK TABLES``
would lock one node only. The holder renews a lease while it works, so an instance that dies
holding the lock delays the next start by LEASE seconds, not forever.

``deploy_lock`` is the one table the migrations do not create: it must exist before they
run. ``CREATE TABLE IF NOT EXISTS`` makes it, once, whichever instance gets there first.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy import Column, Engine, MetaData, String, Table, delete, insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.schema import CreateTable

from webapp.database import MYSQL_TABLE_ARGS, UTCDateTime, db, utcnow
from webapp.dialects import is_conflict

logger = logging.getLogger(__name__)

# The one table that exists before the migrations and outside them, so Alembic must neither
# create nor drop it.
DEPLOY_LOCK_TABLE = "deploy_lock"


def migrated_name(name: str | None, type_: str, parent_names: dict) -> bool:
    """Alembic's include_name: every table but the deploy lock is the migrations' business."""
    return not (type_ == "table" and name == DEPLOY_LOCK_TABLE)


LOCK_NAME = "deploy"
# How long a holder's claim lasts without renewal, and how often it renews it.
LEASE = timedelta(seconds=30)
RENEW_EVERY = 5.0
POLL_EVERY = 0.5

# Not on the models' metadata, and filtered out of Alembic's view (migrated_name).
lock_table = Table(
    DEPLOY_LOCK_TABLE,
    MetaData(),
    Column("name", String(32), primary_key=True),
    Column("holder", String(255), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    **MYSQL_TABLE_ARGS,
)


def lock_holder(engine: Engine) -> str | None:
    """Who holds the deploy lock now, if anyone."""
    with engine.connect() as connection:
        return connection.execute(select(lock_table.c.holder).where(lock_table.c.name == LOCK_NAME)).scalar()


def _try_acquire(engine: Engine, holder: str) -> bool:
    try:
        with engine.begin() as connection:
            connection.execute(
                insert(lock_table).values(name=LOCK_NAME, holder=holder, expires_at=utcnow() + LEASE)
            )
    except IntegrityError:
        return False
    except OperationalError as error:
        if is_conflict(error):  # another node's insert certified first
            return False
        raise
    return True


def _expire_stale(engine: Engine) -> None:
    """Free the lock if its holder stopped renewing it (it died while deploying)."""
    try:
        with engine.begin() as connection:
            connection.execute(
                delete(lock_table).where(lock_table.c.name == LOCK_NAME, lock_table.c.expires_at < utcnow())
            )
    except OperationalError as error:
        if not is_conflict(error):  # two waiters freeing it at once: either will do
            raise


class _Renewal(threading.Thread):
    """Renews the holder's lease every RENEW_EVERY seconds until stopped."""

    def __init__(self, engine: Engine, holder: str) -> None:
        super().__init__(name="deploy-lock-renewal", daemon=True)
        self.engine, self.holder, self.stopped = engine, holder, threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(RENEW_EVERY):
            try:
                with self.engine.begin() as connection:
                    connection.execute(
                        update(lock_table)
                        .where(lock_table.c.name == LOCK_NAME, lock_table.c.holder == self.holder)
                        .values(expires_at=utcnow() + LEASE)
                    )
            except SQLAlchemyError as error:  # the next renewal may succeed; the lease is long
                logger.warning("deploy lock renewal failed: %s", type(error).__name__)


def create_lock_table(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(CreateTable(lock_table, if_not_exists=True))


@contextmanager
def deploy_lock(timeout: float) -> Iterator[float]:
    """Hold the cluster-wide deploy lock for the block; yields the seconds spent waiting.

    Raises RuntimeError if another instance keeps it (renewing its lease) beyond ``timeout``.
    """
    engine = db.engine
    create_lock_table(engine)
    holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    while not _try_acquire(engine, holder):
        if time.monotonic() - started > timeout:
            raise RuntimeError(
                f"another instance ({lock_holder(engine)}) has been deploying for over {timeout:.0f} s"
            )
        _expire_stale(engine)
        time.sleep(POLL_EVERY)
    renewal = _Renewal(engine, holder)
    renewal.start()
    try:
        yield time.monotonic() - started
    finally:
        renewal.stopped.set()
        renewal.join()
        with engine.begin() as connection:
            connection.execute(
                delete(lock_table).where(lock_table.c.name == LOCK_NAME, lock_table.c.holder == holder)
            )
