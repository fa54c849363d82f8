"""schemathesis against the live OpenAPI document of a running server: no 5xx, no answer that
breaks the documented schema, as an admin and as a user, through nginx as deployed and
straight at gunicorn as `make run` serves it."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from base64 import b64encode
from pathlib import Path

import pytest

from tests.fuzz.conftest import ACCOUNTS
from tests.processes import ROOT

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "100"))
# A failing run prints its seed; FUZZ_SEED=<seed> replays it.
SEED = os.environ.get("FUZZ_SEED")

# Each account through nginx, as deployed; and straight at gunicorn once, for what gunicorn
# refuses itself (its answers to what it cannot parse do not depend on who is calling).
PASSES = [("admin", "nginx"), ("user", "nginx"), ("admin", "gunicorn")]


@pytest.mark.parametrize(("account", "target"), PASSES)
def test_schemathesis_finds_no_server_error_and_no_schema_violation(server, account, target, tmp_path):
    stack, passwords = server
    base_url = stack.public if target == "nginx" else stack.api
    credentials = b64encode(f"fuzz-{account}:{passwords[account]}".encode()).decode()
    request = urllib.request.Request(
        f"{base_url}/openapi.json", headers={"Authorization": f"Basic {credentials}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        schema = tmp_path / "openapi.json"
        schema.write_bytes(response.read())

    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "tests.fuzz.hooks",
        "FUZZ_BASE_URL": base_url,
        "FUZZ_USERNAME": f"fuzz-{account}",
        "FUZZ_PASSWORD": passwords[account],
        "FUZZ_PROTECTED_IDS": ",".join(str(user_id) for user_id, _ in ACCOUNTS.values()),
    }
    command = [
        str(Path(sys.executable).parent / "st"),
        "--config-file",
        str(Path(__file__).parent / "schemathesis.toml"),
        "run",
        str(schema),
        "--url",
        base_url,
        "--checks",
        "all",
        "--max-examples",
        str(EXAMPLES),
        "--workers",
        "1",
        *(["--seed", SEED] if SEED else []),
    ]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    report = ROOT / "artifacts" / "fuzz" / f"{account}-{target}.log"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(result.stdout + result.stderr)
    # A failure prints its reproduction (curl commands) first: CI logs may keep only a part.
    failures = result.stdout.find("FAILURES")
    shown = result.stdout[failures : failures + 6000] if result.returncode and failures >= 0 else ""
    summary = result.stdout[result.stdout.rfind("SUMMARY") - 40 :]
    print(f"\n[fuzz] as {account} through {target} (whole output: {report}):\n{shown}{summary}")
    assert result.returncode == 0, f"schemathesis failed; see {report}"
