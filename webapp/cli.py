"""flask commands: deploy, seed, users, versions, tokens, counts and fake."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import click
from flask import Flask, current_app
from marshmallow import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from webapp import deploy
from webapp.cache import clear_caches
from webapp.database import db, utcnow
from webapp.fake import load_fake_data
from webapp.jobs import purge_expired_sessions
from webapp.models import Role, Token, User, Version
from webapp.models.row_count import rebuild_counts
from webapp.security import generate_password
from webapp.users.schemas import USERNAME

DEFAULT_VERSION = "1.0"
VERSION_PATTERN = re.compile(rf"[\w.+-]{{1,{Version.LENGTH}}}")


def _create_user(username: str, role_id: int, password: str) -> User:
    for validator in USERNAME:
        try:
            validator(username)
        except ValidationError as error:
            raise click.BadParameter(" ".join(error.messages), param_hint="NAME") from None
    user = User(username=username, role_id=role_id)
    user.set_password(password)
    db.session.add(user)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise click.ClickException(f"username {username!r} is already taken") from None
    return user


@click.command("deploy")
@click.option(
    "--timeout", default=600, show_default=True, help="Seconds to wait for another instance's deploy."
)
def deploy_command(timeout: int) -> None:
    """Migrate and seed the database: what an instance runs before it serves.

    Instances starting together, on one server or on any nodes of a cluster, take a lock in
    the database: one of them migrates and seeds, the others wait for it and then find
    nothing to do.
    """
    engine = db.engine
    deploy.create_lock_table(engine)
    if _up_to_date() and deploy.lock_holder(engine) is None:
        click.echo("deploy: the database is up to date")
        return
    try:
        with deploy.deploy_lock(timeout) as waited:
            if _up_to_date():  # the instance that held the lock did it all
                click.echo(f"deploy: done by another instance (waited {waited:.1f} s)")
                return
            migrated = deploy.migrate()
            click.echo(
                f"deploy: migrations applied ({migrated})" if migrated else "deploy: no migration to apply"
            )
            # Its output goes to the service's log: no password is made up and printed there.
            _seed(generate=False)
    except RuntimeError as error:
        raise click.ClickException(str(error)) from None


def _up_to_date() -> bool:
    """Schema at the newest migration and the seed's rows all there."""
    current, heads = deploy.schema_revision(db.engine)
    return (
        current == heads
        and not Role.missing()
        and db.session.scalar(select(Version.id).limit(1)) is not None
        and _active_admin_exists()
    )


def _active_admin_exists() -> bool:
    """Whether any active account has the admin role (whatever it is called now)."""
    query = select(User.id).where(User.role_id == Role.ADMIN, User.activated.is_(True)).limit(1)
    return db.session.scalar(query) is not None


@click.command("seed")
def seed_command() -> None:
    """Insert the roles, the first client version and, while no active admin exists, the
    admin account ADMIN_USERNAME with ADMIN_PASSWORD (or a generated one, printed once)."""
    _seed(generate=True)


def _seed(*, generate: bool) -> None:
    added_roles = Role.ensure_all()
    added_version = db.session.scalar(select(Version).limit(1)) is None
    if added_version:
        db.session.add(Version(version=DEFAULT_VERSION, supported=True))
    db.session.commit()
    click.echo(f"roles: {added_roles} added; versions: {int(added_version)} added")

    # Only while there is no active admin: the seeded one may have been renamed since, and
    # ADMIN_PASSWORD (read here only) may have been left in the environment.
    if _active_admin_exists():
        click.echo("an active admin account exists: no admin seeded")
        return
    username = current_app.config["ADMIN_USERNAME"]
    if db.session.scalar(select(User.id).where(User.username == username)) is not None:
        click.echo(
            f"no active admin account, and {username!r} is taken by a deactivated or non-admin "
            "account: create an admin with `flask users create NAME --role admin`"
        )
        return
    configured = current_app.config["ADMIN_PASSWORD"]
    if not configured and not generate:
        click.echo(
            "no active admin account: set ADMIN_PASSWORD for this first deploy, or create one "
            "with `flask users create NAME --role admin` (which prints its password to you)"
        )
        return
    password = configured or generate_password()
    _create_user(username, Role.ADMIN, password)
    if configured:
        click.echo(f"admin account {username!r} created with the configured ADMIN_PASSWORD")
    else:
        click.echo(f"admin account {username!r} created; password (shown once): {password}")


users_cli = click.Group("users", help="Manage user accounts.")


@users_cli.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(["admin", "user"]), default="user", show_default=True)
def create_user_command(name: str, role: str) -> None:
    """Create an account with a generated password, printed once."""
    password = generate_password()
    role_id = Role.ADMIN if role == "admin" else Role.USER
    user = _create_user(name, role_id, password)
    click.echo(f"user {user.username!r} (id {user.id}, {role}) created; password (shown once): {password}")


def _change_account(name: str, change: Callable[[User], None]) -> User:
    """Apply ``change`` to the account ``name`` and commit, unless it leaves no active admin
    (counted as the API does, under the admins' row locks: User.lock_active_admins)."""
    user = db.session.scalar(select(User).where(User.username == name))
    if user is None:
        raise click.ClickException(f"no account named {name!r}")
    was_active_admin = user.is_active_admin
    change(user)
    db.session.flush()
    if was_active_admin and not user.is_active_admin and not User.lock_active_admins():
        db.session.rollback()
        raise click.ClickException(
            f"{name!r} is the last active admin: create another one first "
            "(flask users create NAME --role admin)"
        )
    db.session.commit()
    return user


@users_cli.command("deactivate")
@click.argument("name")
def deactivate_user_command(name: str) -> None:
    """Deactivate any account, an admin included (a compromised one), and end its sessions."""

    def deactivate(user: User) -> None:
        user.activated = False
        Token.revoke_all(user.id)

    _change_account(name, deactivate)
    click.echo(f"user {name!r} deactivated; its sessions have ended")


@users_cli.command("set-role")
@click.argument("name")
@click.argument("role", type=click.Choice(["admin", "user"]))
def set_role_command(name: str, role: str) -> None:
    """Give any account the admin or the user role (an admin the API cannot change included)."""
    _change_account(name, lambda user: setattr(user, "role_id", Role.ADMIN if role == "admin" else Role.USER))
    click.echo(f"user {name!r} now has the {role} role")


versions_cli = click.Group("versions", help="Manage the client versions X-Version accepts.")


def _version_argument(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if not VERSION_PATTERN.fullmatch(value):
        raise click.BadParameter(f"use 1 to {Version.LENGTH} letters, digits and . _ + -")
    return value


version_argument = click.argument("version", callback=_version_argument)


def _set_version(version: str, supported: bool, *, create: bool) -> None:
    row = db.session.scalar(select(Version).where(Version.version == version))
    if row is None and not create:
        raise click.ClickException(f"version {version!r} is not listed; add it first")
    if row is None:
        row = Version(version=version)
        db.session.add(row)
    row.supported = supported
    if supported:  # supported again, in full: no longer deprecated
        row.deprecated_at = row.sunset = None
    _applied(row, "supported" if supported else "unsupported")


def _applied(row: Version, state: str) -> None:
    db.session.commit()
    clear_caches()
    bound = current_app.config["VERSION_CACHE_SECONDS"]
    click.echo(f"version {row.version!r} is {state}; every worker applies it within {bound} s")


@versions_cli.command("add")
@version_argument
@click.option("--unsupported", is_flag=True, help="List it as no longer supported.")
def add_version_command(version: str, unsupported: bool) -> None:
    """List a client version (supported unless --unsupported)."""
    _set_version(version, not unsupported, create=True)


@versions_cli.command("support")
@version_argument
def support_version_command(version: str) -> None:
    """Mark a listed version as supported."""
    _set_version(version, True, create=False)


@versions_cli.command("unsupport")
@version_argument
def unsupport_version_command(version: str) -> None:
    """Mark a listed version as unsupported: its clients get 426."""
    _set_version(version, False, create=False)


@versions_cli.command("deprecate")
@version_argument
@click.option(
    "--sunset",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="The day (YYYY-MM-DD) from which it is answered 426, from its start in UTC.",
)
def deprecate_version_command(version: str, sunset) -> None:
    """Deprecate a supported version: still served, with Deprecation and Sunset headers."""
    row = db.session.scalar(select(Version).where(Version.version == version))
    if row is None or not row.supported:
        raise click.ClickException(f"version {version!r} is not a supported version")
    row.deprecated_at = row.deprecated_at or utcnow()
    row.sunset = sunset.date() if sunset else None
    _applied(row, _state(row))


def _state(row: Version) -> str:
    if not row.supported:
        return "unsupported"
    if row.deprecated_at is None:
        return "supported"
    since = f"deprecated since {row.deprecated_at:%Y-%m-%d %H:%M} UTC"
    return f"{since}, sunset {row.sunset:%Y-%m-%d}" if row.sunset else since


@versions_cli.command("list")
def list_versions_command() -> None:
    """Show every listed version."""
    for row in db.session.scalars(select(Version).order_by(Version.id)):
        click.echo(f"{row.version}\t{_state(row)}")


tokens_cli = click.Group("tokens", help="Manage login sessions.")


@tokens_cli.command("purge")
def purge_tokens_command() -> None:
    """Delete sessions whose refresh token has expired, now."""
    purged = purge_expired_sessions()
    click.echo(f"{purged} expired sessions deleted")


counts_cli = click.Group("counts", help="The row counts behind list totals.")


@counts_cli.command("rebuild")
def rebuild_counts_command() -> None:
    """Recount every kept count from its table (after rows were changed outside the app)."""
    counts = rebuild_counts()
    db.session.commit()
    click.echo(", ".join(f"{name}: {rows}" for name, rows in counts.items()))


@click.command("fake")
@click.option("--users", "user_count", default=1000, show_default=True, help="Accounts to add.")
@click.option("--items", "item_count", default=10000, show_default=True, help="Items to add.")
def fake_command(user_count: int, item_count: int) -> None:
    """Bulk-load fake accounts and items (benchmarks, demos); refused in production.

    Every fake account has the password "fake-password" (hashed once, for speed).
    """
    if current_app.config["APP_ENV"] == "production":
        raise click.ClickException("flask fake is refused with APP_ENV=production")
    started = time.monotonic()
    loaded = load_fake_data(user_count, item_count)
    click.echo(f"{loaded[0]} users and {loaded[1]} items added in {time.monotonic() - started:.1f} s")


def init_app(app: Flask) -> None:
    for command in (deploy_command, seed_command, fake_command):
        app.cli.add_command(command)
    for group in (users_cli, versions_cli, tokens_cli, counts_cli):
        app.cli.add_command(group)
