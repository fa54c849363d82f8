"""flask commands: seed, users, versions and tokens."""

from __future__ import annotations

import re

import click
from flask import Flask, current_app
from marshmallow import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from webapp.cache import clear_caches
from webapp.database import advisory_lock
from webapp.extensions import db
from webapp.jobs import purge_expired_sessions
from webapp.models import Role, User, Version
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


@click.command("seed")
def seed_command() -> None:
    """Insert the roles, the first client version and the admin account, if missing."""
    # Instances starting together seed one after the other (a no-op for the second).
    with db.engine.connect() as connection, advisory_lock(connection, "webapp-seed"):
        _seed()


def _seed() -> None:
    added_roles = Role.ensure_all()
    added_version = db.session.scalar(select(Version).limit(1)) is None
    if added_version:
        db.session.add(Version(version=DEFAULT_VERSION, supported=True))
    db.session.commit()
    click.echo(f"roles: {added_roles} added; versions: {int(added_version)} added")

    username = current_app.config["ADMIN_USERNAME"]
    if db.session.scalar(select(User).where(User.username == username)) is not None:
        click.echo(f"admin account {username!r} already exists")
        return
    configured = current_app.config["ADMIN_PASSWORD"]
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
    db.session.commit()
    clear_caches()
    state = "supported" if supported else "unsupported"
    bound = current_app.config["VERSION_CACHE_SECONDS"]
    click.echo(f"version {version!r} is {state}; every worker applies it within {bound} s")


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


@versions_cli.command("list")
def list_versions_command() -> None:
    """Show every listed version."""
    for row in db.session.scalars(select(Version).order_by(Version.id)):
        click.echo(f"{row.version}\t{'supported' if row.supported else 'unsupported'}")


tokens_cli = click.Group("tokens", help="Manage login sessions.")


@tokens_cli.command("purge")
def purge_tokens_command() -> None:
    """Delete sessions whose refresh token has expired, now."""
    purged = purge_expired_sessions()
    click.echo(f"{purged} expired sessions deleted")


def init_app(app: Flask) -> None:
    app.cli.add_command(seed_command)
    for group in (users_cli, versions_cli, tokens_cli):
        app.cli.add_command(group)
