def test_register_then_me_returns_the_new_user(api):
    token = api.token("alice")
    response = api.client.get("/api/auth/me", headers=api.bearer(token))
    assert response.status_code == 200
    assert response.json["data"]["user"]["username"] == "alice"
