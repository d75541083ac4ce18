"""Naive baselines on exactly the basis of the model rows: same split rows, same exit rule, same cost."""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd

from cvn_assets.core.backtest import ECONOMIC_METRICS, Economics, simulate
from cvn_assets.core.economics import trade_signal

BASELINE_TYPES = ("buy_and_hold", "random", "naive")


def buy_and_hold(split: pd.DataFrame, cost: float, bars_per_year: float) -> Economics:
    """One round trip: in at the first bar's close, out at the last bar's close."""
    close = split["close"].to_numpy()
    n = close.size
    return simulate(
        close, np.array([0]), np.array([n - 1]), close[[n - 1]], cost=cost, bars_per_year=bars_per_year
    )


def naive(split: pd.DataFrame, cost: float, bars_per_year: float) -> Economics:
    """Never trade."""
    close = split["close"].to_numpy()
    empty = np.empty(0, dtype=np.int64)
    return simulate(close, empty, empty, np.empty(0), cost=cost, bars_per_year=bars_per_year)


def random_entries(
    split: pd.DataFrame,
    cost: float,
    bars_per_year: float,
    *,
    entry_prob: float,
    n_seeds: int,
    seed_key: tuple[int, ...],
) -> Economics:
    """Random entries with the label's exit rule, averaged over `n_seeds` seeds.

    Memory is constant in the number of seeds: each draw is reduced into running sums before the next.
    A metric with no value for some seed (no trade, no downside) is averaged over the seeds that have one.
    """
    sums = dict.fromkeys(ECONOMIC_METRICS, 0.0)
    counts = dict.fromkeys(ECONOMIC_METRICS, 0)
    n = len(split)
    for s in range(n_seeds):
        rng = np.random.default_rng([*seed_key, s])
        result = trade_signal(split, rng.random(n) < entry_prob, cost, bars_per_year).as_dict()
        for name, value in result.items():
            if value is not None:
                sums[name] += value
                counts[name] += 1
    means = {k: (sums[k] / counts[k] if counts[k] else None) for k in ECONOMIC_METRICS}
    return Economics(**means)  # type: ignore[arg-type]


def baseline_seed_key(seed: int, crypto: str, fold_index: int, split_name: str) -> tuple[int, ...]:
    """Seeds of the random baseline: fixed by the sweep seed, crypto, fold and split, never by the cost,
    so every cost level replays the same random entries."""
    return (seed, zlib.crc32(crypto.encode()), fold_index, zlib.crc32(split_name.encode()))
