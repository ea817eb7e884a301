"""manage.py: clear exit codes and messages; migrate and create-superuser are idempotent."""

import json
import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
SECRETS = {"SECRET_KEY": "k" * 40, "JWT_SECRET_KEY": "j" * 40}


def manage(*args: str, env: dict[str, str] | None = None, settings: Path | None = None):
    base = {k: v for k, v in os.environ.items() if k not in _APP_VARIABLES}
    base.update(SECRETS)
    base.update(env or {})
    settings_args = ["--settings", str(settings)] if settings else ["--settings", "/nonexistent"]
    return subprocess.run(
        [sys.executable, "manage.py", *settings_args, *args],
        cwd=ROOT,
        env=base,
        capture_output=True,
        text=True,
        timeout=120,
    )


_APP_VARIABLES = {"DATABASE_URL", "REDIS_URL", "FIRST_SUPERUSER", "FIRST_SUPERUSER_PASSWORD"}


def test_migrate_then_create_superuser_twice(tmp_path):
    url = f"sqlite:///{tmp_path / 'manage.db'}"
    env = {
        "DATABASE_URL": url,
        "FIRST_SUPERUSER": "root@example.com",
        "FIRST_SUPERUSER_PASSWORD": "root-password",
    }
    migrated = manage("migrate", env=env)
    assert migrated.returncode == 0, migrated.stderr
    assert "(head)" in migrated.stdout
    assert manage("migrate", env=env).returncode == 0

    created = manage("create-superuser", env=env)
    assert created.returncode == 0, created.stderr
    assert "Created superuser root@example.com" in created.stdout
    again = manage("create-superuser", env=env)
    assert again.returncode == 0
    assert "already exists" in again.stdout

    engine = sa.create_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT email, is_superuser FROM users")).all()
    engine.dispose()
    assert [tuple(row) for row in rows] == [("root@example.com", True)]


def test_create_superuser_without_settings_is_a_usage_error(tmp_path):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    result = manage("create-superuser", env=env)
    assert result.returncode == 2
    assert "FIRST_SUPERUSER and FIRST_SUPERUSER_PASSWORD must be set" in result.stderr


def test_a_bad_setting_is_a_usage_error_naming_the_variable():
    result = manage("migrate", env={"CACHE_TTL_SHORT": "-5"})
    assert result.returncode == 2
    assert "CACHE_TTL_SHORT" in result.stderr


def test_an_unreachable_database_is_a_failure_not_a_traceback():
    result = manage(
        "migrate",
        env={
            "DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none",
            "DB_CONNECT_TIMEOUT": "2",
        },
    )
    assert result.returncode == 1
    assert "Migration failed: OperationalError" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_malformed_settings_file_is_a_usage_error(tmp_path):
    broken = tmp_path / "local.settings.json"
    broken.write_text("{not json")
    result = manage("migrate", settings=broken)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_settings_file_values_apply_without_overriding_the_environment(tmp_path):
    settings = tmp_path / "local.settings.json"
    settings.write_text(
        json.dumps({"Values": {"DATABASE_URL": "sqlite:///ignored.db", "CACHE_TTL_SHORT": "abc"}})
    )
    # The file's bad CACHE_TTL_SHORT applies (nothing overrides it) and is reported ...
    result = manage("migrate", settings=settings)
    assert result.returncode == 2 and "CACHE_TTL_SHORT" in result.stderr
    # ... and the environment wins over the file.
    fixed = manage(
        "migrate",
        settings=settings,
        env={"CACHE_TTL_SHORT": "60", "DATABASE_URL": f"sqlite:///{tmp_path / 'env.db'}"},
    )
    assert fixed.returncode == 0, fixed.stderr
    assert (tmp_path / "env.db").exists()


def test_init_settings_writes_fresh_secrets_once(tmp_path):
    target = tmp_path / "local.settings.json"
    first = manage("init-settings", settings=target)
    assert first.returncode == 0
    values = json.loads(target.read_text())["Values"]
    sample = json.loads((ROOT / "local.settings.sample.json").read_text())["Values"]
    assert set(values) == set(sample)
    for name in ("SECRET_KEY", "JWT_SECRET_KEY", "FIRST_SUPERUSER_PASSWORD"):
        assert len(values[name]) >= 32
    assert values["SECRET_KEY"] != values["JWT_SECRET_KEY"]
    before = target.read_text()
    assert manage("init-settings", settings=target).returncode == 0
    assert target.read_text() == before
