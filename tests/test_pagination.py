"""Pagination of every list endpoint: defaults, totals, clamped limits, bad arguments and stable order.

The lists are found in the app's OpenAPI document (a GET answering {page, limit, total, ...});
each resource's test module says how to call and grow its list (``paged_list``,
tests/helpers.PagedList).
"""

from __future__ import annotations

import base64
import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs

import pytest

from tests.conftest import TEST_CONFIG
from tests.helpers import assert_problem
from webapp import create_app
from webapp.extensions import api

PAGE_FIELDS = {"page", "limit", "total"}


def list_endpoints() -> dict[str, tuple[str, str]]:
    """Every list in the app: its path -> (its blueprint, the key of its rows in the body)."""
    app = create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    spec = api.spec.to_dict()  # the document of the app just built
    lists = {}
    for path, item in spec["paths"].items():
        answer = item.get("get", {}).get("responses", {}).get("200", {})
        schema = answer.get("content", {}).get("application/json", {}).get("schema", {})
        schema = spec["components"]["schemas"].get(schema.get("$ref", "").rpartition("/")[2], schema)
        rows = set(schema.get("properties", {})) - PAGE_FIELDS
        if set(schema.get("properties", {})) > PAGE_FIELDS and len(rows) == 1:
            endpoint = next(r.endpoint for r in app.url_map.iter_rules() if r.rule == path)
            lists[path] = (endpoint.partition(".")[0], rows.pop())
    return lists


LISTS = list_endpoints()


@dataclass
class ListUnderTest:
    """One list endpoint, the way a client calls it, and a way to add rows to it."""

    path: str
    key: str
    headers: dict[str, str]
    add: Callable[[str], int]  # label -> id of the new row
    text_filter: str
    ids: list[int] = field(default_factory=list)

    def fill(self, count: int, prefix: str = "row") -> list[int]:
        """Add ``count`` rows labelled ``<prefix>NNN``; return the ids of every row listed so far."""
        self.ids += [self.add(f"{prefix}{n:03d}") for n in range(count)]
        return self.ids

    def get(self, client, query: dict | str = ""):
        if isinstance(query, str):
            return client.get(f"{self.path}?{query}", headers=self.headers)
        return client.get(self.path, query_string=query, headers=self.headers)

    def page(self, client, query: dict | str = "") -> dict:
        response = self.get(client, query)
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        assert set(body) == {"page", "limit", "total", self.key}
        return body

    def row_ids(self, body: dict) -> list[int]:
        return [row["id"] for row in body[self.key]]


def paged_list_of(blueprint: str) -> Callable | None:
    """The ``paged_list`` of the blueprint's test module; None while either is missing."""
    if importlib.util.find_spec(f"tests.test_{blueprint}") is None:
        return None
    return getattr(importlib.import_module(f"tests.test_{blueprint}"), "paged_list", None)


def test_every_list_says_how_to_call_and_grow_it():
    assert LISTS, "no list endpoint found in the OpenAPI document"
    missing = [
        f"tests/test_{blueprint}.py: add paged_list(request) -> tests.helpers.PagedList for GET {path}"
        for path, (blueprint, _) in LISTS.items()
        if paged_list_of(blueprint) is None
    ]
    assert missing == [], "\n".join(missing)


@pytest.fixture(params=sorted(LISTS))
def the_list(request, app) -> ListUnderTest:
    """Each list of the app, as its resource's test module calls and grows it."""
    blueprint, key = LISTS[request.param]
    paged_list = paged_list_of(blueprint)
    if paged_list is None:
        pytest.fail(f"tests/test_{blueprint}.py needs paged_list(request) -> tests.helpers.PagedList")
    described = paged_list(request)
    return ListUnderTest(request.param, key, described.headers, described.add, described.text_filter)


@pytest.fixture
def filter_name(the_list) -> str:
    return the_list.text_filter


def test_defaults_are_page_1_and_limit_20(client, the_list):
    ids = the_list.fill(21)

    body = the_list.page(client)

    assert (body["page"], body["limit"], body["total"]) == (1, 20, 21)
    assert the_list.row_ids(body) == ids[:20]


def test_total_counts_every_match_while_the_page_holds_limit_rows(client, the_list, filter_name):
    the_list.fill(4, "other")
    matching = the_list.fill(7, "match")[4:]

    body = the_list.page(client, {filter_name: "match", "limit": 3})

    assert (body["page"], body["limit"], body["total"]) == (1, 3, 7)
    assert the_list.row_ids(body) == matching[:3]


def test_second_page_holds_the_rest(client, the_list):
    ids = the_list.fill(7)

    body = the_list.page(client, {"page": 2, "limit": 5})

    assert (body["page"], body["limit"], body["total"]) == (2, 5, 7)
    assert the_list.row_ids(body) == ids[5:]


@pytest.mark.parametrize("limit", [101, 1000, 10**30])
def test_limit_above_the_maximum_is_clamped_to_100(client, the_list, limit):
    the_list.fill(101)

    body = the_list.page(client, {"limit": limit})

    assert (body["limit"], body["total"]) == (100, 101)
    assert len(body[the_list.key]) == 100


def test_limit_at_the_maximum_is_kept(client, the_list):
    the_list.fill(3)

    assert the_list.page(client, {"limit": 100})["limit"] == 100


@pytest.mark.parametrize(("page", "limit"), [(2, 3), (3, 2), (1000, 20), (2**31 - 1, 100)])
def test_page_beyond_the_end_is_empty_with_the_right_total(client, the_list, page, limit):
    the_list.fill(3)

    body = the_list.page(client, {"page": page, "limit": limit})

    assert (body["page"], body["limit"], body["total"], body[the_list.key]) == (page, limit, 3, [])


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("page=0", "page"),
        ("page=-1", "page"),
        ("limit=0", "limit"),
        ("limit=-5", "limit"),
        ("page=abc", "page"),
        ("limit=abc", "limit"),
        ("page=1.5", "page"),
        ("limit=1.5", "limit"),
        ("page=", "page"),
        ("limit=", "limit"),
        ("page=99999999999999999999999", "page"),
        ("page=1e3", "page"),
        ("limit=0x10", "limit"),
        # What int() forgives but a URL integer is not: spaces, Unicode whitespace and digits,
        # signs and digit separators.
        ("limit=%205", "limit"),
        ("limit=5%20", "limit"),
        ("limit=5%C2%85", "limit"),
        ("page=%D9%A3", "page"),
        ("page=+1", "page"),
        ("limit=1_0", "limit"),
    ],
)
def test_invalid_page_or_limit_is_422_naming_the_argument(client, the_list, query, field):
    the_list.fill(1)

    response = the_list.get(client, query)

    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert set(body["errors"]) == {field}
    assert body["errors"][field]
    assert body["detail"]


def test_rows_are_ordered_by_id_across_pages(client, the_list):
    # Labels sort in the opposite order to creation, so only an id order passes.
    ids = [
        the_list.add(label) for label in ("zulu", "yankee", "xray", "whiskey", "victor", "uniform", "tango")
    ]

    pages = [the_list.page(client, {"page": page, "limit": 2}) for page in (1, 2, 3, 4)]
    again = [the_list.page(client, {"page": page, "limit": 2}) for page in (1, 2, 3, 4)]

    walked = [row_id for body in pages for row_id in the_list.row_ids(body)]
    assert walked == sorted(ids)
    assert [the_list.row_ids(body) for body in again] == [the_list.row_ids(body) for body in pages]


class TestSmallerConfiguredMaximum:
    """PAGE_LIMIT_MAX and PAGE_LIMIT_DEFAULT come from the config, not from constants."""

    @pytest.fixture
    def app_config(self) -> dict:
        return {"PAGE_LIMIT_MAX": 5, "PAGE_LIMIT_DEFAULT": 3}

    def test_default_limit_is_the_configured_default(self, client, the_list):
        ids = the_list.fill(6)

        body = the_list.page(client)

        assert (body["limit"], body["total"]) == (3, 6)
        assert the_list.row_ids(body) == ids[:3]

    @pytest.mark.parametrize(("asked", "used"), [(4, 4), (5, 5), (6, 5), (100, 5), (10**30, 5)])
    def test_limit_is_clamped_to_the_configured_maximum(self, client, the_list, asked, used):
        ids = the_list.fill(6)

        body = the_list.page(client, {"limit": asked})

        assert (body["limit"], body["total"]) == (used, 6)
        assert the_list.row_ids(body) == ids[:used]

    def test_pages_step_by_the_clamped_limit(self, client, the_list):
        ids = the_list.fill(6)

        body = the_list.page(client, {"page": 2, "limit": 50})

        assert (body["page"], body["limit"]) == (2, 5)
        assert the_list.row_ids(body) == ids[5:]


def links_of(response) -> dict[str, str]:
    """The Link header as {rel: target}."""
    links = {}
    for part in response.headers["Link"].split(", "):
        target, rel = part.split("; ")
        links[rel.removeprefix('rel="').removesuffix('"')] = target.strip("<>")
    return links


@pytest.mark.parametrize(
    ("page", "rels"),
    [
        (1, {"first": 1, "next": 2, "last": 4}),
        (2, {"first": 1, "prev": 1, "next": 3, "last": 4}),
        (4, {"first": 1, "prev": 3, "last": 4}),
        (9, {"first": 1, "prev": 4, "last": 4}),
    ],
)
def test_a_page_links_to_the_first_prev_next_and_last_that_exist(client, the_list, page, rels):
    ids = the_list.fill(10)

    response = the_list.get(client, {"page": page, "limit": 3})

    assert response.status_code == 200
    links = links_of(response)
    # The next page's link holds a cursor: it reads the same rows, by key instead of offset.
    following = links.pop("next", None)
    assert links == {rel: f"{the_list.path}?page={n}&limit=3" for rel, n in rels.items() if rel != "next"}
    assert (following is not None) == ("next" in rels)
    if following is not None:
        assert following.startswith(f"{the_list.path}?cursor=")
        assert following.endswith("&limit=3")
        followed = the_list.page(client, following.partition("?")[2])
        assert (followed["page"], the_list.row_ids(followed)) == (page + 1, ids[page * 3 : (page + 1) * 3])
    # The body is the page it always was.
    assert the_list.row_ids(response.get_json()) == ids[(page - 1) * 3 : page * 3]


def test_links_keep_the_filters_and_the_limit_used(client, the_list, filter_name):
    the_list.fill(5, prefix="match")
    the_list.fill(3, prefix="other")

    response = the_list.get(client, {filter_name: "match", "limit": 1000, "page": 2})

    assert response.get_json()["total"] == 5
    assert links_of(response) == {
        "first": f"{the_list.path}?{filter_name}=match&page=1&limit=100",
        "prev": f"{the_list.path}?{filter_name}=match&page=1&limit=100",
        "last": f"{the_list.path}?{filter_name}=match&page=1&limit=100",
    }
    followed = the_list.get(client, links_of(response)["last"].partition("?")[2])
    assert followed.get_json()["total"] == 5


def test_an_empty_list_links_to_its_one_page(client, the_list):
    response = the_list.get(client, {"limit": 5})

    assert links_of(response) == {
        "first": f"{the_list.path}?page=1&limit=5",
        "last": f"{the_list.path}?page=1&limit=5",
    }


def test_a_filter_value_is_escaped_in_the_links(client, the_list, filter_name):
    the_list.add("a&b c")

    response = the_list.get(client, {filter_name: "a&b c"})

    assert links_of(response)["first"] == f"{the_list.path}?{filter_name}=a%26b+c&page=1&limit=20"
    assert the_list.get(client, links_of(response)["first"].partition("?")[2]).get_json()["total"] == 1


def test_links_keep_only_the_arguments_the_list_knows(client, the_list, filter_name):
    the_list.add("kept")

    response = the_list.get(client, {filter_name: "kept", "utm_source": "x" * 3000, "limit": 5})

    assert response.status_code == 200
    assert links_of(response)["first"] == f"{the_list.path}?{filter_name}=kept&page=1&limit=5"


def test_a_link_header_too_long_for_a_proxy_is_left_out(client, the_list, filter_name):
    the_list.add("kept")
    # The filter sent 800 times over: each link would carry all of it, beyond a proxy's buffer.
    query = "&".join([f"{filter_name}=kept"] * 800)

    response = the_list.get(client, query)

    assert response.status_code == 200
    assert "Link" not in response.headers
    assert response.get_json()["total"] == 1
    assert len(the_list.get(client, "&".join([f"{filter_name}=kept"] * 20)).headers["Link"]) > 0


# --- cursors: the next link's keyset ---------------------------------------------------------


def next_link(response) -> str | None:
    """The query string of the response's next link, if it has one."""
    target = links_of(response).get("next")
    return None if target is None else target.partition("?")[2]


def test_following_next_links_walks_every_row_once_in_order(client, the_list):
    ids = the_list.fill(11)
    seen, pages, query = [], [], "limit=3"

    while query is not None:
        response = the_list.get(client, query)
        body = response.get_json()
        assert response.status_code == 200, body
        assert body["total"] == len(ids)
        seen += the_list.row_ids(body)
        pages.append(body["page"])
        query = next_link(response)

    assert seen == ids
    assert pages == [1, 2, 3, 4]


def test_a_cursor_keeps_the_filter_and_its_walk_sees_rows_deleted_and_added_meanwhile(
    client, the_list, filter_name
):
    matching = the_list.fill(5, prefix="match")
    the_list.fill(3, prefix="other")
    first = the_list.get(client, {filter_name: "match", "limit": 2})

    later = the_list.add("match-late")
    second = the_list.page(client, next_link(first))

    assert second["total"] == 6
    assert the_list.row_ids(second) == matching[2:4]
    third = the_list.page(client, next_link(the_list.get(client, next_link(first))))
    assert the_list.row_ids(third) == [matching[4], later]


def forged(cursor: str) -> list[str]:
    """Cursors a client could make up from a real one."""
    position, _, signature = cursor.partition(".")
    real_page, real_after = base64.urlsafe_b64decode(position + "==").decode().split(".")
    other = base64.urlsafe_b64encode(f"{real_page}.{int(real_after) + 1}".encode()).decode().rstrip("=")
    return [
        f"{other}.{signature}",  # another position, the real signature
        position,  # no signature
        f"{position}.{signature[:-2]}AA",  # a signature of the right shape
        f"{position}.{signature}x",
        "not-a-cursor",
        "....",
        base64.urlsafe_b64encode(b"2.-1").decode() + "." + signature,
        base64.urlsafe_b64encode(b"x.y").decode() + "." + signature,
        base64.urlsafe_b64encode(b"99999999999999999999999.1").decode() + "." + signature,
        "%00",
    ]


def test_a_forged_cursor_is_a_400_problem(client, the_list):
    the_list.fill(5)
    cursor = parse_qs(next_link(the_list.get(client, {"limit": 2})))["cursor"][0]

    for fake in forged(cursor):
        response = the_list.get(client, {"cursor": fake, "limit": 2})
        assert_problem(response, 400)


def test_a_cursor_of_other_filters_another_limit_or_another_list_is_a_400(
    client, the_list, filter_name, auth_headers
):
    the_list.fill(5, prefix="match")
    query = next_link(the_list.get(client, {filter_name: "match", "limit": 2}))
    cursor = "cursor=" + parse_qs(query)["cursor"][0]

    assert the_list.get(client, query).status_code == 200
    for changed in (
        f"{cursor}&limit=2",  # the filter dropped
        f"{filter_name}=matc&{cursor}&limit=2",  # another filter
        f"{filter_name}=match&{cursor}&limit=3",  # another limit
        f"{filter_name}=match&{cursor}&limit=2&page=2",  # a page as well
    ):
        assert_problem(the_list.get(client, changed), 400)
    other_list = next(path for path in LISTS if path != the_list.path)
    assert_problem(client.get(f"{other_list}?{cursor}&limit=2", headers=auth_headers), 400)


def test_a_cursor_signed_with_a_retired_secret_key_is_a_400(app, client, the_list, monkeypatch):
    the_list.fill(5)
    query = next_link(the_list.get(client, {"limit": 2}))
    monkeypatch.setitem(app.config, "SECRET_KEY", "a-new-secret-key-for-this-test")

    assert_problem(the_list.get(client, query), 400)


def test_a_cursor_too_long_is_a_422_naming_it(client, the_list):
    assert set(assert_problem(the_list.get(client, {"cursor": "a" * 101}), 422)["errors"]) == {"cursor"}
