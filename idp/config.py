"""Settings read from the environment (and `.env`), with defaults, validation and fail-fast checks.

Variable names follow the service our users migrate from wherever the meaning is the same
(DATABASE_URL, REDIS_URL or REDIS_HOST/REDIS_PORT, CORS_ORIGINS, API_BASE_PATH, FRONTEND_URL,
PORT, NODE_ENV). Every variable is documented in `.env.example`.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from cryptography.fernet import Fernet

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})

# Query parameters of a Prisma connection string that are pool settings, not libpq options.
PRISMA_ONLY_PARAMS = frozenset(
    {"schema", "connection_limit", "pool_timeout", "socket_timeout", "pgbouncer", "statement_cache_size"}
)

# Catalogues of the hosted pages' text (`make messages`, then `pybabel init/compile`).
DEFAULT_TRANSLATIONS_DIR = Path(__file__).resolve().parent.parent / "translations"

WEAK_SECRET_MARKERS = ("your-secret", "changeme", "change-me", "secret-here", "example", "placeholder")
MIN_SECRET_LENGTH = 32
MIN_DISTINCT_CHARACTERS = 10  # a random 32-character secret has about 25


class ConfigError(RuntimeError):
    """A setting is missing or unusable; the message names the variable."""


def parse_bool(name: str, value: str | bool | None, default: bool) -> bool:
    """Read a boolean setting; "false", "0", "no" and "off" are false, unlike the old service. An
    empty value is the default, as for every other setting (`.env.example` shows a default as an
    empty assignment; compose's `${EMAIL_STARTTLS}` with nothing set is empty): read as false, it
    turned https-only webhooks and STARTTLS off."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    if isinstance(value, bool):
        return value
    word = value.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ConfigError(f"{name} must be true or false, not {value!r}")


def parse_int(name: str, value: Any, default: int, *, minimum: int | None = None) -> int:
    if value is None or (isinstance(value, str) and not value.strip()):  # empty or blank: the default, as parse_bool
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a whole number, not {value!r}") from None
    if minimum is not None and number < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, not {number}")
    return number


@dataclass(frozen=True)
class DatabaseSettings:
    """A SQLAlchemy URL and engine options derived from DATABASE_URL."""

    url: str
    engine_options: dict[str, Any] = field(default_factory=dict)
    # the hot statements prepared once per connection (idp.statements); off behind a pooler that
    # moves a client between server connections (Prisma's `?pgbouncer=true` or `statement_cache_size=0`)
    prepared_statements: bool = True

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")


def database_settings(raw_url: str | None, instance_path: Path) -> DatabaseSettings:
    """Translate DATABASE_URL (plain or Prisma-style) into a SQLAlchemy URL and pool options.

    `?schema=public&connection_limit=20&pool_timeout=10` become search_path, pool_size and
    pool_timeout; they are never passed to the driver, which would refuse them.
    """
    if not raw_url:
        instance_path.mkdir(parents=True, exist_ok=True)
        return DatabaseSettings(f"sqlite:///{instance_path / 'idp.db'}", {})
    if raw_url.startswith("sqlite"):
        return DatabaseSettings(raw_url, {})
    parts = urlsplit(raw_url)
    scheme = parts.scheme
    if scheme in ("postgres", "postgresql"):
        scheme = "postgresql+psycopg2"
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    # No pool_pre_ping: it costs a round trip on every checkout. A connection dropped by a database
    # restart fails one request, after which SQLAlchemy invalidates the pool; recycling bounds age.
    options: dict[str, Any] = {"pool_recycle": 1800}
    if "connection_limit" in params:
        limit = parse_int("DATABASE_URL connection_limit", params["connection_limit"], 10)
        options["pool_size"] = limit
        options["max_overflow"] = 0
    if "pool_timeout" in params:
        timeout = parse_int("DATABASE_URL pool_timeout", params["pool_timeout"], 30, minimum=0)
        options["pool_timeout"] = timeout or None  # Prisma's 0: wait as long as it takes, not fail at once
    schema = params.get("schema")
    if schema and schema != "public":
        # quoted, as Prisma quotes it: unquoted, PostgreSQL folds "MySchema" to myschema
        quoted = '"' + schema.replace('"', '""') + '"'
        options["connect_args"] = {"options": "-csearch_path=" + quoted.replace("\\", "\\\\").replace(" ", "\\ ")}
    driver_params = {k: v for k, v in params.items() if k not in PRISMA_ONLY_PARAMS}
    _translate_prisma_tls(driver_params)
    url = urlunsplit((scheme, parts.netloc, parts.path, urlencode(driver_params), parts.fragment))
    pooled = parse_bool("DATABASE_URL pgbouncer", params.get("pgbouncer"), False) or params.get("statement_cache_size") == "0"
    return DatabaseSettings(url, options, prepared_statements=not pooled)


def _translate_prisma_tls(params: dict[str, str]) -> None:
    """Prisma's TLS parameters in libpq's terms. Its `sslcert` is the server's CA certificate
    (libpq's `sslrootcert`; libpq's own `sslcert` is a client certificate, given with `sslkey`,
    which Prisma never uses), and `sslaccept` how strictly it is checked, which libpq's `sslmode`
    says. A PKCS#12 client identity has no libpq equivalent."""
    if "sslcert" in params and "sslkey" not in params and "sslrootcert" not in params:
        params["sslrootcert"] = params.pop("sslcert")
    params.pop("sslaccept", None)
    unsupported = sorted({"sslidentity", "sslpassword"} & params.keys())
    if unsupported:
        raise ConfigError(
            f"DATABASE_URL {' and '.join(unsupported)}: a PKCS#12 client identity is not supported; give the client "
            "certificate and key as PEM files with sslcert and sslkey (openssl pkcs12 -in identity.p12 -out ...)"
        )


# Every client of the web processes' Redis (rate limits, throttles, the delivery queue, health)
# gives up on a Redis that accepts connections but does not answer (stopped, a partition) rather
# than holding the request for ever: limits then count in memory, as with a Redis that refuses.
REDIS_CLIENT_TIMEOUTS: dict[str, float] = {"socket_timeout": 2, "socket_connect_timeout": 2}


def redis_url(env: Mapping[str, str]) -> str | None:
    """REDIS_URL, else REDIS_HOST/REDIS_PORT (/REDIS_PASSWORD/REDIS_DB); None means embedded mode."""
    if env.get("REDIS_URL"):
        return env["REDIS_URL"]
    host = env.get("REDIS_HOST")
    if not host:
        return None
    port = parse_int("REDIS_PORT", env.get("REDIS_PORT"), 6379)
    password = env.get("REDIS_PASSWORD")
    auth = f":{quote(password, safe='')}@" if password else ""  # "p@ss/w#rd" is a password, not a host
    return f"redis://{auth}{host}:{port}/{parse_int('REDIS_DB', env.get('REDIS_DB'), 0)}"


@dataclass(frozen=True)
class RateLimits:
    """Flask-Limiter rate strings (e.g. "5 per 15 minutes"); see API.md for the defaults."""

    login: str = "5 per 15 minutes"
    login_account: str = "5 per 15 minutes"
    two_factor: str = "10 per 15 minutes"
    code_send: str = "3 per hour"
    login_code: str = "10 per hour"  # codes sent by themselves at the start of a sign-in or step-up, per user
    register: str = "3 per hour"
    general: str = "100 per 15 minutes"


@dataclass(frozen=True)
class Argon2Settings:
    """Argon2id parameters; the defaults are the OWASP minimum."""

    memory_kib: int = 19456
    time_cost: int = 2
    parallelism: int = 1
    concurrency: int = 1  # computations at once per process (gunicorn runs one process per core)


@dataclass(frozen=True)
class SmtpSettings:
    """EMAIL_*: the SMTP relay. `secure` is implicit TLS (SMTPS, usually 465); `starttls` upgrades a plain connection."""

    host: str
    port: int
    secure: bool
    starttls: bool
    user: str | None
    password: str | None = field(repr=False)
    sender: str
    timeout: float = 10.0


@dataclass(frozen=True)
class TwilioSettings:
    """TWILIO_*: the Messages API account and sender number; `api_base_url` replaces https://api.twilio.com."""

    account_sid: str
    auth_token: str = field(repr=False)
    phone_number: str = ""
    api_base_url: str | None = None
    timeout: float = 10.0


@dataclass(frozen=True)
class DeliverySettings:
    """How email and SMS leave the app; a channel set to None is unavailable (sending raises)."""

    email_backend: str | None  # "smtp" | "console" | None
    sms_backend: str | None  # "twilio" | "console" | None
    smtp: SmtpSettings | None
    twilio: TwilioSettings | None
    outbox_path: Path
    queue_name: str = "idp-delivery"
    retry_intervals: tuple[int, ...] = (10, 30, 60, 120, 300)


@dataclass(frozen=True)
class WebhookSettings:
    """Webhook delivery: attempts per event, the pause before each retry (doubling from
    `retry_base` seconds), the per-attempt timeout, and whether private targets are allowed."""

    max_attempts: int = 5
    retry_base: int = 60
    timeout: float = 5.0
    disable_after: int = 10  # consecutive failed deliveries
    allow_private_targets: bool = False
    require_https: bool = False  # on by default in production
    max_per_user: int = 20

    @property
    def retry_intervals(self) -> list[int]:
        """Exponential backoff: base, 2·base, 4·base, ... between the attempts."""
        return [self.retry_base * 2**n for n in range(self.max_attempts - 1)]


WEBHOOK_TIMEOUT_LIMIT = 50  # seconds, under a delivery job's limit (idp.delivery.queue.JOB_TIMEOUT)


def webhook_settings(env: Mapping[str, str], production: bool) -> WebhookSettings:
    defaults = WebhookSettings()
    settings = WebhookSettings(
        max_attempts=parse_int("WEBHOOK_MAX_ATTEMPTS", env.get("WEBHOOK_MAX_ATTEMPTS"), defaults.max_attempts),
        retry_base=parse_int("WEBHOOK_RETRY_BASE_SECONDS", env.get("WEBHOOK_RETRY_BASE_SECONDS"), defaults.retry_base),
        timeout=float(parse_int("WEBHOOK_TIMEOUT_SECONDS", env.get("WEBHOOK_TIMEOUT_SECONDS"), int(defaults.timeout))),
        disable_after=parse_int("WEBHOOK_DISABLE_AFTER", env.get("WEBHOOK_DISABLE_AFTER"), defaults.disable_after),
        allow_private_targets=parse_bool(
            "WEBHOOK_ALLOW_PRIVATE_TARGETS", env.get("WEBHOOK_ALLOW_PRIVATE_TARGETS"), defaults.allow_private_targets
        ),
        require_https=parse_bool("WEBHOOK_REQUIRE_HTTPS", env.get("WEBHOOK_REQUIRE_HTTPS"), production),
        max_per_user=parse_int("WEBHOOK_MAX_PER_USER", env.get("WEBHOOK_MAX_PER_USER"), defaults.max_per_user),
    )
    if settings.max_attempts < 1 or settings.retry_base < 0 or settings.disable_after < 1:
        raise ConfigError(
            "WEBHOOK_MAX_ATTEMPTS and WEBHOOK_DISABLE_AFTER must be at least 1, WEBHOOK_RETRY_BASE_SECONDS not negative"
        )
    if not 0 < settings.timeout < WEBHOOK_TIMEOUT_LIMIT:
        # a delivery job is stopped after 60 s (idp.delivery.queue.JOB_TIMEOUT): an attempt allowed
        # longer would be killed before it is recorded, and its delivery would stay pending
        raise ConfigError(f"WEBHOOK_TIMEOUT_SECONDS must be above 0 and below {WEBHOOK_TIMEOUT_LIMIT}")
    return settings


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@dataclass(frozen=True)
class BrandSettings:
    """The hosted pages' branding (PAGES.md: by configuration, not by editing templates). URLs are
    paths on this service or https:// addresses; colours #rgb or #rrggbb."""

    logo_url: str | None = None
    home_url: str | None = None
    favicon_url: str | None = None
    stylesheet_url: str | None = None
    primary_color: str | None = None
    primary_color_dark: str | None = None


HEX_COLOUR = re.compile(r"#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})")


def brand_settings(env: Mapping[str, str]) -> BrandSettings:
    def url(name: str) -> str | None:
        value = (env.get(name) or "").strip()
        if not value:
            return None
        parts = urlsplit(value)
        local = value.startswith("/") and not value.startswith("//") and not parts.scheme
        if not (local or (parts.scheme == "https" and parts.hostname)) or any(c in value for c in "\"'<> \t\n"):
            raise ConfigError(f"{name} must be a path on this service (/static/logo.svg) or an https:// address, not {value!r}")
        return value

    def colour(name: str) -> str | None:
        value = (env.get(name) or "").strip()
        if not value:
            return None
        if not HEX_COLOUR.fullmatch(value):
            raise ConfigError(f"{name} must be a colour like #1a55c9 or #15c, not {value!r}")
        digits = value[1:].lower()
        return "#" + ("".join(c * 2 for c in digits) if len(digits) == 3 else digits)

    return BrandSettings(
        logo_url=url("BRAND_LOGO_URL"),
        home_url=url("BRAND_HOME_URL"),
        favicon_url=url("BRAND_FAVICON_URL"),
        stylesheet_url=url("BRAND_STYLESHEET_URL"),
        primary_color=colour("BRAND_PRIMARY_COLOR"),
        primary_color_dark=colour("BRAND_PRIMARY_COLOR_DARK"),
    )


@dataclass(frozen=True)
class ObservabilitySettings:
    """Metrics at /metrics and the log output (docs/operations.md)."""

    metrics_enabled: bool = True
    metrics_token: str | None = field(default=None, repr=False)  # when set, /metrics wants `Authorization: Bearer <it>`
    # Where gunicorn's processes keep their counts (prometheus_client multiprocess mode); set by gunicorn.conf.py
    multiprocess_dir: str | None = None
    log_format: str = "text"  # "json" (one object per line) | "text"
    log_level: str = "INFO"
    access_log: bool = True  # one line per request


def observability_settings(env: Mapping[str, str], production: bool) -> ObservabilitySettings:
    log_format = (env.get("LOG_FORMAT") or ("json" if production else "text")).strip().lower()
    if log_format not in ("json", "text"):
        raise ConfigError(f"LOG_FORMAT must be json or text, not {log_format!r}")
    log_level = (env.get("LOG_LEVEL") or "INFO").strip().upper()
    if log_level not in LOG_LEVELS:
        raise ConfigError(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, not {log_level!r}")
    token = env.get("METRICS_TOKEN") or None
    if token and production and len(token) < MIN_SECRET_LENGTH:
        raise ConfigError(f"METRICS_TOKEN is too weak: use at least {MIN_SECRET_LENGTH} random characters")
    return ObservabilitySettings(
        metrics_enabled=parse_bool("METRICS_ENABLED", env.get("METRICS_ENABLED"), True),
        metrics_token=token,
        multiprocess_dir=env.get("PROMETHEUS_MULTIPROC_DIR") or None,
        log_format=log_format,
        log_level=log_level,
        access_log=parse_bool("ACCESS_LOG", env.get("ACCESS_LOG"), True),
    )


def delivery_settings(env: Mapping[str, str], environment: str, instance_path: Path) -> DeliverySettings:
    """EMAIL_HOST → SMTP, TWILIO_ACCOUNT_SID → Twilio; otherwise the console outbox in development
    and test, and nothing in production unless EMAIL_BACKEND / SMS_BACKEND=console says so."""
    local_ok = environment != "production"

    email_choice = (env.get("EMAIL_BACKEND") or "").strip().lower()
    if email_choice not in ("", "smtp", "console"):
        raise ConfigError(f"EMAIL_BACKEND must be smtp or console, not {email_choice!r}")
    smtp = _smtp_settings(env) if env.get("EMAIL_HOST") else None
    if email_choice == "smtp" and smtp is None:
        raise ConfigError("EMAIL_BACKEND=smtp needs EMAIL_HOST")
    email_backend = email_choice or ("smtp" if smtp else "console" if local_ok else None)

    sms_choice = (env.get("SMS_BACKEND") or "").strip().lower()
    if sms_choice not in ("", "twilio", "console"):
        raise ConfigError(f"SMS_BACKEND must be twilio or console, not {sms_choice!r}")
    twilio = _twilio_settings(env) if env.get("TWILIO_ACCOUNT_SID") else None
    if sms_choice == "twilio" and twilio is None:
        raise ConfigError("SMS_BACKEND=twilio needs TWILIO_ACCOUNT_SID")
    sms_backend = sms_choice or ("twilio" if twilio else "console" if local_ok else None)

    raw_intervals = env.get("DELIVERY_RETRY_INTERVALS")
    intervals = DeliverySettings.retry_intervals
    if raw_intervals:
        try:
            intervals = tuple(int(part) for part in raw_intervals.split(",") if part.strip())
        except ValueError:
            raise ConfigError(f"DELIVERY_RETRY_INTERVALS must be comma-separated seconds, not {raw_intervals!r}") from None
        if not intervals or any(i < 0 for i in intervals):
            raise ConfigError("DELIVERY_RETRY_INTERVALS needs at least one interval, none negative")
    return DeliverySettings(
        email_backend=email_backend,
        sms_backend=sms_backend,
        smtp=smtp,
        twilio=twilio,
        outbox_path=Path(env["OUTBOX_PATH"]) if env.get("OUTBOX_PATH") else instance_path / "outbox.jsonl",
        queue_name=env.get("DELIVERY_QUEUE") or DeliverySettings.queue_name,
        retry_intervals=intervals,
    )


def _smtp_settings(env: Mapping[str, str]) -> SmtpSettings:
    secure = parse_bool("EMAIL_SECURE", env.get("EMAIL_SECURE"), False)
    starttls = parse_bool("EMAIL_STARTTLS", env.get("EMAIL_STARTTLS"), not secure)
    if secure and starttls:
        raise ConfigError("EMAIL_SECURE (implicit TLS) and EMAIL_STARTTLS exclude each other: set one")
    user = env.get("EMAIL_USER") or None
    password = env.get("EMAIL_PASSWORD") or None
    if password and not user:
        raise ConfigError("EMAIL_PASSWORD is set without EMAIL_USER")
    sender = env.get("EMAIL_FROM") or user
    if not sender:
        raise ConfigError("EMAIL_FROM is required when EMAIL_HOST is set (the sender address)")
    return SmtpSettings(
        host=env["EMAIL_HOST"],
        port=parse_int("EMAIL_PORT", env.get("EMAIL_PORT"), 465 if secure else 587),
        secure=secure,
        starttls=starttls,
        user=user,
        password=password,
        sender=sender,
    )


def _twilio_settings(env: Mapping[str, str]) -> TwilioSettings:
    for name in ("TWILIO_AUTH_TOKEN", "TWILIO_PHONE_NUMBER"):
        if not env.get(name):
            raise ConfigError(f"{name} is required when TWILIO_ACCOUNT_SID is set")
    base_url = (env.get("TWILIO_API_BASE_URL") or "").strip().rstrip("/") or None
    if base_url and urlsplit(base_url).scheme not in ("http", "https"):
        raise ConfigError(f"TWILIO_API_BASE_URL must be an http(s) URL, not {base_url!r}")
    return TwilioSettings(
        account_sid=env["TWILIO_ACCOUNT_SID"],
        auth_token=env["TWILIO_AUTH_TOKEN"],
        phone_number=env["TWILIO_PHONE_NUMBER"],
        api_base_url=base_url,
    )


@dataclass(frozen=True)
class Settings:
    """Everything the app reads from its environment, validated once at start-up."""

    environment: str
    secret_key: str
    encryption_keys: tuple[str, ...]
    database: DatabaseSettings
    redis_url: str | None
    issuer: str
    api_base_path: str
    frontend_url: str
    cors_origins: tuple[str, ...]
    service_name: str
    port: int
    trusted_proxies: int
    access_token_ttl: int
    refresh_token_ttl: int
    browser_session_ttl: int
    client_cache_seconds: int
    argon2: Argon2Settings
    rate_limits: RateLimits
    rate_limit_key_prefix: str
    max_body_bytes: int
    access_token_alg: str
    reauth_window: int
    totp_issuer: str
    delivery: DeliverySettings
    translations_dir: Path = DEFAULT_TRANSLATIONS_DIR
    api_key_rate_limit: int = 1000  # requests per hour of a key created without its own rateLimit
    api_key_max_per_user: int = 25  # keys not revoked a user may hold
    refresh_synchronous_commit: bool = False  # a rotation waits for PostgreSQL's WAL flush (SessionStatements)
    webhooks: WebhookSettings = WebhookSettings()
    observability: ObservabilitySettings = ObservabilitySettings()
    brand: BrandSettings = BrandSettings()

    @property
    def is_development(self) -> bool:
        return self.environment != "production"

    @property
    def secure_cookies(self) -> bool:
        return not self.is_development

    @classmethod
    def load(cls, env: Mapping[str, str], instance_path: Path) -> Settings:
        environment = (env.get("IDP_ENV") or env.get("NODE_ENV") or "development").strip().lower()
        if environment not in ("development", "production", "test"):
            raise ConfigError(f"IDP_ENV must be development, test or production, not {environment!r}")
        production = environment == "production"
        secret_key = _secret(env, "SECRET_KEY", instance_path, production, secrets.token_urlsafe(48))
        encryption_keys = _encryption_keys(env, instance_path, production)
        port = parse_int("PORT", env.get("PORT"), 3001)
        issuer = (env.get("ISSUER") or f"http://localhost:{port}").rstrip("/")
        base_path = "/" + (env.get("API_BASE_PATH") or "/api").strip("/")
        defaults = RateLimits()
        limits = RateLimits(
            **{
                name: _rate_limit(f"RATE_LIMIT_{name.upper()}", env.get(f"RATE_LIMIT_{name.upper()}") or getattr(defaults, name))
                for name in RateLimits.__dataclass_fields__
            }
        )
        defaults_a2 = Argon2Settings()
        argon2 = Argon2Settings(
            memory_kib=parse_int("ARGON2_MEMORY_KIB", env.get("ARGON2_MEMORY_KIB"), defaults_a2.memory_kib),
            time_cost=parse_int("ARGON2_TIME_COST", env.get("ARGON2_TIME_COST"), defaults_a2.time_cost),
            parallelism=parse_int("ARGON2_PARALLELISM", env.get("ARGON2_PARALLELISM"), defaults_a2.parallelism),
            concurrency=max(1, parse_int("ARGON2_CONCURRENCY", env.get("ARGON2_CONCURRENCY"), defaults_a2.concurrency)),
        )
        if production and (argon2.memory_kib < 19456 or argon2.time_cost < 2):
            raise ConfigError("ARGON2_MEMORY_KIB/ARGON2_TIME_COST are below the OWASP minimum (19456 KiB, t=2)")
        alg = (env.get("ACCESS_TOKEN_ALG") or "").strip() or "ES256"  # empty is the default, as everywhere
        if alg not in ("ES256", "RS256"):
            raise ConfigError(f"ACCESS_TOKEN_ALG must be ES256 or RS256, not {alg!r}")
        return cls(
            environment=environment,
            secret_key=secret_key,
            encryption_keys=encryption_keys,
            database=database_settings(env.get("DATABASE_URL"), instance_path),
            redis_url=redis_url(env),
            issuer=issuer,
            api_base_path=base_path,
            frontend_url=(env.get("FRONTEND_URL") or issuer).rstrip("/"),
            cors_origins=cors_origins(env.get("CORS_ORIGINS")),
            service_name=env.get("SERVICE_NAME") or "idp",
            port=port,
            trusted_proxies=parse_int("TRUSTED_PROXIES", env.get("TRUSTED_PROXIES"), 0, minimum=0),
            access_token_ttl=parse_int("ACCESS_TOKEN_TTL", env.get("ACCESS_TOKEN_TTL"), 15 * 60),
            refresh_token_ttl=parse_int("REFRESH_TOKEN_TTL", env.get("REFRESH_TOKEN_TTL"), 7 * 24 * 3600),
            refresh_synchronous_commit=parse_bool("REFRESH_SYNCHRONOUS_COMMIT", env.get("REFRESH_SYNCHRONOUS_COMMIT"), False),
            browser_session_ttl=parse_int("BROWSER_SESSION_TTL", env.get("BROWSER_SESSION_TTL"), 12 * 3600),
            client_cache_seconds=parse_int("CLIENT_CACHE_SECONDS", env.get("CLIENT_CACHE_SECONDS"), 10),
            argon2=argon2,
            rate_limits=limits,
            rate_limit_key_prefix=env.get("RATE_LIMIT_KEY_PREFIX") or "idp",
            max_body_bytes=parse_int("MAX_BODY_BYTES", env.get("MAX_BODY_BYTES"), 64 * 1024),
            access_token_alg=alg,
            delivery=delivery_settings(env, environment, instance_path),
            reauth_window=parse_int("REAUTH_WINDOW_SECONDS", env.get("REAUTH_WINDOW_SECONDS"), 10 * 60),
            totp_issuer=env.get("TOTP_ISSUER") or env.get("SERVICE_NAME") or "idp",
            # a relative path is taken from the project root, where translations/ is by default
            translations_dir=DEFAULT_TRANSLATIONS_DIR.parent / env["TRANSLATIONS_DIR"] if env.get("TRANSLATIONS_DIR") else DEFAULT_TRANSLATIONS_DIR,
            api_key_rate_limit=max(1, parse_int("API_KEY_RATE_LIMIT", env.get("API_KEY_RATE_LIMIT"), 1000)),
            api_key_max_per_user=parse_int("API_KEY_MAX_PER_USER", env.get("API_KEY_MAX_PER_USER"), 25, minimum=1),
            webhooks=webhook_settings(env, production),
            observability=observability_settings(env, production),
            brand=brand_settings(env),
        )


def _rate_limit(name: str, value: str) -> str:
    """A single rate such as "5 per 15 minutes", or "off"; a typo must not silently switch a limit off."""
    if value.strip().lower() == "off":
        return "off"
    from limits import parse_many

    try:
        if len(parse_many(value)) == 1:
            return value
    except ValueError:
        pass
    raise ConfigError(f'{name} must be one rate like "5 per 15 minutes" (or "off"), not {value!r}')


def cors_origins(raw: str | None) -> tuple[str, ...]:
    """CORS_ORIGINS: comma-separated origins (scheme://host[:port]), each allowed exactly. A
    trailing slash or a path is dropped (no browser sends one), capitals are lowered; a pattern
    ("*", "https://*.example.com") is refused: credentials are allowed, so "*" would let every
    site act with the user's cookies."""
    origins = []
    for entry in (raw or "").split(","):
        if not entry.strip():
            continue
        parts = urlsplit(entry.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc or "*" in entry:
            raise ConfigError(f"CORS_ORIGINS lists origins like https://app.example.com, not {entry.strip()!r}")
        origins.append(f"{parts.scheme}://{parts.netloc.lower()}")
    return tuple(dict.fromkeys(origins))


def _instance_secret(instance_path: Path, name: str, make: str) -> str:
    """A development secret generated once and kept under instance/ (mode 0600)."""
    instance_path.mkdir(parents=True, exist_ok=True)
    path = instance_path / f"{name.lower()}.secret"
    if path.exists():
        return path.read_text().strip()
    path.write_text(make)
    path.chmod(0o600)
    return make


def _secret(env: Mapping[str, str], name: str, instance_path: Path, production: bool, make: str) -> str:
    value = env.get(name)
    if production:
        if not value:
            raise ConfigError(f"{name} is required in production (generate one: python -c 'import secrets; print(secrets.token_urlsafe(48))')")
        distinct = len(set(value.strip()))  # 40 spaces, or "a" 32 times, are long and not random
        if len(value) < MIN_SECRET_LENGTH or distinct < MIN_DISTINCT_CHARACTERS or any(m in value.lower() for m in WEAK_SECRET_MARKERS):
            raise ConfigError(f"{name} is too weak: use at least {MIN_SECRET_LENGTH} random characters")
        return value
    return value or _instance_secret(instance_path, name, make)


def _encryption_keys(env: Mapping[str, str], instance_path: Path, production: bool) -> tuple[str, ...]:
    """ENCRYPTION_KEYS: comma-separated Fernet keys, newest first (older ones only decrypt)."""
    raw = env.get("ENCRYPTION_KEYS")
    if not raw:
        if production:
            raise ConfigError(
                "ENCRYPTION_KEYS is required in production (generate one: "
                "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')"
            )
        raw = _instance_secret(instance_path, "ENCRYPTION_KEYS", Fernet.generate_key().decode())
    keys = tuple(k.strip() for k in raw.split(",") if k.strip())
    if not keys:
        raise ConfigError("ENCRYPTION_KEYS holds no key (comma-separated Fernet keys, newest first)")
    for key in keys:
        try:
            Fernet(key)
        except ValueError:
            raise ConfigError("ENCRYPTION_KEYS holds a value that is not a Fernet key (32 url-safe base64 bytes)") from None
    if production and _weak_fernet_key(keys[0]):
        # only the first key encrypts: a weak older one stays readable, so a move away from it works
        raise ConfigError(
            "ENCRYPTION_KEYS is too weak: its first key is not 32 random bytes (generate one: "
            "python3 -c 'import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())')"
        )
    return keys


def _weak_fernet_key(key: str) -> bool:
    """A key of few distinct bytes (zeros, a repeated pattern) or of printable text only (a password
    encoded, not random bytes). 32 random bytes hold about 30 distinct values, and are all printable
    once in 10^13 draws."""
    raw = base64.urlsafe_b64decode(key)
    return len(set(raw)) < 16 or all(0x20 <= byte < 0x7F for byte in raw)


def environment_with_dotenv(base: Mapping[str, str] | None = None, dotenv_path: str = ".env") -> dict[str, str]:
    """The process environment over the values of `.env` (the environment wins)."""
    from dotenv import dotenv_values

    merged = {k: v for k, v in dotenv_values(dotenv_path).items() if v is not None} if os.path.exists(dotenv_path) else {}
    merged.update(base if base is not None else os.environ)
    return merged
