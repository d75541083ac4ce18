"""LightGBM. Every hyperparameter comes from the sweep config; seed and threads are injected."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd

from cvn_assets.harness.adapter import LibraryAdapter
from cvn_assets.harness.registry import register_model


@register_model("lightgbm", code="LGB")
class LightGBMModel(LibraryAdapter):
    def fit(
        self,
        X: pd.DataFrame,
        y: pd.Series,
        X_val: pd.DataFrame,
        y_val: pd.Series,
        sample_weight: np.ndarray | None,
    ) -> LightGBMModel:
        params = dict(self.params)
        stopping = params.pop("early_stopping_rounds", None)
        model = lgb.LGBMClassifier(**params, random_state=self.seed, n_jobs=self.threads, verbose=-1)
        callbacks = [lgb.early_stopping(int(stopping), verbose=False)] if stopping else None
        eval_set = [(X_val, y_val)] if stopping else None
        model.fit(X, y, sample_weight=sample_weight, eval_set=eval_set, callbacks=callbacks)
        self.native = model
        self.best_iteration = int(model.best_iteration_) if stopping and model.best_iteration_ else None
        self.n_estimators_final = self.best_iteration or model.booster_.num_trees()
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return self.native.predict_proba(X, num_iteration=self.best_iteration)
