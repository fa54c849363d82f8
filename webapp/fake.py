"""Bulk fake data for benchmarks and demos that looks like a real catalogue, so that searches
mean something: names and descriptions of words drawn with a Zipf-like frequency (a few
words everywhere, most words rare), usernames of first names, last names and numbers.

Rows go in as multi-row inserts of FAKE_BATCH. On MySQL/MariaDB the loader's connection turns
the per-row triggers off (webapp.dialects.BULK_VARIABLE) and does their work in bulk after
each batch: the row counts in one statement, the word index for the batch's ids in a few
(its new words, their trigrams and counts, its postings).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import Connection, func, insert, select

from webapp.database import db, utcnow
from webapp.dialects import bulk_load, insert_ignore_sql
from webapp.models import Item, Role, User
from webapp.models.row_count import KEPT_COUNTS, RowCount
from webapp.security import hash_password
from webapp.word_triggers import INDEXED, index_in_bulk

FAKE_BATCH = 10_000
FAKE_PASSWORD = "fake-password"  # noqa: S105 (documented; flask fake is refused in production)


class FakeDataRefused(Exception):
    """The database stored none of a batch: every row broke a key (no roles before `flask
    deploy`, or names a load with the same seed gave already)."""


def _words(text: str) -> list[str]:
    return text.split()


# The head of the vocabulary: what a catalogue's names are mostly made of, commonest first.
COMMON_WORDS = _words("""
black white steel wood oak large small classic pro set mini blue red green grey brass glass
leather cotton wool linen round square table chair lamp desk shelf cabinet mirror rug pillow
blanket towel basket bowl plate cup mug vase frame clock candle hook rack stand stool bench
sofa bed drawer box bag case cover holder light pendant wall floor garden outdoor kitchen bath
office vintage modern rustic compact portable folding stackable adjustable wireless digital
electric manual heavy duty premium eco organic natural matte gloss polished brushed copper
silver gold bronze ceramic stone marble bamboo rattan velvet silk canvas denim felt rubber
plastic metal iron aluminium chrome walnut maple pine birch cedar ash teak cherry ivory navy
olive mustard coral teal amber charcoal sand cream beige taupe rose mint sage slate pearl
double single twin queen king extra long short tall wide narrow slim deep shallow soft hard
""")
SYLLABLES = _words("ka lo mi ra ve to sa ni du fe ga ri so ta be lu ne pa zo ki mo re va di")
FIRST_NAMES = _words("""
maria james anna john sofia david laura michael emma daniel olivia thomas lucia peter sara
paul julia mark elena andrew nina robert clara george alice henry ines victor rosa hugo eva
""")
LAST_NAMES = _words("""
garcia smith lopez jones martin brown silva wilson rossi muller novak kowalski dubois santos
ferreira johansson nielsen costa moreau weber bianchi kim nguyen ivanov horvat janssen berg
""")


def vocabulary(size: int = 20_000, seed: int = 7) -> list[str]:
    """The common words, then made-up ones (brand-like, each rare), in frequency order."""
    rng = random.Random(seed)  # noqa: S311 (fake data, not secrets)
    words = list(dict.fromkeys(COMMON_WORDS))
    seen = set(words)
    while len(words) < size:
        word = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


def zipf_weights(count: int, exponent: float = 1.2, shift: float = 2.7) -> list[float]:
    """Cumulative weights of ranks 1..count, as 1 / (rank + shift) ** exponent
    (Zipf-Mandelbrot: the shape of word frequencies in text)."""
    return list(itertools.accumulate(1 / (rank + shift) ** exponent for rank in range(1, count + 1)))


class Catalogue:
    """Names, descriptions and usernames drawn from the vocabulary, each name new."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)  # noqa: S311 (fake data, not secrets)
        self.words = vocabulary()
        self.weights = zipf_weights(len(self.words))
        self.names: set[int] = set()  # hashes of the names given: 10M names fit in memory

    def phrase(self, shortest: int, longest: int) -> str:
        words = self.rng.choices(self.words, cum_weights=self.weights, k=self.rng.randint(shortest, longest))
        return " ".join(words)

    def name(self) -> str:
        """A name not given before in this run (capitalised, of 3 to 5 words)."""
        while True:
            name = self.phrase(3, 5).capitalize()
            if hash(name) not in self.names:
                self.names.add(hash(name))
                return name

    def description(self) -> str:
        return self.phrase(6, 16).capitalize() + "."

    def username(self) -> str:
        first, last = self.rng.choice(FIRST_NAMES), self.rng.choice(LAST_NAMES)
        return f"{first}.{last}{self.rng.randrange(10**6)}"


def _insert_batches(
    connection: Connection, rows: Iterator[dict], model: type, total: int, batch: int, bulk: bool
) -> None:
    """Insert ``total`` of ``rows`` in multi-row statements of ``batch``, one transaction each.
    A row whose name is taken already is skipped for the next one. In a bulk load, each
    batch's counts and words follow it in bulk (nothing else may insert meanwhile), and the
    next batch is made up on another thread while the database stores this one."""
    statement = insert(model).prefix_with("IGNORE", dialect="mysql")
    statement = statement.prefix_with("OR IGNORE", dialect="sqlite")
    newest = select(func.coalesce(func.max(model.id), 0))
    vocabulary: dict[str, int] = {}

    def made_up(size: int) -> tuple[list[dict], str | None]:
        chunk = list(itertools.islice(rows, size))
        return chunk, insert_ignore_sql(model.__tablename__, chunk) if bulk and chunk else None

    inserted = 0
    with ThreadPoolExecutor(max_workers=1) as maker:
        upcoming = maker.submit(made_up, min(batch, total))
        while inserted < total:
            chunk, sql = upcoming.result()
            if len(chunk) > total - inserted:  # the last batch, after skipped rows
                chunk = chunk[: total - inserted]
                sql = insert_ignore_sql(model.__tablename__, chunk) if bulk else None
            upcoming = maker.submit(made_up, min(batch, total))
            before = connection.execute(newest).scalar()
            if sql is not None:
                connection.exec_driver_sql(sql)
            else:
                connection.execute(statement, chunk)
            last = connection.execute(newest).scalar()
            added = connection.execute(select(func.count()).select_from(model).where(model.id > before))
            stored = added.scalar()
            if not stored:  # INSERT IGNORE skips a row that breaks a key, as it skips a taken name
                raise FakeDataRefused(f"none of {len(chunk)} new {model.__tablename__} was stored")
            if bulk:
                # Every row stored, in order (a multi-row INSERT numbers its rows as written):
                # their ids are before + 1 to last, and their names need no reading back.
                whole = stored == len(chunk) == last - before
                _after_bulk(connection, model, before + 1, last, vocabulary, chunk if whole else None)
            connection.commit()
            inserted += stored
        upcoming.cancel()


def load_fake_data(
    user_count: int, item_count: int, *, batch: int = FAKE_BATCH, seed: int | None = None
) -> tuple[int, int]:
    """Add ``user_count`` users and ``item_count`` items spread over them; returns both."""
    catalogue = Catalogue(seed if seed is not None else random.SystemRandom().randrange(2**32))
    now = utcnow()
    password_hash = hash_password(FAKE_PASSWORD)
    users = (
        {
            "username": catalogue.username(),
            "password_hash": password_hash,
            "role_id": Role.USER,
            "activated": True,
            "created_at": now,
            "updated_at": now,
        }
        for _ in itertools.count()
    )
    # One connection throughout: the bulk setting belongs to it.
    with db.engine.connect() as connection, bulk_load(connection) as bulk:
        _insert_batches(connection, users, User, user_count, batch, bulk)
        newest_users = select(User.id).order_by(User.id.desc()).limit(max(user_count, 1))
        owners = connection.execute(newest_users).scalars().all()
        items = (
            {
                "name": catalogue.name(),
                "description": catalogue.description(),
                "user_id": owners[n % len(owners)],
                "created_at": now,
                "updated_at": now,
            }
            for n in itertools.count()
        )
        _insert_batches(connection, items, Item, item_count, batch, bulk)
    return user_count, item_count


def _after_bulk(
    connection: Connection,
    model: type,
    first: int,
    last: int,
    vocabulary: dict[str, int],
    stored: list[dict] | None,
) -> None:
    """What the per-row triggers would have done for rows ``first``..``last`` of ``model``
    (``stored``, in id order, when those are the rows just written; else read back): their
    counts, and their words (``index_in_bulk``). ``vocabulary`` caches word ids."""
    for kept in KEPT_COUNTS:
        if kept.model is model:
            for name, rows in kept.count_range(connection, first, last).items():
                RowCount.add(connection, name, rows)
    indexed = INDEXED[model.__tablename__]
    names = [row[indexed.column] for row in stored] if stored is not None else None
    index_in_bulk(connection, indexed, first, last, vocabulary, names)
