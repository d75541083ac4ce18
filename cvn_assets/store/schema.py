"""Tables of the results store (DESIGN.md §5). Migrations in `migrations/` create exactly these."""

from __future__ import annotations

import sqlalchemy as sa

from cvn_assets.core.backtest import ECONOMIC_METRICS
from cvn_assets.harness.metrics import CLASSIFICATION_METRICS

metadata = sa.MetaData()

COST_BASIS_BACKTESTED = "backtested_assumed"
COST_BASES = (COST_BASIS_BACKTESTED,)
SPLIT_SUFFIXES = ("_val", "_test")

RESULT_KEY = ("run_id", "strategy", "variant", "crypto", "fold_id", "cost_bps")
BASELINE_KEY = ("run_id", "strategy", "baseline_type", "crypto", "fold_id", "cost_bps")
RESULT_METRICS = (*CLASSIFICATION_METRICS, "threshold_buy", *ECONOMIC_METRICS)


def _metric_columns(names: tuple[str, ...], integer: tuple[str, ...] = ()) -> list[sa.Column]:
    return [
        sa.Column(f"{name}{suffix}", sa.Integer if name in integer else sa.Float, nullable=True)
        for name in names
        for suffix in SPLIT_SUFFIXES
    ]


def _provenance_columns() -> list[sa.Column]:
    return [
        sa.Column("data_hash", sa.String(64), nullable=True),
        sa.Column("cost_basis", sa.String(40), nullable=False),
        sa.Column("test_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("test_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("code_version", sa.String(64), nullable=False),
        sa.Column("dagster_run_id", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    ]


finetune_results = sa.Table(
    "finetune_results",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(100), nullable=False),
    sa.Column("strategy", sa.String(100), nullable=False),
    sa.Column("variant", sa.String(100), nullable=False),
    sa.Column("crypto", sa.String(40), nullable=False),
    sa.Column("fold_id", sa.String(20), nullable=False),
    sa.Column("cost_bps", sa.Integer, nullable=False),
    *_metric_columns(RESULT_METRICS, integer=("n_trades",)),
    sa.Column("model_hyperparams", sa.Text, nullable=True),  # JSON; NULL only where no value exists
    sa.Column("feature_hash", sa.String(64), nullable=True),
    sa.Column("optuna_trial_id", sa.Integer, nullable=True),
    *_provenance_columns(),
    sa.UniqueConstraint(*RESULT_KEY, name="uq_finetune_results_key"),
    sa.CheckConstraint("cost_bps >= 0", name="ck_finetune_results_cost_bps"),
    sa.Index("ix_finetune_results_partition", "run_id", "crypto", "fold_id"),
)

finetune_baselines = sa.Table(
    "finetune_baselines",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(100), nullable=False),
    sa.Column("strategy", sa.String(100), nullable=False),
    sa.Column("baseline_type", sa.String(40), nullable=False),
    sa.Column("crypto", sa.String(40), nullable=False),
    sa.Column("fold_id", sa.String(20), nullable=False),
    sa.Column("cost_bps", sa.Integer, nullable=False),
    *_metric_columns(ECONOMIC_METRICS),  # n_trades is a mean over seeds for the random baseline
    *_provenance_columns(),
    sa.UniqueConstraint(*BASELINE_KEY, name="uq_finetune_baselines_key"),
    sa.CheckConstraint("cost_bps >= 0", name="ck_finetune_baselines_cost_bps"),
    sa.Index("ix_finetune_baselines_partition", "run_id", "crypto", "fold_id"),
)


# Hyperparameter values and ranges (CVN_HPO_* keys), editable by operators, with every change kept.
ftf_config = sa.Table(
    "ftf_config",
    metadata,
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("updated_by", sa.String(100), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

ftf_config_history = sa.Table(
    "ftf_config_history",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(200), nullable=False, index=True),
    sa.Column("old_value", sa.Text, nullable=True),  # NULL when the key was created
    sa.Column("new_value", sa.Text, nullable=False),
    sa.Column("changed_by", sa.String(100), nullable=False),
    sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
)
