"""docs/development.md's "Adding a resource", followed literally in a scratch copy of the
repository: its files written as shown, its README rows added, its commands run as a reader
runs them, on SQLite and then on MariaDB. Then what it promises: each resource is five new
files and at most 150 lines of app code, and no other file changed but the README's table.

`make guide` runs it; CI too.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "development.md"
SECTION = "## Adding a resource"
# The README's API table: a resource's rows go before this one.
ROWS_BEFORE = "| `GET /roles`"
MAX_FILES = 5
MAX_APP_LINES = 150
# What running the guide leaves that is not a change a contributor makes.
BY_PRODUCTS = {".venv", "__pycache__", ".ruff_cache", ".pytest_cache", "artifacts", ".coverage"}


@dataclass(frozen=True)
class Step:
    """A code block of the guide: a file to write, rows to add to a file, or commands."""

    kind: str  # "python" (a whole file), "markdown" (table rows) or "sh" (commands)
    target: str | None  # the file, for python and markdown blocks
    text: str


def steps() -> list[Step]:
    """The code blocks of the guide's section, in order."""
    section = GUIDE.read_text().split(f"\n{SECTION}\n", 1)[1].split("\n## ", 1)[0]
    found = []
    for match in re.finditer(r"^```(\w+)(?: (\S+))?\n(.*?)^```$", section, re.MULTILINE | re.DOTALL):
        kind, target, body = match.groups()
        assert kind in {"python", "markdown", "sh"}, f"a {kind} block the guide test cannot follow"
        assert (target is None) == (kind == "sh"), f"a {kind} block must name its file: {body[:60]!r}"
        found.append(Step(kind, target, body))
    return found


def scratch_copy(destination: Path) -> Path:
    """The repository's files (committed or not, ignored ones left out), timestamps kept so
    that make finds .venv up to date, and the repository's .venv linked in."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    (destination / ".venv").symlink_to(ROOT / ".venv")
    return destination


def files_of(tree: Path) -> dict[str, bytes]:
    """Every file of ``tree`` but the by-products of running it, by relative path."""
    files = {}
    for path in tree.rglob("*"):
        relative = path.relative_to(tree)
        if set(relative.parts) & BY_PRODUCTS or path.suffix == ".db" or not path.is_file():
            continue
        files[relative.as_posix()] = path.read_bytes()
    return files


def add_rows(path: Path, rows: str) -> None:
    lines = path.read_text().splitlines(keepends=True)
    at = next(index for index, line in enumerate(lines) if line.startswith(ROWS_BEFORE))
    path.write_text("".join(lines[:at]) + rows + "".join(lines[at:]))


def run(command: str, cwd: Path, env: dict[str, str]) -> None:
    started = time.monotonic()
    # A shell, as the reader's: the guide's commands are shell lines.
    done = subprocess.run(  # noqa: S602
        command, shell=True, cwd=cwd, env=env, capture_output=True, text=True, timeout=900
    )
    print(f"[guide] {time.monotonic() - started:5.1f} s  {command[:100]}")
    assert done.returncode == 0, f"{command}\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"


def follow(scratch: Path, env: dict[str, str]) -> None:
    for step in steps():
        if step.kind == "python":
            (scratch / step.target).parent.mkdir(parents=True, exist_ok=True)
            (scratch / step.target).write_text(step.text)
        elif step.kind == "markdown":
            add_rows(scratch / step.target, step.text)
        else:
            for command in step.text.splitlines():
                if command.strip() and not command.lstrip().startswith("#"):
                    run(command, scratch, env)


@pytest.fixture(params=["sqlite", "mariadb"])
def database(request):
    """The guide's environment: no database settings (SQLite in the copy's instance/), or
    DATABASE_URL and TEST_DATABASE_URL naming two throwaway MariaDB databases on the server
    of TEST_DATABASE_URL (default: root on 127.0.0.1)."""
    if request.param == "sqlite":
        yield {}
        return
    server = make_url(os.environ.get("TEST_DATABASE_URL", "mysql+pymysql://root@127.0.0.1/test"))
    names = [f"webapp_guide_{os.getpid()}", f"webapp_guide_{os.getpid()}_test"]
    engine = create_engine(server.set(database=None))
    with engine.connect() as connection:
        for name in names:
            connection.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"))
    try:
        yield {
            "DATABASE_URL": server.set(database=names[0]).render_as_string(hide_password=False),
            "TEST_DATABASE_URL": server.set(database=names[1]).render_as_string(hide_password=False),
        }
    finally:
        with engine.connect() as connection:
            for name in names:
                connection.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        engine.dispose()


def test_the_guide_adds_its_resources_as_written(tmp_path, database):
    scratch = scratch_copy(tmp_path / "repository")
    before = files_of(scratch)
    newest = max(path.name[:4] for path in (scratch / "migrations" / "versions").glob("[0-9]*.py"))
    # As a reader's shell: no settings but the database's (flask finds wsgi.py by itself).
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in {"FLASK_APP", "DATABASE_URL", "TEST_DATABASE_URL"} and not name.startswith("PYTEST")
    }

    follow(scratch, {**env, **database})

    after = files_of(scratch)
    changed = sorted(name for name in before if name in after and after[name] != before[name])
    assert changed == ["README.md"], "following the guide changed files it does not name"
    assert sorted(set(before) - set(after)) == []
    added = sorted(set(after) - set(before))
    migrations = [name for name in added if name.startswith("migrations/versions/")]
    # Numbered after the newest revision, one per resource, in the order the guide makes them.
    assert [Path(name).name[:4] for name in migrations] == [
        f"{int(newest) + 1:04d}",
        f"{int(newest) + 2:04d}",
    ]
    for resource, migration in zip(("note", "tag"), migrations, strict=True):
        files = [name for name in added if resource in name and name not in migrations] + [migration]
        app_lines = sum(after[name].count(b"\n") for name in files if name.startswith("webapp/"))
        print(f"[guide] {resource}s: {len(files)} files, {app_lines} app lines: {', '.join(files)}")
        assert len(files) <= MAX_FILES
        assert app_lines <= MAX_APP_LINES
    assert len(added) == 2 * MAX_FILES, added
    for migration in migrations:
        written = after[migration].decode()
        # The house style: no alembic comment frames, the creation date without a time.
        assert "# ###" not in written
        assert re.search(r"^Create Date: \d{4}-\d{2}-\d{2}$", written, re.MULTILINE), written[:300]
