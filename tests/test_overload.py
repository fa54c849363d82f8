"""The queue budget: behind a trusted proxy, a request that waited QUEUE_TIMEOUT_MS for a
worker is answered 503 at once (tests/chaos/test_overload.py drives it under real load)."""

from __future__ import annotations

import time

import pytest
from prometheus_client import REGISTRY

from tests.conftest import IsolatedClient
from tests.helpers import assert_problem

BUDGET = 0.5
PROXIED = {"TRUSTED_PROXIES": 1, "QUEUE_TIMEOUT_MS": BUDGET * 1000}


def shed_total() -> float:
    return REGISTRY.get_sample_value("webapp_shed_requests_total") or 0.0


def taken(seconds_ago: float) -> dict[str, str]:
    """The stamp nginx sets: when it took the request, in seconds since the epoch."""
    return {"X-Request-Start": f"t={time.time() - seconds_ago:.3f}"}


@pytest.fixture
def client(fresh_app):
    """A client of an app that has served nothing yet, as a worker just started."""
    fresh_app.test_client_class = IsolatedClient
    return fresh_app.test_client()


@pytest.mark.parametrize("app_config", [PROXIED])
def test_a_request_that_waited_past_the_budget_is_refused_with_a_problem_and_counted(client):
    assert client.get("/roles", headers=taken(0)).status_code == 200
    time.sleep(BUDGET * 1.2)  # the worker has been serving for longer than the budget
    before = shed_total()

    response = client.get("/roles", headers=taken(5))

    assert_problem(response, 503)
    assert response.headers["Retry-After"] == "1"
    assert response.get_json()["detail"] == "The API is at capacity; try again shortly"
    assert shed_total() == before + 1
    assert client.get("/roles", headers=taken(0.1)).status_code == 200


@pytest.mark.parametrize("app_config", [PROXIED])
def test_what_queued_while_the_worker_was_starting_is_served(client):
    # Taken by nginx 5 s ago, while no worker was up: they waited for the start, not for
    # capacity (and the worker serves them well within the budget).
    before = shed_total()

    assert client.get("/roles", headers=taken(5)).status_code == 200
    assert client.get("/roles", headers=taken(5)).status_code == 200
    assert shed_total() == before


@pytest.mark.parametrize("app_config", [PROXIED])
@pytest.mark.parametrize("stamp", ["", "t=", "t=soon", "1700000000.000", "t=nan", "t=inf"])
def test_a_missing_or_unreadable_stamp_is_served(client, stamp):
    client.get("/roles")
    assert client.get("/roles", headers={"X-Request-Start": stamp}).status_code == 200


@pytest.mark.parametrize("app_config", [{"TRUSTED_PROXIES": 0}, {**PROXIED, "QUEUE_TIMEOUT_MS": 0}])
def test_without_a_trusted_proxy_or_with_no_budget_nothing_is_shed(client):
    # Without a proxy the header is the client's own: anyone could have themselves refused.
    client.get("/roles")
    assert client.get("/roles", headers=taken(60)).status_code == 200
