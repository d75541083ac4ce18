from __future__ import annotations

import itertools
import tracemalloc

import numpy as np
import pandas as pd
import pytest

from cvn_assets.core.backtest import (
    Economics,
    cost_per_side,
    equity_growth,
    expectancy,
    round_trip_net,
    select_trades,
    simulate,
    sortino_ratio,
    win_rate,
)
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


def _pooled(split: pd.DataFrame, signals: list[np.ndarray], cost: float) -> dict[str, float | None]:
    """The seeds' aggregate the plain way, from one `simulate` per seed: sortino of every seed's bar
    returns pooled, win rate and expectancy of every seed's trades pooled, the mean of the rest."""
    close, (exit_pos, exit_price) = split["close"].to_numpy(), label_exits(split)
    returns, nets, per_seed = [], [], []
    for signal in signals:
        entries = select_trades(signal, exit_pos)
        growth = equity_growth(close, entries, exit_pos[entries], exit_price[entries], cost=cost)
        returns.append(growth - 1)
        nets.append(round_trip_net(close[entries], exit_price[entries], cost))
        per_seed.append(trade_signal(split, signal, cost, YEAR))
    trades = np.concatenate(nets)
    return {
        "n_trades": float(np.mean([e.n_trades for e in per_seed])),
        "win_rate": win_rate(trades),
        "expectancy": expectancy(trades),
        "sortino": sortino_ratio(np.concatenate(returns), YEAR),
        "total_return": float(np.mean([e.total_return for e in per_seed])),
        "max_drawdown": float(np.mean([e.max_drawdown for e in per_seed])),
    }


def _same(blocked: Economics, plain: dict[str, float | None]) -> None:
    for name, value in blocked.as_dict().items():
        assert (value is None) == (plain[name] is None), name
        if value is not None:
            assert value == pytest.approx(plain[name], rel=1e-12, abs=1e-15), name


@pytest.mark.parametrize(("n", "entry_prob", "n_seeds"), [(300, 0.05, 20), (2000, 0.3, 40), (400, 1.0, 3), (300, 0.002, 30)])  # fmt: skip
def test_random_baseline_scores_each_seed_like_simulate(n: int, entry_prob: float, n_seeds: int) -> None:
    """Seeds scored in blocks give the per-seed simulations' pooled aggregate: same draws, same trades,
    the sums in another order (rare entries leave seeds without trades: they pool no trade)."""
    split = _split(n)
    key = baseline_seed_key(42, "BTCUSD", 0, "test")
    signals = [np.random.default_rng([*key, s]).random(n) < entry_prob for s in range(n_seeds)]
    blocked = random_entries(split, 0.001, YEAR, entry_prob=entry_prob, n_seeds=n_seeds, seed_key=key)
    _same(blocked, _pooled(split, signals, 0.001))
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


def _matched_signals(
    split: pd.DataFrame, n_trades: int, n_seeds: int, key: tuple[int, ...]
) -> list[np.ndarray]:
    """random_matched's entries per seed, drawn the plain way (one select_trades per seed)."""
    exit_pos, _ = label_exits(split)
    paths = trade_paths(split["close"].to_numpy(), exit_pos, split["exit_price"].to_numpy(), 0.001)
    rate = matched_entry_rate(n_trades, paths)
    signals = []
    for s in range(n_seeds):
        draws = np.random.default_rng([*key, s]).random((2, len(split)))
        entries = select_trades(draws[0] < rate, exit_pos)
        if entries.size < n_trades:
            entries = densest_trades(np.maximum(exit_pos, np.arange(len(split)) + 1))
        kept = np.sort(entries[np.argsort(draws[1][entries], kind="stable")[:n_trades]])
        signal = np.zeros(len(split), dtype=bool)
        signal[kept] = True  # non-overlapping already: select_trades keeps every one of them
        signals.append(signal)
    return signals


@pytest.mark.parametrize("n_trades", [1, 7, 40])
def test_random_matched_trades_exactly_as_often_as_the_variant(n_trades: int) -> None:
    """Each seed keeps `n_trades` of its walk's trades at random (by the keys in its second row of
    draws), walking every row when its candidates were too few; the aggregate is the per-seed
    simulations' pooled."""
    split = _split(600)
    key = matched_seed_key(42, "BTCUSD", 0, "test", n_trades)
    signals = _matched_signals(split, n_trades, 25, key)
    matched = random_matched(window_paths(split, 0.001), YEAR, n_trades=n_trades, n_seeds=25, seed_key=key)
    assert matched.n_trades == n_trades
    _same(matched, _pooled(split, signals, 0.001))


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


COSTS_BPS = (0, 1, 5, 10, 25)


def _winner_window(n: int = 80) -> pd.DataFrame:
    """Every trade holds two bars, and the bars repeat +0.03%, +1%, -0.6%, -0.4%: a trade entered just
    before the +0.03% bar never loses a bar at 0 bps, and at 5 or 10 bps the cost turns that bar into a
    tiny loss beside a big gain, a sortino in the hundreds for a seed with only such trades."""
    steps = np.array([0.0003, 0.01, -0.006, -0.004])[np.arange(n) % 4]
    steps[0] = 0.0
    close = 100 * np.cumprod(1 + steps)
    exit_bar = np.arange(n) + 2
    return pd.DataFrame({"bar": np.arange(n), "exit_bar": exit_bar, "close": close,
                         "exit_price": close[np.minimum(exit_bar, n - 1)]})  # fmt: skip


def _assert_monotone_in_cost(by_cost: list[Economics]) -> None:
    """Same trades at every cost: no figure may improve as the cost grows."""
    for cheaper, dearer in itertools.pairwise(by_cost):
        assert dearer.n_trades == cheaper.n_trades
        for name in ("sortino", "expectancy", "total_return", "win_rate"):
            assert getattr(dearer, name) <= getattr(cheaper, name) + 1e-12, name
        assert dearer.max_drawdown >= cheaper.max_drawdown - 1e-12


def _seed_without_downside(split: pd.DataFrame, signals: list[np.ndarray]) -> None:
    """Asserts the case has what it was built for: a seed that trades without downside at 0 bps, whose
    sortino at a higher cost is in the hundreds, so that the old aggregate (the mean of the per-seed
    sortinos that exist) rises with cost."""
    sortinos = [[trade_signal(split, signal, b / 1e4, YEAR).sortino for b in COSTS_BPS] for signal in signals]
    lucky = [s for s, signal in zip(sortinos, signals, strict=True) if signal.any() and s[0] is None]
    assert lucky and max(v for s in lucky for v in s if v is not None) > 100
    mean_of_seeds = [np.mean([s[i] for s in sortinos if s[i] is not None]) for i in range(len(COSTS_BPS))]
    assert max(mean_of_seeds[1:]) > mean_of_seeds[0]


def test_the_random_baseline_never_improves_with_cost() -> None:
    """The mean of per-seed sortinos left the lucky seed out at 0 bps and was dominated by it at 5 bps,
    rising with cost; the pooled aggregate falls, and so does every other figure."""
    split, key, n_seeds, entry_prob = _winner_window(), (7,), 20, 0.02
    signals = [np.random.default_rng([*key, s]).random(len(split)) < entry_prob for s in range(n_seeds)]
    _seed_without_downside(split, signals)
    by_cost = [
        random_entries(split, b / 1e4, YEAR, entry_prob=entry_prob, n_seeds=n_seeds, seed_key=key)
        for b in COSTS_BPS
    ]
    _assert_monotone_in_cost(by_cost)
    for b, econ in zip(COSTS_BPS, by_cost, strict=True):
        _same(econ, _pooled(split, signals, b / 1e4))


@pytest.mark.parametrize("n_trades", [1, 2])
def test_random_matched_never_improves_with_cost(n_trades: int) -> None:
    # Enough seeds that one draws only trades that never lose a bar (1 in 4 per trade).
    split, key, n_seeds = _winner_window(), (7, n_trades), 40
    signals = _matched_signals(split, n_trades, n_seeds, key)
    _seed_without_downside(split, signals)
    by_cost = [
        random_matched(window_paths(split, b / 1e4), YEAR, n_trades=n_trades, n_seeds=n_seeds, seed_key=key)
        for b in COSTS_BPS
    ]
    _assert_monotone_in_cost(by_cost)
    for b, econ in zip(COSTS_BPS, by_cost, strict=True):
        _same(econ, _pooled(split, signals, b / 1e4))


@pytest.mark.parametrize("window", range(6))
def test_the_random_baselines_never_improve_with_cost_on_noisy_windows(window: int) -> None:
    split = _split(400, seed=window)
    for entry_prob in (0.02, 0.2, 1.0):
        _assert_monotone_in_cost([
            random_entries(split, b / 1e4, YEAR, entry_prob=entry_prob, n_seeds=10, seed_key=(window,))
            for b in (*COSTS_BPS, 100, 300)
        ])  # fmt: skip
    _assert_monotone_in_cost([
        random_matched(window_paths(split, b / 1e4), YEAR, n_trades=9, n_seeds=10, seed_key=(window,))
        for b in (*COSTS_BPS, 100, 300)
    ])  # fmt: skip
