"""Class balancing: per-row sample weights handed to every adapter's fit."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ClassBalance:
    method: str
    base_rate: float
    pos_weight: float
    neg_weight: float
    weights: np.ndarray | None


def balance_classes(y: np.ndarray, method: str) -> ClassBalance:
    """`balanced`: each class carries half the total weight; `none`: unit weights (None)."""
    y = np.asarray(y, dtype=int)
    base_rate = float(y.mean())
    if method == "none":
        return ClassBalance(method, base_rate, 1.0, 1.0, None)
    if method != "balanced":
        raise ValueError(f"unknown class balance method '{method}' (balanced or none)")
    n, n_pos = len(y), int(y.sum())
    pos_weight = n / (2 * n_pos)
    neg_weight = n / (2 * (n - n_pos))
    return ClassBalance(method, base_rate, pos_weight, neg_weight, np.where(y == 1, pos_weight, neg_weight))
