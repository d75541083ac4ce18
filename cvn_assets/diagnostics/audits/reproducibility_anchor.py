"""`reproducibility_anchor`: retrain the model on the captured fold with its stored winning parameters and
compare the metrics with its stored result row.

The expensive one: it retrains (a light audit skips it, and the verdict says SKIPPED, never a pass). The
stored row's `model_hyperparams` are what the model was trained with (a search's winner, or the resolved
defaults); the same harness, seed and data must give the same validation and OOS metrics and threshold,
to within `tolerance`. A difference is a reproducibility failure (FAIL, cross-reference MISMATCH) with each
metric that moved; no stored row leaves nothing to compare with (INCONCLUSIVE_TOOLING).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from cvn_assets.core.datasets import FoldDataset
from cvn_assets.diagnostics.registry import UNKNOWN, register_diagnostic
from cvn_assets.diagnostics.verdicts import FAIL, INCONCLUSIVE_TOOLING, PASS, Finding
from cvn_assets.harness.contracts import TrainedArtifact

METRICS = ("f1_buy", "auc_buy", "brier", "ece", "logloss")


def _compared(stored: Mapping[str, Any], retrained: TrainedArtifact) -> list[dict[str, Any]]:
    pairs = [("threshold_buy_val", retrained.threshold)]
    for split, metrics in (("val", retrained.val_metrics), ("test", retrained.test_metrics)):
        pairs += [(f"{m}_{split}", getattr(metrics, m)) for m in METRICS]
    rows = []
    for column, again in pairs:
        was = stored.get(column)
        both_absent = (was is None or was != was) and (again is None or again != again)
        diff = (
            0.0 if both_absent else abs(float(again) - float(was)) if None not in (was, again) else math.inf
        )
        rows.append({"metric": column, "stored": was, "retrained": again, "abs_diff": diff})
    return rows


@register_diagnostic(
    "reproducibility_anchor", consumes=UNKNOWN, params={"tolerance": 1e-9}, code_version="1", anchor=True
)
def reproducibility_anchor(
    dataset: FoldDataset,
    artifact: TrainedArtifact,
    stored_rows: Sequence[Mapping[str, Any]],
    retrain: Callable[[Mapping[str, Any]], TrainedArtifact],
    params: Mapping[str, Any],
) -> Finding:
    """Retrain with the stored winning parameters and compare the metrics with the stored result row."""
    if not stored_rows:
        return Finding(INCONCLUSIVE_TOOLING, f"no stored result row of {artifact.model_name} in this cell to "
                       "compare with: materialize its economics first")  # fmt: skip
    row = stored_rows[0]  # every cost's row of a variant holds the same model and metrics
    stored_params = json.loads(row["model_hyperparams"]) if row.get("model_hyperparams") else {}
    started = time.perf_counter()
    retrained = retrain(stored_params)
    compared = _compared(row, retrained)
    worst = max(compared, key=lambda r: r["abs_diff"])
    figures = {"max_abs_diff": worst["abs_diff"], "retrain_s": time.perf_counter() - started,
               "metrics_compared": len(compared)}  # fmt: skip
    moved = [r for r in compared if r["abs_diff"] > params["tolerance"]]
    if moved:
        return Finding(FAIL, f"the retrain does not reproduce the stored row: {len(moved)} metrics moved "
                       f"(most: {worst['metric']} by {worst['abs_diff']:.3g})", figures, tuple(compared))  # fmt: skip
    return Finding(PASS, f"the retrain reproduces the stored row ({len(compared)} metrics within "
                   f"{params['tolerance']:g}; largest difference {worst['abs_diff']:.2g})", figures,
                   tuple(compared))  # fmt: skip
