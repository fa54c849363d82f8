"""A client developer's day, for real (`make client`): the live server's /openapi.json passes
the OpenAPI validator and the style linter with nothing unwaived; openapi-python-client
generates a typed client from it, fresh each run; the scenario written against that client
passes `mypy --strict` and then runs against the live server through nginx."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from openapi_spec_validator import validate

from tests.processes import ROOT

HERE = Path(__file__).parent
BIN = ROOT / ".venv" / "bin"
REDOCLY = ROOT / ".venv" / "node" / "node_modules" / ".bin" / "redocly"
PACKAGE = "flask_reference_api_client"


@pytest.fixture(scope="module")
def document(server, tmp_path_factory) -> Path:
    """The live server's OpenAPI document, as a client developer downloads it."""
    stack, passwords = server
    credentials = base64.b64encode(f"fuzz-admin:{passwords['admin']}".encode()).decode()
    request = urllib.request.Request(
        f"{stack.public}/openapi.json", headers={"Authorization": f"Basic {credentials}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        spec = json.loads(response.read())
    path = tmp_path_factory.mktemp("client") / "openapi.json"
    path.write_text(json.dumps(spec, indent=2))
    return path


def run(command: list[str], **options) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, **options)
    print(f"\n[client] $ {' '.join(str(part) for part in command)}\n{result.stdout}{result.stderr}")
    return result


def test_the_document_is_valid_openapi(document):
    validate(json.loads(document.read_text()))


def test_the_style_linter_finds_nothing_unwaived(document):
    # Beside the document: the ignore file names it by its file name.
    for name in ("redocly.yaml", ".redocly.lint-ignore.yaml"):
        shutil.copy(HERE / name, document.parent / name)
    result = run(
        [str(REDOCLY), "lint", "--config", "redocly.yaml", "--format", "stylish", document.name],
        cwd=document.parent,
    )

    output = result.stdout + result.stderr
    waived = (HERE / ".redocly.lint-ignore.yaml").read_text().count("\n    - ")

    assert result.returncode == 0
    assert "Your API description is valid" in output
    assert f"{waived} problems are explicitly ignored" in output


@pytest.fixture(scope="module")
def generated(document) -> Path:
    """The client package, generated from the document into a fresh folder."""
    out = document.parent / "generated"
    out.mkdir()
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}  # its ruff post-hooks
    result = run(
        [
            str(BIN / "openapi-python-client"),
            "generate",
            "--path",
            str(document),
            "--meta",
            "none",
            "--output-path",
            str(out / PACKAGE),
        ],
        env=env,
    )
    assert result.returncode == 0
    assert "Warning" not in result.stdout + result.stderr
    return out


def test_the_scenario_type_checks_strictly_without_a_cast(generated):
    source = (HERE / "scenario.py").read_text()
    result = run(
        [
            str(BIN / "mypy"),
            "--config-file",
            str(HERE / "mypy.ini"),
            "--no-incremental",
            str(HERE / "scenario.py"),
        ],
        env={**os.environ, "MYPYPATH": str(generated)},
    )

    assert result.returncode == 0
    assert re.search(r"\bcast\(|#\s*type:\s*ignore", source) is None


def test_the_scenario_runs_against_the_live_server(server, generated):
    stack, passwords = server
    result = run(
        [sys.executable, str(HERE / "scenario.py"), stack.public, "fuzz-admin", passwords["admin"]],
        env={**os.environ, "PYTHONPATH": str(generated)},
    )

    assert result.returncode == 0
    for step in ("login:", "refresh:", "search", "read:", "update:", "sessions:", "delete:"):
        assert step in result.stdout
    for status in (401, 403, 404, 409, 412, 422, 426):
        assert f"  {status} " in result.stdout
