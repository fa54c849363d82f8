"""GET /roles and /roles/{id}: the fixed, public list of roles."""

import pytest

from tests.helpers import PROBLEM, Permission, expect, permission_test

PERMISSIONS = [
    Permission("list roles", "GET", "/roles", None, expect(200, 200, 200, 200)),
    Permission("get role", "GET", "/roles/2", None, expect(200, 200, 200, 200)),
]
test_each_actor_gets_the_status_the_contract_gives = permission_test(PERMISSIONS)


def test_list_roles_returns_admin_and_user(client):
    response = client.get("/roles")

    assert response.status_code == 200
    assert response.get_json() == [{"id": 1, "name": "admin"}, {"id": 2, "name": "user"}]


@pytest.mark.parametrize(("role_id", "name"), [(1, "admin"), (2, "user")])
def test_get_role_by_id_returns_it(client, role_id, name):
    response = client.get(f"/roles/{role_id}")

    assert response.status_code == 200
    assert response.get_json() == {"id": role_id, "name": name}


def test_roles_need_no_token(client):
    response = client.get("/roles", headers={"Authorization": "Bearer not-a-token"})

    assert response.status_code == 200


@pytest.mark.parametrize("role_id", ["3", "0", "-1", "abc", "1.0", "99999999999999999999999"])
def test_get_unknown_or_malformed_role_id_is_404_problem(client, role_id):
    response = client.get(f"/roles/{role_id}")

    assert response.status_code == 404
    assert response.mimetype == PROBLEM
    body = response.get_json()
    assert body["status"] == 404
    assert body["detail"]
