"""One typed settings object, read from the environment once and validated.

A wrong value never raises: it is recorded in ``Settings.errors`` (naming the variable) and the
field keeps its safe default, so the app still indexes and reports the problem through
``/readyz``, the log and a 503 on API routes.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import secrets
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

logger = logging.getLogger(__name__)

ENVIRONMENTS = ("development", "test", "production")
# The full-stack-fastapi-template's name for development: its .env says ENVIRONMENT=local.
ENVIRONMENT_ALIASES = {"local": "development"}
MIN_SECRET_BYTES = 32
MIN_PASSWORD_LENGTH = 8
# The template's placeholder passwords and secrets, refused in production as the template does.
PLACEHOLDER_SECRET = "changethis"  # noqa: S105 (a value refused, not a secret)
CPUS = os.cpu_count() or 1
_URL_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*)://", re.IGNORECASE)
_DATABASE_SCHEMES = {
    "sqlite": "sqlite",
    "postgres": "postgresql+psycopg",
    "postgresql": "postgresql+psycopg",
    "postgresql+psycopg": "postgresql+psycopg",
}
_CACHE_PREFIX = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
# The build writes the commit it packaged into this file (scripts/package.py). It describes the
# code it ships with, so /healthz reports it over APP_VERSION, an app setting that a failed or
# half-done deploy can leave out of step with the code. Local runs have no such file.
BUILD_VERSION_FILE = Path(__file__).resolve().parent.parent / "BUILD_VERSION"
_VERSION = re.compile(r"^[A-Za-z0-9._+-]{1,100}$")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class CacheTTL:
    """Seconds per cache tier (``CACHE_TTL_*``)."""

    short: int = 60
    medium: int = 300
    long: int = 3600
    daily: int = 86400
    session: int = 1800
    default: int = 300
    # A user's record for authentication. At most AUTH_TTL_MAX: an instance that changed it but
    # cannot reach Redis cannot evict it there, and every other instance must see the change
    # within 5 s (DESIGN: "whatever Redis's state").
    auth: int = 4

    def for_tier(self, tier: str) -> int:
        return int(getattr(self, tier))


CACHE_TIERS = ("short", "medium", "long", "daily", "session", "default", "auth")
AUTH_TTL_MAX = 5


@dataclass(frozen=True)
class Settings:
    environment: str = "development"
    app_version: str = "dev"
    project_name: str = "Stratus"

    database_url: str = "sqlite:///local.db"
    db_pool_size: int = 5
    db_max_overflow: int = 5
    db_pool_timeout: float = 5.0
    db_connect_timeout: int = 5
    db_deadline_seconds: float = 5.0
    db_pgbouncer: bool = False
    db_entra_auth: bool = False

    secret_key: str = ""
    jwt_secret_key: str = ""
    jwt_access_token_expire_minutes: int = 60 * 24 * 8
    email_reset_token_expire_hours: int = 48
    password_hash_concurrency: int = CPUS
    password_hash_queue: int = max(1, CPUS // 2)
    login_throttle_account_failures: int = 5
    login_throttle_address_failures: int = 20
    login_throttle_max_delay_seconds: int = 900
    password_recovery_per_address: int = 3
    password_recovery_per_client: int = 10
    trusted_proxy_hops: int = 1

    azure_client_id: str | None = None
    azure_tenant_id: str | None = None
    azure_admin_role: str = "Stratus.Admin"
    azure_authority_host: str = "https://login.microsoftonline.com"
    azure_jwks_cooldown_seconds: float = 30.0
    azure_managed_identity_client_id: str | None = None

    redis_url: str | None = None
    redis_entra_auth: bool = False
    cache_prefix: str = "stratus"
    cache_ttl: CacheTTL = field(default_factory=CacheTTL)
    cache_ttl_jitter: float = 0.1
    cache_socket_timeout_ms: int = 250
    cache_connect_timeout_ms: int = 250
    cache_local_maxsize: int = 10_000
    cache_probe_interval_seconds: float = 5.0
    cache_second_eviction_ms: int = 1000
    cache_auth_local_seconds: float = 2.0

    cors_origins: tuple[str, ...] = ()
    cors_allow_credentials: bool = False

    first_superuser: str | None = None
    first_superuser_password: str | None = None

    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_tls: bool = True
    smtp_ssl: bool = False
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_timeout_seconds: float = 10.0
    emails_from_email: str | None = None
    emails_from_name: str | None = None
    frontend_host: str = "http://localhost:5173"

    applicationinsights_connection_string: str | None = None
    readiness_timeout_ms: int = 1000
    readiness_cache_ms: int = 1500
    api_docs_enabled: bool = True

    errors: tuple[str, ...] = ()

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def entra_enabled(self) -> bool:
        return bool(self.azure_client_id and self.azure_tenant_id)

    @property
    def emails_enabled(self) -> bool:
        return bool(self.smtp_host and self.emails_from_email)


class _Reader:
    """Reads typed values, recording each problem with the variable's name."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.errors: list[str] = []

    def raw(self, name: str) -> str | None:
        value = self.env.get(name)
        if value is None:
            return None
        value = value.strip()
        return value or None

    def text(self, name: str, default: str) -> str:
        return self.raw(name) or default

    def optional(self, name: str) -> str | None:
        return self.raw(name)

    def integer(self, name: str, default: int, *, minimum: int, maximum: int = 2**31 - 1) -> int:
        raw = self.raw(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            self.errors.append(f"{name} must be an integer, got {raw!r}")
            return default
        if not minimum <= value <= maximum:
            self.errors.append(f"{name} must be between {minimum} and {maximum}, got {value}")
            return default
        return value

    def number(self, name: str, default: float, *, minimum: float, maximum: float) -> float:
        raw = self.raw(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            self.errors.append(f"{name} must be a number, got {raw!r}")
            return default
        if not minimum <= value <= maximum:
            self.errors.append(f"{name} must be between {minimum} and {maximum}, got {value}")
            return default
        return value

    def boolean(self, name: str, default: bool) -> bool:
        raw = self.env.get(name)
        if raw is None:
            return default
        lowered = raw.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        self.errors.append(f"{name} must be true or false, got {raw!r}")
        return default

    def choice(
        self,
        name: str,
        default: str,
        choices: tuple[str, ...],
        aliases: Mapping[str, str] | None = None,
    ) -> str:
        raw = self.raw(name)
        if raw is None:
            return default
        value = raw.lower()
        value = (aliases or {}).get(value, value)
        if value not in choices:
            self.errors.append(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
            return default
        return value

    def url(self, name: str, schemes: tuple[str, ...]) -> str | None:
        raw = self.raw(name)
        if raw is None:
            return None
        match = _URL_SCHEME.match(raw)
        if not match or match.group(1).lower() not in schemes:
            self.errors.append(f"{name} must be a URL starting with {' or '.join(schemes)}://")
            return None
        try:
            urllib.parse.urlsplit(raw).port  # noqa: B018 (raises for a port that is not a number)
        except ValueError:
            self.errors.append(f"{name} has an invalid port")
            return None
        return raw


def _database_url(reader: _Reader) -> str:
    default = Settings.database_url
    raw = reader.raw("DATABASE_URL")
    if raw is None:
        return default
    match = _URL_SCHEME.match(raw)
    scheme = match.group(1).lower() if match else None
    if scheme not in _DATABASE_SCHEMES:
        reader.errors.append(
            "DATABASE_URL must be a URL starting with sqlite:// or postgresql+psycopg://"
        )
        return default
    assert match is not None
    return _DATABASE_SCHEMES[scheme] + raw[match.end(1) :]


def _cache_ttl(reader: _Reader) -> CacheTTL:
    defaults = CacheTTL()
    values = {
        tier: reader.integer(
            f"CACHE_TTL_{tier.upper()}",
            defaults.for_tier(tier),
            minimum=1,
            maximum=AUTH_TTL_MAX if tier == "auth" else 30 * 86400,
        )
        for tier in CACHE_TIERS
    }
    return CacheTTL(**values)


def _cors(reader: _Reader, environment: str) -> tuple[tuple[str, ...], bool]:
    raw = reader.raw("CORS_ORIGINS")
    if raw is None:
        origins: tuple[str, ...] = (
            ("http://localhost:5173",) if environment == "development" else ()
        )
    else:
        origins = tuple(o.strip().rstrip("/") for o in raw.split(",") if o.strip())
    for origin in origins:
        if origin != "*" and not re.match(r"^https?://[^/\s]+$", origin):
            reader.errors.append(f"CORS_ORIGINS has an invalid origin {origin!r}")
    credentials = reader.boolean("CORS_ALLOW_CREDENTIALS", False)
    if credentials and "*" in origins:
        reader.errors.append("CORS_ORIGINS may not contain '*' when CORS_ALLOW_CREDENTIALS is true")
    return origins, credentials


def _secret(reader: _Reader, name: str, environment: str) -> str:
    value = reader.raw(name)
    if environment == "production":
        if value is None:
            reader.errors.append(f"{name} is required in production")
        elif len(value.encode()) < MIN_SECRET_BYTES:
            reader.errors.append(f"{name} must be at least {MIN_SECRET_BYTES} bytes in production")
    if value is None:
        # Development only: a per-process value, so tokens do not survive a restart.
        logger.warning("%s is not set; using a random development-only value", name)
        return secrets.token_urlsafe(MIN_SECRET_BYTES)
    return value


def _app_version(reader: _Reader) -> str:
    try:
        built = BUILD_VERSION_FILE.read_text().strip()
    except FileNotFoundError:
        return reader.text("APP_VERSION", Settings.app_version)
    if not _VERSION.match(built):
        reader.errors.append(f"{BUILD_VERSION_FILE.name} does not hold a version")
        return Settings.app_version
    return built


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build and validate settings from ``env`` (the process environment by default)."""
    reader = _Reader(os.environ if env is None else env)
    environment = reader.choice(
        "ENVIRONMENT", "development", ENVIRONMENTS, aliases=ENVIRONMENT_ALIASES
    )
    database_url = _database_url(reader)
    secret_key = _secret(reader, "SECRET_KEY", environment)
    jwt_secret_key = _secret(reader, "JWT_SECRET_KEY", environment)
    cors_origins, cors_credentials = _cors(reader, environment)
    cache_prefix = reader.text("CACHE_PREFIX", Settings.cache_prefix)
    if not _CACHE_PREFIX.match(cache_prefix):
        reader.errors.append("CACHE_PREFIX must be 1-64 characters of A-Z a-z 0-9 _ . -")
        cache_prefix = Settings.cache_prefix
    tenant = reader.optional("AZURE_TENANT_ID")
    if tenant is not None and not re.match(r"^[A-Za-z0-9.-]{1,128}$", tenant):
        reader.errors.append("AZURE_TENANT_ID must be a tenant id (GUID) or domain name")
        tenant = None

    settings = Settings(
        environment=environment,
        app_version=_app_version(reader),
        project_name=reader.text("PROJECT_NAME", Settings.project_name),
        database_url=database_url,
        db_pool_size=reader.integer("DB_POOL_SIZE", Settings.db_pool_size, minimum=1, maximum=100),
        db_max_overflow=reader.integer(
            "DB_MAX_OVERFLOW", Settings.db_max_overflow, minimum=0, maximum=100
        ),
        db_pool_timeout=reader.number(
            "DB_POOL_TIMEOUT", Settings.db_pool_timeout, minimum=0.1, maximum=60
        ),
        db_connect_timeout=reader.integer(
            "DB_CONNECT_TIMEOUT", Settings.db_connect_timeout, minimum=1, maximum=60
        ),
        db_deadline_seconds=reader.number(
            "DB_DEADLINE_SECONDS", Settings.db_deadline_seconds, minimum=0.5, maximum=120
        ),
        db_pgbouncer=reader.boolean("DB_PGBOUNCER", False),
        db_entra_auth=reader.boolean("DB_ENTRA_AUTH", False),
        secret_key=secret_key,
        jwt_secret_key=jwt_secret_key,
        jwt_access_token_expire_minutes=reader.integer(
            "JWT_ACCESS_TOKEN_EXPIRE_MINUTES",
            Settings.jwt_access_token_expire_minutes,
            minimum=1,
            maximum=60 * 24 * 365,
        ),
        email_reset_token_expire_hours=reader.integer(
            "EMAIL_RESET_TOKEN_EXPIRE_HOURS",
            Settings.email_reset_token_expire_hours,
            minimum=1,
            maximum=24 * 30,
        ),
        password_hash_concurrency=reader.integer(
            "PASSWORD_HASH_CONCURRENCY", Settings.password_hash_concurrency, minimum=1, maximum=64
        ),
        password_hash_queue=reader.integer(
            "PASSWORD_HASH_QUEUE", Settings.password_hash_queue, minimum=0, maximum=256
        ),
        login_throttle_account_failures=reader.integer(
            "LOGIN_THROTTLE_ACCOUNT_FAILURES",
            Settings.login_throttle_account_failures,
            minimum=1,
            maximum=1000,
        ),
        login_throttle_address_failures=reader.integer(
            "LOGIN_THROTTLE_ADDRESS_FAILURES",
            Settings.login_throttle_address_failures,
            minimum=1,
            maximum=100_000,
        ),
        login_throttle_max_delay_seconds=reader.integer(
            "LOGIN_THROTTLE_MAX_DELAY_SECONDS",
            Settings.login_throttle_max_delay_seconds,
            minimum=1,
            maximum=86_400,
        ),
        password_recovery_per_address=reader.integer(
            "PASSWORD_RECOVERY_PER_ADDRESS",
            Settings.password_recovery_per_address,
            minimum=1,
            maximum=1000,
        ),
        password_recovery_per_client=reader.integer(
            "PASSWORD_RECOVERY_PER_CLIENT",
            Settings.password_recovery_per_client,
            minimum=1,
            maximum=100_000,
        ),
        trusted_proxy_hops=reader.integer(
            "TRUSTED_PROXY_HOPS", Settings.trusted_proxy_hops, minimum=0, maximum=10
        ),
        azure_client_id=reader.optional("AZURE_CLIENT_ID"),
        azure_tenant_id=tenant,
        azure_admin_role=reader.text("AZURE_ADMIN_ROLE", Settings.azure_admin_role),
        azure_authority_host=(
            reader.url("AZURE_AUTHORITY_HOST", ("https", "http")) or Settings.azure_authority_host
        ).rstrip("/"),
        azure_jwks_cooldown_seconds=reader.number(
            "AZURE_JWKS_COOLDOWN_SECONDS",
            Settings.azure_jwks_cooldown_seconds,
            minimum=0,
            maximum=3600,
        ),
        azure_managed_identity_client_id=reader.optional("AZURE_MANAGED_IDENTITY_CLIENT_ID"),
        redis_url=reader.url("REDIS_URL", ("redis", "rediss", "unix")),
        redis_entra_auth=reader.boolean("REDIS_ENTRA_AUTH", False),
        cache_prefix=cache_prefix,
        cache_ttl=_cache_ttl(reader),
        cache_ttl_jitter=reader.number(
            "CACHE_TTL_JITTER", Settings.cache_ttl_jitter, minimum=0.0, maximum=0.5
        ),
        cache_socket_timeout_ms=reader.integer(
            "CACHE_SOCKET_TIMEOUT_MS", Settings.cache_socket_timeout_ms, minimum=10, maximum=10_000
        ),
        cache_connect_timeout_ms=reader.integer(
            "CACHE_CONNECT_TIMEOUT_MS",
            Settings.cache_connect_timeout_ms,
            minimum=10,
            maximum=10_000,
        ),
        cache_local_maxsize=reader.integer(
            "CACHE_LOCAL_MAXSIZE", Settings.cache_local_maxsize, minimum=1, maximum=10_000_000
        ),
        cache_probe_interval_seconds=reader.number(
            "CACHE_PROBE_INTERVAL_SECONDS",
            Settings.cache_probe_interval_seconds,
            minimum=0.1,
            maximum=3600,
        ),
        cache_second_eviction_ms=reader.integer(
            "CACHE_SECOND_EVICTION_MS",
            Settings.cache_second_eviction_ms,
            minimum=0,
            maximum=60_000,
        ),
        cache_auth_local_seconds=reader.number(
            "CACHE_AUTH_LOCAL_SECONDS",
            Settings.cache_auth_local_seconds,
            minimum=0.0,
            maximum=5.0,
        ),
        cors_origins=cors_origins,
        cors_allow_credentials=cors_credentials,
        first_superuser=reader.optional("FIRST_SUPERUSER"),
        first_superuser_password=reader.optional("FIRST_SUPERUSER_PASSWORD"),
        smtp_host=reader.optional("SMTP_HOST"),
        smtp_port=reader.integer("SMTP_PORT", Settings.smtp_port, minimum=1, maximum=65535),
        smtp_tls=reader.boolean("SMTP_TLS", Settings.smtp_tls),
        smtp_ssl=reader.boolean("SMTP_SSL", Settings.smtp_ssl),
        smtp_user=reader.optional("SMTP_USER"),
        smtp_password=reader.optional("SMTP_PASSWORD"),
        smtp_timeout_seconds=reader.number(
            "SMTP_TIMEOUT_SECONDS", Settings.smtp_timeout_seconds, minimum=0.1, maximum=120
        ),
        emails_from_email=reader.optional("EMAILS_FROM_EMAIL"),
        emails_from_name=reader.optional("EMAILS_FROM_NAME"),
        frontend_host=(
            reader.url("FRONTEND_HOST", ("http", "https")) or Settings.frontend_host
        ).rstrip("/"),
        applicationinsights_connection_string=reader.optional(
            "APPLICATIONINSIGHTS_CONNECTION_STRING"
        ),
        readiness_timeout_ms=reader.integer(
            "READINESS_TIMEOUT_MS", Settings.readiness_timeout_ms, minimum=50, maximum=30_000
        ),
        readiness_cache_ms=reader.integer(
            "READINESS_CACHE_MS", Settings.readiness_cache_ms, minimum=0, maximum=60_000
        ),
        api_docs_enabled=reader.boolean("API_DOCS_ENABLED", Settings.api_docs_enabled),
    )
    errors = reader.errors
    if settings.db_entra_auth and settings.is_sqlite:
        errors.append("DB_ENTRA_AUTH needs a PostgreSQL DATABASE_URL")
    if settings.smtp_tls and settings.smtp_ssl:
        errors.append("SMTP_TLS and SMTP_SSL cannot both be true")
    if settings.is_production:
        errors.extend(_production_problems(settings))
    return replace(settings, errors=tuple(errors))


KEY_VAULT_REFERENCE = "@Microsoft.KeyVault("


def _production_problems(settings: Settings) -> list[str]:
    problems = []
    # An unresolved Key Vault reference arrives as its literal text: long enough to pass as a
    # secret, and the same on every instance that cannot read the vault.
    for name, value in (
        ("SECRET_KEY", settings.secret_key),
        ("JWT_SECRET_KEY", settings.jwt_secret_key),
    ):
        if value.startswith(KEY_VAULT_REFERENCE):
            problems.append(f"{name} is an unresolved Key Vault reference")
    if settings.is_sqlite:
        problems.append("DATABASE_URL must point to PostgreSQL in production, not SQLite")
    if settings.secret_key and settings.secret_key == settings.jwt_secret_key:
        problems.append("SECRET_KEY and JWT_SECRET_KEY must differ in production")
    if "*" in settings.cors_origins:
        problems.append("CORS_ORIGINS may not be '*' in production")
    password = settings.first_superuser_password
    if password is not None and (
        password == PLACEHOLDER_SECRET or len(password) < MIN_PASSWORD_LENGTH
    ):
        problems.append(
            f"FIRST_SUPERUSER_PASSWORD must not be {PLACEHOLDER_SECRET!r} nor shorter than "
            f"{MIN_PASSWORD_LENGTH} characters in production"
        )
    if settings.azure_authority_host.lower().startswith("http://"):
        problems.append("AZURE_AUTHORITY_HOST must be an https:// URL in production")
    if settings.azure_jwks_cooldown_seconds < 1:
        problems.append("AZURE_JWKS_COOLDOWN_SECONDS must be at least 1 in production")
    if (settings.smtp_user or settings.smtp_password) and not (
        settings.smtp_tls or settings.smtp_ssl
    ):
        problems.append("SMTP_USER/SMTP_PASSWORD need SMTP_TLS or SMTP_SSL in production")
    return problems


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings; the first call logs every configuration error."""
    settings = load_settings()
    for problem in settings.errors:
        logger.error("Configuration error: %s", problem)
    return settings
