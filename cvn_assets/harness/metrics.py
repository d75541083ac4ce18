"""Classification metrics of the buy class, the same for every model and split."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import brier_score_loss, f1_score, log_loss, roc_auc_score

CLASSIFICATION_METRICS = ("f1_buy", "auc_buy", "brier", "ece", "logloss")
_EPS = 1e-15


def expected_calibration_error(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> float:
    """Weighted mean gap between predicted probability and observed frequency over equal-width bins."""
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    total = 0.0
    for b in range(n_bins):
        in_bin = bins == b
        if in_bin.any():
            total += in_bin.sum() * abs(p[in_bin].mean() - y[in_bin].mean())
    return float(total / len(p))


def classification_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float | None]:
    """f1 at the threshold, AUC (None when only one class is present), Brier, ECE and log loss."""
    y = np.asarray(y, dtype=int)
    p = np.clip(np.asarray(p, dtype=float), _EPS, 1 - _EPS)
    both_classes = np.unique(y).size == 2
    return {
        "f1_buy": float(f1_score(y, p >= threshold, zero_division=0)),
        "auc_buy": float(roc_auc_score(y, p)) if both_classes else None,
        "brier": float(brier_score_loss(y, p)),
        "ece": expected_calibration_error(y, p),
        "logloss": float(log_loss(y, p, labels=[0, 1])),
    }
