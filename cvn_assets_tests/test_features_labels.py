from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cvn_assets.core.backtest import cost_per_side, simulate
from cvn_assets.core.features import FEATURE_CODE_VERSION, FeatureSet, compute_features
from cvn_assets.core.labels import triple_barrier_labels
from cvn_assets_tests.fixtures import clean_bars


def _bars(n: int = 400) -> pd.DataFrame:
    return clean_bars(n=n, seed=5).set_index("timestamp")


def test_features_use_only_the_past() -> None:
    bars = _bars()
    base, _ = compute_features(bars, [6, 24])
    future_changed = bars.copy()
    future_changed.iloc[300:, :] *= 3.0  # rewrite every bar from 300 on
    changed, _ = compute_features(future_changed, [6, 24])
    pd.testing.assert_frame_equal(base.iloc[:300], changed.iloc[:300])
    assert not np.allclose(base.iloc[300:].to_numpy(), changed.iloc[300:].to_numpy(), equal_nan=True)


def test_warm_up_rows_are_nan_then_values_are_finite() -> None:
    feats, fs = compute_features(_bars(), [6, 24])
    assert feats.iloc[:25].isna().all().all()
    assert np.isfinite(feats.iloc[25:].to_numpy()).all()
    assert fs.names == tuple(feats.columns) and len(fs.names) == 2 + 5 * 2


def test_known_values_of_returns_and_rsi() -> None:
    bars = _bars()
    feats, _ = compute_features(bars, [6])
    t = 100
    assert feats["ret_6"].iloc[t] == pytest.approx(np.log(bars.close.iloc[t] / bars.close.iloc[t - 6]))
    log_ret = np.diff(np.log(bars.close.to_numpy()[t - 6 : t + 1]))
    up, down = log_ret.clip(min=0).mean(), (-log_ret).clip(min=0).mean()
    assert feats["rsi_6"].iloc[t] == pytest.approx(up / (up + down))


def test_feature_hash_fingerprints_names_parameters_and_code_version() -> None:
    _, a = compute_features(_bars(), [6, 24])
    _, b = compute_features(_bars(200), [24, 6])
    _, c = compute_features(_bars(), [6, 12])
    assert a.feature_hash == b.feature_hash  # same feature set, whatever the data
    assert a.feature_hash != c.feature_hash
    assert FeatureSet(a.names, a.windows, code_version="other").feature_hash != a.feature_hash
    assert a.code_version == FEATURE_CODE_VERSION and len(a.feature_hash) == 16


def _flat_bars(highs: list[float], lows: list[float], closes: list[float]) -> pd.DataFrame:
    """Bars around 100 with true range 2 (ATR 2) for the first three bars, then the given path."""
    n = len(closes)
    ts = pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC")
    return pd.DataFrame(
        {"open": closes, "high": highs, "low": lows, "close": closes, "volume": 1.0}, index=ts
    )


def test_triple_barrier_labels_known_numbers() -> None:
    # ATR(2) at bar 2 is 2 (high-low = 2, close flat at 100): TP = 100 + 2*2 = 104, SL = 100 - 1*2 = 98.
    highs = [101, 101, 101, 102, 105, 101, 101, 101]
    lows = [99, 99, 99, 99, 99, 99, 99, 99]
    closes = [100, 100, 100, 100, 100, 100, 100, 100]
    labels = triple_barrier_labels(
        _flat_bars(highs, lows, closes), horizon=3, take_profit_atr=2, stop_loss_atr=1, atr_window=2
    )
    row = labels.iloc[2]  # entry at bar 2: bar 4 touches 105 >= 104 first
    assert row.label == 1.0 and row.exit_bar == 4 and row.exit_price == pytest.approx(104.0)
    assert row.label_end == labels.index[4]

    lows_sl = [99, 99, 99, 97, 99, 99, 99, 99]  # stop touched at bar 3 before the take-profit at bar 4
    labels = triple_barrier_labels(
        _flat_bars(highs, lows_sl, closes), horizon=3, take_profit_atr=2, stop_loss_atr=1, atr_window=2
    )
    assert (
        labels.iloc[2].label == 0.0
        and labels.iloc[2].exit_bar == 3
        and labels.iloc[2].exit_price == pytest.approx(98.0)
    )

    both = [101, 101, 101, 106, 101, 101, 101, 101]  # one bar touches both barriers: counted as the stop
    labels = triple_barrier_labels(
        _flat_bars(both, lows_sl, closes), horizon=3, take_profit_atr=2, stop_loss_atr=1, atr_window=2
    )
    assert labels.iloc[2].label == 0.0 and labels.iloc[2].exit_price == pytest.approx(98.0)


def test_horizon_exit_and_unlabeled_tail() -> None:
    closes = [100, 100, 100, 100.5, 101, 101.5, 101, 100.8]
    highs = [c + 1 for c in closes]
    lows = [c - 1 for c in closes]
    labels = triple_barrier_labels(
        _flat_bars(highs, lows, closes), horizon=3, take_profit_atr=5, stop_loss_atr=5, atr_window=2
    )
    row = labels.iloc[2]  # no barrier within 3 bars: exit at the close of bar 5, label 0
    assert row.label == 0.0 and row.exit_bar == 5 and row.exit_price == pytest.approx(101.5)
    assert np.isnan(labels.iloc[-1].label) and labels.iloc[-1].exit_bar == -1  # horizon runs past the data
    assert np.isnan(labels.iloc[0].label)  # ATR not yet defined


def _gap_bars(gap_open: float, gap_high: float, gap_low: float) -> pd.DataFrame:
    """Flat bars at 100 (ATR 2 at bar 2: TP 104, SL 98), then bar 3 opens at `gap_open`."""
    bars = _flat_bars([101] * 7, [99] * 7, [100.0] * 7)
    bars.iloc[3] = [gap_open, gap_high, gap_low, gap_open, 1.0]
    return bars


@pytest.mark.parametrize(
    ("gap_open", "gap_high", "gap_low", "label", "fill"),
    [
        (95.0, 96.0, 94.0, 0.0, 95.0),  # gaps down through the stop (98): filled at the open, 3% below it
        (107.0, 108.0, 97.0, 1.0, 107.0),  # gaps up through the take-profit (104), then trades below the stop
        (99.0, 105.0, 97.0, 0.0, 98.0),  # opens between the barriers and touches both: the stop, at its price
    ],
)
def test_a_gap_through_a_barrier_fills_at_the_open_in_labels_and_backtest(
    gap_open: float, gap_high: float, gap_low: float, label: float, fill: float
) -> None:
    bars = _gap_bars(gap_open, gap_high, gap_low)
    labels = triple_barrier_labels(bars, horizon=3, take_profit_atr=2, stop_loss_atr=1, atr_window=2)
    row = labels.iloc[2]
    assert (row.label, row.exit_bar, row.exit_price) == (label, 3, fill)
    # The backtest settles the trade at the label's fill: net = fill / entry close, less a round trip.
    cost = cost_per_side(10, 0)
    economics = simulate(
        bars.close.to_numpy(), np.array([2]), labels.exit_bar.to_numpy()[[2]], labels.exit_price.to_numpy()[[2]],
        cost=cost, bars_per_year=24 * 365,
    )  # fmt: skip
    assert economics.expectancy == pytest.approx(fill / 100.0 * (1 - cost) ** 2 - 1, rel=1e-12)
    assert economics.total_return == pytest.approx(economics.expectancy, rel=1e-12)
