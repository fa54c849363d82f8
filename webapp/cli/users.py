"""flask users: create accounts, and deactivate or demote any of them (an admin included)."""

from __future__ import annotations

from collections.abc import Callable

import click
from marshmallow import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from webapp.database import db
from webapp.models import Role, Token, User
from webapp.security import generate_password
from webapp.users.schemas import USERNAME


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
