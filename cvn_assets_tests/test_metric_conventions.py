"""Sortino, max drawdown, expectancy and win rate are defined once (core/backtest.py); on a real series
(the bundled BTC/USD hourly closes) they agree with quantstats and empyrical, the libraries a reader
would check them against."""

from __future__ import annotations

from pathlib import Path

import empyrical
import numpy as np
import pandas as pd
import pytest
import quantstats as qs

from cvn_assets.core.backtest import (
    cost_per_side,
    expectancy,
    max_drawdown,
    round_trip_net,
    sortino_ratio,
    win_rate,
)
from cvn_assets.core.timeframes import bars_per_year

BUNDLED = Path(__file__).resolve().parents[1] / "cvn_assets" / "data" / "btcusd_1h.csv.gz"


@pytest.fixture(scope="module")
def closes() -> pd.Series:
    frame = pd.read_csv(BUNDLED, parse_dates=["timestamp"]).set_index("timestamp")
    return frame["close"]


def test_sortino_and_max_drawdown_match_quantstats_and_empyrical(closes: pd.Series) -> None:
    returns = closes.pct_change().dropna()
    periods = bars_per_year("1h")
    ours = sortino_ratio(returns.to_numpy(), periods)
    assert ours == pytest.approx(qs.stats.sortino(returns, periods=periods), rel=1e-12)
    assert ours == pytest.approx(
        empyrical.sortino_ratio(returns.to_numpy(), annualization=periods), rel=1e-12
    )
    drawdown = max_drawdown(1 + returns.to_numpy())
    assert 0.1 < drawdown < 1  # a real drawdown, not a degenerate 0
    assert drawdown == pytest.approx(-empyrical.max_drawdown(returns.to_numpy()), rel=1e-12)
    assert drawdown == pytest.approx(-qs.stats.max_drawdown(returns), rel=1e-12)


def test_expectancy_and_win_rate_match_quantstats_on_real_trades(closes: pd.Series) -> None:
    """Daily round trips on the hourly closes, net of a 10 bps fee and 2 bps slippage per side."""
    daily = closes.to_numpy()[::24]
    trades = round_trip_net(daily[:-1], daily[1:], cost_per_side(10, 2))
    assert trades.size > 500 and not (trades == 0).any()  # quantstats leaves zero returns out; we count them
    series = pd.Series(trades, index=closes.index[::24][1:])
    assert expectancy(trades) == pytest.approx(qs.stats.avg_return(series), rel=1e-12)
    assert win_rate(trades) == pytest.approx(qs.stats.win_rate(series), rel=1e-12)
    assert expectancy(np.empty(0)) is None and win_rate(np.empty(0)) is None
