"""Many random trade sets on one window at once: the engine of the random baselines.

`simulate` scores one trade set with arrays as long as the window. A random baseline scores hundreds of
seeds on the same window with the same exit rule, so the work is split differently:

* `trade_paths`: what a trade entered at each row would do (its net factor, its returns' sums, the low,
  the high and the drawdown of its own equity path), computed once per window and cost, in at most
  `horizon` vector steps. A trade's path does not depend on the other trades, since trades never overlap.
* `chains`: the greedy, non-overlapping entries of a whole block of seeds' signals at once, found by
  pointer doubling over the seeds' concatenated candidates instead of one Python step per trade.
* `chain_economics`: each seed's metrics from its trades alone, by gathering the rows' paths.

Seeds are processed in blocks of at most `BLOCK_DRAWS` draws, so memory does not grow with the number of
seeds. The metrics are `simulate`'s on the same trades; only the floating-point order of the sums and
products differs (the results agree to about 1e-12 relative, checked in test_economics.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from cvn_assets.core.backtest import ECONOMIC_METRICS, Economics, round_trip_net

BLOCK_DRAWS = 1 << 21  # draws per block of seeds: about 2 MB of signal, whatever the number of seeds


@dataclass(frozen=True)
class TradePaths:
    """Per row of a window: the trade that would enter at its close and exit like its label."""

    next_free: np.ndarray  # first row where the next trade may enter (>= len: none)
    net: np.ndarray  # net return of the round trip
    factor: np.ndarray  # equity factor over the trade's bars (its slots' growths multiplied)
    sum_returns: np.ndarray  # sum of the trade's per-bar equity returns
    sum_downside_sq: np.ndarray  # sum of their squared losses
    low: np.ndarray  # lowest equity during the trade, relative to its entry
    high: np.ndarray  # highest equity during the trade (or at its entry), relative to its entry
    drawdown: np.ndarray  # largest fall from the trade's own running high

    @property
    def n_rows(self) -> int:
        return int(self.next_free.size)


def trade_paths(close: np.ndarray, exit_pos: np.ndarray, exit_price: np.ndarray, cost: float) -> TradePaths:
    """Each row's trade, bar by bar, exactly as `simulate` marks it: bars entry+1 .. exit-1 grow with the
    close, the exit bar (or the settlement slot after the window) with the exit price, and the first and
    last slot each pay `cost`."""
    n = close.size
    rows = np.arange(n)
    exit_slot = np.minimum(exit_pos, n)  # positions >= n settle in the slot after the window
    length = exit_slot - rows  # slots each trade holds, >= 1 (a label exits after its entry bar)
    bar_growth = np.ones(n + 1)
    bar_growth[1:n] = close[1:] / close[:-1]
    last_growth = exit_price / close[exit_slot - 1]

    sum_r = np.zeros(n)
    sum_d2 = np.zeros(n)
    rel = np.ones(n)
    low = np.full(n, np.inf)
    high = np.ones(n)
    drawdown = np.zeros(n)
    for k in range(1, int(length.max(initial=0)) + 1):
        live = np.flatnonzero(length >= k)
        last = length[live] == k
        g = np.where(last, last_growth[live], bar_growth[live + k])
        if k == 1:
            g = g * (1 - cost)
        g = np.where(last, g * (1 - cost), g)
        r = g - 1
        sum_r[live] += r
        sum_d2[live] += np.minimum(r, 0.0) ** 2
        rel[live] *= g
        low[live] = np.minimum(low[live], rel[live])
        high[live] = np.maximum(high[live], rel[live])
        drawdown[live] = np.maximum(drawdown[live], 1 - rel[live] / high[live])
    return TradePaths(
        next_free=np.maximum(exit_pos, rows + 1),
        net=round_trip_net(close, exit_price, cost),
        factor=rel,
        sum_returns=sum_r,
        sum_downside_sq=sum_d2,
        low=low,
        high=high,
        drawdown=drawdown,
    )


def chains(signals: np.ndarray, next_free: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`select_trades` for each row of the (seeds x rows) boolean `signals`: (seed, entry) of every trade,
    seed-major and in time order.

    Each candidate points at the seed's next candidate once its trade is closed; a seed's trades are the
    path from its first candidate. The path is collected by pointer doubling: after step k every node
    within 2**k hops of a first candidate is marked, so about log2(trades) vector steps suffice."""
    n_seeds, n = signals.shape
    flat = np.flatnonzero(signals)  # seed * n + row, sorted
    m = flat.size
    seed, row = np.divmod(flat, n)
    free = next_free[row]
    jump = np.searchsorted(flat, seed * n + free)
    same_seed = jump < np.searchsorted(flat, (seed + 1) * n)
    jump = np.append(np.where((free < n) & same_seed, jump, m), m)  # m: the end of a seed's path
    seed_starts = np.searchsorted(flat, np.arange(n_seeds) * n)
    firsts = seed_starts[signals.any(axis=1)]
    on_path = np.zeros(m + 1, dtype=bool)
    on_path[firsts] = True
    while firsts.size and (jump[firsts] < m).any():
        on_path[jump[np.flatnonzero(on_path)]] = True
        jump = jump[jump]
    taken = np.flatnonzero(on_path[:m])
    return seed[taken], row[taken]


def chain_economics(
    paths: TradePaths, seed: np.ndarray, entries: np.ndarray, n_seeds: int, bars_per_year: float
) -> dict[str, np.ndarray]:
    """Each seed's `Economics` fields (NaN where simulate gives None) from its trades' paths.

    The equity before trade k is the product of the earlier trades' factors; the running high before it
    is the largest of 1 and the earlier trades' highs; the worst drawdown is the larger of the fall from
    that high to the trade's low and the trade's own drawdown."""
    n_trades = np.bincount(seed, minlength=n_seeds)
    net = paths.net[entries]
    with np.errstate(invalid="ignore", divide="ignore"):
        win_rate = np.bincount(seed, net > 0, minlength=n_seeds) / n_trades
        expectancy = np.bincount(seed, net, minlength=n_seeds) / n_trades
    slots = paths.n_rows + 1  # simulate's equity has one slot per bar and one for the settlement
    mean = np.bincount(seed, paths.sum_returns[entries], minlength=n_seeds) / slots
    downside = np.sqrt(np.bincount(seed, paths.sum_downside_sq[entries], minlength=n_seeds) / slots)
    sortino = np.full(n_seeds, np.nan)
    has_downside = downside > 0
    sortino[has_downside] = mean[has_downside] / downside[has_downside] * np.sqrt(bars_per_year)

    # One row per seed, one column per trade, padded with a trade that changes nothing.
    width = int(n_trades.max(initial=0))
    column = np.arange(seed.size) - np.repeat(np.cumsum(n_trades) - n_trades, n_trades)
    factor = np.ones((n_seeds, width))
    low = np.ones((n_seeds, width))
    high = np.ones((n_seeds, width))
    drawdown = np.zeros((n_seeds, width))
    factor[seed, column] = paths.factor[entries]
    low[seed, column] = paths.low[entries]
    high[seed, column] = paths.high[entries]
    drawdown[seed, column] = paths.drawdown[entries]
    equity_before = np.cumprod(np.hstack([np.ones((n_seeds, 1)), factor]), axis=1)
    peak = np.maximum.accumulate(np.hstack([np.ones((n_seeds, 1)), equity_before[:, :-1] * high]), axis=1)
    worst = np.maximum(1 - equity_before[:, :-1] * low / peak[:, :-1], drawdown)
    return {
        "n_trades": n_trades.astype(float),
        "win_rate": win_rate,
        "expectancy": expectancy,
        "sortino": sortino,
        "total_return": equity_before[:, -1] - 1,
        "max_drawdown": worst.max(axis=1, initial=0.0),
    }


class SeedMeans:
    """Running sums of per-seed metrics: a metric with no value for a seed (NaN) is averaged over the
    seeds that have one, and is None when none has."""

    def __init__(self) -> None:
        self.sums = dict.fromkeys(ECONOMIC_METRICS, 0.0)
        self.counts = dict.fromkeys(ECONOMIC_METRICS, 0)

    def add(self, metrics: dict[str, np.ndarray]) -> None:
        for name in ECONOMIC_METRICS:
            values = metrics[name][np.isfinite(metrics[name])]
            self.sums[name] += float(values.sum())
            self.counts[name] += int(values.size)

    def economics(self) -> Economics:
        means = {k: (self.sums[k] / self.counts[k] if self.counts[k] else None) for k in ECONOMIC_METRICS}
        return Economics(**means)  # type: ignore[arg-type]


def seed_blocks(n_seeds: int, n_rows: int) -> Iterator[range]:
    """Consecutive seed numbers, as many per block as `BLOCK_DRAWS` allows (at least one)."""
    per_block = max(1, BLOCK_DRAWS // max(n_rows, 1))
    for start in range(0, n_seeds, per_block):
        yield range(start, min(start + per_block, n_seeds))
