"""A soak: the deployment (gunicorn with three workers behind nginx, on MariaDB) under a
steady mixed load at about 70 % of its measured capacity for SOAK_SECONDS (default 300),
with logins and refreshes beside it. Over the run: no answer other than 2xx (but for the
queue budget's 503s during a stall of the host, at most SHED_SHARE_MAX of requests), a steady
typical latency and a bounded tail, no growth of the workers' memory, no growth of database
connections, and the rate asked for actually served.

The load is wrk with a Lua script: mostly reads (an item by id, the first page of items,
the roles), some writes (new items, description changes). First a closed-loop run
measures capacity; then five consecutive paced runs ("minutes" of SOAK_SECONDS / 5 each),
so every minute has its own rate and percentiles, with memory and connections sampled
after each.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

from tests.chaos.conftest import proxied_server
from tests.chaos.mixed_load import WRK_SCRIPT, call, ok, wrk
from tests.processes import AUTH_RATE_UNLIMITED, mariadb_root, metric_total, start_api, start_nginx

pytestmark = pytest.mark.slow

SOAK_SECONDS = int(os.environ.get("SOAK_SECONDS", "300"))
MINUTES = 5
CONNECTIONS = 16
CAPACITY_SECONDS = 5
WARMUP_SECONDS = 2
LOAD_SHARE = 0.70
ITEMS = 200
LOGIN_EVERY = 2.0

# Assertions.
# Latency that drifts (a queue, a leak, a query slowing with the data) persists and grows. The
# typical answer shows it: the p50 of the last minutes (the better of the last two) at most
# P50_GROWTH_MAX times the first minute's plus P50_SLACK_MS. The tail is held to a ceiling
# instead: on this shared host a minute's p99 moves between 11 and 469 ms at a steady p50 and
# host speed (stalls of the host or its disk), more than any drift would in five minutes.
P50_GROWTH_MAX = 1.5
P50_SLACK_MS = 2.0
P99_MAX_MS = 1000.0  # every minute's p99: under the queue budget (QUEUE_TIMEOUT_MS)
# ... judged while the host itself runs at a steady speed: on a shared VM it can lose a third
# of its speed for minutes (steal), which a queue at 70 % of the first capacity cannot absorb,
# and which says nothing of the app. Past this slowdown the p50 comparison is not judged.
HOST_SLOWDOWN_MAX = 1.25
# The only answers allowed besides 2xx: the queue budget's 503s (QUEUE_TIMEOUT_MS), for
# requests that waited over a second for a worker while the host or its disk stalled (seen:
# 13 of 189,633 in a minute whose p50 went from 4 to 14 ms). At most this share of requests.
SHED_SHARE_MAX = 0.0005
RSS_GROWTH_MAX = 0.10  # workers' memory, end over minute one
CONNECTION_SPREAD_MAX = 3  # max - min of the database connections across the samples
RATE_TOLERANCE = 0.25  # achieved rate within this share of the target


def worker_rss(master: int) -> dict[int, int]:
    """Resident memory (kB) of each gunicorn worker: the master's children."""
    children = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True, check=False)
    rss = {}
    for pid in map(int, children.stdout.split()):
        if b"gunicorn" in Path(f"/proc/{pid}/cmdline").read_bytes():
            status = Path(f"/proc/{pid}/status").read_text()
            rss[pid] = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
    return rss


def database_connections(database: str) -> tuple[int, int]:
    """MariaDB's Threads_connected (server-wide) and the connections to ``database`` alone."""
    with mariadb_root() as connection:
        cursor = connection.cursor()
        cursor.execute("SHOW GLOBAL STATUS LIKE 'Threads_connected'")
        threads = int(cursor.fetchone()[1])
        cursor.execute("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = %s", (database,))
        return threads, int(cursor.fetchone()[0])


def host_seconds() -> float:
    """How long a fixed piece of pure Python takes now, best of three: the host's speed."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        total = 0
        for number in range(200_000):
            total += number * number
        best = min(best, time.perf_counter() - started)
    return best


class LoginLoop(threading.Thread):
    """A login and a refresh of one account every LOGIN_EVERY seconds until stopped (or a
    bounded number of rounds): every answer must be 200."""

    def __init__(self, base: str, username: str, password: str, rounds: int) -> None:
        super().__init__(daemon=True)
        self.base, self.username, self.password, self.rounds = base, username, password, rounds
        self.stopped = threading.Event()
        self.done = 0
        self.failures: list[str] = []
        self.slowest = 0.0

    def run(self) -> None:
        for _ in range(self.rounds):
            if self.stopped.wait(LOGIN_EVERY):
                return
            started = time.monotonic()
            try:
                status, body = call(
                    "POST", f"{self.base}/auth/token", {"username": self.username, "password": self.password}
                )
                if status != 200:
                    self.failures.append(f"login {status}: {body}")
                    continue
                status, body = call(
                    "POST", f"{self.base}/auth/refresh", {"refresh_token": body["refresh_token"]}
                )
                if status != 200:
                    self.failures.append(f"refresh {status}: {body}")
                    continue
            except OSError as error:
                self.failures.append(f"{type(error).__name__}: {error}")
                continue
            self.slowest = max(self.slowest, time.monotonic() - started)
            self.done += 1


def test_soak_steady_mixed_load_without_errors_leaks_or_drift(database, tmp_path):
    minute_seconds = max(1, SOAK_SECONDS // MINUTES)
    stack, env = proxied_server(database, tmp_path)
    script = tmp_path / "soak.lua"
    script.write_text(WRK_SCRIPT)
    started = time.monotonic()
    logins = None
    try:
        start_api(stack, env)
        start_nginx(stack, stack.port("api"), stack.port("public"), auth_rate=AUTH_RATE_UNLIMITED)
        base = stack.public

        # Accounts and data: a user for wrk, another for the login loop (each login ends the
        # account's oldest session beyond two, which must not be wrk's), and ITEMS items.
        admin = ok("POST", f"{base}/auth/token", {"username": "admin", "password": env["ADMIN_PASSWORD"]})
        admin_auth = {"Authorization": f"Bearer {admin['access_token']}"}
        loader = ok("POST", f"{base}/users", {"username": "soak", "role_id": 2}, admin_auth, expect=201)
        looper = ok("POST", f"{base}/users", {"username": "soak-login", "role_id": 2}, admin_auth, expect=201)
        token = ok("POST", f"{base}/auth/token", {"username": "soak", "password": loader["password"]})
        authorization = f"Bearer {token['access_token']}"
        ids = [
            ok(
                "POST",
                f"{base}/items",
                {"name": f"soak item {n}", "description": "prepared"},
                {"Authorization": authorization},
                expect=201,
            )["id"]
            for n in range(ITEMS)
        ]
        load_env = {"SOAK_AUTHORIZATION": authorization, "SOAK_ITEM_IDS": ",".join(map(str, ids))}
        master = stack.processes["gunicorn"].pid

        # Capacity: the same mix, closed loop, after a warm-up.
        wrk(base, WARMUP_SECONDS, script, {**load_env, "SOAK_RUN": f"warmup-{uuid.uuid4().hex[:8]}"})
        capacity = wrk(
            base, CAPACITY_SECONDS, script, {**load_env, "SOAK_RUN": f"cap-{uuid.uuid4().hex[:8]}"}
        )
        target = LOAD_SHARE * capacity["rps"]
        print(
            f"\n[soak] capacity {capacity['rps']:.1f} req/s (p50 {capacity['p50_ms']:.2f} ms, p99 "
            f"{capacity['p99_ms']:.2f} ms, non-2xx {capacity['non_2xx']}); target {target:.1f} req/s "
            f"= {LOAD_SHARE:.0%}, i.e. one request per connection every "
            f"{CONNECTIONS * 1000 / target:.1f} ms; {MINUTES} minutes of {minute_seconds} s",
            flush=True,
        )
        assert capacity["non_2xx"] == 0, capacity["statuses"]

        workers_before = worker_rss(master)
        samples = [
            {
                "minute": 0,
                "rss": workers_before,
                "connections": database_connections(stack.database),
                "host": host_seconds(),
            }
        ]
        shed_before = metric_total(stack.metrics, "webapp_shed_requests_total")
        logins = LoginLoop(base, "soak-login", looper["password"], rounds=int(SOAK_SECONDS / LOGIN_EVERY) + 5)
        logins.start()
        minutes = []
        for minute in range(1, MINUTES + 1):
            run_env = {
                **load_env,
                "SOAK_RUN": f"m{minute}-{uuid.uuid4().hex[:8]}",
                "SOAK_RPS": f"{target:.3f}",
            }
            minutes.append(wrk(base, minute_seconds, script, run_env))
            samples.append(
                {
                    "minute": minute,
                    "rss": worker_rss(master),
                    "connections": database_connections(stack.database),
                    "host": host_seconds(),
                }
            )
            row = minutes[-1]
            print(
                f"[soak] minute {minute}: {row['rps']:.1f} req/s, p50 {row['p50_ms']:.2f} ms, "
                f"p99 {row['p99_ms']:.2f} ms, non-2xx {row['non_2xx']}",
                flush=True,
            )
        logins.stopped.set()
        logins.join(timeout=15)
        shed_by_app = metric_total(stack.metrics, "webapp_shed_requests_total") - shed_before
    finally:
        if logins is not None:
            logins.stopped.set()
        stack.stop_all()

    # The report.
    print(
        f"\n[soak] target {target:.1f} req/s ({LOAD_SHARE:.0%} of {capacity['rps']:.1f}), "
        f"{CONNECTIONS} connections"
    )
    print(
        f"[soak] {'minute':>6} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8} "
        f"{'rss MB':>8} {'threads_connected':>18} {'db conns':>9} {'host ms':>8}"
    )
    for row, sample in zip(minutes, samples[1:], strict=True):
        print(
            f"[soak] {sample['minute']:>6} {row['rps']:>8.1f} {row['p50_ms']:>8.2f} {row['p99_ms']:>8.2f} "
            f"{row['non_2xx']:>8} {sum(sample['rss'].values()) / 1024:>8.1f} "
            f"{sample['connections'][0]:>18} {sample['connections'][1]:>9} {sample['host'] * 1000:>8.1f}"
        )
    rss_first = sum(samples[1]["rss"].values())
    rss_last = sum(samples[-1]["rss"].values())
    rss_growth = rss_last / rss_first - 1
    p50_late = min(row["p50_ms"] for row in minutes[-2:])
    p50_bound = P50_GROWTH_MAX * minutes[0]["p50_ms"] + P50_SLACK_MS
    p99_worst = max(row["p99_ms"] for row in minutes)
    # The host's speed around the last minute against around the first (the probe before and
    # after each minute; the slower of each pair).
    host = [sample["host"] for sample in samples]
    host_slowdown = max(host[-2], host[-1]) / max(host[0], host[1])
    steady_host = host_slowdown <= HOST_SLOWDOWN_MAX
    threads = [sample["connections"][0] for sample in samples]
    connections = [sample["connections"][1] for sample in samples]
    rates = [row["rps"] / target - 1 for row in minutes]
    requests = sum(row["requests"] for row in minutes)
    shed = sum(row["shed_problems"] for row in minutes)
    statuses: dict[str, int] = {}
    for row in minutes:
        for status, count in row["statuses"].items():
            statuses[status] = statuses.get(status, 0) + count
    log = stack.logs["gunicorn"].read_text(errors="replace").splitlines()
    levels = [json.loads(line).get("level") for line in log if line.startswith("{")]
    errors_logged = sum(level in ("ERROR", "CRITICAL") for level in levels)
    checks = {
        f"no answer but 2xx and the queue budget's 503 problems ({shed} shed by the app, "
        f"{shed / requests:.3%} of {requests} <= {SHED_SHARE_MAX:.2%}), no socket error": (
            all(row["socket_errors"] == 0 and row["non_2xx"] == row["shed_problems"] for row in minutes)
            and shed <= shed_by_app
            and shed <= SHED_SHARE_MAX * requests
        ),
        (
            f"p50 of the last minutes {p50_late:.2f} ms <= {P50_GROWTH_MAX} x the first minute's "
            f"+ {P50_SLACK_MS:.0f} ms = {p50_bound:.2f} ms"
            if steady_host
            else f"p50 of the last minutes {p50_late:.2f} ms not judged: the host ran "
            f"{host_slowdown:.2f} x slower around the last minute than around the first "
            f"(> {HOST_SLOWDOWN_MAX})"
        ): p50_late <= p50_bound or not steady_host,
        f"p99 of every minute <= {P99_MAX_MS:.0f} ms (worst {p99_worst:.1f} ms)": p99_worst <= P99_MAX_MS,
        f"worker RSS end vs minute one {rss_growth:+.2%} <= +{RSS_GROWTH_MAX:.0%}": rss_growth
        <= RSS_GROWTH_MAX,
        "the same workers throughout (none died or was replaced)": (
            set(samples[-1]["rss"]) == set(workers_before) and len(workers_before) == 3
        ),
        f"database connections {min(connections)}..{max(connections)}: spread <= {CONNECTION_SPREAD_MAX}": (
            max(connections) - min(connections) <= CONNECTION_SPREAD_MAX
        ),
        "achieved rate within 25 % of the target every minute "
        f"({', '.join(f'{r:+.1%}' for r in rates)})": all(abs(r) <= RATE_TOLERANCE for r in rates),
        f"logins + refreshes: {logins.done} rounds all 200 (slowest {logins.slowest * 1000:.0f} ms)": (
            not logins.failures and logins.done >= SOAK_SECONDS / LOGIN_EVERY / 2
        ),
        f"no ERROR line in the gunicorn log ({len(levels)} lines)": errors_logged == 0,
    }
    print(f"[soak] statuses over the soak: {statuses}")
    print(
        f"[soak] worker RSS kB minute one {samples[1]['rss']} -> end {samples[-1]['rss']}: "
        f"{rss_last - rss_first:+d} kB ({rss_growth:+.2%})"
    )
    print(
        f"[soak] Threads_connected (server-wide, other clients included) {min(threads)}..{max(threads)}; "
        f"connections to {stack.database} {min(connections)}..{max(connections)}"
    )
    for check, passed in checks.items():
        print(f"[soak] {'PASS' if passed else 'FAIL'}: {check}")
    if logins.failures:
        print(f"[soak] login loop failures: {logins.failures[:10]}")
    elapsed = time.monotonic() - started
    failed = [check for check, passed in checks.items() if not passed]
    print(
        f"[soak] verdict: {'PASS' if not failed else 'FAIL'} in {elapsed:.0f} s (SOAK_SECONDS={SOAK_SECONDS})"
    )
    assert not failed, failed
