"""Alembic environment: runs migrations on the engine of the Flask app (Flask-Migrate)."""

import logging
from logging.config import fileConfig

from alembic import context
from alembic.operations import ops
from alembic.script import ScriptDirectory
from flask import current_app
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from webapp.database import UTCDateTime

config = context.config
if config.config_file_name is not None:
    # Keep the app's own loggers working when migrations run inside it (tests, CLI).
    fileConfig(config.config_file_name, disable_existing_loggers=False)
logger = logging.getLogger("alembic.env")

migrate_ext = current_app.extensions["migrate"]
engine = migrate_ext.db.engine
target_metadata = migrate_ext.db.metadata
config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%"))


def run_migrations_offline():
    """Emit SQL to stdout (``flask db upgrade --sql``) instead of running it."""
    context.configure(
        url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata, literal_binds=True
    )
    with context.begin_transaction():
        context.run_migrations()


def render_item(type_, obj, autogen_context):
    """Write UTCDateTime as what it stores (DATETIME(6) on MySQL), so a migration made by
    `flask db migrate` does not import the app's code, which changes after it."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        autogen_context.imports.add("from sqlalchemy.dialects import mysql")
        return 'sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")'
    return False


def next_revision_id() -> str:
    """The number after the newest revision's, four digits: 0008 after 0007."""
    numbers = [int(script.revision) for script in ScriptDirectory.from_config(config).walk_revisions()]
    return f"{max(numbers, default=0) + 1:04d}"


def without_index_drops_of_dropped_tables(downgrade: ops.DowngradeOps) -> None:
    """Autogenerate drops a new table's indexes before the table; MySQL refuses to drop an
    index a foreign key uses (error 1553), and dropping the table drops its indexes anyway."""
    dropped = {op.table_name for op in downgrade.ops if isinstance(op, ops.DropTableOp)}
    for op in downgrade.ops:
        if isinstance(op, ops.ModifyTableOps) and op.table_name in dropped:
            op.ops = [change for change in op.ops if not isinstance(change, ops.DropIndexOp)]
    downgrade.ops = [op for op in downgrade.ops if not (isinstance(op, ops.ModifyTableOps) and not op.ops)]


def house_style(context, revision, directives):
    """What `flask db migrate` writes: nothing when nothing changed; else a revision numbered
    after the newest one (unless --rev-id names one), whose downgrade works on MySQL too."""
    if not getattr(config.cmd_opts, "autogenerate", False):
        return
    script = directives[0]
    if script.upgrade_ops.is_empty():
        directives[:] = []
        logger.info("No changes in schema detected.")
        return
    if not getattr(config.cmd_opts, "rev_id", None):
        script.rev_id = next_revision_id()
    without_index_drops_of_dropped_tables(script.downgrade_ops)


def migration_engine():
    """The app's engine, or on MySQL/MariaDB one of its own, with no read timeout: a request
    must answer within DATABASE_QUERY_TIMEOUT, but a migration that rebuilds a table of
    millions of rows takes as long as that takes."""
    if engine.dialect.name not in ("mysql", "mariadb"):
        return engine
    return create_engine(engine.url, poolclass=NullPool)


def run_migrations_online():
    options = dict(migrate_ext.configure_args)
    options.setdefault("process_revision_directives", house_style)
    options.setdefault("render_item", render_item)
    # Instances starting together run this one at a time: `flask deploy` holds its lock.
    with migration_engine().connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, **options)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
