"""The canonical training nodes with known numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cvn_assets.harness.nodes.calibration import fit_calibrator
from cvn_assets.harness.nodes.class_balance import balance_classes
from cvn_assets.harness.nodes.meta_label import fit_meta_labeler
from cvn_assets.harness.nodes.threshold import pick_threshold

GRID = [round(0.05 * i, 2) for i in range(1, 20)]


def test_class_balance_gives_each_class_half_the_weight() -> None:
    y = np.array([1, 0, 0, 0])
    b = balance_classes(y, "balanced")
    assert b.base_rate == 0.25 and b.pos_weight == pytest.approx(2.0) and b.neg_weight == pytest.approx(4 / 6)
    assert b.weights[y == 1].sum() == pytest.approx(b.weights[y == 0].sum())
    none = balance_classes(y, "none")
    assert none.weights is None and (none.pos_weight, none.neg_weight) == (1.0, 1.0)
    with pytest.raises(ValueError, match="unknown class balance"):
        balance_classes(y, "smote")


def test_isotonic_calibration_maps_scores_to_frequencies() -> None:
    p = np.array([0.1, 0.2, 0.3, 0.6, 0.7, 0.9])
    y = np.array([0, 0, 1, 0, 1, 1])
    cal = fit_calibrator("isotonic", p, y)
    out = cal.transform(p)
    assert np.all(np.diff(out) >= 0)  # monotone
    assert out[0] == pytest.approx(1e-6) and out[-1] == pytest.approx(1 - 1e-6)  # clipped to (0, 1)
    assert out[2:4] == pytest.approx([0.5, 0.5])  # the pooled violator block
    sig = fit_calibrator("sigmoid", p, y)
    assert np.all(np.diff(sig.transform(p)) > 0)
    with pytest.raises(ValueError, match="unknown calibration"):
        fit_calibrator("beta", p, y)


def test_threshold_from_config_unless_the_sweep_is_asked_for() -> None:
    p = np.array([0.2, 0.3, 0.6, 0.8])
    y = np.array([0, 0, 1, 1])
    fixed = pick_threshold(p, y, configured=0.5, sweep=False, grid=GRID, max_trade_ratio=3.0)
    assert (fixed.threshold, fixed.source, fixed.val_signal_rate) == (0.5, "config", 0.5)
    swept = pick_threshold(p, y, configured=0.5, sweep=True, grid=GRID, max_trade_ratio=3.0)
    assert swept.source == "sweep" and swept.threshold == 0.6  # F1 = 1 from 0.35 to 0.6: ties go high


def test_guard_rejects_the_degenerate_low_threshold_of_the_old_lightgbm_bug() -> None:
    # A weak model: the F1-best threshold is to signal on (almost) every bar, which with a 20% base rate
    # would trade ~5x the label rate. The guard rejects it and says so.
    rng = np.random.default_rng(0)
    y = (rng.random(2000) < 0.2).astype(int)
    p = np.clip(0.2 + 0.02 * y + rng.normal(0, 0.1, 2000), 0.01, 0.99)
    unguarded = pick_threshold(p, y, configured=0.5, sweep=True, grid=GRID, max_trade_ratio=100.0)
    assert unguarded.val_signal_rate > 3 * unguarded.base_rate
    guarded = pick_threshold(p, y, configured=0.5, sweep=True, grid=GRID, max_trade_ratio=3.0)
    assert guarded.rejected_best == unguarded.threshold and guarded.n_rejected > 0
    assert guarded.val_signal_rate <= 3.0 * guarded.base_rate and guarded.threshold > unguarded.threshold
    nothing_allowed = pick_threshold(p, y, configured=0.5, sweep=True, grid=[0.05, 0.1], max_trade_ratio=1.0)
    assert (nothing_allowed.threshold, nothing_allowed.source) == (0.5, "config_after_guard")


def test_meta_labeler_learns_which_signals_were_true_positives() -> None:
    rng = np.random.default_rng(1)
    X = pd.DataFrame({"a": rng.normal(size=500), "b": rng.normal(size=500)})
    y = ((X.a + rng.normal(0, 0.5, 500)) > 0).astype(int).to_numpy()
    p = np.full(500, 0.7)
    meta = fit_meta_labeler(X, y, p, threshold=0.5, params={"C": 1.0}, seed=0)
    assert meta is not None and meta.n_signals == 500 and meta.precision_primary == pytest.approx(y.mean())
    proba = meta.predict_proba(X, p)
    assert proba.shape == (500, 2) and np.corrcoef(proba[:, 1], X.a)[0, 1] > 0.8
    assert fit_meta_labeler(X, y, np.zeros(500), threshold=0.5, params={}, seed=0) is None  # no signals


def test_emit_refuses_an_event_that_differs_from_its_schema() -> None:
    from cvn_assets.harness.events import emit

    good = {"model_type": "x", "threshold": 0.5, "source": "config", "val_signal_rate": 0.1, "base_rate": 0.3}
    assert emit("theta_picked", **good).fields == good
    with pytest.raises(TypeError, match="missing \\['base_rate'\\]"):
        emit("theta_picked", **{k: v for k, v in good.items() if k != "base_rate"})
    with pytest.raises(TypeError, match="unexpected \\['extra'\\]"):
        emit("theta_picked", **good, extra=1)
    with pytest.raises(TypeError, match="threshold='0.5'"):
        emit("theta_picked", **{**good, "threshold": "0.5"})
    with pytest.raises(TypeError, match="n_train=True"):
        emit(
            "training_started",
            model_type="x",
            seed=1,
            n_train=True,
            n_val=1,
            n_test=1,
            n_features=1,
            class_balance=0.3,
            event_filter=None,
            event_filter_sigma=None,
            event_filter_threshold=None,
            xy_hash="0",
        )


def test_metadata_numbers_read_at_four_significant_digits() -> None:
    from cvn_assets.defs.metadata import readable, readable_values, rows_table

    assert readable(-0.00042058574885502111) == -0.0004206
    assert readable(3.6e-06) == 3.6e-06 and readable(1.0) == 1.0 and readable(0.0) == 0.0
    assert readable(43251.5) == 43252.0  # every digit left of the point stays
    nested = readable_values({"auc": 0.512345678, "curve": [0.123456, float("nan")], "n": 3, "name": "x"})
    assert nested == {"auc": 0.5123, "curve": [0.1235, None], "n": 3, "name": "x"}
    table = rows_table([{"a": 1.23456789, "b": 2}], ["a", "b"], {"a": "a ratio (0 to 1)"})
    assert table.records[0].data == {"a": 1.235, "b": 2}
    assert [c.description for c in table.schema.columns] == ["a ratio (0 to 1)", None]
