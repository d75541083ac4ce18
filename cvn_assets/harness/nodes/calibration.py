"""Probability calibration, always on: isotonic by default, an adapter may name another method."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

CALIBRATION_METHODS = ("isotonic", "sigmoid")
_EPS = 1e-6


@dataclass(frozen=True)
class Calibrator:
    method: str
    model: IsotonicRegression | LogisticRegression

    def transform(self, p: np.ndarray) -> np.ndarray:
        p = np.asarray(p, dtype=float)
        if self.method == "isotonic":
            out = self.model.predict(p)
        else:
            out = self.model.predict_proba(_logit(p).reshape(-1, 1))[:, 1]
        return np.clip(out, _EPS, 1 - _EPS)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


def fit_calibrator(method: str, p_val: np.ndarray, y_val: np.ndarray) -> Calibrator:
    """Fit on the validation split's raw probabilities (the model never trained on it)."""
    if method == "isotonic":
        model: IsotonicRegression | LogisticRegression = IsotonicRegression(
            y_min=0.0, y_max=1.0, out_of_bounds="clip"
        )
        model.fit(np.asarray(p_val, dtype=float), np.asarray(y_val, dtype=int))
    elif method == "sigmoid":  # Platt scaling on the logit
        model = LogisticRegression().fit(
            _logit(np.asarray(p_val)).reshape(-1, 1), np.asarray(y_val, dtype=int)
        )
    else:
        raise ValueError(f"unknown calibration method '{method}' ({', '.join(CALIBRATION_METHODS)})")
    return Calibrator(method, model)
