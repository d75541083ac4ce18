"""Seeded synthetic multi-asset OHLCV: volatility clustering, regime changes, cross-asset correlation.

All synthetic symbols of a universe are drawn jointly from one seed, so the same config gives the same
bars and the assets move together the way crypto does.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np
import pandas as pd

from cvn_assets.core.timeframes import bar_delta, bars_per_year

# Regime multipliers on volatility and per-bar drift (in units of the bar volatility): calm bull, stress bear.
_REGIMES = {"vol": np.array([0.8, 1.6]), "drift": np.array([0.004, -0.006])}
_GARCH_ALPHA, _GARCH_BETA = 0.08, 0.90


def generate_synthetic(
    symbols: Sequence[str],
    *,
    timeframe: str,
    start: datetime,
    n_bars: int,
    seed: int,
    annual_volatility: float,
    correlation: float,
    regime_switch_prob: float,
) -> dict[str, pd.DataFrame]:
    """Return one OHLCV frame per symbol, indexed by UTC timestamp."""
    symbols = sorted(symbols)
    k = len(symbols)
    rng = np.random.default_rng(seed)
    bar_vol = annual_volatility / np.sqrt(bars_per_year(timeframe))

    corr = np.full((k, k), correlation) + np.eye(k) * (1 - correlation)
    shocks = rng.standard_normal((n_bars, k)) @ np.linalg.cholesky(corr).T

    # Markov regime path shared by the market (crypto regimes are market-wide).
    switches = rng.random(n_bars) < regime_switch_prob
    regime = np.cumsum(switches) % 2

    # GARCH(1,1)-style variance recursion per asset gives volatility clustering.
    var = np.empty((n_bars, k))
    long_run = bar_vol**2
    omega = long_run * (1 - _GARCH_ALPHA - _GARCH_BETA)
    prev_var = np.full(k, long_run)
    prev_innovation = np.zeros(k)
    for t in range(n_bars):
        # The recursion sees the unscaled innovation so the regime multiplier cannot make it explode.
        prev_var = omega + _GARCH_ALPHA * prev_innovation**2 + _GARCH_BETA * prev_var
        var[t] = prev_var
        prev_innovation = np.sqrt(prev_var) * shocks[t]
    returns = np.sqrt(var) * shocks * _REGIMES["vol"][regime][:, None] + (
        _REGIMES["drift"][regime][:, None] * bar_vol
    )

    index = pd.date_range(pd.Timestamp(start, tz="UTC"), periods=n_bars, freq=bar_delta(timeframe))
    index.name = "timestamp"
    start_prices = 100.0 * np.exp(rng.normal(0, 1, k))
    frames: dict[str, pd.DataFrame] = {}
    for j, symbol in enumerate(symbols):
        close = start_prices[j] * np.exp(np.cumsum(returns[:, j]))
        open_ = np.concatenate([[start_prices[j]], close[:-1]])
        wick = np.abs(rng.standard_normal((2, n_bars))) * np.sqrt(var[:, j]) * 0.6
        high = np.maximum(open_, close) * (1 + wick[0])
        low = np.minimum(open_, close) * (1 - np.minimum(wick[1], 0.5))
        volume = np.exp(rng.normal(6, 0.3, n_bars) + np.minimum(20 * np.abs(returns[:, j]), 5))
        frames[symbol] = pd.DataFrame(
            {"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=index
        )
    return frames
