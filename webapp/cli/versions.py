"""flask versions: the client versions X-Version accepts, and their lifecycle."""

from __future__ import annotations

import re

import click
from flask import current_app
from sqlalchemy import select

from webapp.cache import clear_caches
from webapp.database import db, utcnow
from webapp.models import Version

VERSION_PATTERN = re.compile(rf"[\w.+-]{{1,{Version.LENGTH}}}")


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
