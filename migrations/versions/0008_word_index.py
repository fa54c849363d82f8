"""A word index for the name filters: words, their trigrams, and the rows that have them.

GET /items?name= and GET /users?username= read the rows whose names have a word containing
the filter, instead of every row (webapp/models/word_index.py). Triggers keep the index with
every write; the rows already there are indexed here, in bulk. The count triggers are made
again, as they now are: on MySQL, a bulk loader's connection can turn them off and count in
bulk instead (webapp.dialects.bulk_load).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

from webapp.count_triggers import create_count_triggers, drop_count_triggers
from webapp.word_triggers import create_word_index, drop_word_index

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

USERS_BY = ("activated", {True: "users.active", False: "users.inactive"})


def upgrade():
    op.create_table(
        "item_name_words",
        sa.Column("word_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("word_id", "item_id", name=op.f("pk_item_name_words")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )
    with op.batch_alter_table("item_name_words", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_item_name_words_item_id"), ["item_id"], unique=False)

    op.create_table(
        "search_positions",
        sa.Column("n", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint("n", name=op.f("pk_search_positions")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )
    op.create_table(
        "search_gram_counts",
        sa.Column("gram", sa.String(length=3), nullable=False),
        sa.Column("words", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("gram", name=op.f("pk_search_gram_counts")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )
    op.create_table(
        "search_word_grams",
        sa.Column("gram", sa.String(length=3), nullable=False),
        sa.Column("word_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.PrimaryKeyConstraint("gram", "word_id", name=op.f("pk_search_word_grams")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )
    op.create_table(
        "search_words",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("word", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_words")),
        sa.UniqueConstraint("word", name=op.f("uq_search_words_word")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )
    op.create_table(
        "user_name_words",
        sa.Column("word_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("word_id", "user_id", name=op.f("pk_user_name_words")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )
    with op.batch_alter_table("user_name_words", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_user_name_words_user_id"), ["user_id"], unique=False)

    create_word_index(op, lowered=False)
    for table, *by in (("items",), ("users", *USERS_BY)):
        drop_count_triggers(op, table, *by[:1])
        create_count_triggers(op, table, *by)


def downgrade():
    drop_word_index(op)
    op.drop_table("user_name_words")
    op.drop_table("search_words")
    op.drop_table("search_word_grams")
    op.drop_table("search_gram_counts")
    op.drop_table("search_positions")
    op.drop_table("item_name_words")
