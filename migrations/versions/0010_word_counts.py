"""The word index keeps its words lowered, and counts each word's items, so that the total of
a common word is read, not counted.

GET /items?name=steel paged its rows through the word index, but counted every posting of
its words for its total: 1.4 million of them at 10 million items, and "steel" and "Steel"
were two words to count. Words are now stored as the database's LOWER() makes them (one
word for every case), the items of each word are kept beside its postings, in shards like
the row counts, by triggers on the postings (webapp.models.word_index.by_word), and the
index and its counts are made again from the rows, in bulk. Downgraded, the words stay
lowered, which the earlier lookups (they lower every word) read alike.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

from webapp.word_triggers import create_word_counts, drop_word_counts, index_again, replace_row_triggers

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "item_name_word_counts",
        sa.Column("word_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("shard", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("word_id", "shard", name=op.f("pk_item_name_word_counts")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )
    create_word_counts(op)
    replace_row_triggers(op, lowered=True)
    index_again(op)


def downgrade():
    drop_word_counts(op)
    op.drop_table("item_name_word_counts")
    replace_row_triggers(op, lowered=False)
