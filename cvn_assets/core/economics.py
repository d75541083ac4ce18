"""Economics of a variant's probabilities on one split: enter when the probability clears the threshold,
exit like the label (barrier or horizon)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cvn_assets.core.backtest import Economics, select_trades, simulate
from cvn_assets.core.event_filter import EVENT_COLUMN


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


def entry_rows(split: pd.DataFrame) -> np.ndarray | None:
    """The rows a trade may enter at: the event filter's bars when it is on (an `event` column), else
    None (every row)."""
    return split[EVENT_COLUMN].to_numpy(dtype=bool) if EVENT_COLUMN in split else None


def entry_signal(split: pd.DataFrame, probability: np.ndarray, threshold: float) -> np.ndarray:
    """Where a variant enters: its probability clears the threshold. With the event filter on, the
    probabilities are the event rows' (what the model was scored on), in order, and only those may enter."""
    chosen = np.asarray(probability) >= threshold
    allowed = entry_rows(split)
    if allowed is None:
        return chosen
    if chosen.size != int(allowed.sum()):
        raise ValueError(f"{chosen.size} probabilities for the split's {int(allowed.sum())} event rows")
    signal = np.zeros(len(split), dtype=bool)
    signal[allowed] = chosen
    return signal


def variant_economics(
    split: pd.DataFrame, probability: np.ndarray, threshold: float, cost: float, bars_per_year: float
) -> Economics:
    return trade_signal(split, entry_signal(split, probability, threshold), cost, bars_per_year)
