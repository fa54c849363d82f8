"""Pagination of every list endpoint: defaults, totals, clamped limits, bad arguments and stable order.

The lists are found in the app's OpenAPI document (a GET answering {page, limit, total, ...});
each resource's test module says how to call and grow its list (``listed``, tests/helpers.Listed).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from tests.conftest import TEST_CONFIG
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
class Listing:
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


def test_every_list_says_how_to_call_and_grow_it():
    assert LISTS, "no list endpoint found in the OpenAPI document"
    missing = [
        f"tests/test_{blueprint}.py: add listed(request) -> tests.helpers.Listed for GET {path}"
        for path, (blueprint, _) in LISTS.items()
        if not hasattr(importlib.import_module(f"tests.test_{blueprint}"), "listed")
    ]
    assert missing == [], "\n".join(missing)


@pytest.fixture(params=sorted(LISTS))
def listing(request, app) -> Listing:
    """Each list of the app, as its resource's test module calls and grows it."""
    blueprint, key = LISTS[request.param]
    listed = importlib.import_module(f"tests.test_{blueprint}").listed(request)
    return Listing(request.param, key, listed.headers, listed.add, listed.text_filter)


@pytest.fixture
def filter_name(listing) -> str:
    return listing.text_filter


def test_defaults_are_page_1_and_limit_20(client, listing):
    ids = listing.fill(21)

    body = listing.page(client)

    assert (body["page"], body["limit"], body["total"]) == (1, 20, 21)
    assert listing.row_ids(body) == ids[:20]


def test_total_counts_every_match_while_the_page_holds_limit_rows(client, listing, filter_name):
    listing.fill(4, "other")
    matching = listing.fill(7, "match")[4:]

    body = listing.page(client, {filter_name: "match", "limit": 3})

    assert (body["page"], body["limit"], body["total"]) == (1, 3, 7)
    assert listing.row_ids(body) == matching[:3]


def test_second_page_holds_the_rest(client, listing):
    ids = listing.fill(7)

    body = listing.page(client, {"page": 2, "limit": 5})

    assert (body["page"], body["limit"], body["total"]) == (2, 5, 7)
    assert listing.row_ids(body) == ids[5:]


@pytest.mark.parametrize("limit", [101, 1000, 10**30])
def test_limit_above_the_maximum_is_clamped_to_100(client, listing, limit):
    listing.fill(101)

    body = listing.page(client, {"limit": limit})

    assert (body["limit"], body["total"]) == (100, 101)
    assert len(body[listing.key]) == 100


def test_limit_at_the_maximum_is_kept(client, listing):
    listing.fill(3)

    assert listing.page(client, {"limit": 100})["limit"] == 100


@pytest.mark.parametrize(("page", "limit"), [(2, 3), (3, 2), (1000, 20), (2**31 - 1, 100)])
def test_page_beyond_the_end_is_empty_with_the_right_total(client, listing, page, limit):
    listing.fill(3)

    body = listing.page(client, {"page": page, "limit": limit})

    assert (body["page"], body["limit"], body["total"], body[listing.key]) == (page, limit, 3, [])


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
def test_invalid_page_or_limit_is_422_naming_the_argument(client, listing, query, field):
    listing.fill(1)

    response = listing.get(client, query)

    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert set(body["errors"]) == {field}
    assert body["errors"][field]
    assert body["detail"]


def test_rows_are_ordered_by_id_across_pages(client, listing):
    # Labels sort in the opposite order to creation, so only an id order passes.
    ids = [
        listing.add(label) for label in ("zulu", "yankee", "xray", "whiskey", "victor", "uniform", "tango")
    ]

    pages = [listing.page(client, {"page": page, "limit": 2}) for page in (1, 2, 3, 4)]
    again = [listing.page(client, {"page": page, "limit": 2}) for page in (1, 2, 3, 4)]

    walked = [row_id for body in pages for row_id in listing.row_ids(body)]
    assert walked == sorted(ids)
    assert [listing.row_ids(body) for body in again] == [listing.row_ids(body) for body in pages]


class TestSmallerConfiguredMaximum:
    """PAGE_LIMIT_MAX and PAGE_LIMIT_DEFAULT come from the config, not from constants."""

    @pytest.fixture
    def app_config(self) -> dict:
        return {"PAGE_LIMIT_MAX": 5, "PAGE_LIMIT_DEFAULT": 3}

    def test_default_limit_is_the_configured_default(self, client, listing):
        ids = listing.fill(6)

        body = listing.page(client)

        assert (body["limit"], body["total"]) == (3, 6)
        assert listing.row_ids(body) == ids[:3]

    @pytest.mark.parametrize(("asked", "used"), [(4, 4), (5, 5), (6, 5), (100, 5), (10**30, 5)])
    def test_limit_is_clamped_to_the_configured_maximum(self, client, listing, asked, used):
        ids = listing.fill(6)

        body = listing.page(client, {"limit": asked})

        assert (body["limit"], body["total"]) == (used, 6)
        assert listing.row_ids(body) == ids[:used]

    def test_pages_step_by_the_clamped_limit(self, client, listing):
        ids = listing.fill(6)

        body = listing.page(client, {"page": 2, "limit": 50})

        assert (body["page"], body["limit"]) == (2, 5)
        assert listing.row_ids(body) == ids[5:]


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
def test_a_page_links_to_the_first_prev_next_and_last_that_exist(client, listing, page, rels):
    ids = listing.fill(10)

    response = listing.get(client, {"page": page, "limit": 3})

    assert response.status_code == 200
    assert links_of(response) == {rel: f"{listing.path}?page={n}&limit=3" for rel, n in rels.items()}
    # The body is the page it always was.
    assert listing.row_ids(response.get_json()) == ids[(page - 1) * 3 : page * 3]


def test_links_keep_the_filters_and_the_limit_used(client, listing, filter_name):
    listing.fill(5, prefix="match")
    listing.fill(3, prefix="other")

    response = listing.get(client, {filter_name: "match", "limit": 1000, "page": 2})

    assert response.get_json()["total"] == 5
    assert links_of(response) == {
        "first": f"{listing.path}?{filter_name}=match&page=1&limit=100",
        "prev": f"{listing.path}?{filter_name}=match&page=1&limit=100",
        "last": f"{listing.path}?{filter_name}=match&page=1&limit=100",
    }
    followed = listing.get(client, links_of(response)["last"].partition("?")[2])
    assert followed.get_json()["total"] == 5


def test_an_empty_list_links_to_its_one_page(client, listing):
    response = listing.get(client, {"limit": 5})

    assert links_of(response) == {
        "first": f"{listing.path}?page=1&limit=5",
        "last": f"{listing.path}?page=1&limit=5",
    }


def test_a_filter_value_is_escaped_in_the_links(client, listing, filter_name):
    listing.add("a&b c")

    response = listing.get(client, {filter_name: "a&b c"})

    assert links_of(response)["first"] == f"{listing.path}?{filter_name}=a%26b+c&page=1&limit=20"
    assert listing.get(client, links_of(response)["first"].partition("?")[2]).get_json()["total"] == 1


def test_links_keep_only_the_arguments_the_list_knows(client, listing, filter_name):
    listing.add("kept")

    response = listing.get(client, {filter_name: "kept", "utm_source": "x" * 3000, "limit": 5})

    assert response.status_code == 200
    assert links_of(response)["first"] == f"{listing.path}?{filter_name}=kept&page=1&limit=5"


def test_a_link_header_too_long_for_a_proxy_is_left_out(client, listing, filter_name):
    listing.add("kept")
    # The filter sent 800 times over: each link would carry all of it, beyond a proxy's buffer.
    query = "&".join([f"{filter_name}=kept"] * 800)

    response = listing.get(client, query)

    assert response.status_code == 200
    assert "Link" not in response.headers
    assert response.get_json()["total"] == 1
    assert len(listing.get(client, "&".join([f"{filter_name}=kept"] * 20)).headers["Link"]) > 0
