"""feature_set on every result row, part of its unique key: a sweep varies the feature set beside the model.
Rows written before were all trained on today's features and read as 'base'. Baselines do not depend on
features: their key is unchanged.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

OLD_KEY = ("run_id", "strategy", "variant", "crypto", "fold_id", "cost_bps")
NEW_KEY = ("run_id", "strategy", "feature_set", "variant", "crypto", "fold_id", "cost_bps")


def upgrade() -> None:
    with op.batch_alter_table("finetune_results") as batch:
        batch.add_column(sa.Column("feature_set", sa.String(40), nullable=False, server_default="base"))
        batch.drop_constraint("uq_finetune_results_key", type_="unique")
        batch.create_unique_constraint("uq_finetune_results_key", list(NEW_KEY))


def downgrade() -> None:
    # Only one feature set's rows fit the old key: the others are removed first.
    op.execute(sa.text("DELETE FROM finetune_results WHERE feature_set <> 'base'"))
    with op.batch_alter_table("finetune_results") as batch:
        batch.drop_constraint("uq_finetune_results_key", type_="unique")
        batch.create_unique_constraint("uq_finetune_results_key", list(OLD_KEY))
        batch.drop_column("feature_set")
