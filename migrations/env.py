"""Alembic environment: the same settings and engine configuration as the app.

The URL comes from ``sqlalchemy.url`` when a caller sets it (tests, ``manage.py migrate``),
otherwise from ``DATABASE_URL`` through ``shared.config``.
"""

from dataclasses import replace
from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext

from shared.config import Settings, get_settings
from shared.db import build_engine
from shared.models import Base, UTCDateTime

config = context.config
target_metadata = Base.metadata


def _settings() -> Settings:
    settings = get_settings()
    url = config.get_main_option("sqlalchemy.url")
    return replace(settings, database_url=url) if url else settings


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Render the app's UTC column type as plain SQLAlchemy, so migrations never import app code."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run_migrations_offline() -> None:
    settings = _settings()
    context.configure(
        url=settings.database_url,
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=settings.is_sqlite,
        compare_type=True,
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    settings = _settings()
    # Migrations may rightly run long statements: no server-side statement or lock timeout.
    engine = build_engine(settings, statement_timeouts=False)
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=settings.is_sqlite,
                compare_type=True,
                render_item=render_item,
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
