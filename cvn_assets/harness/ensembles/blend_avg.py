"""The plain average of the base models' calibrated probabilities."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from cvn_assets.harness.registry import register_ensemble


@register_ensemble("blend_avg", base_models=["xgboost", "lightgbm", "catboost"])
class BlendAverage:
    def __init__(self, params: Mapping[str, Any], seed: int, threads: int) -> None:
        self.params = dict(params)
        self.models: list[str] = []

    def fit(self, val: Mapping[str, np.ndarray], y_val: np.ndarray) -> BlendAverage:
        self.models = sorted(val)
        return self

    def predict(self, probabilities: Mapping[str, np.ndarray]) -> np.ndarray:
        return np.mean([probabilities[m] for m in self.models], axis=0)

    def fitted_params(self) -> dict[str, Any]:
        return {"weights": {m: 1 / len(self.models) for m in self.models}}
