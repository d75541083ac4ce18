"""Many random trade sets on one window at once: the engine of the random baselines.

`simulate` scores one trade set with arrays as long as the window. A random baseline scores hundreds of
seeds on the same window with the same exit rule, so the work is split differently:

* `trade_paths`: what a trade entered at each row would do (its net factor, its returns' sums, the low,
  the high and the drawdown of its own equity path), computed once per window and cost, in at most
  `horizon` vector steps. A trade's path does not depend on the other trades, since trades never overlap.
* `chains`: the greedy, non-overlapping entries of a whole block of seeds' signals at once, found by
  pointer doubling over the seeds' concatenated candidates instead of one Python step per trade.
* `chain_economics`: each seed's metrics from its trades alone, by gathering the rows' paths.
* `SeedPool`: the seeds' aggregate, the one the baseline's row stores (see its docstring).

Seeds are processed in blocks of at most `BLOCK_DRAWS` draws, so memory does not grow with the number of
seeds. The metrics are `simulate`'s on the same trades; only the floating-point order of the sums and
products differs (the results agree to about 1e-12 relative, checked in test_economics.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from cvn_assets.core.backtest import Economics, round_trip_net

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
    allowed: np.ndarray | None = None  # rows a trade may enter at (the event filter's); None: every row

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
    # Longest first, rows in order within a length: a stable sort of small integers (numpy radix-sorts
    # 16-bit keys).
    key = -length.astype(np.int16) if length.max(initial=0) < 2**15 else -length
    order = np.argsort(key, kind="stable")
    bar_growth = np.ones(n + 1)
    bar_growth[1:n] = close[1:] / close[:-1]
    last_growth = (exit_price / close[exit_slot - 1])[order]

    sum_r, sum_d2, drawdown = np.zeros(n), np.zeros(n), np.zeros(n)
    rel, high, low = np.ones(n), np.ones(n), np.full(n, np.inf)
    longest = int(length.max(initial=0))
    at_least = np.cumsum(np.bincount(length, minlength=longest + 2)[::-1])[::-1]  # rows with length >= k
    g = np.empty(n)
    for k in range(1, longest + 1):
        # Sorted longest first: rows [0, live) still hold at step k, and [going_on, live) exit at it.
        live, going_on = int(at_least[k]), int(at_least[k + 1])
        step = g[:live]
        np.take(bar_growth, order[:going_on] + k, out=step[:going_on])
        np.multiply(last_growth[going_on:live], 1 - cost, out=step[going_on:])  # the exit pays the cost
        if k == 1:
            step *= 1 - cost  # and so does the entry, in the first slot
        rel[:live] *= step
        step -= 1  # the slot's return
        sum_r[:live] += step
        np.minimum(step, 0.0, out=step)
        sum_d2[:live] += step * step
        np.minimum(low[:live], rel[:live], out=low[:live])
        np.maximum(high[:live], rel[:live], out=high[:live])
        np.divide(rel[:live], high[:live], out=step)
        np.maximum(drawdown[:live], 1 - step, out=drawdown[:live])
    walked = np.zeros((n, 8))  # in walking order, then put back in row order in one pass
    for column, values in ((FACTOR, rel), (SUM_RETURNS, sum_r), (SUM_DOWNSIDE_SQ, sum_d2), (LOW, low),
                           (HIGH, high), (DRAWDOWN, drawdown)):  # fmt: skip
        walked[:, column] = values
    del rel, sum_r, sum_d2, low, high, drawdown, g  # the peak holds the table twice, not its columns too
    table = np.empty_like(walked)
    table[order] = walked
    table[:, NET] = round_trip_net(close, exit_price, cost)
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
    free = np.take(next_free, row)  # np.take: several times faster than fancy indexing here
    target = flat + (free - row)  # seed * n + free: where this seed's next trade may start
    # The first candidate at or after the target: a few candidates on at most (trades are short), so a
    # step-by-step scan of the still-short ones beats a binary search of all.
    after = np.append(flat, np.iinfo(np.int64).max)
    jump = np.arange(1, m + 1)
    short = np.flatnonzero(np.take(after, jump) < target)
    while short.size:
        jump[short] += 1
        short = short[np.take(after, jump[short]) < target[short]]
    same_seed = np.take(after, jump) < (seed + 1) * n
    jump = np.append(np.where((free < n) & same_seed, jump, m), m)  # m: the end of a seed's path
    seed_starts = np.searchsorted(flat, np.arange(n_seeds) * n)
    firsts = seed_starts[signals.any(axis=1)]
    on_path = np.zeros(m + 1, dtype=bool)
    on_path[firsts] = True
    while firsts.size and (jump[firsts] < m).any():
        on_path[np.take(jump, np.flatnonzero(on_path))] = True
        jump = np.take(jump, jump)
    taken = np.flatnonzero(on_path[:m])
    return seed[taken], row[taken]


def chain_economics(
    paths: TradePaths, seed: np.ndarray, entries: np.ndarray, n_seeds: int, bars_per_year: float
) -> dict[str, np.ndarray]:
    """Each seed's `Economics` fields (NaN where simulate gives None) from its trades' paths, and the sums
    they come from (`wins`, `net`, `sum_returns`, `sum_downside_sq`), which `SeedPool` pools.

    The equity before trade k is the product of the earlier trades' factors; the running high before it
    is the largest of 1 and the earlier trades' highs; the worst drawdown is the larger of the fall from
    that high to the trade's low and the trade's own drawdown."""
    trades = np.take(paths.table, entries, axis=0)  # one gather of every field of every trade
    n_trades = np.bincount(seed, minlength=n_seeds)
    # Sums per seed over its (contiguous) trades, in one pass; a seed without trades sums to 0.
    summed = np.column_stack([trades[:, NET] > 0, trades[:, [NET, SUM_RETURNS, SUM_DOWNSIDE_SQ]]])
    starts = np.cumsum(n_trades) - n_trades
    sums = np.zeros((n_seeds, 4))
    traded = n_trades > 0
    sums[traded] = np.add.reduceat(summed, starts[traded], axis=0) if seed.size else 0.0
    wins, net, returns, downside_sq = sums.T
    with np.errstate(invalid="ignore", divide="ignore"):
        win_rate = wins / n_trades
        expectancy = net / n_trades
    slots = paths.n_rows + 1  # simulate's equity has one slot per bar and one for the settlement
    mean = returns / slots
    downside = np.sqrt(downside_sq / slots)
    sortino = np.full(n_seeds, np.nan)
    has_downside = downside > 0
    sortino[has_downside] = mean[has_downside] / downside[has_downside] * np.sqrt(bars_per_year)

    total_return = np.zeros(n_seeds)
    max_drawdown = np.zeros(n_seeds)
    for s in np.flatnonzero(traded):  # each seed's trades are one contiguous run: a few vector steps each
        factor, low, high, own_drawdown = trades[starts[s] : starts[s] + n_trades[s], : DRAWDOWN + 1].T
        equity_before = np.cumprod(np.concatenate([[1.0], factor]))
        peak_before = np.maximum.accumulate(np.concatenate([[1.0], equity_before[:-2] * high[:-1]]))
        total_return[s] = equity_before[-1] - 1
        max_drawdown[s] = max(
            float(np.max(1 - equity_before[:-1] * low / peak_before)), float(own_drawdown.max())
        )
    return {
        "n_trades": n_trades.astype(float),
        "win_rate": win_rate,
        "expectancy": expectancy,
        "sortino": sortino,
        "total_return": total_return,
        "max_drawdown": max_drawdown,
        "wins": wins,
        "net": net,
        "sum_returns": returns,
        "sum_downside_sq": downside_sq,
    }


class SeedPool:
    """The aggregate of a random baseline's seeds, as its row stores it. For the same trades each figure is
    monotone in the cost, and no seed can dominate one (a mean of per-seed sortinos was neither: a seed
    without downside at one cost is left out, and at a slightly higher cost its tiny downside gives it a
    sortino in the hundreds):

    * sortino: the sortino of the pooled bar returns of every seed (each seed's window is one stretch of
      the pool): sum of returns / sqrt(sum of squared losses * seeds * slots) * sqrt(bars per year); None
      when no seed ever loses;
    * win_rate, expectancy: over the pooled trades of every seed (wins / trades, net return / trades);
      None when no seed trades;
    * n_trades, total_return, max_drawdown: the mean over seeds (every seed has a value; the mean of the
      total returns is the return of capital split equally across the seeds).

    More cost lowers every trade's net and every bar return it touches, so the wins, the net returns, the
    total returns and the sum of returns fall, and the drawdowns and the squared losses grow. The pooled
    sortino therefore falls with cost while the pooled mean return is >= 0; below 0 it is a ratio of two
    quantities that both worsen, bounded below, and can (in principle) drift towards that bound."""

    SUMS = ("n_trades", "wins", "net", "sum_returns", "sum_downside_sq", "total_return", "max_drawdown")

    def __init__(self, slots: int) -> None:
        self.slots = slots  # bar returns per seed: the window's bars and the settlement slot
        self.n_seeds = 0
        self.sums = dict.fromkeys(self.SUMS, 0.0)

    def add(self, metrics: dict[str, np.ndarray]) -> None:
        """One block of seeds' `chain_economics`."""
        self.n_seeds += int(metrics["n_trades"].size)
        for name in self.SUMS:
            self.sums[name] += float(metrics[name].sum())

    def economics(self, bars_per_year: float) -> Economics:
        s, n = self.sums, self.n_seeds
        trades, pooled_slots = s["n_trades"], n * self.slots
        downside = float(np.sqrt(s["sum_downside_sq"] / pooled_slots))
        return Economics(
            n_trades=trades / n,
            win_rate=s["wins"] / trades if trades else None,
            expectancy=s["net"] / trades if trades else None,
            sortino=float(s["sum_returns"] / pooled_slots / downside * np.sqrt(bars_per_year))
            if downside > 0
            else None,
            total_return=s["total_return"] / n,
            max_drawdown=s["max_drawdown"] / n,
        )


def seed_blocks(n_seeds: int, n_rows: int) -> Iterator[range]:
    """Consecutive seed numbers, as many per block as `BLOCK_DRAWS` allows (at least one)."""
    per_block = max(1, BLOCK_DRAWS // max(n_rows, 1))
    for start in range(0, n_seeds, per_block):
        yield range(start, min(start + per_block, n_seeds))
