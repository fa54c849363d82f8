"""The word index's trigram triggers step aside for a bulk load.

On MySQL, a bulk loader's connection (webapp.dialects.bulk_load) turns the two triggers
that add a new word's trigrams and their counts off, and adds them for all of its new words
in two statements instead (webapp.word_triggers.BULK_GRAMS): a million new usernames were a
million trigger runs, and fifteen million more. Every other writer is unaffected. SQLite
has no bulk load: nothing changes there.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from alembic import op

from webapp.word_triggers import gram_triggers

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TRIGGERS = ("search_words_grams", "search_word_grams_count")


def _replace(*, bulk_aware: bool) -> None:
    dialect = op.get_bind().dialect.name
    if dialect not in ("mysql", "mariadb"):
        return
    for name in TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    for statement in gram_triggers(dialect, bulk_aware=bulk_aware):
        op.execute(statement)


def upgrade():
    _replace(bulk_aware=True)


def downgrade():
    _replace(bulk_aware=False)
