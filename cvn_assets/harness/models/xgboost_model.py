"""XGBoost adapter. Every hyperparameter comes from the sweep config; only seed and threads are injected."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb

from cvn_assets.harness.registry import register_model


@register_model("xgboost")
class XGBoostModel:
    def __init__(self, params: Mapping[str, Any], seed: int, threads: int) -> None:
        self.params = dict(params)
        self.seed = seed
        self.threads = threads
        self.best_iteration: int | None = None
        self.native: xgb.XGBClassifier | None = None

    def fit(self, X: pd.DataFrame, y: pd.Series, X_val: pd.DataFrame, y_val: pd.Series) -> XGBoostModel:
        model = xgb.XGBClassifier(**self.params, random_state=self.seed, n_jobs=self.threads)
        # Early stopping (when configured) watches the validation split, never the test split.
        eval_set = [(X_val, y_val)] if "early_stopping_rounds" in self.params else None
        model.fit(X, y, eval_set=eval_set, verbose=False)
        self.native = model
        best = getattr(model, "best_iteration", None)
        self.best_iteration = int(best) if best is not None else None
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        assert self.native is not None, "fit before predict_proba"
        return self.native.predict_proba(X)
