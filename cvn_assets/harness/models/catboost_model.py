"""CatBoost. Every hyperparameter comes from the sweep config; seed and threads are injected."""

from __future__ import annotations

import numpy as np
import pandas as pd
from catboost import CatBoostClassifier

from cvn_assets.harness.adapter import LibraryAdapter
from cvn_assets.harness.registry import register_model


@register_model("catboost", code="CB")
class CatBoostModel(LibraryAdapter):
    def fit(
        self,
        X: pd.DataFrame,
        y: pd.Series,
        X_val: pd.DataFrame,
        y_val: pd.Series,
        sample_weight: np.ndarray | None,
    ) -> CatBoostModel:
        model = CatBoostClassifier(
            **self.params,
            random_seed=self.seed,
            thread_count=self.threads,
            verbose=False,
            allow_writing_files=False,
        )
        eval_set = (X_val, y_val) if "early_stopping_rounds" in self.params else None
        model.fit(X, y, sample_weight=sample_weight, eval_set=eval_set)
        self.native = model
        self.best_iteration = int(model.get_best_iteration()) if eval_set is not None else None
        self.n_estimators_final = int(model.tree_count_)
        return self
