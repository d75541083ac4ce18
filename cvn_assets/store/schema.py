"""Tables of the results store (DESIGN.md §5). Migrations in `store/migrations/` create exactly these."""

from __future__ import annotations

import sqlalchemy as sa

from cvn_assets.core.backtest import ECONOMIC_METRICS
from cvn_assets.core.baselines import MATCHED_BASELINE
from cvn_assets.core.config import BASE_FEATURE_SET, STRATEGY_MAX_LENGTH
from cvn_assets.core.fills import CODE_MAX_LENGTH, FILL_KEY, SIDES, SYMBOL_MAX_LENGTH
from cvn_assets.core.metric_names import CLASSIFICATION_METRICS

metadata = sa.MetaData()

# A row's cost basis: the economics of every row are computed at the assumed cost (fee_bps + slippage_bps
# per side). `realized_fills` says realized fills cover its test window, and realized_cost_bps beside the
# assumed cost holds what they cost; only the store sets it (store/fills.py: label_cost_basis).
COST_BASIS_BACKTESTED = "backtested_assumed"
COST_BASIS_REALIZED = "realized_fills"
COST_BASES = (COST_BASIS_BACKTESTED, COST_BASIS_REALIZED)
SPLIT_SUFFIXES = ("_val", "_test")

RESULT_KEY = ("run_id", "strategy", "feature_set", "variant", "crypto", "fold_id", "cost_bps")
BASELINE_KEY = ("run_id", "strategy", "baseline_type", "crypto", "fold_id", "cost_bps")
RESULT_METRICS = (*CLASSIFICATION_METRICS, "threshold_buy", *ECONOMIC_METRICS)
# The variant's own random baseline (`random_matched`), on its result row (migration 0005): e.g.
# random_matched_sortino_test. A mean over seeds, so n_trades is a float like the random baseline's.
MATCHED_PREFIX = f"{MATCHED_BASELINE}_"
MATCHED_COLUMNS = tuple(f"{MATCHED_PREFIX}{m}{s}" for m in ECONOMIC_METRICS for s in SPLIT_SUFFIXES)


def _metric_columns(
    names: tuple[str, ...], integer: tuple[str, ...] = (), prefix: str = ""
) -> list[sa.Column]:
    return [
        sa.Column(f"{prefix}{name}{suffix}", sa.Integer if name in integer else sa.Float, nullable=True)
        for name in names
        for suffix in SPLIT_SUFFIXES
    ]


def _key_columns(member: str, member_length: int) -> list[sa.Column]:
    """The partition key (run, strategy, crypto, fold, cost) around the column that varies inside it."""
    return [
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(100), nullable=False),
        sa.Column("strategy", sa.String(STRATEGY_MAX_LENGTH), nullable=False),
        sa.Column(member, sa.String(member_length), nullable=False),
        sa.Column("crypto", sa.String(40), nullable=False),
        sa.Column("fold_id", sa.String(64), nullable=False),  # the fold partition key (migration 0003)
        sa.Column("cost_bps", sa.Integer, nullable=False),
    ]


def _cost_columns() -> list[sa.Column]:
    """What cost_bps is made of: the fee level and the slippage per side (migration 0004). NULL on rows
    written before, whose slippage was not recorded. Beside them, the realized round trip in bps where
    realized fills cover the row's test window (cost_basis 'realized_fills'), else NULL (migration
    0006_realized_fills): fees only, to compare with the assumed round trip 2 x (fee_bps + slippage_bps)
    (core/fills.py says what fills can and cannot measure)."""
    return [
        sa.Column("fee_bps", sa.Integer, nullable=True),
        sa.Column("slippage_bps", sa.Float, nullable=True),
        sa.Column("realized_cost_bps", sa.Float, nullable=True),
    ]


def _key_constraints(table: str, key: tuple[str, ...]) -> list[sa.SchemaItem]:
    return [
        sa.UniqueConstraint(*key, name=f"uq_{table}_key"),
        sa.CheckConstraint("cost_bps >= 0", name=f"ck_{table}_cost_bps"),
        sa.Index(f"ix_{table}_partition", "run_id", "crypto", "fold_id"),
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
    *_key_columns("variant", 100),
    # The feature set the variant was trained on (migration 0008; rows written before read as base).
    sa.Column("feature_set", sa.String(40), nullable=False, server_default=BASE_FEATURE_SET),
    *_cost_columns(),
    *_metric_columns(RESULT_METRICS, integer=("n_trades",)),
    *_metric_columns(ECONOMIC_METRICS, prefix=MATCHED_PREFIX),
    sa.Column("model_hyperparams", sa.Text, nullable=True),  # JSON; NULL only where no value exists
    sa.Column("feature_hash", sa.String(64), nullable=True),
    # Optuna's own id of the winning trial (its `trials` table), a storage id assigned as runs create
    # trials, so it differs between two fresh runs like dagster_run_id; the study's name and the trial's
    # number in it name the same trial and are the same in every run (migration 0009).
    sa.Column("optuna_trial_id", sa.Integer, nullable=True),
    sa.Column("optuna_study", sa.String(255), nullable=True),
    sa.Column("optuna_trial_number", sa.Integer, nullable=True),
    *_provenance_columns(),
    *_key_constraints("finetune_results", RESULT_KEY),
)

finetune_baselines = sa.Table(
    "finetune_baselines",
    metadata,
    *_key_columns("baseline_type", 40),
    *_cost_columns(),
    *_metric_columns(ECONOMIC_METRICS),  # n_trades is a mean over seeds for the random baseline
    *_provenance_columns(),
    *_key_constraints("finetune_baselines", BASELINE_KEY),
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


# Realized fills, as `cvn fills import` loads them (core/fills.py: the file, the crypto naming, the cost
# arithmetic). A fill is unique on FILL_KEY, so importing a file again adds nothing. Each stores, as
# imported, its UTC month, notional and fee in the quote currency: the monthly realized cost is then one
# plain GROUP BY (crypto, month) on both dialects (store/fills.py: monthly_totals), and no table of derived
# figures can drift from the fills it sums.
realized_fills = sa.Table(
    "realized_fills",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("filled_at", sa.DateTime(timezone=True), nullable=False),  # the file's timestamp, UTC
    sa.Column("symbol", sa.String(SYMBOL_MAX_LENGTH), nullable=False),  # as the file wrote it
    sa.Column("base", sa.String(CODE_MAX_LENGTH), nullable=False),
    sa.Column("quote", sa.String(CODE_MAX_LENGTH), nullable=False),
    sa.Column("crypto", sa.String(SYMBOL_MAX_LENGTH), nullable=False),  # the sweeps' name for the pair
    sa.Column("side", sa.String(4), nullable=False),
    sa.Column("price", sa.Float, nullable=False),
    sa.Column("quantity", sa.Float, nullable=False),
    sa.Column("fee", sa.Float, nullable=False),
    sa.Column("fee_currency", sa.String(CODE_MAX_LENGTH), nullable=False),
    sa.Column("notional_quote", sa.Float, nullable=False),  # price x quantity
    sa.Column("fee_quote", sa.Float, nullable=False),  # the fee in the quote currency
    sa.Column("month", sa.String(7), nullable=False),  # YYYY-MM of filled_at (UTC)
    sa.Column("source", sa.Text, nullable=False),  # the file it was first imported from
    sa.Column("source_row", sa.Integer, nullable=False),  # and its data row there
    sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint(*FILL_KEY, name="uq_realized_fills_key"),
    sa.CheckConstraint(f"side IN {SIDES!r}", name="ck_realized_fills_side"),
    sa.CheckConstraint("price > 0 AND quantity > 0 AND fee >= 0", name="ck_realized_fills_amounts"),
    sa.Index("ix_realized_fills_crypto_month", "crypto", "month"),
)


# Diagnostics' verdicts on trained cells (cvn_assets/diagnostics): one row per (run_id, strategy, diagnostic,
# crypto, fold_id, feature_set, variant), keyed like the result rows; feature_set and variant are NULL on a
# verdict about the whole cell (their unique index reads NULL as one value, on both dialects). A re-audit
# replaces the cell's verdicts. `crossref_status` and `anchor_available` are the reproducibility anchor's
# (NULL on the other diagnostics): a light audit leaves them SKIPPED and false, so a downgraded audit can be
# found later (`audit_mode` 'light').
VERDICT_SCOPE = ("run_id", "strategy", "crypto", "fold_id")
diagnostic_verdicts = sa.Table(
    "diagnostic_verdicts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(100), nullable=False),
    sa.Column("strategy", sa.String(STRATEGY_MAX_LENGTH), nullable=False),
    sa.Column("diagnostic", sa.String(64), nullable=False),
    sa.Column("consumes", sa.String(32), nullable=False),  # xy_only, trial_dynamics or unknown
    sa.Column("crypto", sa.String(40), nullable=False),
    sa.Column("fold_id", sa.String(64), nullable=False),
    sa.Column("feature_set", sa.String(64), nullable=True),
    sa.Column("variant", sa.String(64), nullable=True),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("figures", sa.Text, nullable=True),  # JSON
    sa.Column("crossref_status", sa.String(32), nullable=True),
    sa.Column("anchor_available", sa.Boolean, nullable=True),
    sa.Column("audit_mode", sa.String(16), nullable=False),  # full or light
    sa.Column("data_hash", sa.String(64), nullable=True),  # the captured fold dataset's (NULL: absent)
    sa.Column("elapsed_s", sa.Float, nullable=True),
    sa.Column("code_version", sa.String(64), nullable=False),
    sa.Column("dagster_run_id", sa.String(64), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint(
        "status IN ('PASS', 'WARN', 'FAIL', 'NOT_APPLICABLE', 'SKIPPED', 'INCONCLUSIVE_TOOLING')",
        name="ck_diagnostic_verdicts_status",
    ),
    sa.Index(
        "uq_diagnostic_verdicts_key",
        "run_id",
        "strategy",
        "diagnostic",
        "crypto",
        "fold_id",
        sa.text("coalesce(feature_set, '')"),
        sa.text("coalesce(variant, '')"),
        unique=True,
    ),
)
