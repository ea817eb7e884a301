"""Settings: every variable parsed once, every wrong value named, production rules enforced."""

import pytest

from shared.config import CacheTTL, load_settings

STRONG_A = "a" * 32
STRONG_B = "b" * 32


def test_no_settings_at_all_runs_on_embedded_defaults():
    settings = load_settings({})
    assert settings.errors == ()
    assert settings.environment == "development"
    assert settings.database_url == "sqlite:///local.db"
    assert settings.redis_url is None
    assert settings.cache_ttl == CacheTTL(60, 300, 3600, 86400, 1800, 300)
    assert settings.cors_origins == ("http://localhost:5173",)
    # Development secrets are generated, never empty, and differ from each other.
    assert len(settings.secret_key) >= 32
    assert settings.secret_key != settings.jwt_secret_key


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"CACHE_TTL_SHORT": "abc"}, "CACHE_TTL_SHORT must be an integer"),
        ({"CACHE_TTL_SHORT": "-5"}, "CACHE_TTL_SHORT must be between"),
        ({"CACHE_TTL_DAILY": "0"}, "CACHE_TTL_DAILY must be between"),
        ({"JWT_ACCESS_TOKEN_EXPIRE_MINUTES": "0"}, "JWT_ACCESS_TOKEN_EXPIRE_MINUTES"),
        ({"DATABASE_URL": "not a url"}, "DATABASE_URL must be a URL"),
        ({"DATABASE_URL": "mysql://x@y/z"}, "DATABASE_URL must be a URL"),
        ({"REDIS_URL": "localhost:6379"}, "REDIS_URL must be a URL"),
        ({"REDIS_URL": "redis://127.0.0.1:port/0"}, "REDIS_URL has an invalid port"),
        ({"ENVIRONMENT": "staging"}, "ENVIRONMENT must be one of"),
        ({"DB_PGBOUNCER": "maybe"}, "DB_PGBOUNCER must be true or false"),
        ({"DB_POOL_SIZE": "0"}, "DB_POOL_SIZE must be between"),
        ({"CACHE_TTL_JITTER": "2"}, "CACHE_TTL_JITTER must be between"),
        ({"CACHE_PREFIX": "a b*"}, "CACHE_PREFIX"),
        ({"CORS_ORIGINS": "localhost:5173"}, "CORS_ORIGINS has an invalid origin"),
        (
            {"CORS_ORIGINS": "*", "CORS_ALLOW_CREDENTIALS": "true"},
            "may not contain '*' when CORS_ALLOW_CREDENTIALS",
        ),
        ({"SMTP_TLS": "true", "SMTP_SSL": "true"}, "SMTP_TLS and SMTP_SSL"),
        ({"READINESS_TIMEOUT_MS": "10"}, "READINESS_TIMEOUT_MS must be between"),
        ({"CACHE_AUTH_LOCAL_SECONDS": "6"}, "CACHE_AUTH_LOCAL_SECONDS must be between"),
        ({"TRUSTED_PROXY_HOPS": "-1"}, "TRUSTED_PROXY_HOPS must be between"),
        ({"PASSWORD_HASH_CONCURRENCY": "0"}, "PASSWORD_HASH_CONCURRENCY must be between"),
        ({"LOGIN_THROTTLE_ACCOUNT_FAILURES": "0"}, "LOGIN_THROTTLE_ACCOUNT_FAILURES"),
        ({"PASSWORD_RECOVERY_PER_ADDRESS": "x"}, "PASSWORD_RECOVERY_PER_ADDRESS must be"),
    ],
)
def test_a_wrong_value_is_reported_with_the_variable_name(env, named):
    settings = load_settings(env)
    assert any(named in error for error in settings.errors), settings.errors


def test_a_wrong_value_keeps_the_safe_default():
    settings = load_settings({"CACHE_TTL_SHORT": "abc", "DB_POOL_SIZE": "-1"})
    assert settings.cache_ttl.short == 60
    assert settings.db_pool_size == 5


def test_values_are_parsed():
    settings = load_settings(
        {
            "CACHE_TTL_SHORT": "7",
            "DB_PGBOUNCER": "1",
            "CORS_ORIGINS": "https://a.example.com, https://b.example.com/",
            "DATABASE_URL": "postgresql://u@h:5432/d",
            "REDIS_URL": "redis://127.0.0.1:6379/0",
        }
    )
    assert settings.errors == ()
    assert settings.cache_ttl.short == 7
    assert settings.db_pgbouncer is True
    assert settings.cors_origins == ("https://a.example.com", "https://b.example.com")
    # psycopg 3 is the driver; plain postgresql:// URLs are pointed at it.
    assert settings.database_url == "postgresql+psycopg://u@h:5432/d"


def _production(**overrides: str) -> dict[str, str]:
    env = {
        "ENVIRONMENT": "production",
        "DATABASE_URL": "postgresql+psycopg://app@db.example.com/stratus",
        "SECRET_KEY": STRONG_A,
        "JWT_SECRET_KEY": STRONG_B,
        "CORS_ORIGINS": "https://app.example.com",
    }
    env.update(overrides)
    return env


def test_production_with_real_settings_is_clean():
    assert load_settings(_production()).errors == ()


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"DATABASE_URL": "sqlite:///local.db"}, "must point to PostgreSQL in production"),
        ({"SECRET_KEY": ""}, "SECRET_KEY is required in production"),
        ({"JWT_SECRET_KEY": "short"}, "JWT_SECRET_KEY must be at least 32 bytes"),
        ({"JWT_SECRET_KEY": STRONG_A}, "SECRET_KEY and JWT_SECRET_KEY must differ"),
        ({"CORS_ORIGINS": "*"}, "CORS_ORIGINS may not be '*' in production"),
        (
            {
                "JWT_SECRET_KEY": "@Microsoft.KeyVault(SecretUri=https://v.vault.azure.net/secrets/j)"
            },
            "JWT_SECRET_KEY is an unresolved Key Vault reference",
        ),
    ],
)
def test_production_rules_are_config_failures(overrides, named):
    errors = load_settings(_production(**overrides)).errors
    assert any(named in error for error in errors), errors


def test_secrets_never_appear_in_errors():
    errors = load_settings(_production(JWT_SECRET_KEY="tiny-secret-value")).errors
    assert errors
    assert not any("tiny-secret-value" in error for error in errors)


def test_the_local_settings_sample_lists_every_setting_the_app_reads():
    import json
    import re
    from pathlib import Path

    from shared.config import BUILD_VERSION_FILE, CACHE_TIERS

    root = Path(__file__).resolve().parent.parent
    source = (root / "shared" / "config.py").read_text()
    read = set(re.findall(r'"([A-Z][A-Z0-9_]{2,})"', source))
    read |= {f"CACHE_TTL_{tier.upper()}" for tier in CACHE_TIERS}
    read -= {"CACHE_TTL_", BUILD_VERSION_FILE.name}  # a prefix, and the package's version file
    sample = json.loads((root / "local.settings.sample.json").read_text())["Values"]
    assert read <= set(sample), read - set(sample)
    assert "REDIS_RECONNECT_SCHEDULE" in sample  # resolved by the host for the timer


def test_the_templates_local_environment_is_development():
    settings = load_settings({"ENVIRONMENT": "Local"})
    assert settings.environment == "development"
    assert settings.errors == ()
