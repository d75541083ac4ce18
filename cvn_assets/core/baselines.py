"""Naive baselines on exactly the basis of the model rows: same split rows, same exit rule, same cost."""

from __future__ import annotations

import zlib
from dataclasses import replace

import numpy as np
import pandas as pd

from cvn_assets.core.backtest import Economics, simulate
from cvn_assets.core.economics import entry_rows, label_exits
from cvn_assets.core.random_trades import (
    SeedPool,
    TradePaths,
    chain_economics,
    chains,
    seed_blocks,
    trade_paths,
)

BASELINE_TYPES = ("buy_and_hold", "random", "naive")  # one row each per crypto x fold x cost
MATCHED_BASELINE = "random_matched"  # one per variant, stored on its result row


def first_entry(split: pd.DataFrame) -> int | None:
    """Where buy_and_hold enters: the first bar, or with the event filter on the first event bar (None:
    the window holds no event, so it never trades)."""
    allowed = entry_rows(split)
    if allowed is None:
        return 0
    return int(np.argmax(allowed)) if allowed.any() else None


def buy_and_hold(split: pd.DataFrame, cost: float, bars_per_year: float) -> Economics:
    """One round trip: in at the first bar's close (the first event bar's, with the event filter on), out
    at the last bar's close."""
    close = split["close"].to_numpy()
    n, entry = close.size, first_entry(split)
    if entry is None:
        return naive(split, cost, bars_per_year)
    return simulate(
        close, np.array([entry]), np.array([n - 1]), close[[n - 1]], cost=cost, bars_per_year=bars_per_year
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
    """Random entries with the label's exit rule, aggregated over `n_seeds` seeds (`SeedPool`: sortino,
    win rate and expectancy of the seeds' pooled returns and trades, the other figures their mean).

    Seed s enters wherever `default_rng([*seed_key, s]).random(rows) < entry_prob` (when flat). Seeds are
    scored in blocks (`random_trades`), so memory does not grow with their number.
    """
    paths = window_paths(split, cost)
    pool = SeedPool(paths.n_rows + 1)
    for block in seed_blocks(n_seeds, paths.n_rows):
        signals = np.empty((len(block), paths.n_rows), dtype=bool)
        draws = np.empty(paths.n_rows)
        for i, s in enumerate(block):
            np.random.default_rng([*seed_key, s]).random(out=draws)
            np.less(draws, entry_prob, out=signals[i])
        if paths.allowed is not None:  # the event filter: random entries on its bars only
            signals &= paths.allowed
        seed, entries = chains(signals, paths.next_free)
        pool.add(chain_economics(paths, seed, entries, len(block), bars_per_year))
    return pool.economics(bars_per_year)


def random_matched(
    paths: TradePaths,
    bars_per_year: float,
    *,
    n_trades: int,
    n_seeds: int,
    seed_key: tuple[int, ...],
) -> Economics:
    """Luck at a variant's own trading frequency: random entries with exactly `n_trades` trades and the
    label's exit rule, aggregated over `n_seeds` seeds like `random_entries` (`SeedPool`). `paths` are
    the window's at the cost (`window_paths`), computed once and shared by every variant of a cell.

    Seed s draws two rows of uniforms from `default_rng([*seed_key, s])`: the first makes the candidate
    entries, at the rate that gives about twice `n_trades` trades (`matched_entry_rate`); they are walked
    like the random baseline's, and the `n_trades` trades with the smallest keys in the second row are
    kept. A seed whose walk gives fewer trades keeps them from `densest_trades` instead, which holds at
    least as many as the variant's own (they are a set of non-overlapping trades on this window), so every
    seed trades exactly `n_trades` times.
    """
    pool = SeedPool(paths.n_rows + 1)
    if n_trades == 0:  # every seed trades as little: the naive baseline's economics
        no_trade = np.empty(0, dtype=np.int64)
        pool.add(chain_economics(paths, no_trade, no_trade, 1, bars_per_year))
        return pool.economics(bars_per_year)
    rate = matched_entry_rate(n_trades, paths)
    densest: np.ndarray | None = None
    for block in seed_blocks(n_seeds, 2 * paths.n_rows):
        draws = np.empty((len(block), 2, paths.n_rows))
        for i, s in enumerate(block):
            np.random.default_rng([*seed_key, s]).random(out=draws[i])
        signals = draws[:, 0] < rate
        if paths.allowed is not None:
            signals &= paths.allowed
        seed, entries = chains(signals, paths.next_free)
        short = np.flatnonzero(np.bincount(seed, minlength=len(block)) < n_trades)
        if short.size:
            densest = densest_trades(paths.next_free, paths.allowed) if densest is None else densest
            keep = ~np.isin(seed, short)
            seed = np.concatenate([seed[keep], np.repeat(short, densest.size)])
            entries = np.concatenate([entries[keep], np.tile(densest, short.size)])
            by_seed = np.lexsort((entries, seed))
            seed, entries = seed[by_seed], entries[by_seed]
        keys = draws[seed, 1, entries]
        by_key = np.lexsort((keys, seed))
        rank = np.arange(seed.size) - np.searchsorted(seed[by_key], seed[by_key])
        kept = np.sort(by_key[rank < n_trades])  # back to seed-major time order
        pool.add(chain_economics(paths, seed[kept], entries[kept], len(block), bars_per_year))
    return pool.economics(bars_per_year)


def densest_trades(next_free: np.ndarray, allowed: np.ndarray | None = None) -> np.ndarray:
    """The rows of a largest set of non-overlapping trades on the window (row r's trade holds rows r to
    next_free[r] - 1), entering only at `allowed` rows (default: every row). Walking every row greedily
    from the first can hold fewer: a long first trade may cover several short ones. most[r], the most
    trades from row r on, is max(most[r + 1], 1 + most[next_free[r]]) (most[r + 1] where r may not
    enter); walking forward, a row is taken whenever taking it keeps the most."""
    n = next_free.size
    free = np.minimum(next_free, n).tolist()
    may = [True] * n if allowed is None else allowed.tolist()
    most = [0] * (n + 1)
    for r in range(n - 1, -1, -1):
        most[r] = max(most[r + 1], 1 + most[free[r]]) if may[r] else most[r + 1]
    rows, r = [], 0
    while r < n:
        if may[r] and 1 + most[free[r]] >= most[r + 1]:
            rows.append(r)
            r = free[r]
        else:
            r += 1
    return np.asarray(rows, dtype=np.int64)


def matched_entry_rate(n_trades: int, paths: TradePaths) -> float:
    """The candidate rate whose walk gives about 2 * n_trades trades: each trade holds its mean length
    and then waits 1/rate rows for the next candidate."""
    mean_hold = float(np.mean(paths.next_free - np.arange(paths.n_rows)))
    # With the event filter on, candidates fall on its bars only: the wait counts those.
    share = 1.0 if paths.allowed is None else max(float(paths.allowed.mean()), 1.0 / paths.n_rows)
    wait = (paths.n_rows / (2 * n_trades) - mean_hold) * share
    return 1.0 if wait <= 1 else 1.0 / wait


def window_paths(split: pd.DataFrame, cost: float) -> TradePaths:
    """The trade every row of a split would make at this cost: what the random baselines score."""
    exit_pos, exit_price = label_exits(split)
    paths = trade_paths(split["close"].to_numpy(), exit_pos, exit_price, cost)
    allowed = entry_rows(split)
    return paths if allowed is None else replace(paths, allowed=allowed)


def baseline_seed_key(seed: int, crypto: str, fold_index: int, split_name: str) -> tuple[int, ...]:
    """Seeds of the random baseline: fixed by the sweep seed, crypto, fold and split, never by the cost,
    so every cost level replays the same random entries."""
    return (seed, zlib.crc32(crypto.encode()), fold_index, zlib.crc32(split_name.encode()))


def matched_seed_key(
    seed: int, crypto: str, fold_index: int, split_name: str, n_trades: int
) -> tuple[int, ...]:
    """Seeds of `random_matched`: the random baseline's key, the baseline's name and the trade count, so
    variants that trade equally often in a cell are compared with the same luck, at every cost level."""
    return (*baseline_seed_key(seed, crypto, fold_index, split_name), zlib.crc32(b"random_matched"), n_trades)
