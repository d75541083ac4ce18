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


def test_rank_metrics_use_the_raw_scores_even_below_1e_15() -> None:
    """Distinct scores under 1e-15 rank as they are: clipping them first tied them all (AUC 0.5)."""
    y = np.array([0, 0, 1, 1])
    p = np.array([1e-20, 2e-20, 3e-18, 4e-16])
    assert roc_auc_score(y, p) == 1.0
    m = classification_metrics(y, p, threshold=1e-18)
    assert m["auc_buy"] == 1.0
    assert m["f1_buy"] == 1.0  # only the two positives clear 1e-18 (clipped to 1e-15, all four did)
    top = np.array([1 - 4e-16, 1 - 3e-16, 1.0, 1.0])  # and near 1: distinct, the two 1s tied
    assert classification_metrics(y, top, 0.5)["auc_buy"] == roc_auc_score(y, top) == 1.0


@pytest.mark.parametrize(
    "p",
    [
        [0.0, 1.0, 1.0, 0.0],  # certain and right
        [1.0, 0.0, 0.0, 1.0],  # certain and wrong: each term is -log(eps)
        [0.0, 1.0, 0.5, 1e-300],
        [1e-17, 1 - 1e-17, 0.3, 0.7],  # inside eps of 0 and 1
    ],
)
def test_log_loss_clips_exactly_as_scikit_learn(p: list[float]) -> None:
    from sklearn.metrics import brier_score_loss
    from sklearn.metrics import log_loss as sk_log_loss

    y = np.array([0, 1, 1, 0])
    scores = np.array(p)
    m = classification_metrics(y, scores, threshold=0.5)
    assert m["logloss"] == pytest.approx(sk_log_loss(y, y_proba=scores), rel=1e-12, abs=1e-12)
    # Brier and ECE on the raw scores, as they were defined: scikit-learn's Brier, ECE by its bins.
    assert m["brier"] == pytest.approx(brier_score_loss(y, scores), abs=1e-12)
    assert m["ece"] == pytest.approx(expected_calibration_error(y, scores), abs=1e-12)


def test_log_loss_of_float32_scores_clips_at_float32_eps_as_scikit_learn() -> None:
    from sklearn.metrics import log_loss as sk_log_loss

    y = np.array([0, 1, 1, 0])
    scores = np.array([1.0, 0.0, 0.9, 0.2], dtype=np.float32)  # certain and wrong, twice
    expected = sk_log_loss(y, y_proba=scores)
    assert expected == pytest.approx(-(2 * np.log(np.finfo(np.float32).eps) + np.log(0.9) + np.log(0.8)) / 4)
    assert classification_metrics(y, scores, 0.5)["logloss"] == pytest.approx(expected, rel=1e-6)
