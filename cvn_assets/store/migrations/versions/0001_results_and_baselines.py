"""finetune_results and finetune_baselines (DESIGN.md §5)

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Spelled out rather than imported from the live schema: a migration must keep meaning what it meant.
_RESULT_METRICS = (
    "f1_buy", "auc_buy", "brier", "ece", "logloss", "threshold_buy",
    "n_trades", "win_rate", "expectancy", "sortino", "total_return", "max_drawdown",
)  # fmt: skip
_ECONOMIC_METRICS = ("n_trades", "win_rate", "expectancy", "sortino", "total_return", "max_drawdown")


def _metrics(names: tuple[str, ...], integer: tuple[str, ...] = ()) -> list[sa.Column]:
    return [
        sa.Column(f"{n}{s}", sa.Integer if n in integer else sa.Float, nullable=True)
        for n in names
        for s in ("_val", "_test")
    ]


def _provenance() -> list[sa.Column]:
    return [
        sa.Column("data_hash", sa.String(64), nullable=True),
        sa.Column("cost_basis", sa.String(40), nullable=False),
        sa.Column("test_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("test_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("code_version", sa.String(64), nullable=False),
        sa.Column("dagster_run_id", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "finetune_results",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(100), nullable=False),
        sa.Column("strategy", sa.String(100), nullable=False),
        sa.Column("variant", sa.String(100), nullable=False),
        sa.Column("crypto", sa.String(40), nullable=False),
        sa.Column("fold_id", sa.String(20), nullable=False),
        sa.Column("cost_bps", sa.Integer, nullable=False),
        *_metrics(_RESULT_METRICS, integer=("n_trades",)),
        sa.Column("model_hyperparams", sa.Text, nullable=True),
        sa.Column("feature_hash", sa.String(64), nullable=True),
        sa.Column("optuna_trial_id", sa.Integer, nullable=True),
        *_provenance(),
        sa.UniqueConstraint(
            "run_id", "strategy", "variant", "crypto", "fold_id", "cost_bps", name="uq_finetune_results_key"
        ),
        sa.CheckConstraint("cost_bps >= 0", name="ck_finetune_results_cost_bps"),
    )
    op.create_index("ix_finetune_results_partition", "finetune_results", ["run_id", "crypto", "fold_id"])
    op.create_table(
        "finetune_baselines",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(100), nullable=False),
        sa.Column("strategy", sa.String(100), nullable=False),
        sa.Column("baseline_type", sa.String(40), nullable=False),
        sa.Column("crypto", sa.String(40), nullable=False),
        sa.Column("fold_id", sa.String(20), nullable=False),
        sa.Column("cost_bps", sa.Integer, nullable=False),
        *_metrics(_ECONOMIC_METRICS),
        *_provenance(),
        sa.UniqueConstraint(
            "run_id",
            "strategy",
            "baseline_type",
            "crypto",
            "fold_id",
            "cost_bps",
            name="uq_finetune_baselines_key",
        ),
        sa.CheckConstraint("cost_bps >= 0", name="ck_finetune_baselines_cost_bps"),
    )
    op.create_index("ix_finetune_baselines_partition", "finetune_baselines", ["run_id", "crypto", "fold_id"])


def downgrade() -> None:
    op.drop_index("ix_finetune_baselines_partition", table_name="finetune_baselines")
    op.drop_table("finetune_baselines")
    op.drop_index("ix_finetune_results_partition", table_name="finetune_results")
    op.drop_table("finetune_results")
