"""A weighted average, each base model weighted by its validation AUC above chance (equal if none is)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from cvn_assets.harness.registry import register_ensemble


@register_ensemble("blend_weighted", base_models=["xgboost", "lightgbm", "catboost"])
class BlendWeighted:
    def __init__(self, params: Mapping[str, Any], seed: int, threads: int) -> None:
        self.params = dict(params)
        self.weights: dict[str, float] = {}
        self.auc: dict[str, float] = {}

    def fit(self, val: Mapping[str, np.ndarray], y_val: np.ndarray) -> BlendWeighted:
        self.auc = {m: float(roc_auc_score(y_val, p)) for m, p in sorted(val.items())}
        edge = {m: max(a - 0.5, 0.0) for m, a in self.auc.items()}
        total = sum(edge.values())
        self.weights = {m: (e / total if total > 0 else 1 / len(edge)) for m, e in edge.items()}
        return self

    def predict(self, probabilities: Mapping[str, np.ndarray]) -> np.ndarray:
        return np.sum([w * probabilities[m] for m, w in self.weights.items()], axis=0)

    def fitted_params(self) -> dict[str, Any]:
        return {"weights": self.weights, "val_auc": self.auc}
