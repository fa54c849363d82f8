"""The word index behind the name filters: ``GET /items?name=`` and ``GET /users?username=``
find their rows through it instead of reading every row.

A name is lowered by the database's LOWER() and split into words at its spaces. Each
distinct word is kept once (``SearchWord``), with its trigrams (``SearchWordGram``, and how
many words have each: ``SearchGramCount``), and each row is linked to the words of its name
(``ItemNameWord``, ``UserNameWord``; the items of each word are also counted:
``ItemNameWordCount``). A filter then finds the words that contain it (through its rarest
trigram: a vocabulary, far smaller than the rows) and the rows that have those words. The
database keeps all of it, in the same transaction as every write, with triggers
(webapp/word_triggers.py): whoever writes, the index agrees with the rows.

Exactness: a filter with no space that a name contains lies within one of its words, and
the words and the filter are lowered by the database's own LOWER(), as the plain scan does;
so the rows found are exactly those the scan finds. A filter with spaces is looked up by its
longest space-free piece, then checked against the whole name.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    Select,
    SmallInteger,
    String,
    exists,
    func,
    select,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Mapped, aliased, mapped_column
from sqlalchemy.sql.functions import char_length

from webapp.database import MYSQL_TABLE_ARGS, db

# A word is at most as long as the longest name; a gram is 3 characters.
WORD_LENGTH = 100
GRAM = 3
# A filter that at most this many words hold is paged word by word, and totalled from their
# kept counts (``by_word``); one that more words hold, through all of their postings at once.
FEW_WORDS = 8


class SearchPosition(db.Model):
    """The numbers 1 to WORD_LENGTH: the character positions the triggers split names at."""

    __tablename__ = "search_positions"
    __table_args__ = MYSQL_TABLE_ARGS

    n: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)

    @classmethod
    def ensure_all(cls) -> int:
        """Insert the positions that are missing (the migration inserts them; the seed puts
        back any a cleared database lost); returns how many were added."""
        present = set(db.session.scalars(select(cls.n)))
        missing = [n for n in range(1, WORD_LENGTH + 1) if n not in present]
        db.session.add_all(cls(n=n) for n in missing)
        return len(missing)


class SearchWord(db.Model):
    """A word of some name, lowered by the database (the lookups lower it again, as the plain
    scan lowers: words stored as written before revision 0010 are read alike)."""

    __tablename__ = "search_words"
    __table_args__ = MYSQL_TABLE_ARGS

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    word: Mapped[str] = mapped_column(String(WORD_LENGTH), unique=True)


class SearchWordGram(db.Model):
    """A trigram of a word's lowercase form."""

    __tablename__ = "search_word_grams"
    __table_args__ = MYSQL_TABLE_ARGS

    gram: Mapped[str] = mapped_column(String(GRAM), primary_key=True)
    word_id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)


class SearchGramCount(db.Model):
    """How many words have the trigram: a filter's words are looked up by its rarest one."""

    __tablename__ = "search_gram_counts"
    __table_args__ = MYSQL_TABLE_ARGS

    gram: Mapped[str] = mapped_column(String(GRAM), primary_key=True)
    words: Mapped[int] = mapped_column(BigInteger)


class ItemNameWord(db.Model):
    """An item whose name has the word."""

    __tablename__ = "item_name_words"
    __table_args__ = MYSQL_TABLE_ARGS

    word_id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    item_id: Mapped[int] = mapped_column(primary_key=True, index=True)


class ItemNameWordCount(db.Model):
    """How many items have the word in their name, kept with the postings in shards like
    the row counts (webapp.models.row_count): the total of a filter that one word holds is
    read, not counted, however many rows have it."""

    __tablename__ = "item_name_word_counts"
    __table_args__ = MYSQL_TABLE_ARGS

    word_id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    rows: Mapped[int] = mapped_column(BigInteger, default=0)


class UserNameWord(db.Model):
    """An account whose username has the word."""

    __tablename__ = "user_name_words"
    __table_args__ = MYSQL_TABLE_ARGS

    word_id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    user_id: Mapped[int] = mapped_column(primary_key=True, index=True)


def longest_piece(text: str) -> str:
    """The longest space-free piece of a filter: the part the index looks up."""
    return max(text.split(" "), key=len)


def indexable(text: str) -> bool:
    """Whether the index can serve a filter: its longest space-free piece has a trigram."""
    return len(longest_piece(text)) >= GRAM


@compiles(char_length, "sqlite")
def _sqlite_char_length(element, compiler, **kw) -> str:
    """SQLite has no CHAR_LENGTH: its LENGTH of a text counts characters (MySQL's, bytes)."""
    return f"length({compiler.process(element.clauses, **kw)})"


def words_containing(piece: str) -> Select:
    """The ids of the words whose lowercase form contains ``piece`` lowered (by the
    database, as the plain scan lowers): the words with its rarest trigram, checked whole.
    (A word that contains the piece has every trigram of it, the rarest included.)"""
    lowered = func.lower(piece)
    gram = func.substr(lowered, SearchPosition.n, GRAM)
    grams = select(gram).where(SearchPosition.n <= char_length(lowered) - (GRAM - 1))
    rarest = (
        select(SearchGramCount.gram)
        .where(SearchGramCount.gram.in_(grams))
        .order_by(SearchGramCount.words)
        .limit(1)
        .scalar_subquery()
    )
    return (
        select(SearchWord.id)
        .join(SearchWordGram, SearchWordGram.word_id == SearchWord.id)
        .where(SearchWordGram.gram == rarest, SearchWord.word.icontains(piece, autoescape=True))
    )


def name_contains(name: ColumnElement, key: ColumnElement, linked: ColumnElement, text: str) -> list:
    """The conditions for rows whose ``name`` contains ``text`` (case-insensitive; ``%`` and
    ``_`` literal): through the index, the rows (``key``) that ``linked`` (a postings
    column) ties to a word containing the filter's longest space-free piece, and, if that
    is not the whole filter, the name checked; a filter too short for the index, by a scan."""
    whole = name.icontains(text, autoescape=True)
    if not indexable(text):
        return [whole]
    piece = longest_piece(text)
    postings = linked.class_
    found = key.in_(select(linked).where(postings.word_id.in_(words_containing(piece))))
    return [found] if piece == text else [found, whole]


def rows_with_word(linked: ColumnElement, text: str) -> Select | None:
    """The ids (``linked``, a postings column) of the rows whose name contains ``text``, when
    the index alone answers that: a filter of one space-free piece the index can serve (a
    word containing it is in the name, so no name needs reading). None otherwise."""
    if not indexable(text) or longest_piece(text) != text:
        return None
    return select(linked).where(linked.class_.word_id.in_(words_containing(text)))


def by_word(linked: ColumnElement, counts: type, text: str) -> tuple[list[Select], ColumnElement] | None:
    """For a filter ``rows_with_word`` serves that at most FEW_WORDS words hold (read now, the
    word with the most rows first): each word's postings (``linked``, in key order) and their
    exact total from the words' kept ``counts``: the count of the first word, read, plus the
    rows of the others that lack it, counted. A filter that one word holds, however common,
    costs a read of its count and of the page's postings. None when no word holds it, or
    more than FEW_WORDS do (their postings are then read all at once)."""
    words = words_containing(text).subquery()
    kept = func.coalesce(func.sum(counts.rows), 0)
    ranked = select(words.c.id).outerjoin(counts, counts.word_id == words.c.id).group_by(words.c.id)
    found = db.session.scalars(ranked.order_by(kept.desc(), words.c.id).limit(FEW_WORDS + 1)).all()
    if not found or len(found) > FEW_WORDS:
        return None
    postings = linked.class_
    lists = [select(linked).where(postings.word_id == word_id) for word_id in found]
    largest, others = found[0], found[1:]
    total = select(func.coalesce(func.sum(counts.rows), 0)).where(counts.word_id == largest).scalar_subquery()
    if others:
        other = aliased(postings)
        lacking = ~exists().where(other.word_id == largest, getattr(other, linked.key) == linked)
        rest = select(func.count(func.distinct(linked))).where(postings.word_id.in_(others), lacking)
        total = total + rest.scalar_subquery()
    return lists, total
