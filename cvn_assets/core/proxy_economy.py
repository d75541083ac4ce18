"""The proxy-vs-economy report: does the metric variants are selected on in validation predict the money
they make out of sample, net of cost, better than luck on the same basis?

Input: a sweep's result rows (one per variant, crypto, fold and cost) and baseline rows (one per baseline
type, crypto, fold and cost), as frames with the results store's columns. A cell is one (crypto, fold).
Output, per cost level: rank correlations with bootstrap intervals, paired comparisons with every
baseline, the probability of backtest overfitting and the deflated Sharpe ratio of the variant picked on
validation, and a leaderboard. The statistics are in `selection_stats`; this module only shapes the rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cvn_assets.core.baselines import BASELINE_TYPES, MATCHED_BASELINE
from cvn_assets.core.config import BASE_FEATURE_SET
from cvn_assets.core.selection_stats import (
    deflated_sharpe_ratio,
    paired_comparison,
    probability_of_backtest_overfitting,
    spearman_bootstrap,
)
from cvn_assets.core.variants import split_label

# What a variant is picked on in validation, and what it earns out of sample.
SELECTION_METRICS = ("f1_buy_val", "auc_buy_val", "brier_val", "sortino_val")
OUTCOMES = ("sortino_test", "expectancy_test", "total_return_test")
PICKED_ON = "f1_buy_val"  # the validation metric the report's "picked" variant is chosen by
COMPARED_ON = ("sortino_test", "total_return_test")  # the outcomes a variant is compared with baselines on
ALL_VARIANTS = "(all variants)"
N_BOOT = 1000
# What a row must carry to say whether its variant is degenerate in its cell, and what names the row.
DEGENERATE_COLUMNS = ("crypto", "fold_id", "cost_bps", "variant", "auc_buy_test", "n_trades_test")


@dataclass(frozen=True)
class ProxyEconomyReport:
    correlations: pd.DataFrame  # cost_bps, variant, selection_metric, outcome, n, rho, ci_low, ci_high
    versus_baselines: pd.DataFrame  # cost_bps, variant, baseline, outcome, cells, share_better, sign_p, ...
    overfitting: pd.DataFrame  # cost_bps, picked_variant, cells, variants, pbo, ..., deflated_sharpe
    # cost_bps, rank, name, cells, degenerate, mean metrics, beats_random_matched, kind
    leaderboard: pd.DataFrame
    # cost_bps, model, feature_set, reference, outcome, cells, share_better, mean_difference, sign_p, ...
    feature_sets: pd.DataFrame = field(default_factory=lambda: pd.DataFrame({"cost_bps": []}))

    def tables(self) -> dict[str, pd.DataFrame]:
        tables = {
            "leaderboard": self.leaderboard,
            "overfitting": self.overfitting,
            "correlations": self.correlations,
            "versus_baselines": self.versus_baselines,
        }
        return tables | ({"feature_sets": self.feature_sets} if not self.feature_sets.empty else {})


def build_report(results: pd.DataFrame, baselines: pd.DataFrame, *, seed: int = 0) -> ProxyEconomyReport:
    """The report over every cost level present in `results`."""
    results, baselines = as_floats(results), as_floats(baselines)
    costs = sorted(results["cost_bps"].unique()) if not results.empty else []
    parts: dict[str, list[pd.DataFrame]] = {"corr": [], "base": [], "over": [], "lead": [], "sets": []}
    for cost in costs:
        res = results[results["cost_bps"] == cost]
        base = baselines[baselines["cost_bps"] == cost]
        parts["corr"].append(correlations(res, seed=seed).assign(cost_bps=cost))
        parts["base"].append(versus_baselines(res, base).assign(cost_bps=cost))
        parts["over"].append(overfitting(res).assign(cost_bps=cost))
        parts["lead"].append(leaderboard(res, base).assign(cost_bps=cost))
        parts["sets"].append(versus_feature_sets(res).assign(cost_bps=cost))

    def joined(frames: list[pd.DataFrame]) -> pd.DataFrame:
        frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame({"cost_bps": []})
        return frame[["cost_bps", *[c for c in frame.columns if c != "cost_bps"]]]

    return ProxyEconomyReport(
        correlations=joined(parts["corr"]),
        versus_baselines=joined(parts["base"]),
        overfitting=joined(parts["over"]),
        leaderboard=joined(parts["lead"]),
        feature_sets=joined(parts["sets"]),
    )


def as_floats(frame: pd.DataFrame) -> pd.DataFrame:
    """Metric columns as floats, NULL as NaN (a column that is NULL throughout reads as objects)."""
    metrics = [c for c in frame.columns if c.endswith(("_val", "_test"))]
    return frame.astype(dict.fromkeys(metrics, float))


def _cells(frame: pd.DataFrame) -> pd.Series:
    return frame["crypto"].astype(str) + "|" + frame["fold_id"].astype(str)


def correlations(results: pd.DataFrame, *, seed: int = 0) -> pd.DataFrame:
    """Spearman's rho of each selection metric against each outcome, over every (variant, cell) of the
    cost level and per variant over its cells, with a 95% interval from resampling cells."""
    rows = []
    scopes = [(ALL_VARIANTS, results)] + [(v, g) for v, g in results.groupby("variant", sort=True)]
    for variant, frame in scopes:
        cells = _cells(frame).to_numpy()
        for metric in SELECTION_METRICS:
            for outcome in OUTCOMES:
                x = frame[metric].to_numpy(dtype=float)
                y = frame[outcome].to_numpy(dtype=float)
                rho, low, high = spearman_bootstrap(x, y, cells, n_boot=N_BOOT, seed=seed)
                rows.append({"variant": variant, "selection_metric": metric, "outcome": outcome,
                             "n": int((~np.isnan(x) & ~np.isnan(y)).sum()), "rho": rho,
                             "ci_low": low, "ci_high": high})  # fmt: skip
    return pd.DataFrame(rows)


def _baseline_values(results: pd.DataFrame, baselines: pd.DataFrame, kind: str, outcome: str) -> np.ndarray:
    """The baseline's outcome in each result row's cell (the variant's own column for random_matched)."""
    if kind == MATCHED_BASELINE:
        return results[f"{MATCHED_BASELINE}_{outcome}"].to_numpy(dtype=float)
    of_kind = baselines[baselines["baseline_type"] == kind].set_index(["crypto", "fold_id"])[outcome]
    keys = pd.MultiIndex.from_frame(results[["crypto", "fold_id"]])
    return of_kind.reindex(keys).to_numpy(dtype=float)


def versus_baselines(results: pd.DataFrame, baselines: pd.DataFrame) -> pd.DataFrame:
    """Per variant and baseline: the share of cells where the variant does better out of sample, and the
    two-sided sign and Wilcoxon signed-rank tests of the paired differences across cells."""
    rows = []
    for variant, frame in results.groupby("variant", sort=True):
        for kind in (*BASELINE_TYPES, MATCHED_BASELINE):
            for outcome in COMPARED_ON:
                test = paired_comparison(
                    frame[outcome].to_numpy(dtype=float), _baseline_values(frame, baselines, kind, outcome)
                )
                rows.append({"variant": variant, "baseline": kind, "outcome": outcome, "cells": test.n,
                             "share_better": test.share_better, "sign_p": test.sign_p,
                             "wilcoxon_p": test.wilcoxon_p})  # fmt: skip
    return pd.DataFrame(rows)


ALL_MODELS = "(all models)"


def versus_feature_sets(results: pd.DataFrame) -> pd.DataFrame:
    """Each feature set against the reference set (base, else the first), model by model on the same
    cells, and over every model pooled: the share of (model, cell) pairs where the feature set does better
    out of sample, the mean difference, and the two-sided sign and Wilcoxon signed-rank tests of the
    paired differences. Empty when the sweep has one feature set (or rows written before feature sets)."""
    if results.empty or "feature_set" not in results.columns or results["feature_set"].nunique() < 2:
        return pd.DataFrame({"model": []})
    sets = sorted(results["feature_set"].unique(), key=lambda s: (s != BASE_FEATURE_SET, s))
    reference = sets[0]
    model = results["variant"].map(lambda label: split_label(label)[0])
    by = results.assign(model=model).set_index(["feature_set", "model", "crypto", "fold_id"]).sort_index()
    rows = []
    for other in sets[1:]:
        for outcome in COMPARED_ON:
            pairs: list[tuple[np.ndarray, np.ndarray]] = []
            paired = set(zip(results["feature_set"], model, strict=True))
            for name in sorted(set(model[results["feature_set"] == other])):
                if (reference, name) not in paired:
                    continue  # the model does not take the reference set: nothing to pair it with
                mine = by.loc[(other, name), outcome]
                theirs = by.loc[(reference, name), outcome].reindex(mine.index)
                pairs.append((mine.to_numpy(dtype=float), theirs.to_numpy(dtype=float)))
                rows.append(_feature_set_row(name, other, reference, outcome, *pairs[-1]))
            if len(pairs) > 1:
                pooled = [np.concatenate(side) for side in zip(*pairs, strict=True)]
                rows.append(_feature_set_row(ALL_MODELS, other, reference, outcome, *pooled))
    return pd.DataFrame(rows)


def _feature_set_row(
    model: str, feature_set: str, reference: str, outcome: str, mine: np.ndarray, theirs: np.ndarray
) -> dict[str, Any]:
    test = paired_comparison(mine, theirs)
    both = ~np.isnan(mine) & ~np.isnan(theirs)
    return {"model": model, "feature_set": feature_set, "reference": reference, "outcome": outcome,
            "cells": test.n, "share_better": test.share_better,
            "mean_difference": float(np.mean(mine[both] - theirs[both])) if both.any() else None,
            "sign_p": test.sign_p, "wilcoxon_p": test.wilcoxon_p}  # fmt: skip


def _cells_by_variant(results: pd.DataFrame, column: str) -> pd.DataFrame:
    """Cells (rows, in test-window order) x variants (columns) of one metric."""
    return (
        results.set_index(["test_start", "crypto", "fold_id", "variant"])[column]
        .unstack("variant")
        .sort_index()
    )


def overfitting(results: pd.DataFrame) -> pd.DataFrame:
    """How likely the variant picked on validation is merely the luckiest of those tried.

    * pbo_selected: CSCV (Bailey, Borwein, López de Prado and Zhu, 2014) over the cells, picking on the
      in-sample half's mean `PICKED_ON` and ranking the pick by its OOS sortino in the other half;
    * pbo_oos: the classic CSCV on OOS sortino alone (picked and ranked on the same metric);
    * deflated_sharpe: the picked variant's Sharpe ratio of its per-cell OOS total returns (one period per
      fold's test window), deflated for the number of variants tried and the spread of their Sharpe
      ratios (Bailey and López de Prado, 2014)."""
    outcome = _cells_by_variant(results, "sortino_test")
    picked_on = _cells_by_variant(results, PICKED_ON).reindex_like(outcome)
    returns = _cells_by_variant(results, "total_return_test").reindex_like(outcome)
    selected = probability_of_backtest_overfitting(outcome.to_numpy(), selection=picked_on.to_numpy())
    classic = probability_of_backtest_overfitting(outcome.to_numpy())
    means = picked_on.mean(axis=0, skipna=True)
    picked = str(means.idxmax()) if means.notna().any() else None
    sharpes = returns.mean() / returns.std(ddof=1)
    finite = sharpes[np.isfinite(sharpes)]
    dsr = (
        deflated_sharpe_ratio(
            returns[picked].to_numpy(dtype=float),
            n_trials=max(len(finite), 1),
            sharpe_variance=float(finite.var(ddof=1)) if len(finite) > 1 else 0.0,
        )
        if picked is not None
        else None
    )
    return pd.DataFrame([{
        "picked_variant": picked, "picked_on": PICKED_ON, "cells": len(outcome), "variants": outcome.shape[1],
        "pbo_selected": selected.pbo, "pbo_oos": classic.pbo, "cscv_groups": selected.n_groups,
        "cscv_combinations": selected.n_combinations,
        "picked_sharpe": float(sharpes[picked]) if picked is not None and np.isfinite(sharpes[picked]) else None,
        "deflated_sharpe": dsr,
    }])  # fmt: skip


def degenerate(results: pd.DataFrame) -> pd.Series:
    """Per result row: its variant predicts a constant in its cell, a finding rather than a result. That
    is an OOS AUC of exactly 0.5 (what constant scores give: every score tied) with no OOS trade. A NULL
    AUC (one class in the test split) says nothing about the scores, so it is not called degenerate."""
    return results["auc_buy_test"].eq(0.5) & results["n_trades_test"].eq(0)


def degenerate_rows(results: pd.DataFrame) -> list[dict[str, Any]]:
    """The degenerate rows of `results` (with `DEGENERATE_COLUMNS`), named as a check lists them."""
    return results.loc[degenerate(results), list(DEGENERATE_COLUMNS)].to_dict("records")


def degenerate_everywhere(results: pd.DataFrame) -> pd.Series:
    """Per variant: whether it is degenerate in every cell it has rows in."""
    return degenerate(results).groupby(results["variant"], sort=True).all()


def leaderboard(results: pd.DataFrame, baselines: pd.DataFrame) -> pd.DataFrame:
    """Variants and baselines by mean OOS sortino over cells, with what they were picked on, and whether
    a variant is degenerate (predicts a constant) in every cell: its figures are then no result. The
    flag is NULL for baselines, to which it does not apply."""
    metrics = ["sortino_test", "expectancy_test", "total_return_test", "max_drawdown_test", "n_trades_test"]
    variants = results.groupby("variant", sort=True)
    board = variants[[PICKED_ON, *metrics]].mean()
    board.insert(0, "cells", variants.size())
    board.insert(1, "degenerate", degenerate_everywhere(results).astype(object))
    beats = results["sortino_test"] > results[f"{MATCHED_BASELINE}_sortino_test"]
    comparable = results[["sortino_test", f"{MATCHED_BASELINE}_sortino_test"]].notna().all(axis=1)
    board["beats_random_matched"] = beats[comparable].groupby(results.loc[comparable, "variant"]).mean()
    board["kind"] = "variant"
    base = baselines.groupby("baseline_type", sort=True)
    base_board = base[metrics].mean()
    base_board.insert(0, "cells", base.size())
    base_board["kind"] = "baseline"
    matched = pd.DataFrame(
        {m: [results[f"{MATCHED_BASELINE}_{m}"].mean()] for m in metrics}, index=[MATCHED_BASELINE]
    )
    matched.insert(0, "cells", results[["crypto", "fold_id"]].drop_duplicates().shape[0])
    matched["kind"] = "baseline (mean over variants)"
    board = pd.concat([board, base_board, matched if not results.empty else None])
    board = board.sort_values("sortino_test", ascending=False, na_position="last")
    board.insert(0, "rank", np.arange(1, len(board) + 1))
    return board.rename_axis("name").reset_index()


def verdicts(report: ProxyEconomyReport) -> list[str]:
    """One sentence per cost level answering the report's question from its own numbers."""
    lines = []
    corr = report.correlations
    for cost in report.overfitting["cost_bps"]:
        pooled = corr[(corr["cost_bps"] == cost) & (corr["variant"] == ALL_VARIANTS)
                      & (corr["selection_metric"] == PICKED_ON) & (corr["outcome"] == "sortino_test")]  # fmt: skip
        over = report.overfitting[report.overfitting["cost_bps"] == cost].iloc[0]
        rho, low, high = (pooled.iloc[0][c] if len(pooled) else None for c in ("rho", "ci_low", "ci_high"))
        if rho is None or pd.isna(rho) or low is None or pd.isna(low):
            answer, interval = "are too few cells to say whether", ""
        else:
            answer = "is evidence that" if low > 0 else "is no evidence that"
            interval = f" (Spearman {rho:.2f}, 95% CI {low:.2f} to {high:.2f})"
        pbo = f"{over['pbo_selected']:.2f}" if pd.notna(over["pbo_selected"]) else "n/a"
        dsr = f"{over['deflated_sharpe']:.2f}" if pd.notna(over["deflated_sharpe"]) else "n/a"
        lines.append(
            f"At {cost} bps there {answer} validation {PICKED_ON} predicts OOS sortino{interval}; "
            f"picking the best {PICKED_ON} variant ({over['picked_variant']}) overfits with probability "
            f"{pbo}, and its deflated Sharpe ratio is {dsr}."
        )
        lines[-1] = " ".join([lines[-1], *_feature_set_verdicts(report.feature_sets, cost)])
    return lines


def _feature_set_verdicts(tests: pd.DataFrame, cost: float) -> list[str]:
    """Per feature set other than the reference: does it earn more OOS sortino with the same models? (A
    sentence each, appended to the cost level's verdict: one verdict per cost.)"""
    if tests.empty:
        return []
    lines = []
    at = tests[(tests["cost_bps"] == cost) & (tests["outcome"] == "sortino_test")]
    for feature_set, rows in at.groupby("feature_set", sort=True):
        row = (rows[rows["model"] == ALL_MODELS] if (rows["model"] == ALL_MODELS).any() else rows).iloc[0]
        if row["share_better"] is None or pd.isna(row["share_better"]):
            continue
        p = f"{row['sign_p']:.2f}" if row["sign_p"] is not None and pd.notna(row["sign_p"]) else "n/a"
        scope = "(model, cell) pairs" if row["model"] == ALL_MODELS else f"cells with {row['model']}"
        lines.append(
            f"{feature_set} has a higher OOS sortino than {row['reference']} in "
            f"{row['share_better']:.0%} of {int(row['cells'])} {scope} (sign test p = {p})."
        )
    return lines
