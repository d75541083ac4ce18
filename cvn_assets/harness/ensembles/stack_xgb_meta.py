"""A small XGBoost meta-learner on the base models' validation probabilities."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import xgboost as xgb

from cvn_assets.harness.registry import register_ensemble


@register_ensemble("stack_xgb_meta", base_models=["xgboost", "lightgbm", "catboost"], code="STACK_XGB")
class StackXGBoostMeta:
    def __init__(self, params: Mapping[str, Any], seed: int, threads: int) -> None:
        self.params = dict(params)  # CVN_HPO_STACK_XGB_<TF>_*
        self.seed = seed
        self.threads = threads
        self.models: list[str] = []
        self.meta: xgb.XGBClassifier | None = None

    def fit(self, val: Mapping[str, np.ndarray], y_val: np.ndarray) -> StackXGBoostMeta:
        self.models = sorted(val)
        self.meta = xgb.XGBClassifier(**self.params, random_state=self.seed, n_jobs=self.threads)
        self.meta.fit(np.column_stack([val[m] for m in self.models]), y_val)
        return self

    def predict(self, probabilities: Mapping[str, np.ndarray]) -> np.ndarray:
        return self.meta.predict_proba(np.column_stack([probabilities[m] for m in self.models]))[:, 1]

    def fitted_params(self) -> dict[str, Any]:
        return {**self.params, "meta_features": self.models}
