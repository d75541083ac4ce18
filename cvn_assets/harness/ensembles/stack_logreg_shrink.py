"""A regularized logistic meta-learner on the logits of the base models' validation probabilities."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression

from cvn_assets.harness.registry import register_ensemble

_EPS = 1e-6


def _logits(probabilities: Mapping[str, np.ndarray], models: list[str]) -> np.ndarray:
    p = np.clip(np.column_stack([probabilities[m] for m in models]), _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


@register_ensemble("stack_logreg_shrink", base_models=["xgboost", "lightgbm", "catboost"], code="STACK_LR")
class StackLogisticShrink:
    def __init__(self, params: Mapping[str, Any], seed: int, threads: int) -> None:
        self.params = dict(params)  # C (the shrinkage) and friends: CVN_HPO_STACK_LR_<TF>_*
        self.seed = seed
        self.models: list[str] = []
        self.meta: LogisticRegression | None = None

    def fit(self, val: Mapping[str, np.ndarray], y_val: np.ndarray) -> StackLogisticShrink:
        self.models = sorted(val)
        self.meta = LogisticRegression(**self.params, random_state=self.seed).fit(
            _logits(val, self.models), y_val
        )
        return self

    def predict(self, probabilities: Mapping[str, np.ndarray]) -> np.ndarray:
        return self.meta.predict_proba(_logits(probabilities, self.models))[:, 1]

    def fitted_params(self) -> dict[str, Any]:
        coef = dict(zip(self.models, map(float, self.meta.coef_[0]), strict=True))
        return {**self.params, "coef": coef, "intercept": float(self.meta.intercept_[0])}
