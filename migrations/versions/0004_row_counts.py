"""Row counts beside the items and users tables, so list totals never scan them.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    row_counts = op.create_table(
        "row_counts",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("shard", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", "shard", name=op.f("pk_row_counts")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )
    # Start from the rows already there (shard 0 holds them; writers spread from now on).
    connection = op.get_bind()
    counts = {
        "items": "SELECT COUNT(*) FROM items",
        "users.active": "SELECT COUNT(*) FROM users WHERE activated",
        "users.inactive": "SELECT COUNT(*) FROM users WHERE NOT activated",
    }
    op.bulk_insert(
        row_counts,
        [
            {"name": name, "shard": 0, "rows": connection.exec_driver_sql(sql).scalar()}
            for name, sql in counts.items()
        ],
    )


def downgrade():
    op.drop_table("row_counts")
