from __future__ import annotations

import itertools
import tracemalloc

import numpy as np
import pandas as pd
import pytest

from cvn_assets.core.backtest import Economics, cost_per_side, select_trades, simulate
from cvn_assets.core.baselines import (
    baseline_seed_key,
    buy_and_hold,
    densest_trades,
    matched_entry_rate,
    matched_seed_key,
    naive,
    random_entries,
    random_matched,
    window_paths,
)
from cvn_assets.core.economics import label_exits, trade_signal, variant_economics
from cvn_assets.core.random_trades import BLOCK_DRAWS, chains, trade_paths

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


def _per_seed(split: pd.DataFrame, signals: list[np.ndarray], cost: float) -> dict[str, float | None]:
    """The mean over seeds the plain way: one `trade_signal` per seed, None where no seed has a value."""
    per_seed = [trade_signal(split, signal, cost, YEAR).as_dict() for signal in signals]
    means: dict[str, float | None] = {}
    for name in per_seed[0]:
        values = [e[name] for e in per_seed if e[name] is not None]
        means[name] = float(np.mean(values)) if values else None
    return means


def _same(blocked: Economics, plain: dict[str, float | None]) -> None:
    for name, value in blocked.as_dict().items():
        assert (value is None) == (plain[name] is None), name
        if value is not None:
            assert value == pytest.approx(plain[name], rel=1e-12, abs=1e-15), name


@pytest.mark.parametrize(("n", "entry_prob", "n_seeds"), [(300, 0.05, 20), (2000, 0.3, 40), (400, 1.0, 3), (300, 0.002, 30)])  # fmt: skip
def test_random_baseline_scores_each_seed_like_simulate(n: int, entry_prob: float, n_seeds: int) -> None:
    """Seeds scored in blocks give the per-seed simulations' mean: same draws, same trades, the sums in
    another order (rare entries leave seeds without trades, whose metrics are NULL)."""
    split = _split(n)
    key = baseline_seed_key(42, "BTCUSD", 0, "test")
    signals = [np.random.default_rng([*key, s]).random(n) < entry_prob for s in range(n_seeds)]
    blocked = random_entries(split, 0.001, YEAR, entry_prob=entry_prob, n_seeds=n_seeds, seed_key=key)
    _same(blocked, _per_seed(split, signals, 0.001))
    assert blocked == random_entries(split, 0.001, YEAR, entry_prob=entry_prob, n_seeds=n_seeds, seed_key=key)
    # Same entries at every cost: the trade count does not depend on the cost level.
    other_cost = random_entries(split, 0.01, YEAR, entry_prob=entry_prob, n_seeds=n_seeds, seed_key=key)
    assert other_cost.n_trades == blocked.n_trades
    assert baseline_seed_key(42, "BTCUSD", 0, "test") != baseline_seed_key(42, "ETHUSD", 0, "test")


def test_chains_walk_every_seed_like_select_trades() -> None:
    rng = np.random.default_rng(3)
    n = 500
    exit_pos = np.arange(n) + rng.integers(1, 30, n)
    signals = rng.random((7, n)) < rng.random((7, 1))
    signals[2] = False  # a seed that never enters
    seed, entries = chains(signals, np.maximum(exit_pos, np.arange(n) + 1))
    for s in range(7):
        assert entries[seed == s].tolist() == select_trades(signals[s], exit_pos).tolist()


@pytest.mark.parametrize("n_trades", [1, 7, 40])
def test_random_matched_trades_exactly_as_often_as_the_variant(n_trades: int) -> None:
    """Each seed keeps `n_trades` of its walk's trades at random (by the keys in its second row of
    draws), walking every row when its candidates were too few; the mean is the per-seed simulations'."""
    split = _split(600)
    key = matched_seed_key(42, "BTCUSD", 0, "test", n_trades)
    exit_pos, _ = label_exits(split)
    paths = trade_paths(split["close"].to_numpy(), exit_pos, split["exit_price"].to_numpy(), 0.001)
    rate = matched_entry_rate(n_trades, paths)
    signals = []
    for s in range(25):
        draws = np.random.default_rng([*key, s]).random((2, len(split)))
        entries = select_trades(draws[0] < rate, exit_pos)
        if entries.size < n_trades:
            entries = densest_trades(np.maximum(exit_pos, np.arange(len(split)) + 1))
        kept = np.sort(entries[np.argsort(draws[1][entries], kind="stable")[:n_trades]])
        signal = np.zeros(len(split), dtype=bool)
        signal[kept] = True  # non-overlapping already: select_trades keeps every one of them
        signals.append(signal)
    matched = random_matched(window_paths(split, 0.001), YEAR, n_trades=n_trades, n_seeds=25, seed_key=key)
    assert matched.n_trades == n_trades
    _same(matched, _per_seed(split, signals, 0.001))


def test_random_matched_keeps_the_trade_count_where_walking_from_the_first_row_cannot() -> None:
    """Row 0's trade covers rows 1 to 8, whose trades each last one bar: walking every row from the
    first takes 2 trades, but a variant entering at rows 1 to 9 makes 9, and so must its luck."""
    n = 10
    exit_bar = np.array([9, *range(2, 10), 10])
    split = pd.DataFrame({"bar": np.arange(n), "exit_bar": exit_bar, "close": 100.0 + np.arange(n),
                          "exit_price": 100.0 + np.minimum(exit_bar, n - 1)})  # fmt: skip
    assert select_trades(np.ones(n, dtype=bool), np.minimum(exit_bar, n)).size == 2
    assert densest_trades(np.maximum(np.minimum(exit_bar, n), np.arange(n) + 1)).tolist() == list(
        range(1, 10)
    )
    variant = trade_signal(split, np.arange(n) >= 1, 0.001, YEAR)
    assert variant.n_trades == 9
    assert (
        random_matched(window_paths(split, 0.001), YEAR, n_trades=9, n_seeds=4, seed_key=(1,)).n_trades == 9
    )


@pytest.mark.parametrize("seed", range(5))
def test_densest_trades_holds_the_most_trades(seed: int) -> None:
    """Against a brute force over every subset of a short window."""
    rng = np.random.default_rng(seed)
    n = 12
    free = np.arange(n) + rng.integers(1, 6, n)

    def fits(rows: tuple[int, ...]) -> bool:
        return all(free[a] <= b for a, b in itertools.pairwise(rows))

    most = max(len(c) for k in range(n + 1) for c in itertools.combinations(range(n), k) if fits(c))
    rows = densest_trades(free)
    assert rows.size == most and fits(tuple(rows))


def test_random_matched_without_trades_is_not_trading() -> None:
    split = _split()
    assert random_matched(window_paths(split, 0.001), YEAR, n_trades=0, n_seeds=5, seed_key=(1,)) == naive(
        split, 0.001, YEAR
    )


def test_random_baseline_memory_does_not_grow_with_seeds() -> None:
    split = _split(n=20_000)
    per_block = BLOCK_DRAWS // len(split)

    def peak(n_seeds: int) -> int:
        tracemalloc.start()
        random_entries(split, 0.001, YEAR, entry_prob=0.05, n_seeds=n_seeds, seed_key=(1,))
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    assert peak(10 * per_block) < 1.2 * peak(per_block)
