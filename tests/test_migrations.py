"""The migrations: down to base and up again, with data present, and a schema that matches the models."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import downgrade, upgrade
from sqlalchemy import func, inspect, select

from tests.conftest import release_connections
from tests.factories import login, make_item, make_user
from webapp.database import db
from webapp.extensions import migrate
from webapp.models import Item, Role, Token, User

APP_TABLES = set(db.metadata.tables)


def table_names() -> set[str]:
    release_connections()
    return set(inspect(db.engine).get_table_names())


def test_schema_is_at_the_newest_migration(app):
    head = ScriptDirectory.from_config(migrate.get_config()).get_current_head()
    with db.engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()

    assert current == head


@pytest.mark.usefixtures("upgraded_afterwards")
def test_downgrade_to_base_removes_every_app_table_and_upgrade_restores_them():
    assert table_names() >= APP_TABLES

    downgrade(revision="base")

    assert table_names() & APP_TABLES == set()

    upgrade()

    assert table_names() >= APP_TABLES


def test_downgrade_and_upgrade_work_with_data_present(app, client, upgraded_afterwards):
    owner = make_user("owner")
    make_item(owner, "thing", "with a description")
    login(client, "owner")
    assert db.session.scalar(select(func.count()).select_from(Token)) == 1
    release_connections()

    downgrade(revision="base")
    assert table_names() & APP_TABLES == set()
    upgrade()

    release_connections()
    for model in (User, Item, Token):
        assert db.session.scalar(select(func.count()).select_from(model)) == 0
    Role.ensure_all()
    make_item(make_user("again"), "thing")
    assert db.session.scalar(select(Item.name)) == "thing"


def test_migrated_schema_matches_the_models(app):
    release_connections()
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts=app.extensions["migrate"].configure_args)
        differences = compare_metadata(context, db.metadata)

    assert differences == []
