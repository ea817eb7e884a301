"""token version and Entra ID tenant of users

Expand only: two nullable columns without a server default, so no table rewrite and nothing the
previous build notices (it neither reads nor writes them). NULL reads as version 0 and as a
tenant not yet recorded.

Revision ID: 83ba780b430e
Revises: b3d31a2afd9e
Create Date: 2026-12-01 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "83ba780b430e"
down_revision: str | Sequence[str] | None = "b3d31a2afd9e"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("users", sa.Column("token_version", sa.BigInteger(), nullable=True))
    op.add_column("users", sa.Column("entra_tid", sa.Uuid(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("entra_tid")
        batch.drop_column("token_version")
