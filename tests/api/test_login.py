"""POST /api/auth/login: success, failures that do not enumerate (SECURITY.md 3), per-account throttling (4)."""

from __future__ import annotations

import statistics
import time

from idp.accounts import sessions
from idp.accounts.models import Session, User
from idp.audit.models import AuditEvent
from idp.audit.service import ClientInfo
from idp.config import Argon2Settings
from idp.extensions import db
from idp.security.passwords import PasswordHashing
from idp.wiring import account_service
from tests.support.concurrency import wrong_passwords_at_once
from tests.support.statements import statements_run

WRONG = {"success": False, "message": "Invalid credentials", "code": "invalid_credentials"}


def test_login_by_username_or_email_returns_user_token_and_cookie(api):
    api.register("alice")
    for identifier in ("alice", "ALICE", "alice@example.com", "Alice@Example.com"):
        response = api.login(identifier)
        assert response.status_code == 200, response.json
        data = response.json["data"]
        assert set(data["user"]) == {"id", "email", "username", "twoFactorEnabled"}
        assert data["accessToken"]
        assert "refreshToken=" in response.headers["Set-Cookie"]


def test_login_takes_the_old_services_trust_device_field(api):
    """The old service's login took `trustDevice` (its clients send it); we refused it with a 400."""
    api.register("alice")
    body = {"emailOrUsername": "alice", "password": api.PASSWORD, "trustDevice": True}
    assert api.client.post("/api/auth/login", json=body).status_code == 200
    assert api.client.post("/api/auth/login", json={**body, "trustDevice": "yes"}).status_code == 400


def test_unknown_user_and_wrong_password_get_the_same_status_and_body(api):
    api.register("alice")
    unknown = api.login("nobody")
    wrong = api.login("alice", "Wrong-Password-1!")
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json == wrong.json == WRONG
    assert "Set-Cookie" not in unknown.headers and "Set-Cookie" not in wrong.headers


def test_unknown_user_and_wrong_password_take_the_same_time(api):
    """The median latencies differ by less than a third: an unknown user costs one Argon2 verify too."""
    api.register("alice")

    def median(identifier: str) -> float:
        samples = []
        for _ in range(7):
            started = time.perf_counter()
            assert api.login(identifier, "Wrong-Password-1!").status_code == 401
            samples.append(time.perf_counter() - started)
        return statistics.median(samples)

    api.login("nobody", "warm-up")
    unknown, wrong = median("nobody@example.com"), median("alice")
    assert abs(unknown - wrong) / max(unknown, wrong) < 0.33, (unknown, wrong)
    assert min(unknown, wrong) > 0.005  # both really ran Argon2 (about 20 ms each here)


def test_failed_and_successful_logins_are_audited(api):
    token = api.token("alice")
    api.login("alice", "Wrong-Password-1!")
    api.login("alice")
    logs = api.client.get("/api/audit-logs", headers=api.bearer(token)).json["data"]["logs"]
    actions = [(e["action"], e["success"]) for e in logs]
    assert actions[:2] == [("login_success", True), ("login_failed", False)]
    assert logs[1]["details"] == {"reason": "wrong_password"}
    assert logs[0]["ipAddress"] == "127.0.0.1"


def test_a_login_is_two_round_trips_on_postgresql(api, app, backend):
    """A password login on PostgreSQL sends two statements and no transaction control: the
    account's row with the user's active webhooks (where its event may go), then the session with
    its `login_success` event as one INSERT (the event a CTE of the session's), each in autocommit.
    SQLite (no data-modifying CTEs) writes the two rows in one transaction. The rows are the same either way."""
    api.register("alice")
    with statements_run() as seen:
        assert api.login("alice").status_code == 200
    if backend == "postgres":
        assert [sql.lstrip().split()[0] for sql in seen] == ["SELECT", "WITH"], seen
        assert "FROM users" in seen[0] and "FROM webhooks" in seen[0]
        assert "INSERT INTO audit_logs" in seen[1] and "INSERT INTO sessions" in seen[1]
    else:
        writes = [sql.split("(")[0].strip() for sql in seen if sql.lstrip().startswith("INSERT")]
        assert writes == ["INSERT INTO audit_logs", "INSERT INTO sessions"]
        assert seen.count("COMMIT") == 1 and seen.index("COMMIT") > seen.index(next(s for s in seen if s.startswith("INSERT INTO sessions")))
    with app.app_context():
        event = db.session.scalars(db.select(AuditEvent).where(AuditEvent.event == "login_success")).one()
        session = db.session.scalars(db.select(Session).order_by(Session.created_at.desc())).first()
    assert event.details == {"method": "pwd"} and event.success and event.ip_address == "127.0.0.1"
    assert event.user_id == session.user_id and session.amr == "pwd" and session.ip_address == "127.0.0.1"


def test_a_login_without_a_second_factor_builds_none_of_its_collaborators(api, monkeypatch):
    """The second factor's challenges (with the two-factor service, one-time and backup codes they
    need) and trusted devices are built only for an account that has one: most sign-ins have
    none, and building them cost a twentieth of a login's own work."""
    from idp.mfa.backup_codes import BackupCodes
    from idp.mfa.challenge import LoginChallenges
    from idp.mfa.codes import OneTimeCodes
    from idp.mfa.devices import TrustedDevices
    from idp.mfa.methods import TwoFactorService

    api.register("alice")
    built: list[str] = []
    for kind in (LoginChallenges, TwoFactorService, OneTimeCodes, BackupCodes, TrustedDevices):
        init = kind.__init__

        def recorded(self, *args, _init=init, _name=kind.__name__, **kwargs):
            built.append(_name)
            _init(self, *args, **kwargs)

        monkeypatch.setattr(kind, "__init__", recorded)
    assert api.login("alice").status_code == 200
    assert built == []


def test_a_sign_in_keeps_the_unit_of_works_own_copy_of_the_account(api, app):
    """The sign-in's lookup (a hot statement on PostgreSQL) hands back the account the unit of
    work already holds, with its unflushed changes, instead of overwriting it with the row read."""
    api.register("alice")
    with app.test_request_context():
        user = db.session.scalars(db.select(User)).one()
        user.email_verified = True  # changed, not flushed
        assert account_service().authenticate("alice", api.PASSWORD, client=ClientInfo()) is user
        assert user.email_verified is True
        db.session.rollback()


def test_a_sign_in_leaves_the_unit_of_work_untouched(api, app, backend):
    """On PostgreSQL the account read for a sign-in stays out of the request's unit of work (no
    transaction begun, nothing for a commit to walk) until the sign-in changes it."""
    api.register("alice")
    with app.test_request_context():
        user = account_service().authenticate("alice", api.PASSWORD, client=ClientInfo())
        if backend == "postgres":
            assert user not in db.session and not db.session().in_transaction()
        assert (user.username, user.is_active) == ("alice", True)
        db.session.rollback()


def test_a_login_whose_session_cannot_be_written_records_no_success(api, app, monkeypatch):
    """The event and the session are one unit: when the session's INSERT fails (here a clashing
    id), no `login_success` is left behind for a sign-in that never happened."""
    registered = api.register("alice").json["data"]
    with app.app_context():
        taken = db.session.scalars(db.select(Session.id)).one()
    monkeypatch.setattr(sessions, "new_id", lambda: taken)
    assert api.login("alice").status_code == 500
    with app.app_context():
        events = db.session.scalars(db.select(AuditEvent.event).where(AuditEvent.user_id == registered["user"]["id"])).all()
    assert "login_success" not in events


def test_disabled_account_is_told_only_after_the_correct_password(api, app):
    api.register("alice")
    with app.app_context():
        db.session.execute(db.update(User).values(is_active=False))
        db.session.commit()
    assert api.login("alice", "Wrong-Password-1!").json == WRONG
    response = api.login("alice")
    assert response.status_code == 401 and response.json["code"] == "account_disabled"


def test_password_hash_is_upgraded_at_login_when_parameters_were_raised(api, app):
    api.register("alice")
    weak = PasswordHashing(Argon2Settings(memory_kib=8192, time_cost=1, parallelism=1)).hash(api.PASSWORD)
    with app.app_context():
        db.session.execute(db.update(User).values(password_hash=weak))
        db.session.commit()
    assert api.login("alice").status_code == 200
    with app.app_context():
        stored = db.session.scalar(db.select(User.password_hash))
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")


def test_account_throttle_holds_across_many_ips_and_answers_like_a_wrong_password(make_app):
    app = make_app(RATE_LIMIT_LOGIN_ACCOUNT="3 per 15 minutes")
    client = app.test_client()
    from tests.conftest import Api

    api = Api(client)
    api.register("alice")
    for n in range(3):  # three failures, each from another address
        response = client.post(
            "/api/auth/login",
            json={"emailOrUsername": "alice", "password": "Wrong-Password-1!"},
            environ_base={"REMOTE_ADDR": f"203.0.113.{n}"},
        )
        assert response.json == WRONG
    # the right password from yet another address is now refused, exactly like a wrong one
    response = client.post(
        "/api/auth/login", json={"emailOrUsername": "alice@example.com", "password": api.PASSWORD}, environ_base={"REMOTE_ADDR": "198.51.100.7"}
    )
    assert response.status_code == 401 and response.json == WRONG
    # an unknown account is throttled the same way, so throttling reveals nothing
    for n in range(4):
        last = client.post("/api/auth/login", json={"emailOrUsername": "ghost", "password": "x"}, environ_base={"REMOTE_ADDR": f"192.0.2.{n}"})
    assert last.status_code == 401 and last.json == WRONG
    # other accounts are unaffected
    api.register("bob")
    assert api.login("bob").status_code == 200


def test_concurrent_guesses_cannot_outrun_the_account_throttle(make_app):
    """The account's limit is settled atomically with each answer: ten guesses at once, each from
    another address, get three answers about the password (the limit), not ten."""
    app = make_app(RATE_LIMIT_LOGIN_ACCOUNT="3 per 15 minutes")
    from tests.conftest import Api

    Api(app.test_client()).register("alice")
    assert wrong_passwords_at_once(app, 10, address=lambda n: f"203.0.113.{n}") == [401] * 10
    with app.app_context():
        reasons = db.session.scalars(db.select(AuditEvent.details).where(AuditEvent.event == "login_failed")).all()
    assert sorted(r["reason"] for r in reasons) == ["throttled"] * 7 + ["wrong_password"] * 3


def test_an_unknown_address_is_throttled_in_every_spelling_a_lookup_takes_as_one(make_app):
    """Unknown accounts are throttled like known ones; the key was only trimmed and lower-cased
    while the lookup also normalises Unicode, so each spelling of one address had its own budget."""
    app = make_app(RATE_LIMIT_LOGIN_ACCOUNT="3 per 15 minutes")
    client = app.test_client()
    spellings = ["jose\u0301@example.com", "jos\u00e9@example.com", "JOS\u00c9@Example.com", " jos\u00e9@example.com "]
    for n, spelling in enumerate(spellings):
        answer = client.post("/api/auth/login", json={"emailOrUsername": spelling, "password": "x"}, environ_base={"REMOTE_ADDR": f"192.0.2.{n}"})
        assert answer.json == WRONG
    with app.app_context():
        reasons = db.session.scalars(db.select(AuditEvent.details).where(AuditEvent.event == "login_failed").order_by(AuditEvent.id)).all()
    assert [r["reason"] for r in reasons] == ["unknown_user"] * 3 + ["throttled"]


def test_a_right_password_forgets_the_accounts_failures(make_app):
    app = make_app(RATE_LIMIT_LOGIN_ACCOUNT="3 per 15 minutes")
    from tests.conftest import Api

    api = Api(app.test_client())
    api.register("alice")
    for _ in range(2):
        assert api.login("alice", "Wrong-Password-1!").status_code == 401
    assert api.login("alice").status_code == 200  # not a guess: the two failures are forgotten
    for _ in range(2):
        assert api.login("alice", "Wrong-Password-1!").status_code == 401
    assert api.login("alice").status_code == 200  # two since, not four
    for _ in range(3):
        assert api.login("alice", "Wrong-Password-1!").status_code == 401
    assert api.login("alice").json == WRONG  # three failures since: throttled, like a wrong password


def test_login_with_missing_fields_is_400(api):
    response = api.client.post("/api/auth/login", json={"emailOrUsername": "alice"})
    assert response.status_code == 400 and response.json["errors"] == ["password: is required"]


def test_an_address_signs_in_and_gets_reset_links_as_it_was_typed_at_registration(api):
    """Registration stores an address normalised (Unicode NFC, a domain's xn-- labels in Unicode);
    signing in and asking for a reset with the same text normalise it the same way."""
    for username, typed, stored in [
        ("jose", "Jose\u0301@Example.com", "jos\u00e9@example.com"),  # e + combining acute
        ("ana", "ana@xn--bcher-kva.com", "ana@b\u00fccher.com"),
        # a capital sigma before a hyphen: IDNA maps it to σ, lower() alone to the final ς
        ("eleni", "eleni@\u039a\u0391\u03a6\u0395\u03a3-\u0391\u0398\u0397\u039d\u0391.gr", "eleni@\u03ba\u03b1\u03c6\u03b5\u03c3-\u03b1\u03b8\u03b7\u03bd\u03b1.gr"),
    ]:
        registered = api.client.post("/api/auth/register", json={"email": typed, "username": username, "password": api.PASSWORD})
        assert registered.status_code == 201, registered.json
        assert registered.json["data"]["user"]["email"] == stored
        for written in (typed, stored):
            login = api.client.post("/api/auth/login", json={"emailOrUsername": written, "password": api.PASSWORD})
            assert login.status_code == 200, (written, login.json)
        api.client.post("/api/auth/password-reset/request", json={"email": typed})
        assert "reset-password?token=" in api.outbox.last(stored)["text"]


def test_an_address_with_a_name_beside_it_is_refused_at_registration(api):
    response = api.client.post("/api/auth/register", json={"email": "Ana <ana@example.com>", "username": "ana", "password": api.PASSWORD})
    assert response.status_code == 400
    assert response.json["errors"] == ["email: must be an address alone, without a name"]
