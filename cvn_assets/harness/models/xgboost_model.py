"""XGBoost. Every hyperparameter comes from the sweep config; seed and threads are injected."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xgboost as xgb

from cvn_assets.harness.adapter import LibraryAdapter
from cvn_assets.harness.registry import register_model


@register_model("xgboost", code="XGB")
class XGBoostModel(LibraryAdapter):
    def fit(
        self,
        X: pd.DataFrame,
        y: pd.Series,
        X_val: pd.DataFrame,
        y_val: pd.Series,
        sample_weight: np.ndarray | None,
    ) -> XGBoostModel:
        model = xgb.XGBClassifier(**self.params, random_state=self.seed, n_jobs=self.threads)
        # Early stopping (when configured) watches the validation split, never the test split.
        eval_set = [(X_val, y_val)] if "early_stopping_rounds" in self.params else None
        model.fit(X, y, sample_weight=sample_weight, eval_set=eval_set, verbose=False)
        self.native = model
        best = getattr(model, "best_iteration", None) if eval_set else None
        self.best_iteration = int(best) if best is not None else None
        self.n_estimators_final = model.get_booster().num_boosted_rounds() if best is None else int(best) + 1
        return self
