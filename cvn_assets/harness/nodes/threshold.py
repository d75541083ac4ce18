"""The buy threshold: the configured one, or (opt-in) the validation-tuned sweep, with one guard.

The sweep maximizes F1 of the buy class on the validation split over a grid. A candidate that would
signal on more than `max_trade_ratio` times the label base rate of the validation split is degenerate (the
old LightGBM bug: thresholds so low it over-traded 5x) and is rejected; when the unguarded best is rejected
a `theta_rejected` event says so. Nothing here ever looks at the test split.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import f1_score


@dataclass(frozen=True)
class ThresholdChoice:
    threshold: float
    source: str  # config | sweep | config_after_guard
    val_signal_rate: float
    base_rate: float
    rejected_best: float | None  # the unguarded F1-best threshold, when the guard rejected it
    rejected_signal_rate: float | None
    n_rejected: int


def pick_threshold(
    p_val: np.ndarray,
    y_val: np.ndarray,
    *,
    configured: float,
    sweep: bool,
    grid: Sequence[float],
    max_trade_ratio: float,
) -> ThresholdChoice:
    p_val, y_val = np.asarray(p_val, dtype=float), np.asarray(y_val, dtype=int)
    base_rate = float(y_val.mean())

    def rate(theta: float) -> float:
        return float(np.mean(p_val >= theta))

    if not sweep:
        return ThresholdChoice(configured, "config", rate(configured), base_rate, None, None, 0)
    scored = [(float(f1_score(y_val, p_val >= t, zero_division=0)), float(t)) for t in grid]
    allowed = [(f1, t) for f1, t in scored if rate(t) <= max_trade_ratio * base_rate]
    n_rejected = len(scored) - len(allowed)
    # Ties go to the higher threshold: fewer trades for the same F1.
    best_f1, best_t = max(scored, key=lambda s: (s[0], s[1]))
    unguarded_rejected = rate(best_t) > max_trade_ratio * base_rate
    rejected = (best_t, rate(best_t)) if unguarded_rejected else (None, None)
    if not allowed:
        return ThresholdChoice(
            configured, "config_after_guard", rate(configured), base_rate, *rejected, n_rejected
        )
    _, chosen = max(allowed, key=lambda s: (s[0], s[1]))
    return ThresholdChoice(chosen, "sweep", rate(chosen), base_rate, *rejected, n_rejected)
