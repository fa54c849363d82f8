def test_login_and_me(client, user, auth_headers):
    response = client.get("/auth/me", headers=auth_headers)
    assert response.status_code == 200
    assert response.get_json()["username"] == "alice"
