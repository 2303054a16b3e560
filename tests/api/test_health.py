"""Health endpoints with real database and Redis checks."""

from __future__ import annotations


def test_health_reports_each_dependency(client, backend):
    response = client.get("/api/health")
    assert response.status_code == 200
    body = response.json
    assert body["status"] == "healthy"
    assert {"timestamp", "service", "version", "uptime", "checks"} <= body.keys()
    assert body["checks"]["database"]["status"] == "up" and body["checks"]["database"]["responseTime"] >= 0
    assert body["checks"]["redis"]["status"] == "up"
    if backend == "embedded":
        assert body["checks"]["redis"]["mode"] == "embedded"  # no false failure without Redis
    else:
        assert "responseTime" in body["checks"]["redis"]
    assert body["checks"]["memory"]["status"] == "up"


def test_live_and_ready(client):
    assert client.get("/api/health/live").json["status"] == "alive"
    ready = client.get("/api/health/ready")
    assert ready.status_code == 200 and ready.json["status"] == "ready"


def test_database_down_is_unhealthy_and_not_ready(make_app):
    client = make_app(DATABASE_URL="postgresql://root@127.0.0.1:1/nowhere?connect_timeout=1").test_client()
    health = client.get("/api/health")
    assert health.status_code == 503
    assert health.json["status"] == "unhealthy" and health.json["checks"]["database"]["status"] == "down"
    ready = client.get("/api/health/ready")
    assert ready.status_code == 503 and ready.json["status"] == "not_ready" and "database" in ready.json["error"]
    assert client.get("/api/health/live").status_code == 200


def test_redis_down_is_degraded_and_the_api_keeps_working(make_app, backend):
    app = make_app(REDIS_URL="redis://127.0.0.1:1/0")
    client = app.test_client()
    health = client.get("/api/health")
    assert health.status_code == 200
    assert health.json["status"] == "degraded" and health.json["checks"]["redis"]["status"] == "down"
    assert client.get("/api/health/ready").status_code == 200  # the API answers: kept in the load balancer
    from tests.conftest import Api

    api = Api(client)
    assert api.register("alice").status_code == 201  # limits fall back to memory, no 500
    assert api.login("alice", "Wrong-Password-1!").status_code == 401
    assert api.login("alice").status_code == 200


def test_signing_keys_encryption_keys_cannot_read_are_unhealthy_and_not_ready(make_app, backend):
    """A key dropped from ENCRYPTION_KEYS before `secrets reencrypt`, or a typo: every sign-in and
    token was a 500 while health said healthy, readiness 200 and `keys ensure` "present"."""
    from cryptography.fernet import Fernet

    from tests.conftest import Api

    assert make_app().test_cli_runner().invoke(args=["keys", "ensure"]).exit_code == 0
    broken = make_app(ENCRYPTION_KEYS=Fernet.generate_key().decode())
    client = broken.test_client()
    health = client.get("/api/health")
    assert health.status_code == 503 and health.json["checks"]["signingKeys"] == {"status": "down", "error": "SecretBoxError"}
    ready = client.get("/api/health/ready")
    assert ready.status_code == 503 and ready.json["error"] == "signing keys unavailable"
    ensure = broken.test_cli_runner().invoke(args=["keys", "ensure"])
    assert ensure.exit_code == 1 and "ENCRYPTION_KEYS" in ensure.output and "reencrypt" in ensure.output
    assert Api(make_app().test_client()).register("alice").status_code == 201  # the right key reads them


def test_a_redis_socket_url_starts_the_service(make_app, backend, tmp_path):
    """REDIS_URL=unix:///path (redis-py's form for a socket) stopped the start: the rate limiter knew
    no "idp+unix" storage. With no Redis behind the socket, the service answers, degraded."""
    client = make_app(REDIS_URL=f"unix://{tmp_path}/redis.sock?db=0").test_client()
    health = client.get("/api/health")
    assert health.status_code == 200 and health.json["checks"]["redis"]["status"] == "down"
