"""Training-time meta-labeling: a secondary classifier that learns which of the primary's buy signals on
the validation split were true positives, from the features plus the primary's probability."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler


@dataclass(frozen=True)
class MetaLabeler:
    model: Pipeline
    n_signals: int
    precision_primary: float  # share of the primary's validation signals that were true positives

    def predict_proba(self, X: pd.DataFrame, p_primary: np.ndarray) -> np.ndarray:
        """P(the primary's signal is a true positive), an (n, 2) array."""
        return self.model.predict_proba(_meta_features(X, p_primary))


def _meta_features(X: pd.DataFrame, p_primary: np.ndarray) -> np.ndarray:
    return np.column_stack([np.asarray(X, dtype=float), np.asarray(p_primary, dtype=float)])


def fit_meta_labeler(
    X_val: pd.DataFrame,
    y_val: np.ndarray,
    p_val: np.ndarray,
    threshold: float,
    params: Mapping[str, Any],
    seed: int,
) -> MetaLabeler | None:
    """None when the primary's signals on validation hold only one outcome (nothing to learn)."""
    signals = np.asarray(p_val) >= threshold
    outcome = np.asarray(y_val, dtype=int)[signals]
    if signals.sum() < 2 or np.unique(outcome).size < 2:
        return None
    model = make_pipeline(StandardScaler(), LogisticRegression(**params, random_state=seed))
    model.fit(_meta_features(X_val[signals], np.asarray(p_val)[signals]), outcome)
    return MetaLabeler(model, int(signals.sum()), float(outcome.mean()))
