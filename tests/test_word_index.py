"""The word index against the plain scan it replaces, on random data: for every filter, the
rows found through the index and their total are exactly what scanning every row finds, after
inserts, renames and deletes alike, for item names and usernames (on SQLite, and on MariaDB
with TEST_DATABASE_URL)."""

from __future__ import annotations

import os
import random
from collections import Counter

import pytest
from sqlalchemy import delete, func, insert, select, update

from tests.factories import make_user
from tests.helpers import assert_problem
from webapp.database import db, utcnow
from webapp.fake import FakeDataRefused, load_fake_data
from webapp.models import Item, RowCount, User
from webapp.models.word_index import (
    ItemNameWord,
    ItemNameWordCount,
    SearchGramCount,
    SearchWordGram,
    indexable,
)
from webapp.pages import PageQuery, read_page

# Letters whose cases the databases fold differently (SQLite: ASCII only), a final sigma, the
# LIKE wildcards and the escape character, and spaces: whatever a name may hold.
NAME_LETTERS = "aAbBcCxyzÄäßΣ\u03c3ςİ\u0131i%_/-.0 "
USERNAME_LETTERS = "aAbBcCxyzZ09_.@+-"


def random_text(rng: random.Random, letters: str, longest: int) -> str:
    return "".join(rng.choice(letters) for _ in range(rng.randint(1, longest)))


def names(rng: random.Random, count: int, letters: str, longest: int) -> list[str]:
    """Distinct names with no space at either end."""
    found: set[str] = set()
    while len(found) < count:
        text = random_text(rng, letters, longest).strip(" ")
        if text:
            found.add(text)
    return sorted(found)


def filters(rng: random.Random, texts: list[str], letters: str, count: int) -> list[str]:
    """Pieces of the texts (any case), and text from nowhere."""
    found = []
    for _ in range(count):
        text = rng.choice(texts)
        start = rng.randrange(len(text))
        piece = text[start : start + rng.randint(1, 8)]
        found.append(rng.choice([piece, piece.upper(), piece.lower(), random_text(rng, letters, 6)]))
    return found


def assert_kept_counts_are_exact() -> None:
    """The count of words beside each trigram is the number of words that have it, and the
    count of items beside each word the number of items that have it."""
    counted = dict(db.session.execute(select(SearchGramCount.gram, SearchGramCount.words)).all())
    grouped = select(SearchWordGram.gram, func.count()).group_by(SearchWordGram.gram)
    assert counted == dict(db.session.execute(grouped).all())
    kept = select(ItemNameWordCount.word_id, func.sum(ItemNameWordCount.rows))
    kept = kept.group_by(ItemNameWordCount.word_id).having(func.sum(ItemNameWordCount.rows) != 0)
    postings = select(ItemNameWord.word_id, func.count()).group_by(ItemNameWord.word_id)
    assert dict(db.session.execute(kept).all()) == dict(db.session.execute(postings).all())


def through_index(search, text: str) -> tuple[list[int], int]:
    page = read_page(search(text), key="rows", page=1, limit=10_000)
    return [row["id"] for row in page["rows"]], page["total"]


def by_scan(query, key, column, text: str) -> tuple[list[int], int]:
    ids = list(db.session.scalars(query.where(column.icontains(text, autoescape=True)).order_by(key)))
    return ids, len(ids)


def compare(search, query, key, column, texts: list[str]) -> int:
    """Every filter's rows and total through the index and by the scan; how many the index served."""
    served = 0
    for text in texts:
        assert through_index(search, text) == by_scan(query, key, column, text), repr(text)
        served += indexable(text)
    return served


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_item_name_filters_find_what_the_scan_finds(app, user, seed):
    rng = random.Random(seed)
    now = utcnow()
    rows = [
        {"name": name, "user_id": user.id, "created_at": now, "updated_at": now}
        for name in names(rng, 300, NAME_LETTERS, 14)
    ]
    db.session.execute(insert(Item), rows)
    db.session.commit()
    texts = filters(rng, [row["name"] for row in rows], NAME_LETTERS, 250)

    def search(text: str) -> PageQuery:
        return Item.search(name=text)

    served = compare(search, select(Item.id), Item.id, Item.name, texts)
    assert served > 50  # most filters went through the index, not the scan

    # Renames and deletes move the index with the rows.
    ids = list(db.session.scalars(select(Item.id)))
    for item_id in rng.sample(ids, 60):
        new_name = random_text(rng, NAME_LETTERS, 14).strip(" ") + f" {item_id}"
        db.session.execute(update(Item).where(Item.id == item_id).values(name=new_name))
    db.session.execute(delete(Item).where(Item.id.in_(rng.sample(ids, 60))))
    db.session.commit()
    current = list(db.session.scalars(select(Item.name)))
    compare(search, select(Item.id), Item.id, Item.name, filters(rng, current, NAME_LETTERS, 250))
    assert_kept_counts_are_exact()


@pytest.mark.parametrize("seed", [1, 2])
def test_username_filters_find_what_the_scan_finds(app, seed):
    rng = random.Random(seed)
    usernames = names(rng, 120, USERNAME_LETTERS, 12)
    for username in usernames:
        make_user(username, activated=rng.random() < 0.8)
    texts = filters(rng, usernames, USERNAME_LETTERS, 150)

    for activated in (True, False):

        def search(text: str, activated=activated) -> PageQuery:
            return User.search(activated=activated, username=text)

        listed = select(User.id).where(User.activated == activated)
        assert compare(search, listed, User.id, User.username, texts) > 50


def test_a_filter_with_spaces_matches_across_words_and_only_where_the_whole_text_is(app, user):
    for name in ("red lamp shade", "red lampshade", "lamp red", "a redlamp"):
        db.session.add(Item(name=name, user_id=user.id))
    db.session.commit()

    def found(text: str) -> list[str]:
        page = read_page(Item.search(name=text), key="rows", page=1, limit=100)
        return [row["name"] for row in page["rows"]]

    assert found("d lamp") == ["red lamp shade", "red lampshade"]
    assert found("lamp s") == ["red lamp shade"]
    assert found(" red") == ["lamp red", "a redlamp"]
    assert found("RED LAMP") == ["red lamp shade", "red lampshade"]


def test_a_filter_held_by_several_words_counts_a_name_with_two_of_them_once(app, user):
    """The total of a filter is the largest word's kept count plus the rows of the other
    words that lack that word: a name with both words is counted once."""
    names = ["steel", "Steel lamp", "steelworks", "steel steelworks", "STEELWORKS steelworks2", "tin"]
    for name in names:
        db.session.add(Item(name=name, user_id=user.id))
    db.session.commit()

    def search(text: str) -> PageQuery:
        return Item.search(name=text)

    texts = ["steel", "STEELW", "works", "eel", "tin", "nothing"]
    compare(search, select(Item.id), Item.id, Item.name, texts)
    assert through_index(search, "steel")[1] == 5
    # After a delete and a rename, the counts move with the postings.
    db.session.execute(delete(Item).where(Item.name == "steel steelworks"))
    db.session.execute(update(Item).where(Item.name == "tin").values(name="tin steel"))
    db.session.commit()
    compare(search, select(Item.id), Item.id, Item.name, texts)
    assert_kept_counts_are_exact()


def test_flask_fake_loads_a_catalogue_whose_counts_and_index_agree_with_its_rows(app, runner):
    """On MariaDB the loader turns the triggers off and does their work per batch; on SQLite
    the triggers do it: either way the counts and the index are what the rows say."""
    result = runner.invoke(args=["fake", "--users", "40", "--items", "700"])
    assert result.exit_code == 0, result.output

    rows = list(db.session.scalars(select(Item.name)))
    assert len(rows) == 700
    assert db.session.scalar(select(RowCount.total("items"))) == 700
    assert db.session.scalar(select(RowCount.total("users.active"))) == 40
    # A catalogue: a few words in many names, many words in few.
    words = Counter(word for name in rows for word in name.lower().split(" "))
    assert words.most_common(1)[0][1] > 70
    assert sum(1 for count in words.values() if count == 1) > 50
    rng = random.Random(0)

    def search(text: str) -> PageQuery:
        return Item.search(name=text)

    compare(search, select(Item.id), Item.id, Item.name, filters(rng, rows, "abcdefghij ", 200))
    usernames = list(db.session.scalars(select(User.username)))

    def users(text: str) -> PageQuery:
        return User.search(username=text)

    listed = select(User.id).where(User.activated)
    compare(users, listed, User.id, User.username, filters(rng, usernames, "abcdefghij.", 100))
    assert_kept_counts_are_exact()


def test_a_load_the_database_refuses_whole_stops_with_its_reason(app):
    """INSERT IGNORE skips a row that breaks a key: a batch of none stored is an error, not a
    batch to make up again forever (a second load with the same seed gives the same names)."""
    load_fake_data(5, 20, seed=3)
    with pytest.raises(FakeDataRefused, match="none of 5 new users was stored"):
        load_fake_data(5, 20, seed=3)
    assert db.session.scalar(select(RowCount.total("items"))) == 20


def test_a_load_that_meets_its_own_rows_indexes_what_it_stored(app):
    """The same seed again: its first accounts are there already, so a batch is stored in
    part, and its rows are read back to be indexed (a batch stored whole is indexed from what
    was sent)."""
    load_fake_data(5, 20, seed=3)
    load_fake_data(10, 30, seed=3)

    assert db.session.scalar(select(RowCount.total("users.active"))) == 15
    usernames = list(db.session.scalars(select(User.username)))
    assert len(usernames) == len(set(usernames)) == 15
    rng = random.Random(1)
    listed = select(User.id).where(User.activated)
    compare(
        lambda text: User.search(username=text),
        listed,
        User.id,
        User.username,
        filters(rng, usernames, "abcdefghij.", 60),
    )
    names = list(db.session.scalars(select(Item.name)))
    compare(
        lambda text: Item.search(name=text),
        select(Item.id),
        Item.id,
        Item.name,
        filters(rng, names, "abc ", 60),
    )
    assert_kept_counts_are_exact()


@pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL"),
    reason="needs MariaDB (TEST_DATABASE_URL): SQLite has no statement time limit",
)
class TestAScanTheIndexCannotServeIsStoppedByTheServer:
    """A filter the index cannot serve (a description, a name of 2 letters) scans the rows:
    the server stops it at DATABASE_STATEMENT_TIMEOUT, and the answer is a 503 problem."""

    @pytest.fixture
    def app_config(self) -> dict:
        return {"DATABASE_STATEMENT_TIMEOUT": 0.001}

    def test_a_scan_past_the_limit_is_a_503_problem_and_the_worker_carries_on(
        self, client, user, auth_headers
    ):
        now = utcnow()
        rows = [{"name": f"lamp {n}", "description": "brass " * 150, "user_id": user.id} for n in range(4000)]
        db.session.execute(insert(Item), [{**row, "created_at": now, "updated_at": now} for row in rows])
        db.session.commit()

        response = client.get("/items?description=nowhere&limit=5", headers=auth_headers)

        assert "time limit" in assert_problem(response, 503)["detail"]
        assert "Retry-After" not in response.headers
        # The server stopped the statement and the connection goes on: the next request works.
        first = db.session.scalar(select(Item.id).order_by(Item.id).limit(1))
        assert client.get(f"/items/{first}", headers=auth_headers).get_json()["name"] == "lamp 0"
