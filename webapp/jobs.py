"""Scheduled jobs, each run exactly once per interval across every worker and instance.

Every gunicorn worker runs the scheduler, with triggers aligned on multiples of the
interval; at each tick all workers race to insert the same (job, slot) row and only the
insert that wins runs the job. The database decides, so this holds on SQLite and MySQL and
across instances that share it, on one server or on any nodes of a Galera cluster (where the
losing inserts fail certification instead of the unique key: they are retried, and then
meet the key).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from flask import Flask
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from webapp.database import db, utcnow
from webapp.extensions import scheduler
from webapp.metrics import PURGE_RUNS, PURGED_SESSIONS
from webapp.models import JobRun, Token
from webapp.ratelimit import purge_old_windows
from webapp.transactions import retrying

logger = logging.getLogger(__name__)

PURGE_JOB = "purge_expired_sessions"
# Claims older than this are deleted by the next run.
JOB_RUN_RETENTION = timedelta(days=30)


def _claim(job: str, slot: int) -> JobRun | None:
    claim = JobRun(job=job, slot=slot)
    db.session.add(claim)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return None
    return claim


def _finish(claim: JobRun, rows: int) -> None:
    claim.rows = rows
    db.session.execute(
        delete(JobRun).where(JobRun.job == claim.job, JobRun.started_at < utcnow() - JOB_RUN_RETENTION)
    )
    db.session.commit()


def run_once_per_slot(job: str, interval: float, work: Callable[[], int]) -> int | None:
    """Run ``work`` (which commits once) unless another worker already ran ``job`` in this
    interval slot. Each transaction is retried whole if it loses a conflict.

    Returns what ``work`` returned, or None when the slot was taken.
    """
    claim = retrying(lambda: _claim(job, int(time.time() // interval)))
    if claim is None:
        return None
    rows = retrying(work)
    retrying(lambda: _finish(claim, rows))
    return rows


def purge_expired_sessions() -> int:
    """Delete sessions whose refresh token expired, and spent brute-force counters (the job
    body, also `flask tokens purge`); returns the number of sessions deleted."""
    purged = Token.purge_expired()
    purge_old_windows()
    db.session.commit()
    PURGE_RUNS.inc()
    PURGED_SESSIONS.inc(purged)
    logger.info("purge: %d expired sessions deleted", purged)
    return purged


def _scheduled_purge(app: Flask) -> None:
    with app.app_context():
        run_once_per_slot(PURGE_JOB, app.config["PURGE_INTERVAL"], purge_expired_sessions)


def start_scheduler(app: Flask) -> None:
    """Start this process's scheduler (gunicorn calls it in each worker), if SCHEDULER_ENABLED."""
    if not app.config["SCHEDULER_ENABLED"] or scheduler.running:
        return
    interval = app.config["PURGE_INTERVAL"]
    # Aligned on multiples of the interval, so every worker ticks inside the same slot.
    first = datetime.fromtimestamp((time.time() // interval + 1) * interval, UTC)
    scheduler.add_job(
        PURGE_JOB,
        _scheduled_purge,
        args=[app],
        trigger="interval",
        seconds=interval,
        start_date=first,
        coalesce=True,
        max_instances=1,
        misfire_grace_time=max(1, int(interval // 2)),
        replace_existing=True,
    )
    scheduler.start()
    logger.info("scheduler started: %s every %s s", PURGE_JOB, interval)


def stop_scheduler() -> None:
    if scheduler.running:
        scheduler.shutdown(wait=False)
