"""Scheduled jobs: one run per slot across workers, claim retention, the purge and the scheduler switch."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select, update

from tests.factories import login, make_user
from webapp.database import db, utcnow
from webapp.extensions import scheduler
from webapp.jobs import (
    JOB_RUN_RETENTION,
    PURGE_JOB,
    purge_expired_sessions,
    run_once_per_slot,
    start_scheduler,
)
from webapp.models import JobRun, Token
from webapp.security import token_digest

HOUR = 3600  # an interval long enough that every call in a test lands in one slot


class Work:
    """A job body that counts its runs (thread-safe) and returns a fixed row count."""

    def __init__(self, rows: int = 7) -> None:
        self.rows = rows
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self) -> int:
        with self._lock:
            self.calls += 1
        return self.rows


def claims() -> list[tuple[str, int, int | None]]:
    db.session.expire_all()
    return [
        (run.job, run.slot, run.rows)
        for run in db.session.scalars(select(JobRun).order_by(JobRun.job, JobRun.slot))
    ]


def current_slot() -> int:
    return int(time.time() // HOUR)


def test_first_call_in_a_slot_runs_the_work_and_records_the_claim(app):
    work = Work(rows=7)

    before = current_slot()
    assert run_once_per_slot("report", HOUR, work) == 7

    assert work.calls == 1
    ((job, slot, rows),) = claims()
    assert (job, rows) == ("report", 7)
    assert before <= slot <= current_slot()


def test_second_call_in_the_same_slot_does_not_run_the_work(app):
    first, second = Work(rows=3), Work(rows=5)
    run_once_per_slot("report", HOUR, first)

    assert run_once_per_slot("report", HOUR, second) is None

    assert (first.calls, second.calls) == (1, 0)
    assert [(job, rows) for job, _, rows in claims()] == [("report", 3)]


def test_another_job_in_the_same_slot_runs(app):
    run_once_per_slot("report", HOUR, Work())
    other = Work(rows=2)

    assert run_once_per_slot("cleanup", HOUR, other) == 2

    assert other.calls == 1
    assert [(job, rows) for job, _, rows in claims()] == [("cleanup", 2), ("report", 7)]


def test_work_returning_zero_rows_still_claims_the_slot(app):
    assert run_once_per_slot("report", HOUR, Work(rows=0)) == 0
    assert run_once_per_slot("report", HOUR, Work()) is None


def test_next_run_deletes_claims_older_than_the_retention(app):
    now = utcnow()
    db.session.add_all(
        [
            JobRun(job="report", slot=1, started_at=now - JOB_RUN_RETENTION - timedelta(hours=1), rows=1),
            JobRun(job="report", slot=2, started_at=now - JOB_RUN_RETENTION + timedelta(hours=1), rows=2),
        ]
    )
    db.session.commit()

    run_once_per_slot("report", HOUR, Work(rows=3))

    remaining = [(slot, rows) for _, slot, rows in claims()]
    assert remaining[0] == (2, 2)
    assert [rows for _, rows in remaining] == [2, 3]


def test_only_one_of_many_concurrent_workers_runs_the_job(app):
    workers = 8
    work = Work(rows=1)
    start = threading.Barrier(workers, timeout=30)

    def worker() -> int | None:
        with app.app_context():
            start.wait()
            return run_once_per_slot("race", HOUR, work)

    with ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(worker) for _ in range(workers)]
        results = [future.result(timeout=60) for future in futures]  # re-raises a worker's exception

    assert work.calls == 1
    assert sorted(results, key=lambda result: result is None) == [1] + [None] * (workers - 1)
    assert [(job, rows) for job, _, rows in claims()] == [("race", 1)]


def sample(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


def set_expiry(access_token: str, *, access: timedelta, refresh: timedelta) -> None:
    """Move a session's expiry columns to now + the given offsets (negative: already passed)."""
    now = utcnow()
    db.session.execute(
        update(Token)
        .where(Token.access_hash == token_digest(access_token))
        .values(access_expires_at=now + access, refresh_expires_at=now + refresh)
    )
    db.session.commit()


def test_purge_deletes_only_sessions_whose_refresh_expiry_passed(client, user):
    other = make_user("bob")
    expired = login(client, user.username)
    access_expired_only = login(client, user.username)
    live = login(client, other.username)
    set_expiry(expired["access_token"], access=-timedelta(days=2), refresh=-timedelta(seconds=1))
    set_expiry(access_expired_only["access_token"], access=-timedelta(seconds=1), refresh=timedelta(days=1))
    runs, purged = sample("webapp_purge_runs_total"), sample("webapp_purged_sessions_total")

    assert purge_expired_sessions() == 1

    remaining = db.session.scalars(select(Token.access_hash).order_by(Token.id)).all()
    assert remaining == [
        token_digest(access_expired_only["access_token"]),
        token_digest(live["access_token"]),
    ]
    assert client.get("/auth/me", headers=live["headers"]).status_code == 200
    assert sample("webapp_purge_runs_total") == runs + 1
    assert sample("webapp_purged_sessions_total") == purged + 1


def test_purge_with_nothing_expired_counts_a_run_and_no_sessions(client, user):
    login(client, user.username)
    runs, purged = sample("webapp_purge_runs_total"), sample("webapp_purged_sessions_total")

    assert purge_expired_sessions() == 0

    assert db.session.scalars(select(Token)).all() != []
    assert sample("webapp_purge_runs_total") == runs + 1
    assert sample("webapp_purged_sessions_total") == purged


def test_start_scheduler_does_nothing_when_disabled(app):
    assert app.config["SCHEDULER_ENABLED"] is False

    start_scheduler(app)

    assert scheduler.running is False
    assert scheduler.get_job(PURGE_JOB) is None


@pytest.fixture
def stopped_scheduler():
    """Whatever a test starts is shut down and forgotten afterwards."""
    yield scheduler
    if scheduler.running:
        scheduler.shutdown(wait=True)
    scheduler.remove_all_jobs()


@pytest.mark.parametrize("app_config", [{"SCHEDULER_ENABLED": True, "PURGE_INTERVAL": HOUR}])
def test_enabled_scheduler_ticks_on_multiples_of_the_purge_interval(app, stopped_scheduler):
    start_scheduler(app)

    job = scheduler.get_job(PURGE_JOB)
    assert scheduler.running is True
    assert job.trigger.interval == timedelta(seconds=HOUR)
    next_run = job.next_run_time.timestamp()
    assert next_run % HOUR == 0
    assert time.time() < next_run <= time.time() + HOUR
