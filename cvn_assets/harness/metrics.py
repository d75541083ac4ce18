"""Classification metrics of the buy class, the same for every model and split.

Computed with NumPy rather than scikit-learn's metric functions: the values are the same (the tests hold
them to scikit-learn), without ~5 ms of input validation per split, which matters for cheap models and
for every HPO trial.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

from cvn_assets.core.metric_names import CLASSIFICATION_METRICS  # noqa: F401 - re-exported


def expected_calibration_error(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> float:
    """Weighted mean gap between predicted probability and observed frequency over equal-width bins."""
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    count = np.bincount(bins, minlength=n_bins)
    gap = np.abs(
        np.bincount(bins, weights=p, minlength=n_bins) - np.bincount(bins, weights=y, minlength=n_bins)
    )
    return float(gap.sum() / len(p)) if count.sum() else 0.0


def roc_auc(y: np.ndarray, p: np.ndarray) -> float | None:
    """Mann-Whitney U with average ranks for ties; None when only one class is present."""
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = rankdata(p)
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def f1_buy(y: np.ndarray, signal: np.ndarray) -> float:
    tp = int(np.sum(signal & (y == 1)))
    predicted, actual = int(signal.sum()), int(y.sum())
    return 2 * tp / (predicted + actual) if predicted + actual else 0.0


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    """scikit-learn's `log_loss` (>= 1.6) of the buy class: both classes' probabilities, p and 1 - p, are
    clipped to [eps, 1 - eps], eps the machine epsilon of the scores' float type (float64 unless they
    are float32, as a model library may return them)."""
    y = np.asarray(y, dtype=int)
    p = np.asarray(p)
    if p.dtype != np.float32:
        p = p.astype(np.float64)
    eps = np.finfo(p.dtype).eps
    loss = np.where(y == 1, -np.log(np.clip(p, eps, 1 - eps)), -np.log(np.clip(1 - p, eps, 1 - eps)))
    return float(np.mean(loss, dtype=np.float64))


def classification_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float | None]:
    """f1 at the threshold, AUC (None when only one class is present), Brier, ECE and log loss, all on
    the raw scores: clipping them would tie distinct tiny scores and change their ranks. Only log loss
    clips, as scikit-learn does."""
    y = np.asarray(y, dtype=int)
    scores = np.asarray(p)
    p = np.asarray(p, dtype=float)
    return {
        "f1_buy": f1_buy(y, p >= threshold),
        "auc_buy": roc_auc(y, p),
        "brier": float(np.mean((p - y) ** 2)),
        "ece": expected_calibration_error(y, p),
        "logloss": log_loss(y, scores),
    }
