"""Row counts kept by the database: triggers on items and users.

The counts that mapper events kept in the app are now moved by triggers, in the same
transaction, for every writer (bulk loads and an operator's SQL included) and with no round
trip of their own. The counts themselves are exact already and carry on.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from alembic import op

from webapp.count_triggers import create_count_triggers, drop_count_triggers

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

USERS_BY = ("activated", {True: "users.active", False: "users.inactive"})


def upgrade():
    create_count_triggers(op, "items")
    create_count_triggers(op, "users", *USERS_BY)


def downgrade():
    drop_count_triggers(op, "users", USERS_BY[0])
    drop_count_triggers(op, "items")
