"""flask commands: seed, users create, versions and tokens purge, checked by output and database state."""

import re
from datetime import timedelta

import pytest
from sqlalchemy import delete, func, select, update

from tests.factories import login, make_user
from webapp.database import db, utcnow
from webapp.models import Item, RetiredRefreshToken, Role, Token, User, Version

SHOWN_PASSWORD = re.compile(r"password \(shown once\): (\S+)")
# The development config, with cheap hashing and quiet logging for the test run.
DEVELOPMENT = {"APP_ENV": "development", "TESTING": True, "BCRYPT_ROUNDS": 4}


def row_counts() -> dict[str, int]:
    return {
        model.__tablename__: db.session.scalar(select(func.count()).select_from(model))
        for model in (Role, Version, User, Item, Token, RetiredRefreshToken)
    }


def versions_in_db() -> dict[str, bool]:
    return dict(db.session.execute(select(Version.version, Version.supported)).all())


def shown_password(output: str) -> str:
    passwords = SHOWN_PASSWORD.findall(output)
    assert len(passwords) == 1, output
    return passwords[0]


def assert_login_works(client, username: str, password: str) -> dict:
    response = client.post("/auth/token", json={"username": username, "password": password})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def assert_refused_cleanly(result) -> None:
    """A non-zero exit that click reported itself: a message, not a crash."""
    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    assert "Error" in result.output


@pytest.mark.parametrize("app_config", [DEVELOPMENT])
def test_seed_creates_the_configured_admin_that_can_log_in(runner, client):
    result = runner.invoke(args=["seed"])

    assert result.exit_code == 0, result.output
    assert "admin account 'admin' created with the configured ADMIN_PASSWORD" in result.output
    assert not SHOWN_PASSWORD.search(result.output)
    admin = db.session.scalar(select(User).where(User.username == "admin"))
    assert admin.role_id == Role.ADMIN
    assert admin.activated
    body = assert_login_works(client, "admin", "admin")
    me = client.get("/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.get_json()["role_id"] == Role.ADMIN


def test_seed_without_admin_password_generates_one_and_prints_it_once(runner, client):
    assert client.application.config["ADMIN_PASSWORD"] == ""

    result = runner.invoke(args=["seed"])

    assert result.exit_code == 0, result.output
    password = shown_password(result.output)
    assert len(password) >= 16
    assert result.output.count(password) == 1
    assert_login_works(client, "admin", password)


def test_seed_fills_an_empty_database_with_roles_a_version_and_the_admin(runner):
    for table in reversed(db.metadata.sorted_tables):
        db.session.execute(delete(table))
    db.session.commit()

    result = runner.invoke(args=["seed"])

    assert result.exit_code == 0, result.output
    assert "roles: 2 added; versions: 1 added" in result.output
    assert dict(db.session.execute(select(Role.id, Role.name)).all()) == {1: "admin", 2: "user"}
    assert versions_in_db() == {"1.0": True}
    assert db.session.scalar(select(User.role_id).where(User.username == "admin")) == Role.ADMIN


@pytest.mark.parametrize("app_config", [DEVELOPMENT, {}])
def test_seed_twice_changes_nothing(runner):
    first = runner.invoke(args=["seed"])
    assert first.exit_code == 0, first.output
    counts = row_counts()
    admin_hash = db.session.scalar(select(User.password_hash).where(User.username == "admin"))

    second = runner.invoke(args=["seed"])

    assert second.exit_code == 0, second.output
    assert "an active admin account exists: no admin seeded" in second.output
    assert "roles: 0 added; versions: 0 added" in second.output
    assert not SHOWN_PASSWORD.search(second.output)
    assert row_counts() == counts
    assert db.session.scalar(select(User.password_hash).where(User.username == "admin")) == admin_hash


@pytest.mark.parametrize("app_config", [DEVELOPMENT])
def test_seed_keeps_the_password_of_an_existing_admin(runner, client):
    make_user("admin", role=Role.ADMIN, password="operator chose this")

    result = runner.invoke(args=["seed"])

    assert result.exit_code == 0, result.output
    assert "an active admin account exists" in result.output
    assert_login_works(client, "admin", "operator chose this")
    response = client.post("/auth/token", json={"username": "admin", "password": "admin"})
    assert response.status_code == 401


def test_seed_never_flips_a_version_an_operator_changed(runner):
    for version in ("1.0", "0.9"):
        runner.invoke(args=["versions", "unsupport", version])
    runner.invoke(args=["versions", "add", "2.0"])
    before = versions_in_db()
    assert before == {"1.0": False, "0.9": False, "2.0": True}

    result = runner.invoke(args=["seed"])

    assert result.exit_code == 0, result.output
    assert "versions: 0 added" in result.output
    assert versions_in_db() == before


def admins() -> dict[str, bool]:
    """Every admin account's username and whether it is active."""
    return dict(
        db.session.execute(select(User.username, User.activated).where(User.role_id == Role.ADMIN)).all()
    )


@pytest.mark.parametrize("app_config", [DEVELOPMENT])
@pytest.mark.parametrize("command", [["seed"], ["deploy"]])
def test_renaming_the_seeded_admin_does_not_seed_a_second_one(runner, client, command):
    assert runner.invoke(args=["seed"]).exit_code == 0
    admin = login(client, "admin", "admin")
    renamed = client.patch(f"/users/{admin['id']}", json={"username": "boss"}, headers=admin["headers"])
    assert renamed.status_code == 200, renamed.get_json()

    result = runner.invoke(args=command)

    assert result.exit_code == 0, result.output
    assert admins() == {"boss": True}
    assert "created" not in result.output
    refused = client.post("/auth/token", json={"username": "admin", "password": "admin"})
    assert refused.status_code == 401


@pytest.mark.parametrize("app_config", [DEVELOPMENT])
def test_seed_creates_the_admin_once_no_active_admin_is_left(runner, client):
    make_user("boss", role=Role.ADMIN, activated=False)

    result = runner.invoke(args=["seed"])

    assert result.exit_code == 0, result.output
    assert "admin account 'admin' created" in result.output
    assert admins() == {"boss": False, "admin": True}
    assert_login_works(client, "admin", "admin")


@pytest.mark.parametrize("app_config", [DEVELOPMENT])
def test_seed_says_how_to_create_an_admin_when_the_name_is_taken_by_another_account(runner):
    make_user("admin", role=Role.USER)

    result = runner.invoke(args=["seed"])

    assert result.exit_code == 0, result.output
    assert "flask users create NAME --role admin" in result.output
    assert admins() == {}


def test_users_deactivate_ends_an_admins_sessions_and_its_access(runner, client):
    make_user("root", role=Role.ADMIN)
    make_user("compromised", role=Role.ADMIN)
    session = login(client, "compromised")

    result = runner.invoke(args=["users", "deactivate", "compromised"])

    assert result.exit_code == 0, result.output
    assert admins() == {"root": True, "compromised": False}
    assert client.get("/auth/me", headers=session["headers"]).status_code == 401
    assert client.post("/auth/refresh", json={"refresh_token": session["refresh_token"]}).status_code == 401
    assert db.session.scalar(select(func.count()).select_from(Token)) == 0


def test_users_set_role_demotes_an_admin_at_once(runner, client):
    make_user("root", role=Role.ADMIN)
    make_user("demoted", role=Role.ADMIN)
    session = login(client, "demoted")

    result = runner.invoke(args=["users", "set-role", "demoted", "user"])

    assert result.exit_code == 0, result.output
    assert admins() == {"root": True}
    refused = client.post("/users", json={"username": "x", "role_id": Role.USER}, headers=session["headers"])
    assert refused.status_code == 403
    assert runner.invoke(args=["users", "set-role", "demoted", "admin"]).exit_code == 0
    assert admins() == {"root": True, "demoted": True}


@pytest.mark.parametrize("args", [["deactivate", "root"], ["set-role", "root", "user"]])
def test_users_commands_refuse_to_remove_the_last_active_admin(runner, client, args):
    make_user("root", role=Role.ADMIN)
    make_user("former", role=Role.ADMIN, activated=False)
    session = login(client, "root")

    result = runner.invoke(args=["users", *args])

    assert_refused_cleanly(result)
    assert "last active admin" in result.output
    assert admins() == {"root": True, "former": False}
    assert client.get("/auth/me", headers=session["headers"]).status_code == 200


def test_users_commands_refuse_an_unknown_account(runner):
    assert_refused_cleanly(result := runner.invoke(args=["users", "deactivate", "nobody"]))
    assert "no account named 'nobody'" in result.output


@pytest.mark.parametrize(
    ("options", "role", "role_id"),
    [
        (["--role", "admin"], "admin", Role.ADMIN),
        (["--role", "user"], "user", Role.USER),
        ([], "user", Role.USER),
    ],
)
def test_users_create_prints_a_password_that_logs_in(runner, client, options, role, role_id):
    result = runner.invoke(args=["users", "create", "carol", *options])

    assert result.exit_code == 0, result.output
    assert "user 'carol'" in result.output
    assert f", {role})" in result.output
    password = shown_password(result.output)
    body = assert_login_works(client, "carol", password)
    me = client.get("/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.get_json()["role_id"] == role_id
    assert db.session.scalar(select(User.role_id).where(User.username == "carol")) == role_id


def test_users_create_generates_a_different_password_each_time(runner):
    first = shown_password(runner.invoke(args=["users", "create", "one"]).output)
    second = shown_password(runner.invoke(args=["users", "create", "two"]).output)

    assert first != second


def test_users_create_rejects_a_taken_name(runner, client, user):
    result = runner.invoke(args=["users", "create", user.username])

    assert_refused_cleanly(result)
    assert "already taken" in result.output
    assert db.session.scalar(select(func.count()).select_from(User)) == 1
    login(client, user.username)


@pytest.mark.parametrize("name", ["", "with space", "semi;colon", "slash/name", "x" * 65, "quote'name"])
def test_users_create_rejects_an_invalid_name(runner, name):
    result = runner.invoke(args=["users", "create", name])

    assert_refused_cleanly(result)
    assert db.session.scalar(select(func.count()).select_from(User)) == 0


def test_users_create_rejects_an_unknown_role(runner):
    result = runner.invoke(args=["users", "create", "dave", "--role", "superuser"])

    assert_refused_cleanly(result)
    assert db.session.scalar(select(func.count()).select_from(User)) == 0


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["add", "2.0"], {"1.0": True, "0.9": False, "2.0": True}),
        (["add", "2.0", "--unsupported"], {"1.0": True, "0.9": False, "2.0": False}),
        (["support", "0.9"], {"1.0": True, "0.9": True}),
        (["unsupport", "1.0"], {"1.0": False, "0.9": False}),
    ],
)
def test_versions_commands_change_the_table(runner, args, expected):
    result = runner.invoke(args=["versions", *args])

    assert result.exit_code == 0, result.output
    assert f"version '{args[1]}' is" in result.output
    assert versions_in_db() == expected


@pytest.mark.parametrize("command", ["support", "unsupport"])
def test_versions_support_commands_reject_an_unknown_version(runner, command):
    result = runner.invoke(args=["versions", command, "3.0"])

    assert_refused_cleanly(result)
    assert "not listed" in result.output
    assert versions_in_db() == {"1.0": True, "0.9": False}


@pytest.mark.parametrize("version", ["9" * 33, "", "1 0", "1.0\n"])
def test_versions_add_refuses_a_version_the_table_cannot_hold(runner, version):
    result = runner.invoke(args=["versions", "add", version])

    assert_refused_cleanly(result)
    db.session.rollback()
    assert versions_in_db() == {"1.0": True, "0.9": False}


def test_versions_list_shows_every_version_and_its_state(runner):
    runner.invoke(args=["versions", "add", "2.0", "--unsupported"])

    result = runner.invoke(args=["versions", "list"])

    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["1.0\tsupported", "0.9\tunsupported", "2.0\tunsupported"]


@pytest.mark.parametrize("app_config", [{"VERSION_CACHE_SECONDS": 3600}])
def test_versions_unsupport_takes_effect_at_once_in_this_process(runner, client):
    assert client.get("/roles", headers={"X-Version": "1.0"}).status_code == 200

    result = runner.invoke(args=["versions", "unsupport", "1.0"])

    assert result.exit_code == 0, result.output
    response = client.get("/roles", headers={"X-Version": "1.0"})
    assert response.status_code == 426
    assert response.get_json()["detail"] == "Version not supported anymore"


@pytest.mark.parametrize("app_config", [{"VERSION_CACHE_SECONDS": 3600}])
def test_versions_support_and_add_take_effect_at_once_in_this_process(runner, client):
    assert client.get("/roles", headers={"X-Version": "0.9"}).status_code == 426
    assert client.get("/roles", headers={"X-Version": "2.0"}).status_code == 426

    runner.invoke(args=["versions", "support", "0.9"])
    runner.invoke(args=["versions", "add", "2.0"])

    assert client.get("/roles", headers={"X-Version": "0.9"}).status_code == 200
    assert client.get("/roles", headers={"X-Version": "2.0"}).status_code == 200


def test_tokens_purge_deletes_only_sessions_whose_refresh_token_expired(runner, client, user):
    other = make_user("bob")
    live = login(client, user.username)
    expired = login(client, other.username)
    past = utcnow() - timedelta(seconds=1)
    db.session.execute(
        update(Token).where(Token.user_id == other.id).values(access_expires_at=past, refresh_expires_at=past)
    )
    db.session.commit()

    result = runner.invoke(args=["tokens", "purge"])

    assert result.exit_code == 0, result.output
    assert "1 expired sessions deleted" in result.output
    assert db.session.scalars(select(Token.user_id)).all() == [user.id]
    assert client.get("/auth/me", headers=live["headers"]).status_code == 200
    refreshed = client.post("/auth/refresh", json={"refresh_token": live["refresh_token"]})
    assert refreshed.status_code == 200
    gone = client.post("/auth/refresh", json={"refresh_token": expired["refresh_token"]})
    assert gone.status_code == 401


def test_tokens_purge_keeps_a_session_whose_access_token_expired_but_refresh_is_live(runner, client, user):
    session = login(client, user.username)
    db.session.execute(update(Token).values(access_expires_at=utcnow() - timedelta(minutes=1)))
    db.session.commit()

    result = runner.invoke(args=["tokens", "purge"])

    assert result.exit_code == 0, result.output
    assert "0 expired sessions deleted" in result.output
    assert db.session.scalar(select(func.count()).select_from(Token)) == 1
    assert client.post("/auth/refresh", json={"refresh_token": session["refresh_token"]}).status_code == 200


def test_versions_deprecate_sets_the_date_and_sunset_and_the_gate_announces_them(runner, client):
    result = runner.invoke(args=["versions", "deprecate", "1.0", "--sunset", "2099-06-30"])

    assert result.exit_code == 0, result.output
    assert "version '1.0' is deprecated since" in result.output
    assert "sunset 2099-06-30" in result.output
    row = db.session.scalar(select(Version).where(Version.version == "1.0"))
    assert (row.supported, row.sunset.isoformat()) == (True, "2099-06-30")
    assert abs((utcnow() - row.deprecated_at).total_seconds()) < 60
    response = client.get("/roles", headers={"X-Version": "1.0"})
    assert (response.status_code, response.headers["Sunset"]) == (200, "Tue, 30 Jun 2099 00:00:00 GMT")
    assert (
        runner.invoke(args=["versions", "list"]).output.splitlines()[0].startswith("1.0\tdeprecated since ")
    )


def test_versions_deprecate_again_keeps_the_first_date_and_support_ends_the_deprecation(runner):
    runner.invoke(args=["versions", "deprecate", "1.0", "--sunset", "2099-06-30"])
    first = db.session.scalar(select(Version.deprecated_at).where(Version.version == "1.0"))

    runner.invoke(args=["versions", "deprecate", "1.0", "--sunset", "2099-12-31"])
    db.session.expire_all()
    row = db.session.scalar(select(Version).where(Version.version == "1.0"))
    assert (row.deprecated_at, row.sunset.isoformat()) == (first, "2099-12-31")

    assert runner.invoke(args=["versions", "support", "1.0"]).exit_code == 0
    db.session.expire_all()
    row = db.session.scalar(select(Version).where(Version.version == "1.0"))
    assert (row.supported, row.deprecated_at, row.sunset) == (True, None, None)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["0.9"], "not a supported version"),
        (["7.0"], "not a supported version"),
        (["1.0", "--sunset", "30/06/2027"], "Invalid value for '--sunset'"),
    ],
)
def test_versions_deprecate_refuses_what_it_cannot_deprecate(runner, args, message):
    result = runner.invoke(args=["versions", "deprecate", *args])

    assert_refused_cleanly(result)
    assert message in result.output
    db.session.expire_all()
    assert db.session.scalars(select(Version.deprecated_at)).all() == [None, None]
