"""The report on one screen: short tables for the report asset's overview in the UI.

The UI gives a metadata value about 560 pixels at 1600 pixels wide, so each table here has a handful of
short columns; the report's full tables (the leaderboard with every metric, correlations per variant,
every paired test) are on its HTML page. Each column carries a description with its unit.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from cvn_assets.core.proxy_economy import ALL_VARIANTS, PICKED_ON, ProxyEconomyReport

SIGNIFICANT = 0.05  # the p-value a paired test must beat to count as a variant that beats the baseline


@dataclass(frozen=True)
class OverviewTable:
    frame: pd.DataFrame
    descriptions: dict[str, str]  # column -> what it holds, with its unit


def _bps(cost: object) -> str:
    return f"{int(cost)} bps"  # type: ignore[call-overload]


def leaderboard(report: ProxyEconomyReport) -> OverviewTable:
    """Variants and baselines (rows) by mean OOS sortino at each cost (a column per cost), best at the
    highest cost first; the validation metric a variant is picked on beside it."""
    board = report.leaderboard
    if board.empty:
        return OverviewTable(pd.DataFrame({"name": []}), {"name": "variant or baseline"})
    costs = sorted(board["cost_bps"].unique())
    sortino = board.pivot_table(
        index="name", columns="cost_bps", values="sortino_test", aggfunc="first", dropna=False
    )
    sortino.columns = [_bps(c) for c in sortino.columns]
    picked_on = board.groupby("name")[PICKED_ON].first()
    frame = pd.DataFrame(
        {
            "name": sortino.index,
            PICKED_ON: picked_on.reindex(sortino.index).to_numpy(),
            **{c: sortino[c].to_numpy() for c in sortino.columns},
        }
    )
    frame = frame.sort_values(_bps(costs[-1]), ascending=False, na_position="last", kind="stable")
    descriptions = {
        "name": "variant, or baseline on the same cells (random_matched: the mean over variants)",
        PICKED_ON: f"mean validation {PICKED_ON} over cells, what the report picks on (a ratio, 0 to 1)",
        **{_bps(c): f"mean OOS sortino over cells at {_bps(c)} a trade (a ratio)" for c in costs},
    }
    return OverviewTable(frame.reset_index(drop=True), descriptions)


def overfitting(report: ProxyEconomyReport) -> OverviewTable:
    frame = report.overfitting[["cost_bps", "picked_variant", "pbo_selected", "deflated_sharpe"]]
    return OverviewTable(
        frame.rename(columns={"picked_variant": "picked", "pbo_selected": "pbo", "deflated_sharpe": "dsr"}),
        {
            "cost_bps": "trading cost per trade (bps)",
            "picked": f"the variant with the best mean validation {PICKED_ON}",
            "pbo": "probability that the pick is overfit (CSCV over the cells, 0 to 1; lower is better)",
            "dsr": "deflated Sharpe ratio of the pick: probability its Sharpe beats as many unskilled "
            "variants (0 to 1; higher is better)",
        },
    )


def correlations(report: ProxyEconomyReport) -> OverviewTable:
    """Over every variant and cell pooled: each validation metric against OOS sortino, per cost. The
    per-variant rows (variants x metrics x outcomes x costs) are on the HTML page."""
    corr = report.correlations
    pooled = corr[(corr["variant"] == ALL_VARIANTS) & (corr["outcome"] == "sortino_test")]
    frame = pd.DataFrame(
        {
            "cost_bps": pooled["cost_bps"].to_numpy(),
            "val_metric": pooled["selection_metric"].to_numpy(),
            "rho": pooled["rho"].to_numpy(dtype=float),
            "ci_low": pooled["ci_low"].to_numpy(dtype=float),
            "ci_high": pooled["ci_high"].to_numpy(dtype=float),
            "n": pooled["n"].to_numpy(),
        }
    )
    return OverviewTable(
        frame,
        {
            "cost_bps": "trading cost per trade (bps)",
            "val_metric": "the validation metric",
            "rho": "Spearman's rho against OOS sortino over (variant, cell) pairs (-1 to 1)",
            "ci_low": "95% interval from resampling cells, lower end",
            "ci_high": "95% interval from resampling cells, upper end",
            "n": "(variant, cell) pairs with both values",
        },
    )


def versus_baselines(report: ProxyEconomyReport) -> OverviewTable:
    """Per cost and baseline, on OOS sortino: how many variants beat it in most cells, and how many of
    those significantly (sign test). Each variant's tests are on the HTML page."""
    tests = report.versus_baselines
    tests = tests[tests["outcome"] == "sortino_test"]
    rows = []
    for (cost, baseline), group in tests.groupby(["cost_bps", "baseline"], sort=True):
        better = group["share_better"] > 0.5
        significant = better & (group["sign_p"] < SIGNIFICANT)
        rows.append({"cost_bps": cost, "baseline": baseline, "beat_most": f"{int(better.sum())} / {len(group)}",
                     "significant": f"{int(significant.sum())} / {len(group)}"})  # fmt: skip
    return OverviewTable(
        pd.DataFrame(rows, columns=["cost_bps", "baseline", "beat_most", "significant"]),
        {
            "cost_bps": "trading cost per trade (bps)",
            "baseline": "the baseline, on the same cells",
            "beat_most": "variants with a higher OOS sortino than the baseline in most cells, of those compared",
            "significant": f"variants that beat it in most cells with a sign test p < {SIGNIFICANT}, of those "
            "compared",
        },
    )


def feature_sets(report: ProxyEconomyReport) -> OverviewTable | None:
    """Per cost, each feature set against the reference set on OOS sortino, model by model and pooled;
    None for a sweep with one feature set."""
    tests = report.feature_sets
    if tests.empty:
        return None
    tests = tests[tests["outcome"] == "sortino_test"]
    columns = ["cost_bps", "feature_set", "model", "cells", "share_better", "mean_difference", "sign_p"]
    return OverviewTable(
        tests[columns].reset_index(drop=True),
        {
            "cost_bps": "trading cost per trade (bps)",
            "feature_set": "the feature set, against the reference (base) with the same model on the same cells",
            "model": "model or ensemble; (all models): every pair pooled",
            "cells": "cells (crypto x fold; x model when pooled) with both values",
            "share_better": "share of those where the feature set has the higher OOS sortino (0 to 1)",
            "mean_difference": "mean OOS sortino of the feature set minus the reference's (a ratio)",
            "sign_p": "two-sided sign test of the paired differences (0 to 1; small: the difference is real)",
        },
    )


def overview_tables(report: ProxyEconomyReport) -> dict[str, OverviewTable]:
    tables = {
        "leaderboard (mean OOS sortino)": leaderboard(report),
        "overfitting": overfitting(report),
        "correlations (pooled)": correlations(report),
        "versus baselines": versus_baselines(report),
    }
    compared = feature_sets(report)
    return tables | ({"feature sets (OOS sortino)": compared} if compared is not None else {})
