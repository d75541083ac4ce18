"""Equity curves of one cell's split: each variant against the naive baselines, on the basis the rows are
scored on (same trades, same exits, same cost). They are for the eye; the rows remain the record."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cvn_assets.core.backtest import equity_growth, select_trades
from cvn_assets.core.baselines import first_entry
from cvn_assets.core.economics import entry_rows, label_exits


@dataclass(frozen=True)
class CellEquity:
    """One cell's OOS equity curves (columns: variants, then baselines) and what the cell is."""

    title: str
    curves: pd.DataFrame


def signal_equity(
    close: np.ndarray, exits: tuple[np.ndarray, np.ndarray], signal: np.ndarray, cost: float
) -> np.ndarray:
    """Equity (starting at 1) after each bar of the split when entering wherever `signal` is true, each
    trade leaving at the split's `label_exits`; the last bar includes the settlement of a trade still
    open, so it ends at 1 + the row's total return."""
    exit_pos, exit_price = exits
    entries = select_trades(np.asarray(signal, dtype=bool), exit_pos)
    growth = equity_growth(close, entries, exit_pos[entries], exit_price[entries], cost=cost)
    equity = np.cumprod(growth)
    curve = equity[:-1].copy()
    curve[-1] = equity[-1]
    return curve


def cell_equity(
    split: pd.DataFrame,
    signals: Mapping[str, np.ndarray],
    cost: float,
    *,
    entry_prob: float,
    n_seeds: int,
    seed_key: tuple[int, ...],
) -> pd.DataFrame:
    """One column per variant (its entry signal), then buy_and_hold, naive and random (the mean curve of
    the random baseline's seeds, drawn exactly as its rows are), indexed by the split's timestamps."""
    n = len(split)
    close, exits = split["close"].to_numpy(), label_exits(split)
    curves = {name: signal_equity(close, exits, signal, cost) for name, signal in signals.items()}
    entry = first_entry(split)
    if entry is None:
        curves["buy_and_hold"] = np.ones(n)
    else:
        held = equity_growth(close, np.array([entry]), np.array([n - 1]), close[[n - 1]], cost=cost)
        curves["buy_and_hold"] = np.cumprod(held)[:-1]  # out at the last close: nothing left to settle
    curves["naive"] = np.ones(n)
    allowed = entry_rows(split)
    allowed = np.ones(n, dtype=bool) if allowed is None else allowed
    draws = ((np.random.default_rng([*seed_key, s]).random(n) < entry_prob) & allowed for s in range(n_seeds))
    curves["random"] = np.mean([signal_equity(close, exits, signal, cost) for signal in draws], axis=0)
    return pd.DataFrame(curves, index=split.index)
