"""optuna_study and optuna_trial_number beside optuna_trial_id: the winning trial named by its study and its
number there, the same in every run of the same config and data (Optuna's trial_id is assigned by its
storage as trials are created, so two fresh runs give different ids). Rows written before get both from
Optuna's own tables when the search stored its studies in this database; else they stay NULL.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("finetune_results") as batch:
        batch.add_column(sa.Column("optuna_study", sa.String(255), nullable=True))
        batch.add_column(sa.Column("optuna_trial_number", sa.Integer, nullable=True))
    tables = set(sa.inspect(op.get_bind()).get_table_names())
    if {"trials", "studies"} <= tables:  # Optuna's RDB storage in the results database
        op.execute(
            sa.text(
                "UPDATE finetune_results SET "
                "optuna_trial_number = (SELECT t.number FROM trials t "
                "WHERE t.trial_id = finetune_results.optuna_trial_id), "
                "optuna_study = (SELECT s.study_name FROM trials t JOIN studies s ON s.study_id = t.study_id "
                "WHERE t.trial_id = finetune_results.optuna_trial_id) "
                "WHERE optuna_trial_id IS NOT NULL"
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("finetune_results") as batch:
        batch.drop_column("optuna_trial_number")
        batch.drop_column("optuna_study")
