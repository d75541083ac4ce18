"""`drift`: how far the test rows moved from the train rows: the label balance of each split, and each
feature's population stability index (PSI) between train and test.

PSI = sum over bins of (test share - train share) * ln(test share / train share), on `bins` quantile bins of
the train values (shares floored at 1e-4 so an empty bin stays finite). Above `psi_warn` (0.25 by the usual
rule of thumb) a feature has shifted; a label balance that moved more than `balance_warn` has too. Either
is a finding (WARN), not an invariant.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from cvn_assets.core.datasets import FoldDataset
from cvn_assets.diagnostics.registry import XY_ONLY, register_diagnostic
from cvn_assets.diagnostics.verdicts import PASS, WARN, Finding

FLOOR = 1e-4


def psi(expected: np.ndarray, actual: np.ndarray, bins: int) -> float:
    """The population stability index of `actual` against `expected`, on expected's quantile bins."""
    edges = np.unique(np.quantile(expected, np.linspace(0, 1, bins + 1)))
    if len(edges) < 2:  # a constant feature: moved iff the other sample is not that constant
        return 0.0 if np.all(actual == expected[0]) else float("inf")
    inner = edges[1:-1]
    e = np.bincount(np.searchsorted(inner, expected, side="right"), minlength=len(inner) + 1) / len(expected)
    a = np.bincount(np.searchsorted(inner, actual, side="right"), minlength=len(inner) + 1) / len(actual)
    e, a = np.maximum(e, FLOOR), np.maximum(a, FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


@register_diagnostic(
    "drift", consumes=XY_ONLY, params={"bins": 10, "psi_warn": 0.25, "balance_warn": 0.15}, code_version="1"
)
def drift(dataset: FoldDataset, params: Mapping[str, Any]) -> Finding:
    """Label balance per split and per-feature PSI between train and test rows."""
    X, y = dataset.xy("train")
    X_test, y_test = dataset.xy("test")
    _, y_val = dataset.xy("validation")
    balance = {f"buy_share_{s}": float(v.mean()) for s, v in (("train", y), ("val", y_val), ("test", y_test))}
    by_feature = {
        name: psi(X[name].to_numpy(dtype=float), X_test[name].to_numpy(dtype=float), int(params["bins"]))
        for name in X.columns
    }
    ranked = sorted(by_feature.items(), key=lambda kv: -kv[1])
    shifted = [name for name, value in ranked if value > params["psi_warn"]]
    moved = abs(balance["buy_share_test"] - balance["buy_share_train"])
    figures = {
        **balance,
        "balance_shift": moved,
        "max_psi": ranked[0][1],
        "mean_psi": float(np.mean(list(by_feature.values()))),
        "features_shifted": len(shifted),
    }
    table = tuple({"feature": name, "psi": value} for name, value in ranked[:10])
    found = []
    if shifted:
        found.append(f"{len(shifted)} of {len(by_feature)} features have PSI > {params['psi_warn']} "
                     f"(most: {ranked[0][0]} {ranked[0][1]:.2f})")  # fmt: skip
    if moved > params["balance_warn"]:
        found.append(f"the buy share moved from {balance['buy_share_train']:.2f} (train) to "
                     f"{balance['buy_share_test']:.2f} (test)")  # fmt: skip
    if found:
        return Finding(WARN, "; ".join(found), figures, table)
    return Finding(
        PASS,
        f"max PSI {ranked[0][1]:.3f} ({ranked[0][0]}); buy share {balance['buy_share_train']:.2f} train, "
        f"{balance['buy_share_test']:.2f} test",
        figures,
        table,
    )
