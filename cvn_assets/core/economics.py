"""Economics of a variant's probabilities on one split: enter when the probability clears the threshold,
exit like the label (barrier or horizon)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cvn_assets.core.backtest import Economics, select_trades, simulate


def label_exits(split: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Exit position of each row's trade within the split (>= len when it ends after it) and its price."""
    bars = split["bar"].to_numpy()
    exit_pos = np.searchsorted(bars, split["exit_bar"].to_numpy())
    return exit_pos, split["exit_price"].to_numpy()


def trade_signal(split: pd.DataFrame, signal: np.ndarray, cost: float, bars_per_year: float) -> Economics:
    """Economics of entering wherever `signal` is true (when flat), each trade exiting like its label."""
    exit_pos, exit_price = label_exits(split)
    entries = select_trades(signal, exit_pos)
    return simulate(
        split["close"].to_numpy(),
        entries,
        exit_pos[entries],
        exit_price[entries],
        cost=cost,
        bars_per_year=bars_per_year,
    )


def variant_economics(
    split: pd.DataFrame, probability: np.ndarray, threshold: float, cost: float, bars_per_year: float
) -> Economics:
    return trade_signal(split, np.asarray(probability) >= threshold, cost, bars_per_year)
