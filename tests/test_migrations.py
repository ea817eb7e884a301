"""Alembic on both databases: round trips, no drift, autogenerate, and the app's readiness view."""

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from tests.support.services import temporary_database

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrations.db'}"
    else:
        with temporary_database() as url:
            yield url


def _config(url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def _tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _current(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return set(
                connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalars()
            )
    finally:
        engine.dispose()


def test_upgrade_downgrade_base_upgrade_round_trip(database_url):
    config = _config(database_url)
    heads = set(ScriptDirectory.from_config(config).get_heads())

    command.upgrade(config, "head")
    assert {"users", "items", "alembic_version"} <= _tables(database_url)
    assert _current(database_url) == heads

    command.downgrade(config, "base")
    assert _tables(database_url) <= {"alembic_version"}

    command.upgrade(config, "head")
    assert _current(database_url) == heads


def test_downgrade_one_step_then_back(database_url):
    config = _config(database_url)
    command.upgrade(config, "head")
    command.downgrade(config, "-1")
    command.upgrade(config, "head")
    assert {"users", "items"} <= _tables(database_url)


def test_models_and_migrations_do_not_drift(database_url, tmp_path):
    config = _config(database_url)
    command.upgrade(config, "head")
    command.check(config)  # raises when autogenerate would emit operations

    # autogenerate works and, at head, has nothing to write.
    versions = tmp_path / "versions"
    versions.mkdir()
    config.set_main_option("version_locations", f"{ROOT / 'migrations' / 'versions'}:{versions}")
    script = command.revision(
        config, message="probe", autogenerate=True, version_path=str(versions)
    )
    assert script is not None and not isinstance(script, list)
    generated = Path(script.path).read_text()
    upgrade_body = generated.split("def upgrade() -> None:")[1].split("def downgrade")[0]
    statements = [
        line.strip() for line in upgrade_body.splitlines() if line.strip() and "#" not in line
    ]
    assert statements == ["pass"]


def _insert_user(url: str, email: str) -> None:
    import uuid

    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO users (id, email, is_active, is_superuser, created_at) "
                    "VALUES (:id, :email, true, false, CURRENT_TIMESTAMP)"
                ),
                {"id": uuid.uuid4().hex, "email": email},
            )
    finally:
        engine.dispose()


def test_case_duplicate_addresses_stop_the_upgrade_naming_them_until_resolved(database_url):
    config = _config(database_url)
    command.upgrade(config, "83ba780b430e")  # the revision before the lower(email) index
    _insert_user(database_url, "Dup@example.com")
    _insert_user(database_url, "dup@example.com")
    _insert_user(database_url, "unique@example.com")
    with pytest.raises(Exception, match=r"1 e-mail address.*differ only by case") as failed:
        command.upgrade(config, "head")
    assert "users " in str(failed.value)  # the ids of the group, for the operator to resolve
    assert _current(database_url) == {"83ba780b430e"}

    engine = sa.create_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text("DELETE FROM users WHERE email = 'Dup@example.com'"))
    finally:
        engine.dispose()
    command.upgrade(config, "head")
    with pytest.raises(sa.exc.IntegrityError):
        _insert_user(database_url, "UNIQUE@example.com")
