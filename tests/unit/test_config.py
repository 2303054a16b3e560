"""Settings from the environment: names of the old service, Prisma URLs, booleans, fail-fast secrets."""

from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from idp.config import ConfigError, RateLimits, Settings, database_settings, parse_bool, redis_url

STRONG = "x7Qp2Lr9Vt4Kc8Nz1Wd6Hs3Jf5Bm0Ga_strong"


def test_false_words_are_false_unlike_the_old_service():
    for word in ("false", "False", "0", "no", "off"):
        assert parse_bool("X", word, default=True) is False
    for empty in ("", "  "):  # the default, as .env.example shows one; false turned secure defaults off
        assert parse_bool("X", empty, default=True) is True and parse_bool("X", empty, default=False) is False
    for word in ("true", "1", "yes", "on"):
        assert parse_bool("X", word, default=False) is True
    with pytest.raises(ConfigError, match="X"):
        parse_bool("X", "maybe", default=False)


def test_prisma_style_database_url_becomes_pool_settings_not_driver_options(tmp_path: Path):
    db = database_settings(
        "postgresql://user:pw@db:5432/twofa?schema=public&connection_limit=20&pool_timeout=10&sslmode=require", tmp_path
    )
    assert db.url == "postgresql+psycopg2://user:pw@db:5432/twofa?sslmode=require"
    assert db.engine_options["pool_size"] == 20
    assert db.engine_options["pool_timeout"] == 10
    assert "connect_args" not in db.engine_options  # public is the default search_path


def test_prisma_pgbouncer_flag_turns_prepared_statements_off(tmp_path: Path):
    assert database_settings("postgresql://u@h/d", tmp_path).prepared_statements is True
    for query in ("pgbouncer=true", "statement_cache_size=0"):
        db = database_settings(f"postgresql://u@h/d?{query}", tmp_path)
        assert db.prepared_statements is False and db.url == "postgresql+psycopg2://u@h/d"


def test_non_public_prisma_schema_sets_search_path(tmp_path: Path):
    db = database_settings("postgres://u@h/d?schema=auth", tmp_path)
    assert db.engine_options["connect_args"] == {"options": '-csearch_path="auth"'}
    assert db.url == "postgresql+psycopg2://u@h/d"


def test_a_mixed_case_prisma_schema_keeps_its_case_on_postgresql(tmp_path: Path):
    """Prisma quotes the name; unquoted, PostgreSQL folded "MySchema" to myschema (no such schema:
    current_schema() was NULL and every table missing)."""
    import sqlalchemy as sa

    from tests.conftest import ADMIN_DATABASE_URL

    settings = database_settings(ADMIN_DATABASE_URL.split("?")[0] + "?schema=MySchema", tmp_path)
    engine = sa.create_engine(settings.url, **settings.engine_options)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql('CREATE SCHEMA IF NOT EXISTS "MySchema"')
        with engine.connect() as conn:
            assert conn.exec_driver_sql("select current_schema()").scalar() == "MySchema"
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql('DROP SCHEMA IF EXISTS "MySchema"')
        engine.dispose()


def test_prisma_pool_timeout_zero_waits_and_its_tls_parameters_become_libpqs(tmp_path: Path):
    """Prisma's pool_timeout=0 means no timeout (it became 0 s: a busy pool failed at once); its
    sslcert is the server's CA (libpq's sslrootcert) and sslaccept is its own, which libpq refused
    ("invalid connection option")."""
    waiting = database_settings("postgresql://u@h/d?connection_limit=1&pool_timeout=0", tmp_path)
    assert waiting.engine_options["pool_timeout"] is None
    tls = database_settings("postgresql://u@h/d?sslmode=verify-full&sslcert=/etc/ca.pem&sslaccept=strict", tmp_path)
    assert tls.url == "postgresql+psycopg2://u@h/d?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem"
    client_cert = database_settings("postgresql://u@h/d?sslcert=/c.pem&sslkey=/k.pem", tmp_path)  # libpq's own form
    assert "sslcert=%2Fc.pem" in client_cert.url and "sslkey=%2Fk.pem" in client_cert.url
    with pytest.raises(ConfigError, match="sslidentity"):
        database_settings("postgresql://u@h/d?sslidentity=client.p12&sslpassword=x", tmp_path)


def test_no_database_url_means_sqlite_under_instance(tmp_path: Path):
    db = database_settings(None, tmp_path)
    assert db.is_sqlite and str(tmp_path / "idp.db") in db.url


def test_redis_from_host_and_port_like_the_old_service():
    assert redis_url({"REDIS_HOST": "cache", "REDIS_PORT": "6380"}) == "redis://cache:6380/0"
    assert redis_url({"REDIS_URL": "redis://r:1/2", "REDIS_HOST": "ignored"}) == "redis://r:1/2"
    assert redis_url({}) is None


def test_development_generates_and_keeps_secrets_under_instance(tmp_path: Path):
    first = Settings.load({}, tmp_path)
    second = Settings.load({}, tmp_path)
    assert first.secret_key == second.secret_key and len(first.secret_key) >= 32
    assert first.encryption_keys == second.encryption_keys
    assert (tmp_path / "secret_key.secret").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize("missing", ["SECRET_KEY", "ENCRYPTION_KEYS"])
def test_production_refuses_to_start_without_a_secret_and_names_it(tmp_path: Path, missing: str):
    env = {"NODE_ENV": "production", "SECRET_KEY": STRONG, "ENCRYPTION_KEYS": Fernet.generate_key().decode()}
    del env[missing]
    with pytest.raises(ConfigError, match=missing):
        Settings.load(env, tmp_path)


@pytest.mark.parametrize("weak", ["short", "your-secret-here-your-secret-here-1234", "changeme" * 5])
def test_production_refuses_a_weak_secret_key(tmp_path: Path, weak: str):
    env = {"IDP_ENV": "production", "SECRET_KEY": weak, "ENCRYPTION_KEYS": Fernet.generate_key().decode()}
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        Settings.load(env, tmp_path)


def test_production_refuses_an_encryption_key_that_is_not_a_fernet_key(tmp_path: Path):
    env = {"IDP_ENV": "production", "SECRET_KEY": STRONG, "ENCRYPTION_KEYS": "not-a-key"}
    with pytest.raises(ConfigError, match="ENCRYPTION_KEYS"):
        Settings.load(env, tmp_path)


@pytest.mark.parametrize("raw", [bytes(32), b"\x01\x02" * 16, b"my-own-encryption-password-12345"])
def test_production_refuses_a_weak_encryption_key(tmp_path: Path, raw: bytes):
    """README: production refuses a weak ENCRYPTION_KEYS as it does a weak SECRET_KEY; a valid Fernet
    encoding of zeros or of a typed password encrypted every TOTP secret and signing key with it."""
    import base64

    weak = base64.urlsafe_b64encode(raw).decode()
    env = {"IDP_ENV": "production", "SECRET_KEY": STRONG, "ENCRYPTION_KEYS": weak}
    with pytest.raises(ConfigError, match="ENCRYPTION_KEYS is too weak"):
        Settings.load(env, tmp_path)
    assert Settings.load({**env, "IDP_ENV": "development"}, tmp_path).encryption_keys == (weak,)
    # only the key that encrypts must be strong: moving away from a weak key keeps it second, to read
    strong = Fernet.generate_key().decode()
    assert Settings.load({**env, "ENCRYPTION_KEYS": f"{strong},{weak}"}, tmp_path).encryption_keys == (strong, weak)


def test_production_with_strong_secrets_starts_with_secure_cookies(tmp_path: Path):
    settings = Settings.load({"IDP_ENV": "production", "SECRET_KEY": STRONG, "ENCRYPTION_KEYS": Fernet.generate_key().decode()}, tmp_path)
    assert settings.secure_cookies and not settings.is_development


def test_old_service_names_are_read():
    settings = Settings.load(
        {"PORT": "4000", "API_BASE_PATH": "v1/", "CORS_ORIGINS": "https://a.example, https://b.example", "FRONTEND_URL": "https://app.example/"},
        Path("/tmp/idp-test-config"),
    )
    assert settings.port == 4000
    assert settings.api_base_path == "/v1"
    assert settings.cors_origins == ("https://a.example", "https://b.example")
    assert settings.frontend_url == "https://app.example"
    assert settings.issuer == "http://localhost:4000"


@pytest.mark.parametrize("value", ["bogus", "5 per fortnight", "5/minute;10/hour"])
def test_a_mistyped_rate_limit_stops_start_up_and_names_the_variable(tmp_path: Path, value: str):
    with pytest.raises(ConfigError, match="RATE_LIMIT_LOGIN_ACCOUNT"):
        Settings.load({"RATE_LIMIT_LOGIN_ACCOUNT": value}, tmp_path)


def test_rate_limits_accept_a_rate_or_off(tmp_path: Path):
    settings = Settings.load({"RATE_LIMIT_LOGIN": "7 per 10 minutes", "RATE_LIMIT_GENERAL": "OFF"}, tmp_path)
    assert settings.rate_limits.login == "7 per 10 minutes" and settings.rate_limits.general == "off"


def test_an_empty_boolean_keeps_the_secure_default(tmp_path: Path):
    production = {"IDP_ENV": "production", "SECRET_KEY": STRONG, "ENCRYPTION_KEYS": Fernet.generate_key().decode()}
    assert "# WEBHOOK_REQUIRE_HTTPS=\n" in (Path(__file__).parents[2] / ".env.example").read_text()
    assert Settings.load({**production, "WEBHOOK_REQUIRE_HTTPS": ""}, tmp_path).webhooks.require_https is True
    mail = {"EMAIL_HOST": "smtp.example.com", "EMAIL_USER": "u@example.com", "EMAIL_PASSWORD": "pw", "EMAIL_STARTTLS": ""}
    assert Settings.load({**production, **mail}, tmp_path).delivery.smtp.starttls is True


def test_an_empty_setting_is_its_default(tmp_path: Path):
    """`ACCESS_TOKEN_ALG=` (an uncommented line of .env.example left empty, or compose's `${ACCESS_TOKEN_ALG}`
    with nothing set) stopped start-up with "must be ES256 or RS256, not ''", where every other
    setting takes an empty value as its default; a blank number likewise."""
    settings = Settings.load({"ACCESS_TOKEN_ALG": "", "ACCESS_TOKEN_TTL": " ", "PORT": ""}, tmp_path)
    assert (settings.access_token_alg, settings.access_token_ttl, settings.port) == ("ES256", 900, 3001)
    assert Settings.load({"ACCESS_TOKEN_ALG": "RS256"}, tmp_path).access_token_alg == "RS256"
    with pytest.raises(ConfigError, match="ACCESS_TOKEN_ALG"):
        Settings.load({"ACCESS_TOKEN_ALG": "HS256"}, tmp_path)


def test_a_redis_password_is_url_encoded_into_the_url():
    import redis

    url = redis_url({"REDIS_HOST": "cache", "REDIS_PORT": "6379", "REDIS_PASSWORD": "p@ss/w#rd:1"})
    assert url is not None
    kwargs = redis.connection.parse_url(url)
    assert kwargs["host"] == "cache" and kwargs["password"] == "p@ss/w#rd:1"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"SECRET_KEY": " " * 40}, "SECRET_KEY"),
        ({"SECRET_KEY": "a" * 32}, "SECRET_KEY"),
        ({"ENCRYPTION_KEYS": ","}, "ENCRYPTION_KEYS"),
        ({"TRUSTED_PROXIES": "-1"}, "TRUSTED_PROXIES"),
    ],
)
def test_unusable_settings_are_refused_at_start_naming_them(tmp_path: Path, env, named):
    production = {"IDP_ENV": "production", "SECRET_KEY": STRONG, "ENCRYPTION_KEYS": Fernet.generate_key().decode()}
    with pytest.raises(ConfigError, match=named):
        Settings.load({**production, **env}, tmp_path)


@pytest.mark.parametrize("value", ["0", "50", "120"])
def test_a_webhook_timeout_fits_inside_a_delivery_job(tmp_path: Path, value: str):
    """A delivery job is stopped after 60 s: an attempt allowed longer was killed before it was
    recorded, and its delivery stayed pending for good."""
    with pytest.raises(ConfigError, match="WEBHOOK_TIMEOUT_SECONDS"):
        Settings.load({"WEBHOOK_TIMEOUT_SECONDS": value}, tmp_path)
    assert Settings.load({"WEBHOOK_TIMEOUT_SECONDS": "49"}, tmp_path).webhooks.timeout == 49
    from idp.config import WEBHOOK_TIMEOUT_LIMIT
    from idp.delivery.queue import JOB_TIMEOUT

    assert WEBHOOK_TIMEOUT_LIMIT < JOB_TIMEOUT  # room for connecting and recording the attempt


def test_env_example_documents_every_setting_the_code_reads():
    """`.env.example` is where an operator learns the settings: each one the service reads (the
    app, gunicorn.conf.py, wsgi.py) is there, commented out with its default or an example."""
    import re

    root = Path(__file__).parents[2]
    # a name in capitals with an underscore, read from the environment (env.get("X"), env["X"]) or
    # handed to a helper that reads it (parse_int("X", ...), url("X")); less a few that are not settings
    read = re.compile(r"""[(\[]"([A-Z][A-Z0-9]*_[A-Z0-9_]+)\"""")
    not_settings = {"HTTP_IF_NONE_MATCH", "HTTP_X_REQUEST_ID", "PATH_INFO", "REMOTE_ADDR", "REQUEST_METHOD"}  # WSGI's
    not_settings |= {"RATELIMIT_DEFAULT", "SECRET_KEY_FALLBACKS"}  # Flask's and Flask-Limiter's configuration
    sources = [*sorted((root / "idp").rglob("*.py")), root / "gunicorn.conf.py", root / "wsgi.py"]
    names = {name for source in sources for name in read.findall(source.read_text())} - not_settings
    names |= {f"RATE_LIMIT_{field.upper()}" for field in RateLimits.__dataclass_fields__}
    assert {"DATABASE_URL", "BRAND_HOME_URL", "WEBHOOK_MAX_PER_USER", "GUNICORN_THREADS"} <= names  # the pattern still finds them
    documented = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", (root / ".env.example").read_text(), re.M))
    assert sorted(names - documented) == []
