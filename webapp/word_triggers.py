"""The triggers that keep the word index (webapp/models/word_index.py): generated SQL for
MySQL/MariaDB and SQLite, and what a migration calls: ``create_word_index`` in its upgrade()
(the triggers, then the index of the rows already there, in bulk) and ``drop_word_index``.

A name is split at its spaces by joining it with the positions 1..N: a word starts where
the name does or after a space, and runs to the next space. Everything is written with the
names of tables and columns declared here, never with input.
"""

from __future__ import annotations

from dataclasses import dataclass

from webapp.dialects import BULK_VARIABLE
from webapp.models.word_index import GRAM, WORD_LENGTH, ItemNameWord, UserNameWord


@dataclass(frozen=True)
class Indexed:
    """A column whose words are indexed: ``table.column``, linked in ``postings.owner``."""

    table: str
    column: str
    postings_model: type
    owner: str

    @property
    def postings(self) -> str:
        return self.postings_model.__tablename__


# By table.
INDEXED = {
    "items": Indexed("items", "name", ItemNameWord, "item_id"),
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
    sql: Dialect, indexed: Indexed, row: str, source: str | None = None, only: str = ""
) -> list[str]:
    """The statements adding the words of ``row``'s column and its postings: ``row`` is NEW
    in a trigger, or the table itself to index its rows in bulk (``source``: the table;
    ``only``: a condition on its rows)."""
    text = f"{row}.{indexed.column}"
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


def word_triggers(dialect: str) -> list[str]:
    """CREATE TRIGGER statements: a new word's trigrams, and each indexed column's postings
    on every insert, change of the column and delete."""
    sql = Dialect(dialect)
    statements = gram_triggers(dialect)
    for indexed in INDEXED.values():
        table, column, postings, owner = indexed.table, indexed.column, indexed.postings, indexed.owner
        forget = f"DELETE FROM {postings} WHERE {owner} = OLD.id"  # nosec B608
        changed = [forget, *_index_rows(sql, indexed, "NEW")]
        if sql.mysql:
            # A bulk loader turns them off for its connection and indexes in bulk instead.
            unless_bulk = f"@{BULK_VARIABLE} IS NULL"
            statements += [
                f"CREATE TRIGGER {table}_words_insert AFTER INSERT ON {table} FOR EACH ROW "
                + sql.body(_index_rows(sql, indexed, "NEW"), when=unless_bulk),
                f"CREATE TRIGGER {table}_words_delete AFTER DELETE ON {table} FOR EACH ROW "
                + sql.body([forget], when=unless_bulk),
                f"CREATE TRIGGER {table}_words_update AFTER UPDATE ON {table} FOR EACH ROW "
                + sql.body(changed, when=f"{unless_bulk} AND NOT (NEW.{column} <=> OLD.{column})"),
            ]
        else:
            statements += [
                f"CREATE TRIGGER {table}_words_insert AFTER INSERT ON {table} FOR EACH ROW "
                + sql.body(_index_rows(sql, indexed, "NEW")),
                f"CREATE TRIGGER {table}_words_delete AFTER DELETE ON {table} FOR EACH ROW "
                + sql.body([forget]),
                f"CREATE TRIGGER {table}_words_update AFTER UPDATE OF {column} ON {table} FOR EACH ROW "
                f"WHEN NEW.{column} IS NOT OLD.{column} " + sql.body(changed),
            ]
    return statements


def trigger_names() -> list[str]:
    return ["search_words_grams", "search_word_grams_count"] + [
        f"{table}_words_{event}" for table in INDEXED for event in ("insert", "delete", "update")
    ]


def create_word_index(op) -> None:
    """In a migration's upgrade(), once the index's tables exist: the positions, the triggers,
    then the words of every row already there, in bulk (their trigrams by the trigger)."""
    dialect = op.get_bind().dialect.name
    sql = Dialect(dialect)
    numbers = ", ".join(f"({n})" for n in range(1, WORD_LENGTH + 1))
    op.execute(f"INSERT INTO search_positions (n) VALUES {numbers}")  # nosec B608
    for statement in word_triggers(dialect):
        op.execute(statement)
    for indexed in INDEXED.values():
        for statement in _index_rows(sql, indexed, indexed.table, source=indexed.table):
            op.execute(statement)


def drop_word_index(op) -> None:
    """In a migration's downgrade(), before its tables go: the triggers."""
    for name in trigger_names():
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
