"""Bringing the database up to date when an instance starts (`flask deploy`): the migrations
it lacks, then the seed (the roles, a first client version, and the first admin while there
is no active admin). Of the instances starting together, exactly one does it, under the
deploy lock (webapp/deploy_lock.py); the others wait for it and find nothing left to do."""

from __future__ import annotations

from collections.abc import Iterator

from alembic import command
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import current_app
from sqlalchemy import Engine, select

from webapp import deploy_lock
from webapp.database import db
from webapp.models import Role, User, Version
from webapp.models.word_index import SearchPosition
from webapp.security import generate_password

DEFAULT_VERSION = "1.0"


def _alembic_config():
    return current_app.extensions["migrate"].migrate.get_config()


def schema_revision(engine: Engine) -> tuple[set[str], set[str]]:
    """The revisions the database is at, and the newest ones the code has."""
    with engine.connect() as connection:
        current = set(MigrationContext.configure(connection).get_current_heads())
    return current, set(ScriptDirectory.from_config(_alembic_config()).get_heads())


def migrate() -> str | None:
    """Apply the migrations the database lacks; returns "<from> -> <to>", or None if none."""
    current, heads = schema_revision(db.engine)
    if current == heads:
        return None
    command.upgrade(_alembic_config(), "head")
    return f"{', '.join(sorted(current)) or 'empty'} -> {', '.join(sorted(heads))}"


def up_to_date() -> bool:
    """Schema at the newest migration and the seed's rows all there."""
    current, heads = schema_revision(db.engine)
    return (
        current == heads
        and not Role.missing()
        and db.session.scalar(select(Version.id).limit(1)) is not None
        and User.active_admin_exists()
    )


def deploy(timeout: float) -> Iterator[str]:
    """Migrate and seed unless the database is up to date, under the deploy lock; yields what
    was done, a line at a time. RuntimeError if another instance keeps the lock too long."""
    engine = db.engine
    deploy_lock.create_lock_table(engine)
    if up_to_date() and deploy_lock.lock_holder(engine) is None:
        yield "deploy: the database is up to date"
        return
    with deploy_lock.deploy_lock(timeout) as waited:
        if up_to_date():  # the instance that held the lock did it all
            yield f"deploy: done by another instance (waited {waited:.1f} s)"
            return
        migrated = migrate()
        yield f"deploy: migrations applied ({migrated})" if migrated else "deploy: no migration to apply"
        # This output goes to the service's log: no password is made up and printed there.
        yield from seed(generate_admin_password=False)


def seed(*, generate_admin_password: bool) -> Iterator[str]:
    """Insert what a new database needs; yields what was done. The admin ADMIN_USERNAME is
    made only while no active admin exists (the seeded one may have been renamed since, and
    ADMIN_PASSWORD, read here only, left in the environment), with ADMIN_PASSWORD, or with a
    generated password shown once if ``generate_admin_password``."""
    added_roles = Role.ensure_all()
    SearchPosition.ensure_all()
    added_version = db.session.scalar(select(Version).limit(1)) is None
    if added_version:
        db.session.add(Version(version=DEFAULT_VERSION, supported=True))
    db.session.commit()
    yield f"roles: {added_roles} added; versions: {int(added_version)} added"

    if User.active_admin_exists():
        yield "an active admin account exists: no admin seeded"
        return
    username = current_app.config["ADMIN_USERNAME"]
    if db.session.scalar(select(User.id).where(User.username == username)) is not None:
        yield (
            f"no active admin account, and {username!r} is taken by a deactivated or non-admin "
            "account: create an admin with `flask users create NAME --role admin`"
        )
        return
    configured = current_app.config["ADMIN_PASSWORD"]
    if not configured and not generate_admin_password:
        yield (
            "no active admin account: set ADMIN_PASSWORD for this first deploy, or create one "
            "with `flask users create NAME --role admin` (which prints its password to you)"
        )
        return
    password = configured or generate_password()
    admin = User(username=username, role_id=Role.ADMIN)
    admin.set_password(password)
    db.session.add(admin)
    db.session.commit()
    if configured:
        yield f"admin account {username!r} created with the configured ADMIN_PASSWORD"
    else:
        yield f"admin account {username!r} created; password (shown once): {password}"
