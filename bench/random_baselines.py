"""Random baselines: the seeds scored in blocks (`core/random_trades.py`) against the per-seed loop they
replace, on one window of --bars synthetic hourly bars with the demo's labels, in one run.

  * speed: bars x seeds per second of the per-seed loop and of `random_entries`, --seeds seeds each,
    the median of --repeats interleaved runs (target: at least 10x);
  * rows: the largest relative difference between the two aggregates (same seeds, same draws, same trades;
    only the floating-point order of sums differs);
  * memory: the peak memory the blocked seeds allocate on top of the window (tracemalloc sees numpy's
    buffers) at 10, 100 and 1,000 seeds (target: flat), measured in passes of their own: tracemalloc
    slows Python's allocations, so timed runs go without it.

    python bench/random_baselines.py [--bars 1000000] [--seeds 100] [--repeats 3] [--quick]

`--quick`: 20,000 bars, 10 seeds, one run, memory at 10, 20 and 40 seeds: the same code in seconds.
"""

from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc
from collections.abc import Callable
from datetime import datetime

import numpy as np
import pandas as pd

from cvn_assets.core.backtest import (
    Economics,
    equity_growth,
    expectancy,
    round_trip_net,
    select_trades,
    sortino_ratio,
    win_rate,
)
from cvn_assets.core.baselines import baseline_seed_key, random_entries
from cvn_assets.core.economics import label_exits, trade_signal
from cvn_assets.core.labels import triple_barrier_labels
from cvn_assets.core.synthetic import generate_synthetic
from cvn_assets.core.timeframes import bars_per_year

COST = (10 + 2) / 1e4  # the demo's 10 bps level with its 2 bps slippage, per side
ENTRY_PROB = 0.05  # the demo's random_entry_prob


def per_seed_loop(
    split: pd.DataFrame, cost: float, per_year: float, *, entry_prob: float, n_seeds: int, seed_key: tuple
) -> Economics:
    """The random baseline the plain way: one full-window simulation per seed, aggregated as the baseline's
    row is (`SeedPool`): sortino of the seeds' pooled bar returns, win rate and expectancy of their pooled
    trades, the mean of the rest."""
    close, (exit_pos, exit_price) = split["close"].to_numpy(), label_exits(split)
    returns, nets, per_seed = [], [], []
    for s in range(n_seeds):
        signal = np.random.default_rng([*seed_key, s]).random(len(split)) < entry_prob
        entries = select_trades(signal, exit_pos)
        growth = equity_growth(close, entries, exit_pos[entries], exit_price[entries], cost=cost)
        returns.append(growth - 1)
        nets.append(round_trip_net(close[entries], exit_price[entries], cost))
        per_seed.append(trade_signal(split, signal, cost, per_year))
    trades = np.concatenate(nets)
    return Economics(
        n_trades=float(np.mean([e.n_trades for e in per_seed])),
        win_rate=win_rate(trades),
        expectancy=expectancy(trades),
        sortino=sortino_ratio(np.concatenate(returns), per_year),
        total_return=float(np.mean([e.total_return for e in per_seed])),
        max_drawdown=float(np.mean([e.max_drawdown for e in per_seed])),
    )


def _runs(times: list[float]) -> str:
    return ", ".join(f"{t:.2f}" for t in times)


def labelled_window(n_bars: int) -> pd.DataFrame:
    bars = generate_synthetic(
        ["SYN"], timeframe="1h", start=datetime(2000, 1, 1), n_bars=n_bars + 100, seed=7,
        annual_volatility=0.6, correlation=0.0, regime_switch_prob=0.002,
    )["SYN"]  # fmt: skip
    labels = triple_barrier_labels(bars, horizon=24, take_profit_atr=2.0, stop_loss_atr=1.0, atr_window=24)
    frame = bars.join(labels).assign(bar=np.arange(len(bars))).dropna(subset=["label"])
    return frame.iloc[:n_bars]


def timed(fn: Callable[[], Economics]) -> tuple[Economics, float]:
    """The result and its wall time (without tracemalloc, which taxes Python's allocations far more than
    numpy's and would flatter the blocked version)."""
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def peak_memory(fn: Callable[[], Economics]) -> int:
    """The peak bytes `fn` allocates (tracemalloc sees numpy's buffers), in a pass of its own."""
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved runs of each (default 3)")
    parser.add_argument(
        "--quick", action="store_true", help="tiny inputs that run in seconds (the figures mean nothing)"
    )
    args = parser.parse_args()
    if args.quick:
        args.bars, args.seeds, args.repeats = 20_000, 10, 1
    memory_seeds = (10, 20, 40) if args.quick else (10, 100, 1000)

    window = labelled_window(args.bars)
    per_year = bars_per_year("1h")
    key = baseline_seed_key(42, "SYN", 0, "test")

    def blocked(n_seeds: int) -> Callable[[], Economics]:
        return lambda: random_entries(
            window, COST, per_year, entry_prob=ENTRY_PROB, n_seeds=n_seeds, seed_key=key
        )

    # Interleaved repeats, medians compared: a noisy machine slows both alike.
    old_times, new_times = [], []
    for _ in range(args.repeats):
        old, seconds = timed(
            lambda: per_seed_loop(
                window, COST, per_year, entry_prob=ENTRY_PROB, n_seeds=args.seeds, seed_key=key
            )
        )
        old_times.append(seconds)
        new, seconds = timed(blocked(args.seeds))
        new_times.append(seconds)
    old_s, new_s = statistics.median(old_times), statistics.median(new_times)
    work = len(window) * args.seeds
    differences = [
        abs(a - b) / max(abs(a), 1e-300)
        for a, b in zip(old.as_dict().values(), new.as_dict().values(), strict=True)
        if a is not None and b is not None
    ]
    print(f"{len(window):,} bars x {args.seeds} seeds, {old.n_trades:.0f} trades per seed on average")
    print(f"per-seed loop : {work / old_s:14,.0f} bar-seeds/s (median {old_s:.2f} s of {_runs(old_times)})")
    print(f"blocked seeds : {work / new_s:14,.0f} bar-seeds/s (median {new_s:.2f} s of {_runs(new_times)})")
    print(f"speed-up      : {old_s / new_s:.1f}x   (target >= 10x)")
    print(
        f"rows          : largest relative difference {max(differences):.1e} over {len(differences)} metrics"
    )
    print("peak extra memory of the blocked seeds:")
    peaks = {}
    for n_seeds in memory_seeds:
        peaks[n_seeds] = peak_memory(blocked(n_seeds))
        print(f"  {n_seeds:5d} seeds: {peaks[n_seeds] / 2**20:7.1f} MiB")
    loop_peak = peak_memory(
        lambda: per_seed_loop(window, COST, per_year, entry_prob=ENTRY_PROB, n_seeds=10, seed_key=key)
    )
    print(f"  (the per-seed loop, 10 seeds: {loop_peak / 2**20:.1f} MiB)")
    few, most = memory_seeds[0], memory_seeds[-1]
    print(f"memory {most} / {few} seeds: {peaks[most] / peaks[few]:.2f}   (target: flat, about 1)")


if __name__ == "__main__":
    main()
