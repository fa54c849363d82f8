"""Pagination of the list endpoints: defaults, totals, clamped limits, bad arguments and stable order."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from tests.factories import make_item, make_user


@dataclass
class Listing:
    """One list endpoint, the way a client calls it, and a way to add rows to it."""

    path: str
    key: str
    headers: dict[str, str]
    add: Callable[[str], int]  # label -> id of the new row
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


@pytest.fixture(params=["items", "users"])
def listing(request, app) -> Listing:
    """GET /items as a logged-in user, or the public GET /users."""
    if request.param == "items":
        owner = request.getfixturevalue("user")
        headers = request.getfixturevalue("auth_headers")
        return Listing("/items", "items", headers, lambda label: make_item(owner, label).id)
    # The list holds every active account: none exist until rows are added.
    return Listing("/users", "users", {}, lambda label: make_user(label).id)


@pytest.fixture
def filter_name(listing) -> str:
    return "name" if listing.key == "items" else "username"


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
