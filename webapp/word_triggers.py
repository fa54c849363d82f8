"""The triggers that keep the word index (webapp/models/word_index.py): generated SQL for
MySQL/MariaDB and SQLite, and what a migration calls: ``create_word_index`` in its upgrade()
(the triggers, then the index of the rows already there, in bulk) and ``drop_word_index``;
``create_word_counts`` and ``drop_word_counts`` for the words' kept counts.

A name is lowered and split at its spaces by joining it with the positions 1..N: a word
starts where the name does or after a space, and runs to the next space. A word's count
moves with its postings, by triggers on them. Everything is written with the names of
tables and columns declared here, never with input.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlalchemy import Connection, column, func, literal_column, select
from sqlalchemy import table as sa_table

from webapp.count_triggers import add_to_counter, shard
from webapp.dialects import BULK_VARIABLE, bulk_load, insert_ignore_sql, node_index
from webapp.models.row_count import SHARDS
from webapp.models.word_index import (
    GRAM,
    WORD_LENGTH,
    ItemNameWord,
    ItemNameWordCount,
    SearchWord,
    UserNameWord,
)


@dataclass(frozen=True)
class Indexed:
    """A column whose words are indexed: ``table.column``, linked in ``postings.owner``, with
    the rows of each word kept in ``counts_model`` if it has one."""

    table: str
    column: str
    postings_model: type
    owner: str
    counts_model: type | None = None

    @property
    def postings(self) -> str:
        return self.postings_model.__tablename__


# Rows indexed per batch by a bulk load.
BULK_BATCH = 10_000

# A counter's column, quoted: ROWS is a reserved word in MySQL 8 (SQLite takes the quotes too).
ROWS = "`rows`"

# By table. Only the items keep counts per word: a username is a word of its own, and the
# accounts' lists count the active ones.
INDEXED = {
    "items": Indexed("items", "name", ItemNameWord, "item_id", ItemNameWordCount),
    "users": Indexed("users", "username", UserNameWord, "user_id"),
}


class Dialect:
    """The SQL that differs between MySQL/MariaDB and SQLite."""

    def __init__(self, name: str) -> None:
        self.mysql = name in ("mysql", "mariadb")
        self.insert_ignore = "INSERT IGNORE" if self.mysql else "INSERT OR IGNORE"
        self.length = "CHAR_LENGTH" if self.mysql else "length"
        # Tables joined in the order written: a word is looked up by its text, never the
        # vocabulary scanned for the rows (as MySQL's optimizer may choose once it has grown).
        self.in_order = "STRAIGHT_JOIN " if self.mysql else ""

    def starts_word(self, text: str) -> str:
        """Whether position p.n of ``text`` starts a word."""
        return (
            f"p.n <= {self.length}({text}) AND (p.n = 1 OR substr({text}, p.n - 1, 1) = ' ') "
            f"AND substr({text}, p.n, 1) <> ' '"
        )

    def word_at(self, text: str) -> str:
        """The word of ``text`` that starts at position p.n."""
        if self.mysql:
            return f"SUBSTRING_INDEX(substr({text}, p.n), ' ', 1)"
        return f"substr({text}, p.n, instr(substr({text}, p.n) || ' ', ' ') - 1)"

    def body(self, statements: list[str], when: str | None = None) -> str:
        """A trigger's body; on MySQL, run only ``when`` holds."""
        listed = " ".join(f"{statement};" for statement in statements)
        return f"BEGIN IF {when} THEN {listed} END IF; END" if when else f"BEGIN {listed} END"


def _index_rows(
    sql: Dialect, indexed: Indexed, row: str, source: str | None = None, only: str = "", lowered: bool = True
) -> list[str]:
    """The statements adding the words of ``row``'s column and its postings: ``row`` is NEW
    in a trigger, or the table itself to index its rows in bulk (``source``: the table;
    ``only``: a condition on its rows). Words are stored ``lowered`` by the database's LOWER()
    (one character for one, so a lowered name is its lowered words between its spaces);
    before revision 0010, as written."""
    text = f"LOWER({row}.{indexed.column})" if lowered else f"{row}.{indexed.column}"
    rows = f"{source} JOIN search_positions p ON {sql.starts_word(text)}" if source else "search_positions p"
    where = (f" WHERE {only}" if only else "") if source else f" WHERE {sql.starts_word(text)}"
    word = sql.word_at(text)
    words = f"{sql.insert_ignore} INTO search_words (word) SELECT DISTINCT {word} FROM {rows}{where}"  # nosec B608
    postings = f"{sql.insert_ignore} INTO {indexed.postings} (word_id, {indexed.owner})"
    linked = f"SELECT {sql.in_order}w.id, {row}.id FROM {rows} JOIN search_words w ON w.word = {word}{where}"  # nosec B608
    return [words, f"{postings} {linked}"]


def gram_triggers(dialect: str, *, bulk_aware: bool = True) -> list[str]:
    """CREATE TRIGGER statements for a new word's trigrams and their counts. On MySQL, when
    ``bulk_aware``, a bulk loader's connection turns them off and adds the trigrams of its
    new words in two statements instead (``BULK_GRAMS``)."""
    sql = Dialect(dialect)
    when = f"@{BULK_VARIABLE} IS NULL" if sql.mysql and bulk_aware else None
    gram = f"substr(lower(NEW.word), p.n, {GRAM})"
    counted = (
        "INSERT INTO search_gram_counts (gram, words) VALUES (NEW.gram, 1) "
        "ON DUPLICATE KEY UPDATE words = words + 1"
        if sql.mysql
        else "INSERT INTO search_gram_counts (gram, words) VALUES (NEW.gram, 1) "
        "ON CONFLICT (gram) DO UPDATE SET words = words + 1"
    )
    return [
        "CREATE TRIGGER search_words_grams AFTER INSERT ON search_words FOR EACH ROW "
        + sql.body(
            [
                f"{sql.insert_ignore} INTO search_word_grams (gram, word_id) "
                f"SELECT DISTINCT {gram}, NEW.id FROM search_positions p "  # nosec B608
                f"WHERE p.n <= {sql.length}(NEW.word) - {GRAM - 1}"
            ],
            when=when,
        ),
        "CREATE TRIGGER search_word_grams_count AFTER INSERT ON search_word_grams FOR EACH ROW "
        + sql.body([counted], when=when),
    ]


# What the two gram triggers do, for every word from id :first on, in two statements: what a
# bulk load runs once its new words are in (MySQL only, as bulk loads are).
_NEW_GRAMS = (
    f"SELECT DISTINCT substr(lower(w.word), p.n, {GRAM}) AS gram, w.id AS word_id "  # nosec B608
    f"FROM search_words w JOIN search_positions p ON p.n <= CHAR_LENGTH(w.word) - {GRAM - 1} "
    "WHERE w.id >= %(first)s"
)
BULK_GRAMS = [
    f"INSERT IGNORE INTO search_word_grams (gram, word_id) {_NEW_GRAMS}",  # nosec B608
    "INSERT INTO search_gram_counts (gram, words) "  # nosec B608
    f"SELECT * FROM (SELECT gram, COUNT(*) AS words FROM ({_NEW_GRAMS}) AS new_grams GROUP BY gram) AS added "
    "ON DUPLICATE KEY UPDATE words = search_gram_counts.words + added.words",
]


def word_triggers(dialect: str, *, lowered: bool = True) -> list[str]:
    """CREATE TRIGGER statements: a new word's trigrams, and each indexed column's postings
    on every insert, change of the column and delete (``row_triggers``)."""
    return gram_triggers(dialect) + row_triggers(dialect, lowered=lowered)


def row_triggers(dialect: str, *, lowered: bool = True) -> list[str]:
    """CREATE TRIGGER statements for each indexed column's words and postings on every
    insert, change of the column and delete (words ``lowered``, or before revision 0010 as
    written)."""
    sql = Dialect(dialect)
    statements = []
    for indexed in INDEXED.values():
        table, column, postings, owner = indexed.table, indexed.column, indexed.postings, indexed.owner
        forget = f"DELETE FROM {postings} WHERE {owner} = OLD.id"  # nosec B608
        added = _index_rows(sql, indexed, "NEW", lowered=lowered)
        changed = [forget, *added]
        if sql.mysql:
            # A bulk loader turns them off for its connection and indexes in bulk instead.
            unless_bulk = f"@{BULK_VARIABLE} IS NULL"
            statements += [
                f"CREATE TRIGGER {table}_words_insert AFTER INSERT ON {table} FOR EACH ROW "
                + sql.body(added, when=unless_bulk),
                f"CREATE TRIGGER {table}_words_delete AFTER DELETE ON {table} FOR EACH ROW "
                + sql.body([forget], when=unless_bulk),
                f"CREATE TRIGGER {table}_words_update AFTER UPDATE ON {table} FOR EACH ROW "
                + sql.body(changed, when=f"{unless_bulk} AND NOT (NEW.{column} <=> OLD.{column})"),
            ]
        else:
            statements += [
                f"CREATE TRIGGER {table}_words_insert AFTER INSERT ON {table} FOR EACH ROW "
                + sql.body(added),
                f"CREATE TRIGGER {table}_words_delete AFTER DELETE ON {table} FOR EACH ROW "
                + sql.body([forget]),
                f"CREATE TRIGGER {table}_words_update AFTER UPDATE OF {column} ON {table} FOR EACH ROW "
                f"WHEN NEW.{column} IS NOT OLD.{column} " + sql.body(changed),
            ]
    return statements


def row_trigger_names() -> list[str]:
    return [f"{table}_words_{event}" for table in INDEXED for event in ("insert", "delete", "update")]


def trigger_names() -> list[str]:
    return ["search_words_grams", "search_word_grams_count", *row_trigger_names()]


def word_count_triggers(dialect: str) -> list[str]:
    """CREATE TRIGGER statements adding to a word's count on every posting added and
    removed, for each indexed column that keeps counts (turned off by a bulk loader, which
    adds its batch's counts itself)."""
    sql = Dialect(dialect)
    unless_bulk = f"@{BULK_VARIABLE} IS NULL" if sql.mysql else None
    statements = []
    for indexed in INDEXED.values():
        if indexed.counts_model is None:
            continue
        counts, postings = indexed.counts_model.__table__, indexed.postings
        for event, row, delta in (("insert", "NEW", 1), ("delete", "OLD", -1)):
            key = {"word_id": literal_column(f"{row}.word_id"), "shard": shard(dialect)}
            body = sql.body([add_to_counter(dialect, counts, key, delta)], when=unless_bulk)
            statements.append(
                f"CREATE TRIGGER {postings}_{event} AFTER {event.upper()} ON {postings} FOR EACH ROW {body}"
            )
    return statements


def word_count_trigger_names() -> list[str]:
    return [
        f"{indexed.postings}_{event}"
        for indexed in INDEXED.values()
        if indexed.counts_model is not None
        for event in ("insert", "delete")
    ]


def create_word_index(op, *, lowered: bool = True) -> None:
    """In a migration's upgrade(), once the index's tables exist: the positions, the triggers,
    then the words of every row already there, in bulk (their trigrams by the trigger)."""
    dialect = op.get_bind().dialect.name
    numbers = ", ".join(f"({n})" for n in range(1, WORD_LENGTH + 1))
    op.execute(f"INSERT INTO search_positions (n) VALUES {numbers}")  # nosec B608
    for statement in word_triggers(dialect, lowered=lowered):
        op.execute(statement)
    _index_every_row(op, lowered=lowered)


def _index_every_row(op, *, lowered: bool) -> None:
    sql = Dialect(op.get_bind().dialect.name)
    for indexed in INDEXED.values():
        for statement in _index_rows(sql, indexed, indexed.table, source=indexed.table, lowered=lowered):
            op.execute(statement)


def replace_row_triggers(op, *, lowered: bool) -> None:
    """In a migration: the indexed columns' triggers made again, storing words ``lowered``
    or as written."""
    for name in row_trigger_names():
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    for statement in row_triggers(op.get_bind().dialect.name, lowered=lowered):
        op.execute(statement)


def index_again(op) -> None:
    """In a migration, once the tables and triggers are as the index needs them: the word
    index (its counts too) emptied and made again from every row, its words lowered. On
    MySQL in batches of BULK_BATCH rows, as a bulk loader does (``index_in_bulk``): one
    statement joining every row with every position took minutes at a million items."""
    connection = op.get_bind()
    mysql = Dialect(connection.dialect.name).mysql
    made = [indexed.postings for indexed in INDEXED.values()]
    made += [indexed.counts_model.__tablename__ for indexed in INDEXED.values() if indexed.counts_model]
    for table in [*made, "search_word_grams", "search_gram_counts", "search_words"]:
        # MySQL's TRUNCATE drops and makes the table again (a DELETE would undo-log every
        # row); SQLite's DELETE without WHERE does the same.
        op.execute(f"{'TRUNCATE TABLE' if mysql else 'DELETE FROM'} {table}")
    if not mysql:
        _index_every_row(op, lowered=True)
        return
    vocabulary: dict[str, int] = {}
    with bulk_load(connection):
        for indexed in INDEXED.values():
            newest = select(func.coalesce(func.max(column("id")), 0)).select_from(sa_table(indexed.table))
            last = connection.execute(newest).scalar()
            for first in range(1, last + 1, BULK_BATCH):
                index_in_bulk(connection, indexed, first, min(first + BULK_BATCH - 1, last), vocabulary)


def index_in_bulk(
    connection: Connection,
    indexed: Indexed,
    first: int,
    last: int,
    vocabulary: dict[str, int],
    names: list[str] | None = None,
) -> None:
    """What the per-row triggers do for the rows ``first``..``last`` of ``indexed.table``,
    for a bulk loader on MySQL (its triggers off): their words, lowered and split at spaces
    here in Python (the database then stores only what is new), the new words' trigrams, the
    postings and the words' counts. ``names``: the rows' names in id order, when those are
    the rows just written (else read back); ``vocabulary`` caches word ids."""
    if names is not None and all(name.isascii() for name in names):
        # Lowered as the database's LOWER() lowers ASCII (beyond it, the two may differ).
        rows = list(enumerate((name.lower() for name in names), start=first))
    else:
        table = sa_table(indexed.table, column("id"), column(indexed.column))
        lowered = func.lower(table.c[indexed.column])
        rows = connection.execute(select(table.c.id, lowered).where(table.c.id.between(first, last))).all()
    words_of = {row_id: set(filter(None, text.split(" "))) for row_id, text in rows}
    new = sorted(set().union(*words_of.values()) - vocabulary.keys())
    if new:
        first_word = connection.execute(select(func.coalesce(func.max(SearchWord.id), 0))).scalar() + 1
        connection.exec_driver_sql(
            insert_ignore_sql(SearchWord.__tablename__, [{"word": word} for word in new])
        )
        for statement in BULK_GRAMS:  # their trigrams and counts, as the triggers would add them
            connection.exec_driver_sql(statement, {"first": first_word})
        found = connection.execute(select(SearchWord.word, SearchWord.id).where(SearchWord.word.in_(new)))
        vocabulary.update(found.all())
    # In the postings' key order: each lands beside the last one written for its word.
    postings = sorted((vocabulary[word], row_id) for row_id, words in words_of.items() for word in words)
    if not postings:
        return
    values = ",".join(f"({word_id},{row_id})" for word_id, row_id in postings)  # integers only
    connection.exec_driver_sql(
        f"INSERT IGNORE INTO {indexed.postings} (word_id, {indexed.owner}) VALUES {values}"  # nosec B608
    )
    if indexed.counts_model is not None:  # the words' counts, in the node's first shard
        shard = node_index(connection) * SHARDS
        counted = Counter(word_id for word_id, _ in postings)
        values = ",".join(f"({word_id},{shard},{rows})" for word_id, rows in counted.items())
        connection.exec_driver_sql(
            f"INSERT INTO {indexed.counts_model.__tablename__} (word_id, shard, {ROWS}) VALUES {values} "  # nosec B608
            f"ON DUPLICATE KEY UPDATE {ROWS} = {ROWS} + VALUES({ROWS})"
        )


def drop_word_index(op) -> None:
    """In a migration's downgrade(), before its tables go: the triggers."""
    for name in trigger_names():
        op.execute(f"DROP TRIGGER IF EXISTS {name}")


def count_postings(indexed: Indexed) -> str:
    """A statement counting every word's rows from the postings of ``indexed`` into its
    (empty) counts: what ``flask counts rebuild`` runs."""
    counts = indexed.counts_model.__tablename__
    return (
        f"INSERT INTO {counts} (word_id, shard, {ROWS}) "  # nosec B608
        f"SELECT word_id, 0, COUNT(*) FROM {indexed.postings} GROUP BY word_id"
    )


def rebuild_word_counts(connection) -> dict[str, int]:
    """Replace every word's kept count with one counted from the postings (the caller
    commits); returns how many words are counted for each indexed column."""
    rebuilt = {}
    for indexed in INDEXED.values():
        if indexed.counts_model is not None:
            table = indexed.counts_model.__tablename__
            connection.exec_driver_sql(f"DELETE FROM {table}")  # nosec B608
            connection.exec_driver_sql(count_postings(indexed))
            words = select(func.count()).select_from(sa_table(table))
            rebuilt[f"words of {indexed.table}.{indexed.column}"] = connection.execute(words).scalar()
    return rebuilt


def create_word_counts(op) -> None:
    """In a migration's upgrade(), once the counts' tables exist: their triggers (the counts
    of the postings already there are made with them: ``index_again``)."""
    for statement in word_count_triggers(op.get_bind().dialect.name):
        op.execute(statement)


def drop_word_counts(op) -> None:
    """In a migration's downgrade(), before the counts' tables go: their triggers."""
    for name in word_count_trigger_names():
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
