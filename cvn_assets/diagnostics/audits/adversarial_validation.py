"""`adversarial_validation`: can a classifier tell the train rows from the test rows?

A gradient-boosted classifier learns "is this a test row" from the features, scored by cross-validated AUC
(`folds` stratified folds, seeded; at most `max_rows` rows of each split, drawn seeded, so its cost stays
bounded on minute bars). About 0.5: the test rows look like the train rows. Above `auc_warn`:
they are told apart, and the features that give them away are listed, each with its own AUC as a lone
score (|AUC - 0.5| ranks them). A finding (WARN): time series drift, so it says what to look at.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from cvn_assets.core.datasets import FoldDataset
from cvn_assets.diagnostics.registry import XY_ONLY, register_diagnostic
from cvn_assets.diagnostics.verdicts import PASS, WARN, Finding


def _at_most(frame: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    return frame if len(frame) <= rows else frame.sample(n=rows, random_state=seed).sort_index()


@register_diagnostic(
    "adversarial_validation",
    consumes=XY_ONLY,
    params={"auc_warn": 0.75, "folds": 3, "max_iter": 50, "seed": 0, "listed": 5, "max_rows": 10_000},
    code_version="1",
)
def adversarial_validation(dataset: FoldDataset, params: Mapping[str, Any]) -> Finding:
    """Cross-validated AUC of a classifier telling train rows from test rows, and the features that give
    them away."""
    X, X_test = (_at_most(dataset.xy(split)[0], int(params["max_rows"]), int(params["seed"]))
                 for split in ("train", "test"))  # fmt: skip
    features = pd.concat([X, X_test], ignore_index=True)
    is_test = np.r_[np.zeros(len(X), dtype=int), np.ones(len(X_test), dtype=int)]
    model = HistGradientBoostingClassifier(max_iter=int(params["max_iter"]), random_state=int(params["seed"]))
    splits = StratifiedKFold(n_splits=int(params["folds"]), shuffle=True, random_state=int(params["seed"]))
    proba = cross_val_predict(model, features, is_test, cv=splits, method="predict_proba")[:, 1]
    auc = float(roc_auc_score(is_test, proba))
    lone = {name: float(roc_auc_score(is_test, features[name])) for name in features.columns}
    ranked = sorted(lone.items(), key=lambda kv: -abs(kv[1] - 0.5))
    table = tuple({"feature": name, "auc_alone": value} for name, value in ranked[: int(params["listed"])])
    figures = {"adversarial_auc": auc, "n_train": len(X), "n_test": len(X_test),
               "top_feature_auc": ranked[0][1]}  # fmt: skip
    if auc > params["auc_warn"]:
        given_away = ", ".join(f"{name} ({value:.2f})" for name, value in ranked[:3])
        return Finding(WARN, f"train and test rows are told apart (AUC {auc:.3f} > {params['auc_warn']}); "
                             f"most telling: {given_away}", figures, table)  # fmt: skip
    return Finding(PASS, f"train and test rows look alike (AUC {auc:.3f})", figures, table)
