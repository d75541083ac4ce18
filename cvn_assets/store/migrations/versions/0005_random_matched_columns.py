"""random_matched: each variant's own random baseline, on its result row

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

METRICS = ("n_trades", "win_rate", "expectancy", "sortino", "total_return", "max_drawdown")
COLUMNS = [f"random_matched_{m}{s}" for m in METRICS for s in ("_val", "_test")]


def upgrade() -> None:
    # NULL on rows written before: their matched baseline was never computed (re-run the partition).
    with op.batch_alter_table("finetune_results") as batch:
        for name in COLUMNS:
            batch.add_column(sa.Column(name, sa.Float, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("finetune_results") as batch:
        for name in reversed(COLUMNS):
            batch.drop_column(name)
