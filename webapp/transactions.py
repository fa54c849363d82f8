"""Transactions that lose a conflict are retried whole, so clients never see one.

Two transactions that want the same rows can both fail to finish: InnoDB breaks a deadlock
by rolling one back (error 1213), a lock wait can time out (1205), and on a Galera cluster a
transaction that wrote the same rows as one committed on another node first fails its
certification (also 1213, "wsrep aborted transaction"); a write compared and swapped on a
row version finds it changed (StaleDataError). None of these is an outage: the
database is fine and the same work, started again, succeeds. So each request's work is the
unit of retry: the app (webapp.App) runs the before-request hooks and the view again from the start,
after a jittered pause, up to DATABASE_CONFLICT_ATTEMPTS times. Nothing reaches the client
before the commit, so a retried request answers exactly once.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from flask import current_app, g
from sqlalchemy import event
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm.exc import StaleDataError

from webapp.database import db
from webapp.dialects import is_conflict
from webapp.metrics import DB_RETRIES

T = TypeVar("T")

# The first pause is up to BACKOFF seconds, then twice as long each time up to BACKOFF_MAX
# (full jitter, so the transactions that collided do not collide again in step). Ten
# attempts wait 1.9 s at most in all: on a Galera cluster a dozen requests writing one row
# from three nodes at once (one account's logins) can each lose several times in a row.
BACKOFF = 0.01
BACKOFF_MAX = 0.32


def retrying(work: Callable[[], T]) -> T:
    """Run ``work``; while it fails on a conflict, roll back and run it again, at most
    DATABASE_CONFLICT_ATTEMPTS times in all. The last failure propagates (answered 503).

    A conflict after something was already committed is not retried: running the work again
    would repeat what is done. Views commit once, at the end, so this does not happen.
    """
    commits = g.get("commits", 0)
    attempt = 1
    while True:
        try:
            return work()
        except (OperationalError, StaleDataError) as error:
            if not is_conflict(error) or g.get("commits", 0) != commits:
                raise
            db.session.rollback()
            if attempt >= current_app.config["DATABASE_CONFLICT_ATTEMPTS"]:
                DB_RETRIES.labels("exhausted").inc()
                raise
            DB_RETRIES.labels("retried").inc()
            time.sleep(random.uniform(0, min(BACKOFF * 2**attempt, BACKOFF_MAX)))  # noqa: S311 (jitter)
            attempt += 1


def _note_commit(session) -> None:
    if g:  # outside an app context (a script, a migration) there is nothing to note
        g.commits = g.get("commits", 0) + 1


def track_commits() -> None:
    """Note in ``g`` when a request has committed, so a later conflict is not retried over it."""
    if not event.contains(db.session, "after_commit", _note_commit):
        event.listen(db.session, "after_commit", _note_commit)
