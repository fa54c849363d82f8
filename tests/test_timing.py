"""Login costs the same for unknown, wrong and deactivated accounts, and rehashes outdated hashes."""

from __future__ import annotations

import statistics
import time

import pytest
from sqlalchemy import select

from tests.factories import PASSWORD, make_user
from webapp.database import db
from webapp.models import User

ROUNDS = 15
# No limit may interfere with the measurements.
NO_LIMITS = {
    "MAX_FAILURES_PER_ACCOUNT": 10_000,
    "MAX_FAILURES_PER_ADDRESS": 10_000,
    "ACCOUNT_UNDER_ATTACK_FAILURES": 10_000,
}


def timed_login(client, username: str, password: str) -> float:
    started = time.perf_counter()
    response = client.post("/auth/token", json={"username": username, "password": password})
    elapsed = time.perf_counter() - started
    assert response.status_code == 401
    return elapsed


@pytest.mark.parametrize("app_config", [{**NO_LIMITS, "BCRYPT_ROUNDS": 8}])
def test_unknown_and_deactivated_accounts_cost_as_much_as_a_wrong_password(client):
    make_user("alice")
    make_user("gone", activated=False)
    cases = {
        "wrong-password": ("alice", "wrong password"),
        "unknown": ("nobody", PASSWORD),
        "deactivated": ("gone", PASSWORD),
    }
    for username, password in cases.values():  # warm up (the dummy hash is made on first use)
        timed_login(client, username, password)

    # Interleaved, so a slow spell of the machine hits every case alike.
    samples: dict[str, list[float]] = {case: [] for case in cases}
    for _ in range(ROUNDS):
        for case, (username, password) in cases.items():
            samples[case].append(timed_login(client, username, password))

    reference = statistics.median(samples["wrong-password"])
    for case in ("unknown", "deactivated"):
        ratio = statistics.median(samples[case]) / reference
        assert 0.6 < ratio < 1.6, f"{case}: {ratio:.2f} x the time of a wrong password"


def stored_hash(user_id: int) -> str:
    db.session.rollback()  # see what the requests committed
    return db.session.scalar(select(User.password_hash).where(User.id == user_id))


@pytest.fixture
def cost4_user(app, monkeypatch):
    """An account whose hash was made at cost 4, while the app now asks for BCRYPT_ROUNDS=5."""
    with monkeypatch.context() as patch:
        patch.setitem(app.config, "BCRYPT_ROUNDS", 4)
        user = make_user("old")
    assert user.password_hash.startswith("$2b$04$")
    return user.id


@pytest.mark.parametrize("app_config", [{"BCRYPT_ROUNDS": 5}])
def test_login_rehashes_a_hash_made_at_another_cost(client, cost4_user):
    assert client.post("/auth/token", json={"username": "old", "password": PASSWORD}).status_code == 200

    rehashed = stored_hash(cost4_user)
    assert rehashed.startswith("$2b$05$")
    assert client.post("/auth/token", json={"username": "old", "password": PASSWORD}).status_code == 200
    assert stored_hash(cost4_user) == rehashed


@pytest.mark.parametrize("app_config", [{"BCRYPT_ROUNDS": 5}])
def test_failed_login_does_not_rehash(client, cost4_user):
    before = stored_hash(cost4_user)

    assert (
        client.post("/auth/token", json={"username": "old", "password": "wrong password"}).status_code == 401
    )

    assert stored_hash(cost4_user) == before
