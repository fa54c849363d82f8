"""GET /versions: the client versions and whether each is supported; never version-gated."""

import pytest
from sqlalchemy import select

from tests.helpers import Permission, expect, permission_test
from webapp.database import db
from webapp.models import Version

PERMISSIONS = [Permission("list versions", "GET", "/versions", None, expect(200, 200, 200, 200))]
test_each_actor_gets_the_status_the_contract_gives = permission_test(PERMISSIONS)


def test_list_versions_returns_every_row_with_id_version_supported_and_its_deprecation(client):
    response = client.get("/versions")

    assert response.status_code == 200
    rows = db.session.execute(select(Version.id, Version.version, Version.supported).order_by(Version.id))
    assert response.get_json() == [
        {
            "id": row.id,
            "version": row.version,
            "supported": row.supported,
            "deprecated_at": None,
            "sunset": None,
        }
        for row in rows
    ]
    assert {(v["version"], v["supported"]) for v in response.get_json()} == {("1.0", True), ("0.9", False)}


def test_list_versions_shows_a_version_added_to_the_table(client):
    db.session.add(Version(version="2.0", supported=True))
    db.session.commit()

    response = client.get("/versions")

    assert {"version": "2.0", "supported": True} in [
        {"version": v["version"], "supported": v["supported"]} for v in response.get_json()
    ]


@pytest.mark.parametrize("version", ["1.0", "0.9", "42.0-unknown", ""])
def test_list_versions_is_never_gated_by_x_version(client, version):
    response = client.get("/versions", headers={"X-Version": version})

    assert response.status_code == 200
    assert len(response.get_json()) == 2
