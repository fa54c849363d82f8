"""Device sessions, row versions for conditional requests, client version deprecation.

Sessions record the device's user agent and when they were last refreshed; items and users
get a version (their ETag, compared and swapped by conditional writes); client versions get
the moment they were deprecated and the date of their sunset.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

Timestamp = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade():
    op.add_column("tokens", sa.Column("user_agent", sa.String(length=255), nullable=True))
    op.add_column("tokens", sa.Column("last_refreshed_at", Timestamp, nullable=True))
    for table in ("items", "users"):
        op.add_column(table, sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
    op.add_column("versions", sa.Column("deprecated_at", Timestamp, nullable=True))
    op.add_column("versions", sa.Column("sunset", sa.Date(), nullable=True))


def downgrade():
    # Not batches: copying `users` on SQLite would trip the foreign keys that point at it.
    op.drop_column("versions", "sunset")
    op.drop_column("versions", "deprecated_at")
    for table in ("users", "items"):
        op.drop_column(table, "version")
    op.drop_column("tokens", "last_refreshed_at")
    op.drop_column("tokens", "user_agent")
