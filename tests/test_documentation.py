"""The docs against the code, so neither moves without the other: the layout in
docs/development.md names every module of webapp/, and the README's API table lists every
route the app serves (and its intro only resources the app has)."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

from tests.test_permissions import route_key
from webapp import resources
from webapp.database import db

ROOT = Path(__file__).resolve().parent.parent
WEBAPP = ROOT / "webapp"


def layout() -> dict[str, str]:
    """The layout map of docs/development.md: each entry's path and its text (continuation
    lines included)."""
    text = (ROOT / "docs" / "development.md").read_text()
    block = text.split("## Layout", 1)[1].split("```", 2)[1]
    entries: dict[str, str] = {}
    path = None
    for line in block.splitlines():
        if line and not line[0].isspace():
            path, _, line = line.partition(" ")
            entries[path] = ""
        if path is not None:
            entries[path] += " " + line.strip()
    return entries


def test_the_layout_names_every_module_of_webapp():
    """Each module by name, but those of a resource's package (routes.py and schemas.py, as
    the webapp/<resource>/ entry says) and of webapp/models/ (a model each, as its entry says)."""
    entries = layout()
    unnamed = [
        f"webapp/{module.name}"
        for module in sorted(WEBAPP.glob("*.py"))
        if f"webapp/{module.name}" not in entries
    ]
    for package in sorted(path for path in WEBAPP.iterdir() if path.is_dir() and path.name != "__pycache__"):
        modules = {module.stem for module in package.glob("*.py")} - {"__init__"}
        if package.name in resources():
            unnamed += [
                f"webapp/{package.name}/{name}.py" for name in sorted(modules - {"routes", "schemas"})
            ]
        elif package.name == "models":
            unnamed += [f"webapp/models/{name}.py" for name in sorted(modules) if not defines_a_model(name)]
        elif f"webapp/{package.name}/" not in entries:
            unnamed.append(f"webapp/{package.name}/")
        else:
            text = entries[f"webapp/{package.name}/"]
            unnamed += [f"webapp/{package.name}/{name}.py" for name in sorted(modules) if name not in text]

    assert unnamed == [], "name these in the Layout of docs/development.md"


def defines_a_model(module_name: str) -> bool:
    module = importlib.import_module(f"webapp.models.{module_name}")
    return any(
        isinstance(value, type) and issubclass(value, db.Model) and value.__module__ == module.__name__
        for value in vars(module).values()
    )


def test_the_layout_names_nothing_that_is_gone():
    gone = [path for path in layout() if "<" not in path and not (ROOT / path).exists()]

    assert gone == []


def readme_routes() -> set[tuple[str, str]]:
    """The routes the README's API table lists: every `METHOD /path` of its rows' first cells."""
    routes = set()
    for line in (ROOT / "README.md").read_text().splitlines():
        if line.startswith("| `"):
            first_cell = line.split("|")[1]
            routes |= {
                route_key(method, path) for method, path in re.findall(r"`([A-Z]+) (/[^`]*)`", first_cell)
            }
    return routes


def test_the_readme_api_table_lists_every_route_and_no_other(app):
    served = {
        route_key(method, rule.rule)
        for rule in app.url_map.iter_rules()
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    listed = readme_routes()

    assert sorted(served - listed) == [], "add rows to the API table of README.md for these"
    assert sorted(listed - served) == [], "the API table of README.md lists routes that do not exist"


def test_the_readme_intro_names_resources_the_app_has():
    intro = (ROOT / "README.md").read_text().split("\n\n")[2]
    named = re.findall(r"\*\*(\w+)\*\*", intro.split(" on MySQL", 1)[0])

    assert named, "the intro names the resources before 'on MySQL'"
    assert set(named) <= set(resources())
