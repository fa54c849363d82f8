"""Brute-force limits on authentication, shared by every worker and instance via the database.

Each failed attempt adds one to three counters: the account from this client address, the
client address (over every account), and the account (over every address), in fixed windows
of AUTH_FAILURE_WINDOW seconds. A counter counts its failures in the current and the previous
window, so a burst at a window boundary gains nothing. Refusals (429, before any password is
checked):

- one address guessing one account: MAX_FAILURES_PER_ACCOUNT failures of that pair;
- one address guessing many accounts: MAX_FAILURES_PER_ADDRESS failures of that address;
- many addresses guessing one account: once the account has ACCOUNT_UNDER_ATTACK_FAILURES
  failures from all addresses together, an address that has failed itself gets no more
  guesses, while an address with no failure still gets its password checked.

So failures sent from elsewhere never lock a user out: only the attacker's own addresses are
refused. The price is that an attacker with many addresses gets one guess per address while
the account is under attack (docs/security.md gives the figures). IPv6 clients are counted
by their /64 network, which one host can fill with addresses. Only failures count: a user
who logs in right is never slowed down.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from flask import current_app, g, request
from flask_smorest import abort
from sqlalchemy import ScalarSelect, delete, func, select

from webapp.database import db
from webapp.dialects import add_to_counters, node_index
from webapp.models import AuthFailure, User
from webapp.security import verify_password


@dataclass(frozen=True)
class Limit:
    """At most ``max_failures`` failures of ``value`` in ``scope`` per sliding window. A
    ``shared`` limit counts every client's failures, so it refuses only a client that has
    failures of its own (in the request's other limits)."""

    scope: str
    value: str
    max_failures: int
    shared: bool = False

    @property
    def key(self) -> str:
        return hashlib.sha256(f"{self.scope}:{self.value}".encode()).hexdigest()


def client_address() -> str:
    """The client's address as the limits count it: an IPv6 client by its /64 network (one
    host gets a whole /64 to pick addresses from), anything else as it is."""
    address = request.remote_addr or "-"
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:  # ::ffff:192.0.2.1 is 192.0.2.1
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


def login_limits(username: str) -> list[Limit]:
    """The limits of a password check of ``username`` from this request's client."""
    config = current_app.config
    address = client_address()
    return [
        Limit("account-address", f"{username}\x00{address}", config["MAX_FAILURES_PER_ACCOUNT"]),
        Limit("address", address, config["MAX_FAILURES_PER_ADDRESS"]),
        Limit("account", username, config["ACCOUNT_UNDER_ATTACK_FAILURES"], shared=True),
    ]


def address_only() -> list[Limit]:
    return [Limit("address", client_address(), current_app.config["MAX_FAILURES_PER_ADDRESS"])]


def _window() -> tuple[int, float]:
    size = current_app.config["AUTH_FAILURE_WINDOW"]
    now = time.time()
    return int(now // size), (int(now // size) + 1) * size - now


def counters(limits: list[Limit]) -> list[ScalarSelect]:
    """Per limit, its failures in the previous and current windows, then in the current one:
    scalar subqueries, so a caller can read them within a statement it runs anyway."""
    window, _ = _window()
    return [
        select(func.coalesce(func.sum(AuthFailure.failures), 0))
        .where(AuthFailure.key_digest == limit.key, AuthFailure.window_index >= since)
        .scalar_subquery()
        for limit in limits
        for since in (window - 1, window)
    ]


def enforce(limits: list[Limit], values: Sequence[int]) -> dict[str, int]:
    """Answer 429 if a limit is reached, given the values of ``counters(limits)``; else the
    recent failures by key."""
    recent = {limit.key: both for limit, both in zip(limits, values[::2], strict=True)}
    failed_here = any(recent[limit.key] for limit in limits if not limit.shared)
    for limit, both, current in zip(limits, values[::2], values[1::2], strict=True):
        if both >= limit.max_failures and (failed_here or not limit.shared):
            # The previous window's failures stop counting when this window ends; this
            # window's own failures count until the next one ends.
            wait = _window()[1]
            if current >= limit.max_failures:
                wait += current_app.config["AUTH_FAILURE_WINDOW"]
            retry_after = max(1, math.ceil(wait))
            abort(
                429,
                message=f"Too many failed attempts; try again in {retry_after} seconds",
                headers={"Retry-After": str(retry_after)},
            )
    return recent


def check(limits: list[Limit]) -> dict[str, int]:
    """Answer 429 if a limit is reached; else the recent failures by key (one query)."""
    return enforce(limits, db.session.execute(select(*counters(limits))).one())


def check_login(username: str, password: str, *, lock: bool = False) -> User | None:
    """The active account ``username`` if ``password`` is its password, else None with the
    failure counted and committed; 429 first while a limit is reached.

    One statement reads the account (locked if ``lock``) and the counters; an unknown or
    deactivated account costs the same bcrypt work as a wrong password. A success forgets
    the failures of the account from this address (the caller commits); those from other
    addresses still count, since they may be someone else's guesses.
    """
    limits = login_limits(username)
    user, counts = User.find(username, *counters(limits), lock=lock)
    if user is not None:
        g.account_id = user.id  # the access line names the account tried, right or wrong
    recent = enforce(limits, counts)
    if not verify_password(password, user.password_hash if user is not None and user.activated else None):
        record_failure(limits)
        db.session.commit()
        return None
    if recent.get(limits[0].key):
        db.session.execute(delete(AuthFailure).where(AuthFailure.key_digest == limits[0].key))
    return user


def check_current_password(user: User, password: str | None) -> None:
    """Before an account changes its own password: 422 without the current one, 429 while a
    limit is reached, 403 if it is wrong. A wrong one counts as a failed login (and is
    committed), so a stolen access token cannot be used to guess the password."""
    if password is None:
        abort(422, errors={"current_password": ["Required to change your own password."]})
    limits = login_limits(user.username)
    check(limits)
    if not verify_password(password, user.password_hash):
        record_failure(limits)
        db.session.commit()
        abort(403, message="The current password is wrong")


def record_failure(limits: list[Limit]) -> None:
    """Count one failure for each limit's key (the caller commits)."""
    window, _ = _window()
    connection = db.session.connection()
    shard = node_index(connection)
    rows = [
        {"key_digest": limit.key, "window_index": window, "shard": shard, "failures": 1} for limit in limits
    ]
    add_to_counters(connection, AuthFailure, rows, "failures")


def purge_old_windows() -> int:
    """Delete counters that no longer count; returns how many."""
    window, _ = _window()
    return db.session.execute(delete(AuthFailure).where(AuthFailure.window_index < window - 1)).rowcount
