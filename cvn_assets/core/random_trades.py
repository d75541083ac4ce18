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


# The fields of a row's trade, one row of `TradePaths.table` each: a trade's fields sit in one cache line,
# so gathering many random trades costs one memory access each.
# The first four are what the drawdown needs, side by side.
FIELDS = ("factor", "low", "high", "drawdown", "net", "sum_returns", "sum_downside_sq")
FACTOR, LOW, HIGH, DRAWDOWN, NET, SUM_RETURNS, SUM_DOWNSIDE_SQ = range(len(FIELDS))


@dataclass(frozen=True)
class TradePaths:
    """Per row of a window: the trade that would enter at its close and exit like its label.

    `table[row]` holds, in `FIELDS` order: the equity factor over the trade's bars (its slots' growths
    multiplied); its lowest and highest equity (the high counting its entry) relative to its entry; its
    largest fall from its own running high; the net return of the round trip; and the sum of its per-bar
    equity returns and of their squared losses."""

    next_free: np.ndarray  # first row where the next trade may enter (>= len: none)
    table: np.ndarray  # (rows, 8) floats, the last column unused (it pads a row to 64 bytes)

    @property
    def n_rows(self) -> int:
        return int(self.next_free.size)


def trade_paths(close: np.ndarray, exit_pos: np.ndarray, exit_price: np.ndarray, cost: float) -> TradePaths:
    """Each row's trade, bar by bar, exactly as `simulate` marks it: bars entry+1 .. exit-1 grow with the
    close, the exit bar (or the settlement slot after the window) with the exit price, and the first and
    last slot each pay `cost`. Rows are walked longest trade first, so step k works on a leading slice."""
    n = close.size
    rows = np.arange(n)
    exit_slot = np.minimum(exit_pos, n)  # positions >= n settle in the slot after the window
    length = exit_slot - rows  # slots each trade holds, >= 1 (a label exits after its entry bar)
    order = np.argsort(-length, kind="stable")
    length_sorted = length[order]
    bar_growth = np.ones(n + 1)
    bar_growth[1:n] = close[1:] / close[:-1]
    last_growth = (exit_price / close[exit_slot - 1])[order]

    sum_r, sum_d2, drawdown = np.zeros(n), np.zeros(n), np.zeros(n)
    rel, high, low = np.ones(n), np.ones(n), np.full(n, np.inf)
    longest = int(length.max(initial=0))
    live_counts = np.cumsum(np.bincount(length, minlength=longest + 1)[::-1])[::-1][1:]  # length >= k
    for k, live in zip(range(1, longest + 1), live_counts, strict=True):
        last = length_sorted[:live] == k
        g = np.where(last, last_growth[:live], bar_growth[order[:live] + k])
        if k == 1:
            g = g * (1 - cost)
        g = np.where(last, g * (1 - cost), g)
        r = g - 1
        sum_r[:live] += r
        sum_d2[:live] += np.minimum(r, 0.0) ** 2
        rel[:live] *= g
        np.minimum(low[:live], rel[:live], out=low[:live])
        np.maximum(high[:live], rel[:live], out=high[:live])
        np.maximum(drawdown[:live], 1 - rel[:live] / high[:live], out=drawdown[:live])
    table = np.zeros((n, 8))
    table[:, NET] = round_trip_net(close, exit_price, cost)
    for column, values in ((FACTOR, rel), (SUM_RETURNS, sum_r), (SUM_DOWNSIDE_SQ, sum_d2), (LOW, low),
                           (HIGH, high), (DRAWDOWN, drawdown)):  # fmt: skip
        table[order, column] = values
    return TradePaths(next_free=np.maximum(exit_pos, rows + 1), table=table)


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
    target = flat + (free - row)  # seed * n + free: where this seed's next trade may start
    # The first candidate at or after the target: a few candidates on at most (trades are short), so a
    # step-by-step scan of the still-short ones beats a binary search of all.
    after = np.append(flat, np.iinfo(np.int64).max)
    jump = np.arange(1, m + 1)
    short = np.flatnonzero(after[jump] < target)
    while short.size:
        jump[short] += 1
        short = short[after[jump[short]] < target[short]]
    same_seed = after[jump] < (seed + 1) * n
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
    trades = np.take(paths.table, entries, axis=0)  # one gather of every field of every trade
    n_trades = np.bincount(seed, minlength=n_seeds)

    def per_seed(values: np.ndarray) -> np.ndarray:
        return np.bincount(seed, values, minlength=n_seeds)

    with np.errstate(invalid="ignore", divide="ignore"):
        win_rate = per_seed(trades[:, NET] > 0) / n_trades
        expectancy = per_seed(trades[:, NET]) / n_trades
    slots = paths.n_rows + 1  # simulate's equity has one slot per bar and one for the settlement
    mean = per_seed(trades[:, SUM_RETURNS]) / slots
    downside = np.sqrt(per_seed(trades[:, SUM_DOWNSIDE_SQ]) / slots)
    sortino = np.full(n_seeds, np.nan)
    has_downside = downside > 0
    sortino[has_downside] = mean[has_downside] / downside[has_downside] * np.sqrt(bars_per_year)

    # One row per seed, one column per trade, padded with a trade that changes nothing.
    width = int(n_trades.max(initial=0))
    column = np.arange(seed.size) - np.repeat(np.cumsum(n_trades) - n_trades, n_trades)
    grid = np.zeros((n_seeds * width, 4))  # factor, low, high, drawdown
    grid[:, :DRAWDOWN] = 1.0
    grid[seed * width + column] = trades[:, : DRAWDOWN + 1]
    grid = grid.reshape(n_seeds, width, 4)
    factor, low, high, drawdown = (grid[:, :, c] for c in (FACTOR, LOW, HIGH, DRAWDOWN))
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
