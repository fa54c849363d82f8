"""Counter rows per cluster node, and the account's last login.

Failed-attempt counters get a ``shard`` in their key (the Galera node that counted them), so
writers on different nodes never update the same row. ``users.last_login_at`` is written by
every login: racing logins of one account on different nodes then conflict at commit.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

Timestamp = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def _rebuild_auth_failures(extra_key: list[sa.Column], rows_sql: str) -> None:
    """Replace auth_failures by a table keyed by (key_digest, window_index, *extra_key),
    filled by ``rows_sql`` (a SELECT over the old table). The same steps on every database,
    where changing a primary key in place differs from one to the other."""
    op.create_table(
        "auth_failures_new",
        sa.Column("key_digest", sa.String(length=64), nullable=False),
        sa.Column("window_index", sa.BigInteger(), autoincrement=False, nullable=False),
        *extra_key,
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "key_digest", "window_index", *(column.name for column in extra_key), name="pk_auth_failures_new"
        ),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )
    columns = ", ".join(["key_digest", "window_index", *(column.name for column in extra_key), "failures"])
    op.execute(f"INSERT INTO auth_failures_new ({columns}) {rows_sql}")
    op.drop_table("auth_failures")
    op.rename_table("auth_failures_new", "auth_failures")
    # The constraint's name follows the table's (SQLite keeps it; MySQL calls every one PRIMARY).
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("auth_failures", recreate="always") as batch:
            batch.drop_constraint("pk_auth_failures_new", type_="primary")
            batch.create_primary_key(
                "pk_auth_failures", ["key_digest", "window_index", *(column.name for column in extra_key)]
            )


def upgrade():
    _rebuild_auth_failures(
        [sa.Column("shard", sa.SmallInteger(), autoincrement=False, nullable=False)],
        "SELECT key_digest, window_index, 0, failures FROM auth_failures",
    )
    op.add_column("users", sa.Column("last_login_at", Timestamp, nullable=True))


def downgrade():
    # Not a batch: copying `users` on SQLite would trip the foreign keys that point at it.
    op.drop_column("users", "last_login_at")
    # Each key's shards fold back into one row.
    _rebuild_auth_failures(
        [],
        "SELECT key_digest, window_index, SUM(failures) FROM auth_failures GROUP BY key_digest, window_index",
    )
