"""Logistic regression on standardized features: the proof that a fourth model is one file."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from cvn_assets.harness.adapter import LibraryAdapter
from cvn_assets.harness.registry import register_model


@register_model("logreg", code="LR")
class LogisticRegressionModel(LibraryAdapter):
    calibration = "sigmoid"  # already a logistic output: Platt scaling suits it better than isotonic steps

    def fit(
        self,
        X: pd.DataFrame,
        y: pd.Series,
        X_val: pd.DataFrame,
        y_val: pd.Series,
        sample_weight: np.ndarray | None,
    ) -> LogisticRegressionModel:
        model = make_pipeline(StandardScaler(), LogisticRegression(**self.params, random_state=self.seed))
        model.fit(X, y, logisticregression__sample_weight=sample_weight)
        self.native = model
        return self
