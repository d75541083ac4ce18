"""Triple-barrier labels with ATR-scaled barriers.

Entry at the close of bar t. Take-profit at close + tp * ATR_t, stop-loss at close - sl * ATR_t, and a
vertical barrier `horizon` bars later. Label 1 ("buy") when the take-profit is touched first. When both
barriers fall inside the same bar we cannot know the order and count the stop first (conservative).
A bar whose horizon runs past the end of the data and touched no barrier has no label (NaN).

Fills are what a market gives: a barrier touched inside a bar fills at the barrier's price, but a bar that
opens beyond a barrier (a gap through it) fills at that bar's open: below the stop for a gap down, above
the take-profit for a gap up. A bar that gaps up through the take-profit is a take-profit even if it later
trades through the stop: its open came first. The backtest settles each trade at this exit price, so labels
and economics agree.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cvn_assets.core.features import average_true_range

LABEL_COLUMNS = ["label", "exit_bar", "exit_price", "label_end"]


def triple_barrier_labels(
    ohlcv: pd.DataFrame, *, horizon: int, take_profit_atr: float, stop_loss_atr: float, atr_window: int
) -> pd.DataFrame:
    """Return label (1.0/0.0/NaN), exit_bar (position of the exit bar), exit_price and label_end (its time)."""
    n = len(ohlcv)
    close = ohlcv["close"].to_numpy()
    open_price = ohlcv["open"].to_numpy()
    high = ohlcv["high"].to_numpy()
    low = ohlcv["low"].to_numpy()
    atr = average_true_range(ohlcv, atr_window).to_numpy()
    tp = close + take_profit_atr * atr
    sl = close - stop_loss_atr * atr

    exit_bar = np.full(n, -1, dtype=np.int64)
    exit_price = np.full(n, np.nan)
    label = np.full(n, np.nan)
    open_ = np.isfinite(atr)  # rows still waiting for a barrier
    for k in range(1, horizon + 1):
        idx = np.arange(n) + k
        inside = idx < n
        j = np.where(inside, idx, n - 1)
        gap_up = open_price[j] >= tp  # opened through the take-profit: it filled first
        hit_sl = open_ & inside & (low[j] <= sl) & ~gap_up
        hit_tp = open_ & inside & (high[j] >= tp) & ~hit_sl
        exit_bar[hit_sl | hit_tp] = idx[hit_sl | hit_tp]
        exit_price[hit_sl] = np.minimum(open_price[j], sl)[hit_sl]  # a gap down fills at the open
        exit_price[hit_tp] = np.maximum(open_price[j], tp)[hit_tp]  # a gap up fills at the open
        label[hit_sl] = 0.0
        label[hit_tp] = 1.0
        open_ &= ~(hit_sl | hit_tp)
        if k == horizon:  # vertical barrier: exit at the close, not a take-profit
            timeout = open_ & inside
            exit_bar[timeout] = idx[timeout]
            exit_price[timeout] = close[idx[timeout]]
            label[timeout] = 0.0

    ts = ohlcv.index
    label_end = pd.Series(pd.NaT, index=ts, dtype=ts.dtype)
    has = exit_bar >= 0
    label_end.iloc[np.flatnonzero(has)] = ts[exit_bar[has]]
    return pd.DataFrame(
        {"label": label, "exit_bar": exit_bar, "exit_price": exit_price, "label_end": label_end}, index=ts
    )
