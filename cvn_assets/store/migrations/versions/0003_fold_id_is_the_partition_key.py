"""fold_id holds the fold's partition key, which reads as its test window (f003_2019-09-24_2019-12-23)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TABLES = ("finetune_results", "finetune_baselines")


def upgrade() -> None:
    for table in TABLES:
        # batch mode: SQLite rebuilds the table, PostgreSQL alters the column in place.
        with op.batch_alter_table(table) as batch:
            batch.alter_column(
                "fold_id", type_=sa.String(64), existing_type=sa.String(20), existing_nullable=False
            )


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.alter_column(
                "fold_id", type_=sa.String(20), existing_type=sa.String(64), existing_nullable=False
            )
