"""Overload without collapse: the deployed topology (nginx on the shipped template, gunicorn
with its default worker count, MariaDB) under the soak's mixed load sent open loop at 2x and
4x its measured capacity.

Open loop: requests leave on a fixed schedule whether or not earlier ones were answered, as
real clients arrive. wrk paces them on one shared schedule over many connections (the soak's
script with SOAK_RPS): while a connection is free at every slot, the schedule holds and the
load does not slow down with the server, which the achieved rate checks. Beyond capacity,
nginx lets API_MAX_IN_FLIGHT requests into the API at once and answers the rest at once with
503 problems; the app sheds whatever still waited too long for a worker (QUEUE_TIMEOUT_MS).
"""

from __future__ import annotations

import statistics
import threading
import time
import uuid
from pathlib import Path

import pytest

from tests.chaos.conftest import proxied_server
from tests.chaos.mixed_load import WRK_SCRIPT, ok, wrk
from tests.processes import AUTH_RATE_UNLIMITED, http_call, metric_total, start_api, start_nginx

pytestmark = pytest.mark.slow

# Capacity, and goodput at 2x and 4x, are measured in alternating segments, ROUNDS of each:
# the machine's speed drifts by a fifth within a minute (capacity measured 456 and 670 req/s
# 30 s apart), more than the effect measured, and alternating makes a drift weigh on all alike.
ROUNDS = 2
SEGMENT_SECONDS = 5
FACTORS = (2, 4)
ITEMS = 100
# Enough connections that one is free at every slot even at 4x (the schedule never waits).
OPEN_LOOP_CONNECTIONS = 256
RATE_TOLERANCE = 0.05  # the achieved send rate within this share of the schedule's
# The surplus costs the host before the API sees any of it: at 4x the load generator makes,
# and nginx answers, 3x capacity more requests on the same two cores as the workers. Measured
# with none of it reaching the API (nginx answering it by itself), capacity fell to 0.84 x. So
# each overload phase is also compared with capacity beside its surplus, answered by nginx
# alone: what the host leaves the API when that much traffic arrives. Goodput at least:
GOODPUT_SHARE = 0.90  # x capacity beside the same surplus: the API's own handling loses little
PLAIN_GOODPUT_SHARE = 0.65  # x capacity alone: no collapse (measured 0.71 to 1.06), whatever the host pays
# A measurement that misses is made again, up to ATTEMPTS in all, and every attempt is printed
# (a neighbour's burst on a shared host can cover a whole minute); a collapse misses every time.
ATTEMPTS = 3
ANSWER_WITHIN = 2.0  # seconds: every answer, served or refused


@pytest.fixture(scope="module")
def deployed(database, tmp_path_factory):
    """nginx and gunicorn as deployed (default workers, default limits), with data and a token."""
    tmp: Path = tmp_path_factory.mktemp("overload")
    stack, env = proxied_server(database, tmp)
    env.pop("WEB_CONCURRENCY")  # the default worker count of docker/gunicorn.conf.py
    try:
        start_api(stack, env)
        start_nginx(stack, stack.port("api"), stack.port("public"), auth_rate=AUTH_RATE_UNLIMITED)
        base = stack.public
        admin = ok("POST", f"{base}/auth/token", {"username": "admin", "password": env["ADMIN_PASSWORD"]})
        authorization = f"Bearer {admin['access_token']}"
        ids = [
            ok(
                "POST", f"{base}/items", {"name": f"overload item {n}"}, {"Authorization": authorization}, 201
            )["id"]
            for n in range(ITEMS)
        ]
        script = tmp / "mixed.lua"
        script.write_text(WRK_SCRIPT)
        load_env = {"SOAK_AUTHORIZATION": authorization, "SOAK_ITEM_IDS": ",".join(map(str, ids))}
        yield stack, script, load_env
    finally:
        stack.stop_all()


def run(stack, script: Path, env: dict[str, str], seconds: int, rate: float | None = None) -> dict:
    paced = {"SOAK_RPS": f"{rate:.1f}"} if rate else {}
    connections = OPEN_LOOP_CONNECTIONS if rate else 16
    result = wrk(
        stack.public,
        seconds,
        script,
        {**env, **paced, "SOAK_RUN": uuid.uuid4().hex[:8]},
        connections=connections,
        timeout=f"{ANSWER_WITHIN:.0f}s",
    )
    result["asked"] = rate
    return result


def alternate(stack, script: Path, env: dict[str, str]) -> dict:
    """ROUNDS rounds of: capacity; then for each factor, the load at that multiple of the
    capacity measured so far, open loop, and capacity beside that load's surplus."""
    segments: dict[str, list[dict]] = {"capacity": []}
    for _ in range(ROUNDS):
        segments["capacity"].append(run(stack, script, env, SEGMENT_SECONDS))
        capacity = combine(segments["capacity"])["goodput"]
        for factor in FACTORS:
            overload = run(stack, script, env, SEGMENT_SECONDS, factor * capacity)
            control = beside(stack, script, env, (factor - 1) * capacity)
            segments.setdefault(f"{factor}x", []).append(overload)
            segments.setdefault(f"{factor}x control", []).append(control)
    return {phase: combine(runs) for phase, runs in segments.items()}


def beside(stack, script: Path, env: dict[str, str], rate: float) -> dict:
    """Capacity while ``rate`` more requests a second arrive, paced, that nginx answers by
    itself (GET /metrics is a 404 there, as cheap as a refusal)."""
    surplus: dict = {}

    def send() -> None:
        paced = {"SOAK_PATH": "/metrics", "SOAK_RPS": f"{rate:.1f}", "SOAK_RUN": uuid.uuid4().hex[:8]}
        surplus.update(
            wrk(stack.public, SEGMENT_SECONDS + 1, script, {**env, **paced}, OPEN_LOOP_CONNECTIONS, "2s")
        )

    sender = threading.Thread(target=send)
    sender.start()
    time.sleep(0.5)  # under way before the measurement starts, and until after it ends
    result = run(stack, script, env, SEGMENT_SECONDS)
    sender.join()
    assert set(surplus["statuses"]) == {"404"}, surplus
    assert surplus["rps"] >= (1 - RATE_TOLERANCE) * rate, surplus
    return result


def combine(segments: list[dict]) -> dict:
    """Segments as one: rates over their total time, statuses summed, the median segment's
    p50 and p99, the slowest answer of all, and each segment's send rate against its schedule."""
    seconds = sum(segment["duration_us"] for segment in segments) / 1e6
    statuses: dict[str, int] = {}
    for segment in segments:
        for status, count in segment["statuses"].items():
            statuses[status] = statuses.get(status, 0) + count
    return {
        "rps": sum(segment["requests"] for segment in segments) / seconds,
        "goodput": sum(segment["ok"] for segment in segments) / seconds,
        "asked": statistics.mean(segment["asked"] for segment in segments) if segments[0]["asked"] else None,
        "schedule_kept": all(
            not segment["asked"] or segment["rps"] >= (1 - RATE_TOLERANCE) * segment["asked"]
            for segment in segments
        ),
        "statuses": statuses,
        "non_2xx": sum(segment["non_2xx"] for segment in segments),
        "shed_problems": sum(segment["shed_problems"] for segment in segments),
        "socket_errors": sum(segment["socket_errors"] for segment in segments),
        "p50_ms": statistics.median(segment["p50_ms"] for segment in segments),
        "p99_ms": statistics.median(segment["p99_ms"] for segment in segments),
        "max_ms": max(segment["max_ms"] for segment in segments),
        "generator_cores": statistics.mean(segment["generator_cores"] for segment in segments),
    }


def describe(result: dict) -> str:
    asked = f"{result['asked']:.0f} req/s asked, " if result["asked"] else ""
    return (
        f"{asked}{result['rps']:.0f} req/s sent and answered, goodput {result['goodput']:.0f}/s, "
        f"statuses {dict(sorted(result['statuses'].items()))}, p50 {result['p50_ms']:.0f} ms, "
        f"p99 {result['p99_ms']:.0f} ms, slowest {result['max_ms']:.0f} ms, "
        f"socket errors {result['socket_errors']}, load generator {result['generator_cores']:.2f} cores"
    )


def test_capacity_holds_at_2x_and_4x_its_load_and_the_rest_is_refused_quickly(deployed):
    stack, script, env = deployed
    run(stack, script, env, 2)  # warm-up
    shed_before = metric_total(stack.metrics, "webapp_shed_requests_total")
    for attempt in range(1, ATTEMPTS + 1):
        phases = alternate(stack, script, env)
        capacity = phases["capacity"]
        print(
            f"\n[overload] attempt {attempt}, {ROUNDS} rounds of {SEGMENT_SECONDS} s segments: "
            f"capacity (closed loop, 16 connections): {describe(capacity)}",
            flush=True,
        )
        shares = {}
        for factor in FACTORS:
            overload, control = phases[f"{factor}x"], phases[f"{factor}x control"]
            shares[factor] = (
                overload["goodput"] / capacity["goodput"],
                overload["goodput"] / control["goodput"],
            )
            print(
                f"[overload] {factor}x (open loop, {OPEN_LOOP_CONNECTIONS} connections): "
                f"{describe(overload)}; goodput {shares[factor][0]:.2f} x capacity; capacity beside "
                f"{factor - 1}x more requests answered by nginx alone {control['goodput']:.0f}/s "
                f"(p50 {control['p50_ms']:.0f} ms), goodput {shares[factor][1]:.2f} x that",
                flush=True,
            )
        if all(
            against_control >= GOODPUT_SHARE and plain >= PLAIN_GOODPUT_SHARE
            for plain, against_control in shares.values()
        ):
            break
    shed_by_app = metric_total(stack.metrics, "webapp_shed_requests_total") - shed_before
    print(f"[overload] shed by the app (waited over QUEUE_TIMEOUT_MS): {shed_by_app:.0f}", flush=True)

    for phase in ("capacity", *(f"{factor}x control" for factor in FACTORS)):
        assert phases[phase]["non_2xx"] == 0, (phase, describe(phases[phase]))
    for factor in FACTORS:
        result = phases[f"{factor}x"]
        # Open loop: the schedule was kept, so the load did not ease off with the server.
        assert result["schedule_kept"], (factor, describe(result))
        # Goodput stays near capacity, and every answer came back in time.
        plain, against_control = shares[factor]
        assert against_control >= GOODPUT_SHARE, (factor, shares[factor], describe(result))
        assert plain >= PLAIN_GOODPUT_SHARE, (factor, shares[factor], describe(result))
        assert result["socket_errors"] == 0, (factor, describe(result))
        assert result["max_ms"] < ANSWER_WITHIN * 1000, (factor, describe(result))
        # What could not be served was refused: 503 problem documents with Retry-After.
        refused = result["statuses"].get("503", 0)
        assert refused > 0, (factor, describe(result))
        assert result["shed_problems"] == refused, (factor, describe(result))
        assert set(result["statuses"]) <= {"200", "201", "503"}, (factor, describe(result))


def test_the_app_sheds_a_request_that_waited_too_long_for_a_worker(deployed):
    stack, _, _ = deployed
    # Requests the load left queued are answered (or shed) before a new one's turn: after this
    # one, the counter moves for the stale request alone.
    assert http_call("GET", f"{stack.api}/healthz")[0] == 200
    before = metric_total(stack.metrics, "webapp_shed_requests_total")
    # As nginx stamps it: taken 5 s ago (QUEUE_TIMEOUT_MS is 1000).
    stale = {"X-Request-Start": f"t={time.time() - 5:.3f}"}

    status, headers, body = http_call("GET", f"{stack.api}/roles", headers=stale)

    assert status == 503
    assert headers["Retry-After"] == "1"
    assert body["detail"] == "The API is at capacity; try again shortly"
    assert metric_total(stack.metrics, "webapp_shed_requests_total") == before + 1
    fresh = {"X-Request-Start": f"t={time.time():.3f}"}
    assert http_call("GET", f"{stack.api}/roles", headers=fresh)[0] == 200
