"""Rate limits of API.md: 429 with Retry-After and RateLimit headers, per IP and shared across processes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

import pytest
import redis
from sqlalchemy import select

from idp.accounts.models import Session
from idp.audit.models import AuditEvent
from idp.extensions import db
from idp.security.passwords import PasswordHashing
from tests.conftest import Api
from tests.support.concurrency import wrong_passwords_at_once

BAD = {"emailOrUsername": "alice", "password": "Wrong-Password-1!"}


def assert_limited(response) -> None:
    assert response.status_code == 429
    assert response.json == {"success": False, "message": "Too many requests, please try again later", "code": "rate_limited"}
    assert int(response.headers["Retry-After"]) > 0
    assert response.headers["RateLimit-Limit"] and response.headers["RateLimit-Remaining"] == "0"
    assert 0 < int(response.headers["RateLimit-Reset"]) <= 3601  # seconds to wait (rounded up), not an epoch time


def test_login_allows_five_failures_per_ip_then_429(make_app):
    app = make_app(RATE_LIMIT_LOGIN="5 per 15 minutes")
    api = Api(app.test_client())
    api.register("alice")
    for _ in range(5):
        assert api.client.post("/api/auth/login", json=BAD).status_code == 401
    assert_limited(api.client.post("/api/auth/login", json=BAD))
    assert_limited(api.login("alice"))  # the right password does not get through either
    other_ip = api.client.post("/api/auth/login", json=BAD, environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert other_ip.status_code == 401


def test_successful_logins_do_not_use_up_the_failure_budget(make_app):
    app = make_app(RATE_LIMIT_LOGIN="2 per 15 minutes")
    api = Api(app.test_client())
    api.register("alice")
    for _ in range(5):
        assert api.login("alice").status_code == 200


def test_registration_is_limited_per_ip(make_app):
    app = make_app(RATE_LIMIT_REGISTER="3 per hour")
    api = Api(app.test_client())
    for name in ("ann", "ben", "cat"):
        assert api.register(name).status_code == 201
    assert_limited(api.register("dan"))


def test_only_refusals_say_when_to_retry_and_preflights_are_free(make_app):
    app = make_app(RATE_LIMIT_GENERAL="3 per 15 minutes", CORS_ORIGINS="https://app.example.com")
    client = app.test_client()
    preflight = {"Origin": "https://app.example.com", "Access-Control-Request-Method": "GET"}
    for _ in range(5):
        assert client.options("/api/auth/me", headers=preflight).status_code == 200
    answers = [client.get("/api/auth/me") for _ in range(3)]
    assert [a.status_code for a in answers] == [401] * 3
    assert [a.headers["RateLimit-Remaining"] for a in answers] == ["2", "1", "0"]  # no preflight was counted
    assert all("Retry-After" not in a.headers for a in answers)
    assert_limited(client.get("/api/auth/me"))


def test_an_ipv6_client_is_counted_by_its_64_network(make_app):
    """Anyone with IPv6 holds a /64 at least: a new address for each request must not be a new budget."""
    app = make_app(RATE_LIMIT_REGISTER="3 per hour")
    api = Api(app.test_client())
    for n, name in enumerate(("ann", "ben", "cat", "dan")):
        response = api.register(name, environ_base={"REMOTE_ADDR": f"2001:db8:1:2::{n + 1:x}"})
        assert response.status_code == (201 if n < 3 else 429), (name, response.json)
    assert api.register("eve", environ_base={"REMOTE_ADDR": "2001:db8:1:3::1"}).status_code == 201  # the next /64
    assert api.register("fay", environ_base={"REMOTE_ADDR": "::ffff:192.0.2.7"}).status_code == 201  # IPv4 as itself


def test_the_general_limit_is_one_window_for_the_whole_api(make_app):
    """API.md: 100 requests per 15 minutes for all of /api from one address, not 100 on each
    endpoint; a path that no route serves (404) and a method its route does not take (405) count
    in the same window."""
    app = make_app(RATE_LIMIT_GENERAL="6 per 15 minutes")
    client = app.test_client()
    assert client.get("/api/auth/me").status_code == 401
    assert client.get("/api/auth/sessions").status_code == 401
    assert client.get("/api/nothing-here").status_code == 404
    assert client.get("/api").status_code == 404
    assert client.delete("/api/auth/login").status_code == 405
    assert client.post("/api/auth/refresh").status_code == 401
    assert_limited(client.get("/api/audit-logs"))
    assert_limited(client.get("/api/no/such/route"))
    assert client.get("/nothing-here").status_code == 404  # outside /api: not the API's limit


def test_general_limit_covers_the_api_but_not_health_checks(make_app):
    app = make_app(RATE_LIMIT_GENERAL="5 per 15 minutes")
    client = app.test_client()
    for _ in range(5):
        assert client.get("/api/auth/me").status_code == 401
    assert_limited(client.get("/api/auth/me"))
    for _ in range(10):
        assert client.get("/api/health/live").status_code == 200


def test_forwarded_for_is_ignored_without_trusted_proxies(make_app):
    app = make_app(RATE_LIMIT_GENERAL="2 per 15 minutes", TRUSTED_PROXIES="0")
    client = app.test_client()
    for n in range(2):
        client.get("/api/auth/me", headers={"X-Forwarded-For": f"198.51.100.{n}"})
    assert client.get("/api/auth/me", headers={"X-Forwarded-For": "198.51.100.99"}).status_code == 429


def test_forwarded_for_is_honoured_for_one_trusted_proxy(make_app):
    app = make_app(RATE_LIMIT_GENERAL="2 per 15 minutes", TRUSTED_PROXIES="1")
    client = app.test_client()
    for _ in range(2):
        client.get("/api/auth/me", headers={"X-Forwarded-For": "198.51.100.1"})
    assert client.get("/api/auth/me", headers={"X-Forwarded-For": "198.51.100.1"}).status_code == 429
    assert client.get("/api/auth/me", headers={"X-Forwarded-For": "198.51.100.2"}).status_code == 401
    # a client cannot add its own hop in front of the proxy's
    spoofed = client.get("/api/auth/me", headers={"X-Forwarded-For": "10.9.9.9, 198.51.100.1"})
    assert spoofed.status_code == 429


def test_a_port_the_proxy_forwards_with_the_address_is_not_a_new_budget(make_app):
    """Some proxies forward the client's address with its port (Azure's Application Gateway:
    `203.0.113.5:41234`); the client picks a new port with each connection, so counted with it
    every connection had a budget of its own, for the general limit and the failed sign-ins alike."""
    app = make_app(RATE_LIMIT_GENERAL="2 per 15 minutes", RATE_LIMIT_LOGIN="2 per 15 minutes", TRUSTED_PROXIES="1")
    client = app.test_client()
    statuses = [client.get("/api/auth/me", headers={"X-Forwarded-For": f"198.51.100.1:{40000 + n}"}).status_code for n in range(3)]
    assert statuses == [401, 401, 429]
    six = [client.get("/api/auth/me", headers={"X-Forwarded-For": f"[2001:db8::{n + 1}]:{40000 + n}"}).status_code for n in range(3)]
    assert six == [401, 401, 429]  # and an IPv6 one is still counted by its /64
    logins = [
        client.post("/api/auth/login", json=BAD, headers={"X-Forwarded-For": f"203.0.113.9:{50000 + n}"}).status_code for n in range(3)
    ]
    assert logins == [401, 401, 429]


def test_a_forwarded_port_is_left_out_of_the_address_recorded(make_app):
    """The address a sign-in records (session, audit event) is the client's without the port the
    proxy forwarded: with it an IPv6 address overflowed its column (a 500 on PostgreSQL at every
    registration and sign-in), and no administrator's search by address found the events."""
    app = make_app(TRUSTED_PROXIES="1")
    api = Api(app.test_client())
    six = api.register("alice", headers={"X-Forwarded-For": "[2001:db8:1234:5678:9abc:def0:1234:5678]:41234"})
    assert six.status_code == 201, six.json
    four = api.register("bobby", headers={"X-Forwarded-For": "203.0.113.5:41234"})
    assert four.status_code == 201, four.json
    with app.app_context():
        recorded = {*db.session.scalars(select(AuditEvent.ip_address)), *db.session.scalars(select(Session.ip_address))}
    assert recorded == {"2001:db8:1234:5678:9abc:def0:1234:5678", "203.0.113.5"}


SECOND_PROCESS = """
import json, sys
from idp import create_app
env = json.loads(sys.argv[1])
app = create_app(env, instance_path=env.pop("_instance"), dotenv=False)
client = app.test_client()
for _ in range(3):
    client.post("/api/auth/login", json={"emailOrUsername": "alice", "password": "Wrong-Password-1!"})
"""


@pytest.mark.parametrize("backend", ["postgres"])  # the embedded default is one process by design
def test_limits_are_shared_by_processes_through_redis(make_app, backend, backend_config, instance_dir):
    prefix = f"test-{uuid.uuid4().hex}"
    app = make_app(RATE_LIMIT_LOGIN="5 per 15 minutes", RATE_LIMIT_KEY_PREFIX=prefix)
    env = {**backend_config(backend), "RATE_LIMIT_LOGIN": "5 per 15 minutes", "RATE_LIMIT_KEY_PREFIX": prefix, "_instance": str(instance_dir)}
    subprocess.run([sys.executable, "-c", SECOND_PROCESS, json.dumps(env)], check=True, timeout=60)
    keys = redis.Redis.from_url(env["REDIS_URL"]).keys(f"*{prefix}*")
    assert keys, "the other process counted its failures in Redis"
    client = app.test_client()
    for _ in range(2):
        assert client.post("/api/auth/login", json=BAD).status_code == 401
    assert_limited(client.post("/api/auth/login", json=BAD))


def test_an_operator_can_switch_a_limit_off(make_app):
    """For benchmarks: RATE_LIMIT_GENERAL=off removes the general limit, the others stay."""
    app = make_app(RATE_LIMIT_GENERAL="off", RATE_LIMIT_LOGIN="2 per 15 minutes")
    client = app.test_client()
    for _ in range(20):
        assert client.get("/api/auth/me").status_code == 401
    for _ in range(2):
        client.post("/api/auth/login", json=BAD)
    assert_limited(client.post("/api/auth/login", json=BAD))


def test_with_the_general_limit_off_the_limiter_skips_what_no_limit_reaches(make_app):
    """The limiter's request hooks cost more than a refresh itself: they are skipped for the API's
    endpoints that declare no limit once the general limit is off, and only then."""
    from idp.ratelimits import UNLIMITED

    off = make_app(RATE_LIMIT_GENERAL="off").extensions[UNLIMITED]
    on = make_app(RATE_LIMIT_GENERAL="100 per minute").extensions[UNLIMITED]
    assert {"api.auth.refresh", "api.auth.me", "oauth.token"} <= off
    assert "api.auth.refresh" not in on and "oauth.token" in on
    assert "api.auth.register" not in off  # it declares its own limit
    assert "api.auth.login" in off  # its limits are the service's (LoginThrottle), none of the limiter's


def test_a_view_with_its_own_limit_is_evaluated_once_a_request(make_app, monkeypatch):
    """Flask-Limiter resolves a request's limits before the view and again in the decorator of a
    view with its own limit; the first finds nothing for such a view (its own and the general
    limit are the decorator's), so it is skipped: one evaluation a login, not two."""
    from flask_limiter import Limiter

    evaluated: list[str] = []
    evaluate = Limiter._Limiter__evaluate_limits  # type: ignore[attr-defined]

    def counted(self, endpoint, limits):
        evaluated.append(endpoint)
        return evaluate(self, endpoint, limits)

    monkeypatch.setattr(Limiter, "_Limiter__evaluate_limits", counted)
    for general in ("off", "100 per minute"):
        api = Api(make_app(RATE_LIMIT_GENERAL=general).test_client())
        evaluated.clear()
        assert api.register(f"eve{general[:3]}").status_code == 201
        assert evaluated == ["api.auth.register"], general


def test_the_general_limit_covers_views_with_their_own_limit(make_app):
    """The login counts failures only against its own limit, but every request against the general one."""
    app = make_app(RATE_LIMIT_GENERAL="4 per 15 minutes", RATE_LIMIT_LOGIN="100 per 15 minutes")
    api = Api(app.test_client())
    assert api.register("frank").status_code == 201
    for _ in range(3):
        assert api.login("frank").status_code == 200
    assert_limited(api.login("frank"))


def test_second_factor_attempts_are_limited_per_ip_and_per_account(make_app):
    app = make_app(RATE_LIMIT_TWO_FACTOR="3 per 15 minutes")
    api = Api(app.test_client())
    api.enable_totp(api.verified_token())
    wrong = {"code": "000000"}
    for n in range(3):  # per account, from three addresses: each challenge gets one wrong code
        temp = api.challenge()["tempToken"]
        api.client.post("/api/2fa/verify", json={"tempToken": temp, **wrong}, environ_base={"REMOTE_ADDR": f"203.0.113.{n}"})
    temp = api.challenge()["tempToken"]
    blocked = api.client.post("/api/2fa/verify", json={"tempToken": temp, **wrong}, environ_base={"REMOTE_ADDR": "198.51.100.4"})
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0
    for _ in range(4):  # per IP, whatever the account
        last = api.client.post("/api/2fa/verify-backup-code", json={"tempToken": "x", "code": "y"}, environ_base={"REMOTE_ADDR": "192.0.2.50"})
    assert_limited(last)


def test_concurrent_second_factor_guesses_cannot_outrun_the_account_limit(make_app):
    """Each code is counted before its check, atomically: eight wrong codes at once, each from
    another address and with a challenge of its own, get three checks (the limit), not eight."""
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    from idp.audit.models import AuditEvent
    from idp.extensions import db

    app = make_app(RATE_LIMIT_TWO_FACTOR="3 per 15 minutes")
    api = Api(app.test_client())
    api.enable_totp(api.verified_token())
    challenges = [api.challenge()["tempToken"] for _ in range(8)]
    start = Barrier(8)

    def guess(n: int) -> int:
        client = app.test_client()
        start.wait(timeout=30)
        body = {"tempToken": challenges[n], "code": "000000"}
        return client.post("/api/2fa/verify", json=body, environ_base={"REMOTE_ADDR": f"203.0.113.{n}"}).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = sorted(pool.map(guess, range(8)))
    assert statuses == [400] * 3 + [429] * 5
    with app.app_context():
        failed = db.session.scalars(db.select(AuditEvent).where(AuditEvent.event == "2fa_failed")).all()
    assert len(failed) == 3


def test_a_sign_in_is_one_redis_round_trip_with_its_windows_in_the_headers(make_app, redis_url, monkeypatch):
    """After the password check one script settles both limits: it reads the client network's
    failed sign-ins, then forgets the account's failures (a right password) or counts a failure
    against both (a wrong one). One round trip either way, no limiter hooks. The RateLimit headers
    are the network's sign-in window. (Redis on both backends: SQLite with Redis is a
    configuration too.)"""
    app = make_app(
        REDIS_URL=redis_url, RATE_LIMIT_GENERAL="off", RATE_LIMIT_LOGIN="5 per 15 minutes", RATE_LIMIT_LOGIN_ACCOUNT="50 per 15 minutes"
    )
    api = Api(app.test_client())
    api.register("alice")
    assert api.login("alice").status_code == 200  # the script is loaded into Redis by now
    commands = record_redis_commands(monkeypatch)
    signed_in = api.login("alice")
    assert signed_in.status_code == 200 and commands == ["EVALSHA"], commands
    assert (signed_in.headers["RateLimit-Limit"], signed_in.headers["RateLimit-Remaining"]) == ("5", "5")
    commands.clear()
    failed = api.client.post("/api/auth/login", json=BAD)
    assert failed.status_code == 401 and commands == ["EVALSHA"], commands
    assert failed.headers["RateLimit-Remaining"] == "4" and 890 <= int(failed.headers["RateLimit-Reset"]) <= 900
    assert "Retry-After" not in failed.headers
    assert api.login("alice").headers["RateLimit-Remaining"] == "4"


def record_redis_commands(monkeypatch) -> list[str]:
    """The name of each Redis command this process sends from now on (whoever else uses the server)."""
    commands: list[str] = []
    execute = redis.Redis.execute_command

    def recorded(self, *args, **options):
        commands.append(str(args[0]).upper())
        return execute(self, *args, **options)

    monkeypatch.setattr(redis.Redis, "execute_command", recorded)
    return commands


def test_concurrent_guesses_cannot_outrun_the_networks_failures(make_app):
    """Ten wrong passwords at once from one address: each is checked, but the network's limit is
    settled atomically with each answer, so three (the limit) are answered and seven refused. A
    test before the check and a count after it let all ten through."""
    app = make_app(RATE_LIMIT_LOGIN="3 per 15 minutes")
    Api(app.test_client()).register("alice")
    statuses = wrong_passwords_at_once(app, 10, address=lambda n: "127.0.0.1")
    assert sorted(statuses) == [401] * 3 + [429] * 7


def test_a_refused_network_is_answered_before_any_work_until_its_window_frees(make_app, redis_url, monkeypatch):
    """A network whose failures fill its window is remembered by the process: its next tries get
    429 with no password check and no Redis round trip, until its oldest failure leaves the
    window; then it is asked again. Another process that has not seen it refused learns it from
    its first try's answer, and pays that one check."""
    app = make_app(REDIS_URL=redis_url, RATE_LIMIT_GENERAL="off", RATE_LIMIT_LOGIN="2 per 15 minutes")
    api = Api(app.test_client())
    api.register("alice")
    for _ in range(2):
        assert api.client.post("/api/auth/login", json=BAD).status_code == 401
    commands = record_redis_commands(monkeypatch)
    checks: list[str] = []
    monkeypatch.setattr(PasswordHashing, "verify", lambda self, stored, password: checks.append(password) or False)
    for _ in range(3):
        refused = api.login("alice")
        assert_limited(refused)
        assert 890 <= int(refused.headers["Retry-After"]) <= 900
    assert commands == [] and checks == []
    other_process = Api(make_app(REDIS_URL=redis_url, RATE_LIMIT_GENERAL="off", RATE_LIMIT_LOGIN="2 per 15 minutes").test_client())
    for _ in range(3):
        assert_limited(other_process.client.post("/api/auth/login", json=BAD))
    assert commands == ["EVALSHA"] and len(checks) == 1
    later = time.time() + 901  # past the window of both failures
    monkeypatch.setattr(time, "time", lambda: later)
    assert api.client.post("/api/auth/login", json=BAD).status_code == 401  # asked again, and answered
    assert commands == ["EVALSHA"] * 2 and len(checks) == 2


def test_the_sign_in_limits_stay_in_redis_while_flask_limiter_counts_in_memory(make_app, redis_url, monkeypatch):
    """Once its hooks have found Redis down, Flask-Limiter counts in a memory store of its own until
    they run again and see Redis back (the sign-in skips them). The sign-in limits are not on its
    strategy: they ask Redis on every sign-in and fall back by themselves, so they are shared by
    every process again as soon as Redis answers."""
    app = make_app(REDIS_URL=redis_url, RATE_LIMIT_GENERAL="off", RATE_LIMIT_LOGIN="2 per 15 minutes")
    api = Api(app.test_client())
    api.register("alice")
    limiter = app.extensions["idp"].limiter
    monkeypatch.setattr(limiter, "_storage_dead", True)  # as its hooks leave it after a failed check
    assert limiter.limiter is not limiter._limiter  # Flask-Limiter counts in memory now
    commands = record_redis_commands(monkeypatch)
    assert api.login("alice").status_code == 200
    assert commands == ["EVALSHA"], commands


def test_with_redis_unreachable_the_sign_in_limits_count_in_memory_asking_redis_once(make_app, monkeypatch):
    """Redis down: the sign-in limits still hold, counted in this process's memory, and a sign-in
    asks Redis once (the script), not once per step it then takes in memory under its lock (with
    Redis not answering, each step would hold every other sign-in of the process behind it)."""
    # no limit of Flask-Limiter's is asked, so it does not switch the app's storage to memory itself
    app = make_app(REDIS_URL="redis://127.0.0.1:1/0", RATE_LIMIT_GENERAL="off", RATE_LIMIT_REGISTER="off", RATE_LIMIT_LOGIN="2 per 15 minutes")
    api = Api(app.test_client())
    api.register("alice")
    commands = record_redis_commands(monkeypatch)
    assert api.login("alice").status_code == 200
    assert commands == ["EVALSHA"], commands
    for _ in range(2):
        assert api.client.post("/api/auth/login", json=BAD).status_code == 401
    assert_limited(api.client.post("/api/auth/login", json=BAD))  # the full window is remembered: no round trip
    assert commands == ["EVALSHA"] * 3, commands


def test_a_refused_network_counts_nothing_against_the_account(make_app):
    """Past its failed sign-ins a network is answered 429, and its tries do not use up the
    account's attempts: the account's owner, elsewhere, still signs in."""
    app = make_app(RATE_LIMIT_LOGIN="2 per 15 minutes", RATE_LIMIT_LOGIN_ACCOUNT="4 per 15 minutes")
    api = Api(app.test_client())
    api.register("alice")
    for _ in range(2):
        assert api.client.post("/api/auth/login", json=BAD).status_code == 401
    for _ in range(5):
        assert_limited(api.client.post("/api/auth/login", json=BAD))
    elsewhere = api.client.post("/api/auth/login", json={**BAD, "password": Api.PASSWORD}, environ_base={"REMOTE_ADDR": "203.0.113.7"})
    assert elsewhere.status_code == 200


def test_a_per_user_limit_answers_with_its_own_ratelimit_headers(make_app):
    """A 429 from a per-user or per-account limit (codes sent, second-factor tries, an API key)
    carries that limit's headers, not those of the general limit the request also passed."""
    app = make_app(RATE_LIMIT_GENERAL="100 per 15 minutes", RATE_LIMIT_CODE_SEND="2 per hour")
    api = Api(app.test_client())
    token = api.verified_token()  # the verification email: one code sent of two
    sms = {"phoneNumber": "+14155550100"}
    assert api.client.post("/api/2fa/sms/setup", headers=api.bearer(token), json=sms).status_code == 200
    capped = api.client.post("/api/2fa/sms/setup", headers=api.bearer(token), json=sms)
    assert capped.status_code == 429
    assert (capped.headers["RateLimit-Limit"], capped.headers["RateLimit-Remaining"]) == ("2", "0")
    assert capped.headers["RateLimit-Reset"] == capped.headers["Retry-After"] and 3500 < int(capped.headers["Retry-After"]) <= 3600


def test_a_redis_that_does_not_answer_slows_requests_but_never_holds_them(make_app):
    """Redis accepting connections but answering nothing (stopped, a network partition): the limits
    give up on it after their timeout and count in memory, as with a Redis that refuses. Without a
    timeout on the limiter's storage every request under a limit waited for ever."""
    import socket
    import threading

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)  # the kernel completes each connection; nothing ever reads or answers
    try:
        app = make_app(REDIS_URL=f"redis://127.0.0.1:{silent.getsockname()[1]}/0", RATE_LIMIT_REGISTER="2 per hour")
        api = Api(app.test_client())
        answers: list[int] = []

        def requests() -> None:
            answers.append(api.client.get("/api/auth/me").status_code)
            for name in ("ann", "ben", "cat"):
                answers.append(api.register(name).status_code)

        worker = threading.Thread(target=requests, daemon=True)
        worker.start()
        worker.join(timeout=40)
        assert not worker.is_alive(), f"still waiting on Redis after 40 s, answered so far: {answers}"
        assert answers == [401, 201, 201, 429]  # the register limit held, counted in memory
    finally:
        silent.close()
