from __future__ import annotations

import tracemalloc

import numpy as np
import pandas as pd
import pytest

from cvn_assets.core.backtest import cost_per_side, select_trades, simulate
from cvn_assets.core.baselines import baseline_seed_key, buy_and_hold, naive, random_entries
from cvn_assets.core.economics import trade_signal, variant_economics

YEAR = 8760.0


def test_one_winning_trade_without_cost() -> None:
    close = np.array([100.0, 110.0, 121.0])
    e = simulate(close, np.array([0]), np.array([2]), np.array([121.0]), cost=0.0, bars_per_year=YEAR)
    assert e.n_trades == 1 and e.win_rate == 1.0
    assert e.expectancy == pytest.approx(0.21) and e.total_return == pytest.approx(0.21)
    assert e.max_drawdown == 0.0 and e.sortino is None  # no downside: the ratio has no value


def test_round_trip_cost_is_netted_on_both_sides() -> None:
    close = np.array([100.0, 110.0, 121.0])
    c = cost_per_side(8, 2)  # 8 bps fee + 2 bps slippage per side
    assert c == pytest.approx(0.001)
    e = simulate(close, np.array([0]), np.array([2]), np.array([121.0]), cost=c, bars_per_year=YEAR)
    assert e.expectancy == pytest.approx(1.21 * 0.999**2 - 1)
    assert e.total_return == pytest.approx(1.21 * 0.999**2 - 1)


def test_drawdown_and_sortino_on_a_marked_to_market_path() -> None:
    close = np.array([100.0, 120.0, 90.0, 95.0])
    e = simulate(close, np.array([0]), np.array([3]), np.array([95.0]), cost=0.0, bars_per_year=YEAR)
    assert e.max_drawdown == pytest.approx(0.25)  # 1.2 -> 0.9
    assert e.total_return == pytest.approx(-0.05) and e.win_rate == 0.0
    r = np.array([0.0, 0.2, -0.25, 95 / 90 - 1, 0.0])  # bar returns plus the (empty) settlement slot
    expected = r.mean() / np.sqrt(np.mean(np.minimum(r, 0) ** 2)) * np.sqrt(YEAR)
    assert e.sortino == pytest.approx(expected)


def test_trade_still_open_at_window_end_settles_at_its_real_exit() -> None:
    close = np.array([100.0, 101.0, 102.0])
    e = simulate(close, np.array([1]), np.array([5]), np.array([110.0]), cost=0.0, bars_per_year=YEAR)
    assert e.total_return == pytest.approx(110 / 101 - 1) and e.expectancy == pytest.approx(110 / 101 - 1)


def test_select_trades_one_position_at_a_time() -> None:
    signal = np.array([1, 1, 1, 0, 1, 1, 0, 1], dtype=bool)
    exit_pos = np.array([3, 2, 4, 9, 6, 9, 9, 9])
    # 0 -> exits at 3; next signal at or after 3 is 4 -> exits at 6; next at/after 6 is 7.
    assert select_trades(signal, exit_pos).tolist() == [0, 4, 7]


def _split(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    exit_bar = np.arange(n) + rng.integers(1, 12, n)
    exit_price = close[np.minimum(exit_bar, n - 1)] * (1 + rng.normal(0, 0.002, n))
    return pd.DataFrame({"close": close, "bar": np.arange(n) + 1000, "exit_bar": exit_bar + 1000, "exit_price": exit_price,
                         "label": (rng.random(n) < 0.3).astype(float)})  # fmt: skip


def test_variant_trades_exit_like_their_label() -> None:
    split = _split()
    p = np.zeros(len(split))
    p[[10, 50]] = 0.9
    e = variant_economics(split, p, threshold=0.5, cost=0.0, bars_per_year=YEAR)
    nets = [split.exit_price[i] / split.close[i] - 1 for i in (10, 50)]
    assert e.n_trades == 2 and e.expectancy == pytest.approx(np.mean(nets))


def test_buy_and_hold_and_naive() -> None:
    split = _split()
    c = cost_per_side(10, 0)
    bh = buy_and_hold(split, c, YEAR)
    assert bh.n_trades == 1
    assert bh.total_return == pytest.approx(split.close.iloc[-1] / split.close.iloc[0] * (1 - c) ** 2 - 1)
    nv = naive(split, c, YEAR)
    assert (nv.n_trades, nv.total_return, nv.max_drawdown) == (0.0, 0.0, 0.0)
    assert nv.win_rate is None and nv.expectancy is None and nv.sortino is None  # NULL, not a placeholder


def test_random_baseline_is_the_mean_over_seeds_and_reproducible() -> None:
    split = _split()
    key = baseline_seed_key(42, "BTCUSD", 0, "test")
    avg = random_entries(split, 0.001, YEAR, entry_prob=0.05, n_seeds=5, seed_key=key)
    again = random_entries(split, 0.001, YEAR, entry_prob=0.05, n_seeds=5, seed_key=key)
    assert avg == again
    per_seed = [
        trade_signal(split, np.random.default_rng([*key, s]).random(len(split)) < 0.05, 0.001, YEAR)
        for s in range(5)
    ]
    assert avg.n_trades == pytest.approx(np.mean([e.n_trades for e in per_seed]))
    assert avg.total_return == pytest.approx(np.mean([e.total_return for e in per_seed]))
    # Same entries at every cost: the trade count does not depend on the cost level.
    assert (
        random_entries(split, 0.01, YEAR, entry_prob=0.05, n_seeds=5, seed_key=key).n_trades == avg.n_trades
    )
    assert baseline_seed_key(42, "BTCUSD", 0, "test") != baseline_seed_key(42, "ETHUSD", 0, "test")


def test_random_baseline_memory_does_not_grow_with_seeds() -> None:
    split = _split(n=20_000)

    def peak(n_seeds: int) -> int:
        tracemalloc.start()
        random_entries(split, 0.001, YEAR, entry_prob=0.05, n_seeds=n_seeds, seed_key=(1,))
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    assert peak(100) < 1.5 * peak(5)
