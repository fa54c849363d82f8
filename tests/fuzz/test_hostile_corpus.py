"""The hostile bodies of tests/hostile.py against the live server, through nginx as deployed
and straight at gunicorn as `make run` serves: every one a 4xx problem document, and not one
ERROR line in the server's log."""

from __future__ import annotations

import http.client
import json
import urllib.parse
from base64 import b64encode
from collections import Counter

import pytest

from tests.hostile import CASES, paths, target_ids, valid_bodies


def send(base: str, method: str, path: str, body: bytes, headers: dict[str, str]):
    """One request of raw bytes on a connection of its own: (status, content type, body)."""
    address = urllib.parse.urlsplit(base)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.headers.get_content_type(), response.read()
    finally:
        connection.close()


def admin_token(base: str, password: str) -> str:
    body = json.dumps({"username": "fuzz-admin", "password": password}).encode()
    status, _, answer = send(base, "POST", "/auth/token", body, {"Content-Type": "application/json"})
    assert status == 200, answer
    return json.loads(answer)["access_token"]


def bodies_and_ids(base: str, password: str, headers: dict[str, str]) -> tuple[dict, dict]:
    """The valid bodies of the server's own OpenAPI document, and a fresh row for each {id}."""
    credentials = b64encode(f"fuzz-admin:{password}".encode()).decode()
    status, _, spec = send(base, "GET", "/openapi.json", b"", {"Authorization": f"Basic {credentials}"})
    assert status == 200, spec
    bodies = valid_bodies(json.loads(spec))

    def create(path: str, body: dict) -> int:
        sent = {**headers, "Content-Type": "application/json"}
        status, _, answer = send(base, "POST", path, json.dumps(body).encode(), sent)
        assert status == 201, (path, answer)
        return json.loads(answer)["id"]

    return bodies, target_ids(bodies, create)


@pytest.mark.parametrize("target", ["nginx", "gunicorn"])
def test_hostile_bodies_get_a_4xx_problem_and_no_error_line(server, target):
    stack, passwords = server
    base = stack.public if target == "nginx" else stack.api
    log = stack.logs["gunicorn"]
    logged_before = log.stat().st_size
    headers = {"Authorization": f"Bearer {admin_token(base, passwords['admin'])}"}
    bodies, ids = bodies_and_ids(base, passwords["admin"], headers)

    answers: Counter[str] = Counter()
    wrong = []
    for case in CASES:
        for operation, body in bodies.items():
            method = operation.split(" ", 1)[0].upper()
            for path in paths(operation, ids):
                status, content_type, _ = send(
                    base, method, path, case.build(body), {**headers, "Content-Type": case.content_type}
                )
                answers[f"{status // 100}xx"] += 1
                if not 400 <= status < 500 or content_type != "application/problem+json":
                    wrong.append(f"{case.name}: {method} {path[:40]} -> {status} {content_type}")

    with log.open(errors="replace") as lines:
        lines.seek(logged_before)
        errors = [line for line in lines if "ERROR" in line]
    sent = sum(answers.values())
    print(f"\n[hostile] through {target}: {sent} requests, {dict(answers)}, {len(errors)} ERROR lines")
    assert wrong == []
    assert errors == []
