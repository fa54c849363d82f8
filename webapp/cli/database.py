"""flask deploy, seed, tokens, counts and fake: the database's own commands."""

from __future__ import annotations

import time

import click
from flask import current_app

from webapp import deploy
from webapp.database import db
from webapp.fake import FakeDataRefused, load_fake_data
from webapp.jobs import purge_expired_sessions
from webapp.models.row_count import rebuild_counts
from webapp.word_triggers import rebuild_word_counts


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
    try:
        for line in deploy.deploy(timeout):
            click.echo(line)
    except RuntimeError as error:
        raise click.ClickException(str(error)) from None


@click.command("seed")
def seed_command() -> None:
    """Insert the roles, the first client version and, while no active admin exists, the
    admin account ADMIN_USERNAME with ADMIN_PASSWORD (or a generated one, printed once)."""
    for line in deploy.seed(generate_admin_password=True):
        click.echo(line)


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
    counts = rebuild_counts() | rebuild_word_counts(db.session.connection())
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
    try:
        loaded = load_fake_data(user_count, item_count)
    except FakeDataRefused as error:
        raise click.ClickException(f"{error}: has `flask deploy` run?") from None
    click.echo(f"{loaded[0]} users and {loaded[1]} items added in {time.monotonic() - started:.1f} s")
