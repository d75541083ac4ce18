"""fee_bps and slippage_bps beside cost_bps on every economic row

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TABLES = ("finetune_results", "finetune_baselines")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("fee_bps", sa.Integer, nullable=True))
            batch.add_column(sa.Column("slippage_bps", sa.Float, nullable=True))
        # The cost level has always been the fee; the slippage of older rows was not recorded (NULL).
        op.execute(sa.text(f"UPDATE {table} SET fee_bps = cost_bps"))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("slippage_bps")
            batch.drop_column("fee_bps")
