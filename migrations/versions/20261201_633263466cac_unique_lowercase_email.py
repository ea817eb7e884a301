"""unique e-mail addresses whatever their case

Expand only: a unique index on ``lower(email)``, built with ``CREATE INDEX CONCURRENTLY`` on
PostgreSQL (outside a transaction, so writes go on while it builds). The old case-sensitive
``ix_users_email`` stays until a later, contracting release. The previous build keeps working:
its inserts of a case-variant address now fail on this index, which it already answers as
"already exists".

Rows that differ only by case would make the index fail half-built, so they are looked for
first and the upgrade stops naming them (by id: resolve each group, then migrate again).

Revision ID: 633263466cac
Revises: 83ba780b430e
Create Date: 2026-12-01 14:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

revision: str = "633263466cac"
down_revision: str | Sequence[str] | None = "83ba780b430e"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "uq_users_email_lower"

# For offline SQL (alembic upgrade --sql): the same check, in the server.
_CHECK_IN_SQL = """
DO $$
DECLARE groups integer;
BEGIN
    SELECT count(*) INTO groups FROM (
        SELECT lower(email) FROM users GROUP BY lower(email) HAVING count(*) > 1
    ) AS duplicates;
    IF groups > 0 THEN
        RAISE EXCEPTION USING MESSAGE = groups || ' e-mail address(es) are used by several '
            'users that differ only by case; give each a distinct address, then migrate again';
    END IF;
END $$
"""


class CaseDuplicateEmails(RuntimeError):
    """Users whose addresses differ only by case; the unique index cannot be built."""


def _check_no_case_duplicates() -> None:
    rows = op.get_bind().execute(
        sa.text(
            "SELECT lower(email) AS address, id FROM users WHERE lower(email) IN "
            "(SELECT lower(email) FROM users GROUP BY lower(email) HAVING count(*) > 1) "
            "ORDER BY lower(email), created_at"
        )
    )
    groups: dict[str, list[str]] = {}
    for address, user_id in rows:
        groups.setdefault(address, []).append(str(user_id))
    if groups:
        listing = "\n".join(f"  users {', '.join(ids)}" for ids in groups.values())
        raise CaseDuplicateEmails(
            f"{len(groups)} e-mail address(es) are used by several users that differ only by "
            f"case:\n{listing}\nGive each of those users a distinct address (or delete the "
            "duplicates), then run the migration again."
        )


def _drop_invalid_leftover() -> None:
    """A concurrent build that failed (a duplicate written meanwhile, a cancel) leaves an invalid
    index that IF NOT EXISTS would keep: drop it, so that a rerun builds the index again."""
    invalid = op.get_bind().execute(
        sa.text(
            "SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE c.relname = :name AND NOT i.indisvalid"
        ),
        {"name": INDEX},
    )
    if invalid.first() is not None:
        op.drop_index(INDEX, "users", postgresql_concurrently=True, if_exists=True)


def upgrade() -> None:
    offline = context.is_offline_mode()
    postgresql = op.get_context().dialect.name == "postgresql"
    if not offline:
        _check_no_case_duplicates()
    elif postgresql:
        op.execute(_CHECK_IN_SQL)
    if postgresql:
        with op.get_context().autocommit_block():
            if not offline:
                _drop_invalid_leftover()
            op.create_index(
                INDEX,
                "users",
                [sa.text("lower(email)")],
                unique=True,
                postgresql_concurrently=True,
                if_not_exists=True,
            )
    else:
        op.create_index(INDEX, "users", [sa.text("lower(email)")], unique=True, if_not_exists=True)


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        with op.get_context().autocommit_block():
            op.drop_index(INDEX, "users", postgresql_concurrently=True, if_exists=True)
    else:
        op.drop_index(INDEX, "users", if_exists=True)
