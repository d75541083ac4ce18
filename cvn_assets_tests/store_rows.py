"""Result and baseline rows for store tests, built the way the pipeline builds them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cvn_assets.core.backtest import ECONOMIC_METRICS
from cvn_assets.store.schema import COST_BASIS_BACKTESTED, MATCHED_COLUMNS, RESULT_METRICS

RUN = "tiny-abc123"
START, END = datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 3, 21, tzinfo=UTC)


def scope(crypto: str = "SYNA", fold_id: str = "f000", cost_bps: int = 10) -> dict[str, Any]:
    return {
        "run_id": RUN,
        "strategy": "triple_barrier_long",
        "crypto": crypto,
        "fold_id": fold_id,
        "cost_bps": cost_bps,
    }


def _common(crypto: str, fold_id: str, cost_bps: int) -> dict[str, Any]:
    return {
        **scope(crypto, fold_id, cost_bps),
        "fee_bps": cost_bps,
        "slippage_bps": 1.0,
        "data_hash": f"data-{crypto}-{fold_id}",
        "cost_basis": COST_BASIS_BACKTESTED,
        "test_start": START,
        "test_end": END,
        "code_version": "0.1.0+test",
        "dagster_run_id": "run-1",
        "created_at": datetime.now(UTC),
    }


def result_row(
    variant: str = "xgboost",
    crypto: str = "SYNA",
    fold_id: str = "f000",
    cost_bps: int = 10,
    value: float = 0.5,
    feature_set: str = "base",
) -> dict[str, Any]:
    metrics = {
        f"{m}{s}": (7 if m == "n_trades" else value) for m in RESULT_METRICS for s in ("_val", "_test")
    }
    metrics.update({c: (7.0 if "n_trades" in c else value / 2) for c in MATCHED_COLUMNS})
    return {**_common(crypto, fold_id, cost_bps), **metrics, "variant": variant, "feature_set": feature_set,
            "model_hyperparams": '{"max_depth":3}', "feature_hash": "feat123", "optuna_trial_id": None,
            "optuna_study": None, "optuna_trial_number": None}  # fmt: skip


def baseline_row(
    kind: str, crypto: str = "SYNA", fold_id: str = "f000", cost_bps: int = 10
) -> dict[str, Any]:
    metrics = {f"{m}{s}": 0.1 for m in ECONOMIC_METRICS for s in ("_val", "_test")}
    return {**_common(crypto, fold_id, cost_bps), **metrics, "baseline_type": kind}
