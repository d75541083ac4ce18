"""The economics asset's per-partition tables: units, baselines beside each variant, NULL kept NULL."""

from __future__ import annotations

import pytest

from cvn_assets.report.partition_view import (
    BASELINE_COLUMNS,
    BASELINE_DESCRIPTIONS,
    DESCRIPTIONS,
    VIEW_COLUMNS,
    baselines_view,
    variants_view,
)

RESULT = {
    "variant": "xgboost",
    "f1_buy_val": 0.41,
    "auc_buy_val": 0.55,
    "sortino_test": 1.2,
    "random_matched_sortino_test": -0.3,
    "expectancy_test": 0.00125,
    "n_trades_test": 12,
    "win_rate_test": 0.5,
    "total_return_test": 0.031,
    "max_drawdown_test": 0.02,
}
BASELINES = [
    {"baseline_type": "buy_and_hold", "sortino_test": 0.8, "expectancy_test": 0.04, "n_trades_test": 1,
     "win_rate_test": 1.0, "total_return_test": 0.04, "max_drawdown_test": 0.1},
    {"baseline_type": "random", "sortino_test": -1.5, "expectancy_test": -0.001, "n_trades_test": 80.5,
     "win_rate_test": 0.3, "total_return_test": -0.08, "max_drawdown_test": 0.12},
]  # fmt: skip


def test_a_variant_reads_with_its_validation_metric_money_in_units_and_its_cell_baselines_beside() -> None:
    (row,) = variants_view([RESULT], BASELINES)
    assert list(row) == VIEW_COLUMNS
    assert row["f1_buy_val"] == 0.41 and row["sortino_test"] == 1.2
    assert row["random_matched_sortino"] == -0.3
    assert (row["buy_and_hold_sortino"], row["random_sortino"]) == (0.8, -1.5)
    assert row["expectancy_bps"] == pytest.approx(12.5)
    assert (row["win_rate_pct"], row["total_return_pct"], row["max_drawdown_pct"]) == pytest.approx(
        (50, 3.1, 2)
    )
    assert set(DESCRIPTIONS) == set(VIEW_COLUMNS) and all(DESCRIPTIONS.values())


def test_an_absent_value_or_baseline_stays_null() -> None:
    (row,) = variants_view([{**RESULT, "win_rate_test": None, "sortino_test": float("nan")}], BASELINES[:1])
    assert row["win_rate_pct"] is None and row["sortino_test"] is None and row["random_sortino"] is None


def test_baselines_read_in_the_same_units() -> None:
    rows = baselines_view(BASELINES)
    assert [list(r) for r in rows] == [BASELINE_COLUMNS] * 2
    assert rows[0]["expectancy_bps"] == pytest.approx(400) and rows[1]["n_trades"] == 80.5
    assert set(BASELINE_DESCRIPTIONS) == set(BASELINE_COLUMNS)
