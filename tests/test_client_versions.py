"""The X-Version gate: supported, unsupported and unknown versions, exempt paths and the cache."""

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import update

from tests.factories import basic
from tests.helpers import utc_time
from webapp.database import db
from webapp.models import Version

UPGRADE = "Version not supported anymore"

# X-Version sent (None: no header) -> expected status on a gated route.
GATE = [
    (None, 200),
    ("1.0", 200),
    ("0.9", 426),  # listed but unsupported (seeded by conftest)
    ("7.7", 426),  # not listed at all
    ("", 426),
    ("1.0 ", 426),
]


def set_supported(version: str, supported: bool) -> None:
    """Change the versions table directly, as another process would (no cache clearing)."""
    db.session.execute(update(Version).where(Version.version == version).values(supported=supported))
    db.session.commit()


def version_header(version: str | None) -> dict[str, str]:
    return {} if version is None else {"X-Version": version}


def assert_upgrade_required(response) -> None:
    assert response.status_code == 426
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["detail"] == UPGRADE
    assert body["status"] == 426
    assert body["title"] == "Upgrade Required"


@pytest.mark.parametrize(("version", "status"), GATE)
def test_public_route_is_gated_by_x_version(client, version, status):
    response = client.get("/roles", headers=version_header(version))

    assert response.status_code == status


@pytest.mark.parametrize(("version", "status"), GATE)
def test_authenticated_route_is_gated_by_x_version(client, auth_headers, version, status):
    response = client.get("/items", headers={**auth_headers, **version_header(version)})

    assert response.status_code == status


@pytest.mark.parametrize("version", ["0.9", "7.7"])
def test_refused_version_gets_426_problem_with_the_reference_detail(client, version):
    assert_upgrade_required(client.get("/roles", headers={"X-Version": version}))


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", "/items"), ("post", "/items"), ("get", "/auth/me"), ("post", "/users"), ("delete", "/items/1")],
)
def test_gate_runs_before_authentication(client, method, path):
    response = getattr(client, method)(path, headers={"X-Version": "0.9"})

    assert_upgrade_required(response)
    assert "WWW-Authenticate" not in response.headers


def test_gate_runs_before_body_validation(client):
    response = client.post("/auth/token", json={"nonsense": True}, headers={"X-Version": "7.7"})

    assert_upgrade_required(response)


@pytest.mark.parametrize("path", ["/versions", "/docs", "/openapi.json", "/logo.png", "/healthz", "/readyz"])
@pytest.mark.parametrize("version", ["0.9", "7.7"])
def test_exempt_paths_ignore_x_version(client, user, path, version):
    headers = {"X-Version": version, **basic(user.username)}

    with client.get(path, headers=headers) as response:
        assert response.status_code == 200


@pytest.mark.parametrize("app_config", [{"VERSION_CACHE_SECONDS": 3600}])
def test_direct_table_change_is_not_seen_while_the_cache_is_fresh(client):
    assert client.get("/roles", headers={"X-Version": "1.0"}).status_code == 200
    assert client.get("/roles", headers={"X-Version": "0.9"}).status_code == 426

    set_supported("1.0", False)
    set_supported("0.9", True)

    assert client.get("/roles", headers={"X-Version": "1.0"}).status_code == 200
    assert client.get("/roles", headers={"X-Version": "0.9"}).status_code == 426


@pytest.mark.parametrize("app_config", [{"VERSION_CACHE_SECONDS": 0}])
def test_direct_table_change_is_seen_at_once_without_cache(client):
    assert client.get("/roles", headers={"X-Version": "1.0"}).status_code == 200
    assert client.get("/roles", headers={"X-Version": "0.9"}).status_code == 426

    set_supported("1.0", False)
    set_supported("0.9", True)

    assert_upgrade_required(client.get("/roles", headers={"X-Version": "1.0"}))
    assert client.get("/roles", headers={"X-Version": "0.9"}).status_code == 200


@pytest.mark.parametrize("app_config", [{"VERSION_CACHE_SECONDS": 0}])
def test_newly_listed_version_is_accepted(client):
    db.session.add(Version(version="2.0", supported=True))
    db.session.commit()

    assert client.get("/roles", headers={"X-Version": "2.0"}).status_code == 200


def deprecate(version: str, *, deprecated_at: datetime, sunset: date | None) -> None:
    """Deprecate directly in the table, as `flask versions deprecate` on another instance would."""
    db.session.execute(
        update(Version).where(Version.version == version).values(deprecated_at=deprecated_at, sunset=sunset)
    )
    db.session.commit()


def test_a_deprecated_version_is_served_with_deprecation_and_sunset_headers(client, user, auth_headers):
    deprecated_at = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)
    deprecate("1.0", deprecated_at=deprecated_at, sunset=date(2099, 6, 30))

    for path, headers in (("/roles", {}), ("/items", auth_headers), ("/items/999", auth_headers)):
        response = client.get(path, headers={**headers, "X-Version": "1.0"})
        assert response.status_code in (200, 404)
        assert response.headers["Deprecation"] == f"@{int(deprecated_at.timestamp())}"
        assert response.headers["Sunset"] == "Tue, 30 Jun 2099 00:00:00 GMT"
    # Other versions, and requests with no version, hear nothing of it.
    assert "Deprecation" not in client.get("/roles").headers
    assert "Deprecation" not in client.get("/roles", headers={"X-Version": "0.9"}).headers


def test_a_deprecated_version_without_a_sunset_has_no_sunset_header(client):
    deprecate("1.0", deprecated_at=datetime.now(UTC), sunset=None)

    response = client.get("/roles", headers={"X-Version": "1.0"})

    assert response.status_code == 200
    assert response.headers["Deprecation"].startswith("@")
    assert "Sunset" not in response.headers


@pytest.mark.parametrize(
    ("sunset", "status"),
    [
        (datetime.now(UTC).date() - timedelta(days=1), 426),
        (datetime.now(UTC).date(), 426),
        (date(2099, 1, 1), 200),
    ],
    ids=["yesterday", "today", "later"],
)
def test_from_its_sunset_day_a_version_is_426_with_no_further_command(client, sunset, status):
    deprecate("1.0", deprecated_at=datetime(2026, 1, 1, tzinfo=UTC), sunset=sunset)

    response = client.get("/roles", headers={"X-Version": "1.0"})

    assert response.status_code == status
    if status == 426:
        assert_upgrade_required(response)


def test_the_versions_list_shows_deprecation_and_sunset(client):
    deprecate("1.0", deprecated_at=datetime(2026, 11, 30, 12, 0, tzinfo=UTC), sunset=date(2027, 6, 30))

    listed = {row["version"]: row for row in client.get("/versions").get_json()}

    assert utc_time(listed["1.0"]["deprecated_at"]) == datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    assert listed["1.0"]["sunset"] == "2027-06-30"
    assert (listed["0.9"]["deprecated_at"], listed["0.9"]["sunset"]) == (None, None)
