"""The proxy-vs-economy report's tables, from rows shaped like the results store's, checked by hand and
against the statistics called directly on the same numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from cvn_assets.core.proxy_economy import (
    ALL_VARIANTS,
    N_BOOT,
    build_report,
    degenerate,
    degenerate_everywhere,
    degenerate_rows,
    verdicts,
)
from cvn_assets.core.selection_stats import (
    deflated_sharpe_ratio,
    probability_of_backtest_overfitting,
    spearman_bootstrap,
)
from cvn_assets.report.page import build_page, render_html

ECON = ("n_trades", "win_rate", "expectancy", "sortino", "total_return", "max_drawdown")


def _rows(n_cells: int = 6, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two variants and the three baselines over `n_cells` cells at one cost; cells listed out of time
    order, so the report has to order them by their test window."""
    rng = np.random.default_rng(seed)
    cells = [(("BTC", "ETH")[i % 2], f"f{i // 2:03d}") for i in range(n_cells)][::-1]
    results, baselines = [], []
    for crypto, fold in cells:
        start = pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(days=10 * int(fold[1:]))
        common = {"cost_bps": 10, "crypto": crypto, "fold_id": fold, "test_start": start}
        for variant, skill in (("good", 1.0), ("noise", 0.0)):
            f1 = float(rng.uniform(0.2, 0.6)) + 0.2 * skill
            row = {**common, "variant": variant, "f1_buy_val": f1, "auc_buy_val": f1 + 0.1,
                   "auc_buy_test": f1 + 0.05, "brier_val": 0.3 - f1 / 4,
                   "sortino_val": float(rng.normal())}  # fmt: skip
            for split in ("val", "test"):
                for m in ECON:
                    row[f"{m}_{split}"] = float(rng.normal(skill, 1))
                    row[f"random_matched_{m}_{split}"] = float(rng.normal(0, 1))
            results.append(row)
        for kind in ("buy_and_hold", "random", "naive"):
            baselines.append({**common, "baseline_type": kind,
                              **{f"{m}_{s}": float(rng.normal()) for m in ECON for s in ("val", "test")}})  # fmt: skip
    return pd.DataFrame(results), pd.DataFrame(baselines)


def test_correlations_are_the_bootstrap_over_cells_of_each_scope() -> None:
    results, baselines = _rows()
    corr = build_report(results, baselines, seed=3).correlations
    cells = (results.crypto + "|" + results.fold_id).to_numpy()
    pooled = corr[
        (corr.variant == ALL_VARIANTS)
        & (corr.selection_metric == "auc_buy_val")
        & (corr.outcome == "expectancy_test")
    ]
    expected = spearman_bootstrap(results.auc_buy_val, results.expectancy_test, cells, n_boot=N_BOOT, seed=3)
    assert tuple(pooled[["rho", "ci_low", "ci_high"]].iloc[0]) == pytest.approx(expected)
    good = results[results.variant == "good"]
    row = corr.query("variant == 'good' and selection_metric == 'f1_buy_val' and outcome == 'sortino_test'")
    assert row.rho.iloc[0] == pytest.approx(stats.spearmanr(good.f1_buy_val, good.sortino_test).statistic)
    assert row.n.iloc[0] == len(good) and set(corr.cost_bps) == {10}
    # 4 selection metrics x 3 outcomes, pooled and per variant.
    assert len(corr) == 12 * 3


def test_versus_baselines_pairs_each_cell_with_its_own_baseline() -> None:
    results, baselines = _rows()
    table = build_report(results, baselines).versus_baselines
    noise = results[results.variant == "noise"].set_index(["crypto", "fold_id"])
    naive = baselines[baselines.baseline_type == "naive"].set_index(["crypto", "fold_id"])
    diff = noise.total_return_test - naive.total_return_test.reindex(noise.index)
    row = table.query("variant == 'noise' and baseline == 'naive' and outcome == 'total_return_test'").iloc[0]
    wins = int((diff > 0).sum())
    assert row.cells == len(diff) and row.share_better == pytest.approx(wins / len(diff))
    assert row.sign_p == pytest.approx(stats.binomtest(wins, len(diff), 0.5).pvalue)
    assert row.wilcoxon_p == pytest.approx(stats.wilcoxon(diff).pvalue)
    matched = table.query(
        "variant == 'good' and baseline == 'random_matched' and outcome == 'sortino_test'"
    ).iloc[0]
    good = results[results.variant == "good"]
    assert matched.share_better == pytest.approx(
        np.mean(good.sortino_test > good.random_matched_sortino_test)
    )


def test_overfitting_picks_on_validation_and_ranks_out_of_sample_in_time_order() -> None:
    results, baselines = _rows(n_cells=8)
    row = build_report(results, baselines).overfitting.iloc[0]
    ordered = results.sort_values(["test_start", "crypto", "fold_id"])
    oos = ordered.pivot_table(
        index=["test_start", "crypto", "fold_id"], columns="variant", values="sortino_test"
    )
    picked_on = ordered.pivot_table(
        index=["test_start", "crypto", "fold_id"], columns="variant", values="f1_buy_val"
    )
    assert row.picked_variant == picked_on.mean().idxmax() == "good"
    assert row.pbo_selected == pytest.approx(
        probability_of_backtest_overfitting(oos.to_numpy(), selection=picked_on.to_numpy()).pbo
    )
    assert row.pbo_oos == pytest.approx(probability_of_backtest_overfitting(oos.to_numpy()).pbo)
    returns = ordered.pivot_table(
        index=["test_start", "crypto", "fold_id"], columns="variant", values="total_return_test"
    )
    sharpes = returns.mean() / returns.std(ddof=1)
    assert row.picked_sharpe == pytest.approx(sharpes["good"])
    assert row.deflated_sharpe == pytest.approx(
        deflated_sharpe_ratio(returns["good"].to_numpy(), n_trials=2, sharpe_variance=sharpes.var(ddof=1))
    )
    assert (row.cells, row.variants) == (8, 2)


def test_leaderboard_ranks_variants_and_baselines_by_mean_oos_sortino() -> None:
    results, baselines = _rows()
    results.loc[0, "sortino_test"] = None  # no downside: NULL, left out of the mean, never a zero
    board = build_report(results, baselines).leaderboard
    assert board["rank"].tolist() == list(range(1, 7))
    assert board.sortino_test.is_monotonic_decreasing
    good = board.set_index("name").loc["good"]
    assert good.sortino_test == pytest.approx(results[results.variant == "good"].sortino_test.mean())
    rows = results[(results.variant == "good") & results.sortino_test.notna()]
    assert good.beats_random_matched == pytest.approx(
        np.mean(rows.sortino_test > rows.random_matched_sortino_test)
    )
    assert set(board.kind) == {"variant", "baseline", "baseline (mean over variants)"}


def test_the_verdict_says_evidence_only_when_the_interval_excludes_zero() -> None:
    results, baselines = _rows(n_cells=30)
    results["sortino_test"] = results.f1_buy_val * 10  # the proxy ranks the money perfectly
    assert (
        "there is evidence that validation f1_buy_val predicts"
        in verdicts(build_report(results, baselines))[0]
    )
    results["sortino_test"] = np.random.default_rng(1).normal(size=len(results))
    assert "there is no evidence that" in verdicts(build_report(results, baselines))[0]


def test_the_page_is_self_contained() -> None:
    results, baselines = _rows()
    page = build_page("s", "s-1", results, baselines, None)
    html = render_html(page)
    assert html.count("data:image/png;base64,") == 2 and "src='http" not in html
    assert "could not be loaded" in html and "Leaderboard" in html and page.verdicts[0] in html


def _constant(results: pd.DataFrame, variant: str, cells: int | None = None) -> pd.DataFrame:
    """`variant` predicts a constant in its first `cells` cells (all by default): AUC 0.5, no trade."""
    rows = results.index[results.variant == variant][:cells]
    return results.assign(
        auc_buy_test=results.auc_buy_test.where(~results.index.isin(rows), 0.5),
        n_trades_test=results.n_trades_test.where(~results.index.isin(rows), 0.0),
    )


def test_degenerate_is_a_constant_prediction_auc_one_half_and_no_trade() -> None:
    rows = pd.DataFrame({
        "crypto": "BTC", "fold_id": "f000", "cost_bps": 10, "variant": list("abcdef"),
        "auc_buy_test": [0.5, 0.5, 0.5000001, None, 0.71, 0.5],
        "n_trades_test": [0, 3, 0, 0, 0, None],
    })  # fmt: skip
    # Only a: b trades, c's scores are not all tied, d's AUC has no value (one class), f's trades none known.
    assert degenerate(rows).tolist() == [True, False, False, False, False, False]
    assert degenerate_rows(rows) == [{"crypto": "BTC", "fold_id": "f000", "cost_bps": 10, "variant": "a",
                                      "auc_buy_test": 0.5, "n_trades_test": 0.0}]  # fmt: skip


def test_the_leaderboard_marks_a_variant_degenerate_in_every_cell() -> None:
    results, baselines = _rows()
    assert not degenerate_everywhere(results).any()
    results = _constant(_constant(results, "noise"), "good", cells=2)  # good: only in 2 of its 6 cells
    assert degenerate_everywhere(results).to_dict() == {"good": False, "noise": True}
    board = build_report(results, baselines).leaderboard.set_index("name")
    assert board.loc["noise", "degenerate"] is True and board.loc["good", "degenerate"] is False
    assert board.loc[["buy_and_hold", "random", "naive", "random_matched"], "degenerate"].isna().all()
    page = build_page("s", "s-1", results, baselines, None)
    assert any("Degenerate in every cell" in n and "noise" in n and "good" not in n for n in page.notes)
    assert "<td>True</td>" in render_html(page)


def test_the_overview_tables_are_the_full_tables_summarized() -> None:
    """The UI's short tables hold the full tables' numbers: a cost per column in the leaderboard, the
    pooled correlations against OOS sortino, and per baseline the variants that beat it in most cells."""
    from cvn_assets.report.overview import overview_tables

    one, base_one = _rows(seed=1)
    two, base_two = _rows(seed=2)
    two["cost_bps"], base_two["cost_bps"] = 25, 25
    report = build_report(pd.concat([one, two]), pd.concat([base_one, base_two]))
    tables = overview_tables(report)
    board = tables["leaderboard (mean OOS sortino)"].frame.set_index("name")
    full = report.leaderboard.set_index(["cost_bps", "name"])
    assert list(board.columns) == ["f1_buy_val", "10 bps", "25 bps"]
    assert board.loc["good", "25 bps"] == full.loc[(25, "good"), "sortino_test"]
    assert board.loc["noise", "f1_buy_val"] == full.loc[(10, "noise"), "f1_buy_val"]
    assert board["25 bps"].is_monotonic_decreasing and "naive" in board.index
    pooled = tables["correlations (pooled)"].frame
    corr = report.correlations
    expected = corr[(corr.variant == ALL_VARIANTS) & (corr.outcome == "sortino_test")]
    assert pooled["rho"].tolist() == expected["rho"].tolist()
    versus = tables["versus baselines"].frame.set_index(["cost_bps", "baseline"])
    tests = report.versus_baselines
    tests = tests[(tests.cost_bps == 10) & (tests.baseline == "random") & (tests.outcome == "sortino_test")]
    assert versus.loc[(10, "random"), "beat_most"] == f"{int((tests.share_better > 0.5).sum())} / 2"
    for table in tables.values():
        assert set(table.descriptions) == set(table.frame.columns)
