"""What a client developer writes against the client generated from /openapi.json
(`openapi-python-client`): no cast, no ``type: ignore``, checked by ``mypy --strict``.

    python scenario.py BASE_URL ADMIN_USERNAME ADMIN_PASSWORD

Logs in, refreshes, creates, finds, pages, reads, changes and deletes items, uses ETags,
lists and ends sessions, and meets each problem the API answers as a typed ``Problem``.
"""

from __future__ import annotations

import re
import sys
import uuid
from http import HTTPStatus
from typing import TypeVar

from flask_reference_api_client import AuthenticatedClient, Client
from flask_reference_api_client.api.auth import (
    end_my_session,
    get_my_account,
    list_my_sessions,
    login,
    refresh_tokens,
)
from flask_reference_api_client.api.items import create_item, delete_item, get_item, list_items, update_item
from flask_reference_api_client.api.users import create_user
from flask_reference_api_client.models import (
    ItemCreate,
    ItemUpdate,
    Login,
    Problem,
    Refresh,
    RoleId,
    UserCreate,
)
from flask_reference_api_client.types import Response, Unset

T = TypeVar("T")
VERSION = "1.0"


def ok(result: T | Problem | None) -> T:
    """The answer's model, or stop on a problem."""
    if isinstance(result, Problem):
        raise SystemExit(f"unexpected problem: {result.status} {result.detail}")
    if result is None:
        raise SystemExit("unexpected answer without a body")
    return result


def check(condition: bool, what: str) -> None:
    if not condition:
        raise SystemExit(f"failed: {what}")


def problem(result: object, status: int) -> Problem:
    """The problem ``result`` must be, with ``status``."""
    if not isinstance(result, Problem) or result.status != status:
        raise SystemExit(f"expected a {status} problem, got {result!r}")
    print(f"  {status} {result.title}: {result.detail}")
    return result


def next_cursor(response: Response[T]) -> str:
    """The cursor of the Link header's next page."""
    match = re.search(r'<[^>]*[?&]cursor=([^&>]+)[^>]*>; rel="next"', response.headers.get("Link", ""))
    if match is None:
        raise SystemExit("no next link")
    return match.group(1)


def main(base_url: str, username: str, password: str) -> None:
    public = Client(base_url=base_url)
    run = uuid.uuid4().hex[:8]

    tokens = ok(login.sync(client=public, body=Login(username=username, password=password)))
    print(f"login: {tokens.token_type} token, expires in {tokens.expires} s")
    tokens = ok(refresh_tokens.sync(client=public, body=Refresh(refresh_token=tokens.refresh_token)))
    admin = AuthenticatedClient(base_url=base_url, token=tokens.access_token)
    me = ok(get_my_account.sync(client=admin))
    print(f"refresh: a new pair for {me.username} ({me.role_id.name})")

    created = [
        ok(create_item.sync(client=admin, body=ItemCreate(name=f"lamp {run} {n}", description="brass")))
        for n in range(5)
    ]
    print(f"create: {len(created)} items, ids {created[0].id}..{created[-1].id}, owner {created[0].user_id}")

    first = list_items.sync_detailed(client=admin, name=run, limit=2, x_version=VERSION)
    page = ok(first.parsed)
    second = ok(list_items.sync(client=admin, name=run, limit=2, cursor=next_cursor(first)))
    ids = [[i.id for i in page.items], [i.id for i in second.items]]
    print(f"search {run!r}: total {page.total}; page 1 {ids[0]}, then by the next link's cursor {ids[1]}")
    check(page.total == 5 and len(ids[1]) == 2, "the search finds the 5 items, 2 a page")

    item = created[0]
    read = get_item.sync_detailed(item.id, client=admin)
    etag = read.headers["ETag"]
    unchanged = get_item.sync_detailed(item.id, client=admin, if_none_match=etag)
    print(f"read: {ok(read.parsed).name!r} with ETag {etag}; If-None-Match -> {unchanged.status_code.value}")
    check(unchanged.status_code == HTTPStatus.NOT_MODIFIED, "If-None-Match with the ETag is a 304")

    changed = ok(update_item.sync(item.id, client=admin, body=ItemUpdate(description="steel"), if_match=etag))
    print(f"update: description {changed.description!r}; the old ETag now:")
    problem(update_item.sync(item.id, client=admin, body=ItemUpdate(description="oak"), if_match=etag), 412)

    sessions = ok(list_my_sessions.sync(client=admin))
    current = next(session for session in sessions if session.current)
    print(f"sessions: {len(sessions)}, the current one is {current.id}")

    print("problems, typed:")
    problem(get_my_account.sync(client=AuthenticatedClient(base_url=base_url, token="not-a-token")), 401)
    new_user = UserCreate(username=f"client-{run}", role_id=RoleId.USER)
    member = ok(create_user.sync(client=admin, body=new_user))
    problem(create_user.sync(client=admin, body=new_user), 409)
    member_login = Login(username=member.username, password=member.password)
    member_tokens = ok(login.sync(client=public, body=member_login))
    as_member = AuthenticatedClient(base_url=base_url, token=member_tokens.access_token)
    problem(delete_item.sync(item.id, client=as_member), 403)
    problem(get_item.sync(2**62, client=admin), 404)
    invalid = problem(create_item.sync(client=admin, body=ItemCreate(name="")), 422)
    fields = {} if isinstance(invalid.errors, Unset) else invalid.errors.additional_properties
    print(f"  422 errors by field: {fields}")
    problem(list_items.sync(client=admin, x_version="0.1"), 426)

    for each in created:
        ok(delete_item.sync(each.id, client=admin))
    ok(end_my_session.sync(current.id, client=admin))
    problem(list_my_sessions.sync(client=admin), 401)
    print(f"delete: {len(created)} items; end session {current.id}: its token is refused")


if __name__ == "__main__":
    main(*sys.argv[1:4])
