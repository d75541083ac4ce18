from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from cvn_assets.harness.metrics import classification_metrics, expected_calibration_error


def test_known_values() -> None:
    y = np.array([1, 0, 1, 0])
    p = np.array([0.9, 0.2, 0.4, 0.6])
    m = classification_metrics(y, p, threshold=0.5)
    # predictions at 0.5: [1, 0, 0, 1] -> tp 1, fp 1, fn 1 -> f1 0.5
    assert m["f1_buy"] == pytest.approx(0.5)
    assert m["auc_buy"] == pytest.approx(roc_auc_score(y, p)) == pytest.approx(0.75)
    assert m["brier"] == pytest.approx(np.mean((p - y) ** 2))
    assert m["logloss"] == pytest.approx(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def test_ece_by_hand() -> None:
    # bins: [0.1, 0.1] -> mean p 0.1, freq 0.5 ; [0.9, 0.9] -> mean p 0.9, freq 1.0
    y = np.array([0, 1, 1, 1])
    p = np.array([0.1, 0.1, 0.9, 0.9])
    assert expected_calibration_error(y, p) == pytest.approx((2 * 0.4 + 2 * 0.1) / 4)


def test_auc_is_none_when_one_class() -> None:
    assert classification_metrics(np.zeros(5, dtype=int), np.full(5, 0.3), 0.5)["auc_buy"] is None


def test_equal_to_scikit_learn_on_random_scores_with_ties() -> None:
    from sklearn.metrics import brier_score_loss, f1_score, log_loss

    rng = np.random.default_rng(3)
    y = (rng.random(3000) < 0.3).astype(int)
    p = np.clip(np.round(0.3 + 0.2 * y + rng.normal(0, 0.2, 3000), 2), 0.01, 0.99)  # rounding makes ties
    m = classification_metrics(y, p, threshold=0.45)
    assert m["auc_buy"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert m["f1_buy"] == pytest.approx(f1_score(y, p >= 0.45), abs=1e-12)
    assert m["brier"] == pytest.approx(brier_score_loss(y, p), abs=1e-12)
    assert m["logloss"] == pytest.approx(log_loss(y, p), abs=1e-12)
    assert classification_metrics(y, p, threshold=1.0)["f1_buy"] == 0.0  # no signal: f1 is 0, not an error
