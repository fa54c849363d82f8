"""The flask commands, a module per group: the database's own (deploy, seed, tokens, counts,
fake), users and versions."""

from __future__ import annotations

from flask import Flask

from webapp.cli.database import counts_cli, deploy_command, fake_command, seed_command, tokens_cli
from webapp.cli.users import users_cli
from webapp.cli.versions import versions_cli


def init_app(app: Flask) -> None:
    for command in (deploy_command, seed_command, fake_command):
        app.cli.add_command(command)
    for group in (users_cli, versions_cli, tokens_cli, counts_cli):
        app.cli.add_command(group)
