"""Random baselines: the seeds scored in blocks (`core/random_trades.py`) against the per-seed loop they
replace, on one window of --bars synthetic hourly bars with the demo's labels, in one run.

  * speed: bars x seeds per second of the per-seed loop and of `random_entries`, --seeds seeds each,
    the median of --repeats interleaved runs (target: at least 10x);
  * rows: the largest relative difference between the two averages (same seeds, same draws, same trades;
    only the floating-point order of sums differs);
  * memory: the peak memory the blocked seeds allocate on top of the window (tracemalloc sees numpy's
    buffers) at 10, 100 and 1,000 seeds (target: flat), measured in passes of their own: tracemalloc
    slows Python's allocations, so timed runs go without it.

    python bench/random_baselines.py [--bars 1000000] [--seeds 100] [--repeats 3]
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

from cvn_assets.core.backtest import ECONOMIC_METRICS, Economics
from cvn_assets.core.baselines import baseline_seed_key, random_entries
from cvn_assets.core.economics import trade_signal
from cvn_assets.core.labels import triple_barrier_labels
from cvn_assets.core.synthetic import generate_synthetic
from cvn_assets.core.timeframes import bars_per_year

COST = (10 + 2) / 1e4  # the demo's 10 bps level with its 2 bps slippage, per side
ENTRY_PROB = 0.05  # the demo's random_entry_prob


def per_seed_loop(
    split: pd.DataFrame, cost: float, per_year: float, *, entry_prob: float, n_seeds: int, seed_key: tuple
) -> Economics:
    """The random baseline as it was: one full-window simulation per seed."""
    sums = dict.fromkeys(ECONOMIC_METRICS, 0.0)
    counts = dict.fromkeys(ECONOMIC_METRICS, 0)
    for s in range(n_seeds):
        signal = np.random.default_rng([*seed_key, s]).random(len(split)) < entry_prob
        for name, value in trade_signal(split, signal, cost, per_year).as_dict().items():
            if value is not None:
                sums[name] += value
                counts[name] += 1
    return Economics(**{k: sums[k] / counts[k] if counts[k] else None for k in ECONOMIC_METRICS})


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
    args = parser.parse_args()

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
    for n_seeds in (10, 100, 1000):
        peaks[n_seeds] = peak_memory(blocked(n_seeds))
        print(f"  {n_seeds:5d} seeds: {peaks[n_seeds] / 2**20:7.1f} MiB")
    loop_peak = peak_memory(
        lambda: per_seed_loop(window, COST, per_year, entry_prob=ENTRY_PROB, n_seeds=10, seed_key=key)
    )
    print(f"  (the per-seed loop, 10 seeds: {loop_peak / 2**20:.1f} MiB)")
    print(f"memory 1000 / 10 seeds: {peaks[1000] / peaks[10]:.2f}   (target: flat, about 1)")


if __name__ == "__main__":
    main()
