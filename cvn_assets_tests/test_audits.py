"""The store invariants behind the asset checks: each passes on a good state and fails on a bad one."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from cvn_assets.core.baselines import BASELINE_TYPES
from cvn_assets.core.proxy_economy import DEGENERATE_COLUMNS, degenerate_rows
from cvn_assets.store.audits import (
    missing_baselines,
    missing_matched_baselines,
    over_trading,
    placeholder_join_keys,
    unlabelled_cost_basis,
)
from cvn_assets.store.reports import results_frame
from cvn_assets.store.schema import finetune_baselines, finetune_results
from cvn_assets.store.writes import write_baselines, write_results
from cvn_assets_tests.store_rows import RUN, baseline_row, result_row, scope

COSTS = [0, 10]


def _good_state(engine: sa.Engine) -> None:
    for cost in COSTS:
        write_results(engine, scope(cost_bps=cost), [result_row(cost_bps=cost)])
        write_baselines(
            engine, scope(cost_bps=cost), [baseline_row(k, cost_bps=cost) for k in BASELINE_TYPES]
        )


def _audit(engine: sa.Engine) -> tuple[list, list, list]:
    with engine.connect() as conn:
        return (missing_baselines(conn, RUN, COSTS, BASELINE_TYPES), placeholder_join_keys(conn, RUN),
                unlabelled_cost_basis(conn, RUN))  # fmt: skip


def test_good_state_passes_every_audit(engine: sa.Engine) -> None:
    _good_state(engine)
    assert _audit(engine) == ([], [], [])


def test_missing_baseline_and_baseline_at_another_cost(engine: sa.Engine) -> None:
    _good_state(engine)
    with engine.begin() as conn:
        conn.execute(
            sa.delete(finetune_baselines).where(
                finetune_baselines.c.baseline_type == "random", finetune_baselines.c.cost_bps == 10
            )
        )
    missing, _, _ = _audit(engine)
    assert missing == [
        {"crypto": "SYNA", "fold_id": "f000", "cost_bps": 10, "baseline_type": "random", "problem": "missing"}
    ]


def test_a_result_row_without_its_random_matched_baseline_is_flagged(engine: sa.Engine) -> None:
    _good_state(engine)
    with engine.connect() as conn:
        assert missing_matched_baselines(conn, RUN) == []
    with engine.begin() as conn:  # a row written before migration 0005, or by a writer that skipped it
        conn.execute(
            sa.update(finetune_results)
            .where(finetune_results.c.cost_bps == 10)
            .values(random_matched_n_trades_test=None)
        )
    with engine.connect() as conn:
        assert missing_matched_baselines(conn, RUN) == [
            {"crypto": "SYNA", "fold_id": "f000", "cost_bps": 10, "baseline_type": "random_matched",
             "variant": "xgboost", "problem": "missing"}
        ]  # fmt: skip
        assert missing_matched_baselines(conn, RUN, "SYNA", "f001") == []
    with engine.begin() as conn:  # luck at another trading frequency is no baseline for this variant
        conn.execute(
            sa.update(finetune_results)
            .where(finetune_results.c.cost_bps == 0)
            .values(random_matched_n_trades_val=3.0)
        )
    with engine.connect() as conn:
        problems = {p["cost_bps"]: p["problem"] for p in missing_matched_baselines(conn, RUN)}
    assert problems == {10: "missing", 0: "3 trades on_val, its variant 7"}


def test_baseline_on_another_window_or_data_is_flagged(engine: sa.Engine) -> None:
    _good_state(engine)
    with engine.begin() as conn:
        conn.execute(
            sa.update(finetune_baselines)
            .where(finetune_baselines.c.baseline_type == "naive")
            .values(data_hash="other")
        )
    missing, _, _ = _audit(engine)
    assert len(missing) == len(COSTS) and all("different test window" in m["problem"] for m in missing)


@pytest.mark.parametrize(("column", "value"), [("model_hyperparams", None), ("model_hyperparams", "{}"),
                                               ("feature_hash", "unknown"), ("feature_hash", " "), ("data_hash", "UNKNOWN")])  # fmt: skip
def test_placeholder_join_keys_are_found(engine: sa.Engine, column: str, value: str | None) -> None:
    _good_state(engine)
    with engine.begin() as conn:
        conn.execute(
            sa.update(finetune_results).where(finetune_results.c.cost_bps == 0).values({column: value})
        )
    _, keys, _ = _audit(engine)
    assert [(k["column"], k["cost_bps"]) for k in keys] == [(column, 0)]


@pytest.mark.parametrize("value", ["", "unknown", "live_guess"])
def test_unknown_cost_basis_is_found(engine: sa.Engine, value: str) -> None:
    _good_state(engine)
    with engine.begin() as conn:
        conn.execute(
            sa.update(finetune_baselines)
            .where(finetune_baselines.c.baseline_type == "naive", finetune_baselines.c.cost_bps == 10)
            .values(cost_basis=value)
        )
    _, _, basis = _audit(engine)
    assert basis == [
        {
            "table": "finetune_baselines",
            "crypto": "SYNA",
            "fold_id": "f000",
            "cost_bps": 10,
            "cost_basis": value,
            "realized_cost_bps": None,
        }
    ]


def _trades(engine: sa.Engine, counts: dict[str, int], cost: int = 10) -> None:
    rows = [{**result_row(variant, cost_bps=cost), "n_trades_test": n} for variant, n in counts.items()]
    write_results(engine, scope(cost_bps=cost), rows)


def test_over_trading_flags_the_old_lightgbm_signature(engine: sa.Engine) -> None:
    _trades(engine, {"xgboost": 40, "catboost": 35, "logreg": 30, "lightgbm": 200})  # 5x its siblings
    with engine.connect() as conn:
        found = over_trading(conn, RUN, ratio=3.0, min_trades=10)
    assert found == [{"crypto": "SYNA", "fold_id": "f000", "cost_bps": 10, "variant": "lightgbm",
                      "n_trades_test": 200, "siblings_median": 35.0}]  # fmt: skip


def test_siblings_are_the_variants_on_the_same_feature_set(engine: sa.Engine) -> None:
    counts = (("xgboost", "base", 40), ("lightgbm", "base", 35), ("catboost", "base", 30),
              ("lightgbm", "btc_overlay", 200), ("xgboost", "btc_overlay", 50),  # 4x its one sibling
              ("catboost", "l2", 500))  # alone on its set: nothing to compare it with  # fmt: skip
    write_results(
        engine, scope(), [{**result_row(v, feature_set=fs), "n_trades_test": n} for v, fs, n in counts]
    )
    with engine.connect() as conn:
        found = over_trading(conn, RUN, ratio=3.0, min_trades=10)
    assert [(p["variant"], p["n_trades_test"], p["siblings_median"]) for p in found] == [
        ("lightgbm@btc_overlay", 200, 50.0)
    ]


def test_over_trading_compares_with_the_siblings_that_trade_when_most_never_do(engine: sa.Engine) -> None:
    # Two variants trade alike while six never trade: neither over-trades the other.
    _trades(engine, {"a": 34, "b": 34, "c": 0, "d": 0, "e": 0, "f": 0, "g": 0, "h": 0})
    # One variant trades where no sibling does: only the floor applies.
    _trades(engine, {"a": 0, "b": 0, "c": 0, "lone": 40}, cost=0)
    with engine.connect() as conn:
        found = over_trading(conn, RUN, ratio=3.0, min_trades=10)
    assert [(p["cost_bps"], p["variant"]) for p in found] == [(0, "lone")]


def test_over_trading_passes_comparable_variants_and_respects_the_floor(engine: sa.Engine) -> None:
    _trades(engine, {"xgboost": 40, "catboost": 35, "lightgbm": 100})  # under 3x the median of 37.5
    _trades(
        engine, {"xgboost": 0, "catboost": 0, "lightgbm": 4}, cost=0
    )  # 4 trades beside none: not over-trading
    with engine.connect() as conn:
        assert over_trading(conn, RUN, ratio=3.0, min_trades=10) == []
        assert [p["cost_bps"] for p in over_trading(conn, RUN, ratio=3.0, min_trades=3)] == [0]


def test_a_variant_predicting_a_constant_is_found_in_its_partition(engine: sa.Engine) -> None:
    """What the `no_degenerate_variant` check reads: AUC exactly 0.5 and no OOS trade, as stored."""
    for fold in ("f000", "f001"):
        rows = [{**result_row(v, fold_id=fold), "auc_buy_test": 0.5, "n_trades_test": n}
                for v, n in (("xgboost", 7), ("stack_xgb_meta", 0))]  # fmt: skip
        write_results(engine, scope(fold_id=fold), rows)
    with engine.connect() as conn:
        found = degenerate_rows(results_frame(conn, RUN, DEGENERATE_COLUMNS, "SYNA", "f001"))
        everywhere = degenerate_rows(results_frame(conn, RUN, DEGENERATE_COLUMNS))
    assert found == [{"crypto": "SYNA", "fold_id": "f001", "cost_bps": 10, "variant": "stack_xgb_meta",
                      "auc_buy_test": 0.5, "n_trades_test": 0}]  # fmt: skip
    assert [(r["fold_id"], r["variant"]) for r in everywhere] == [
        ("f000", "stack_xgb_meta"), ("f001", "stack_xgb_meta")
    ]  # fmt: skip
