"""The symmetric CUSUM event filter (López de Prado, Advances in Financial Machine Learning, 2018, §2.5.2.1):
it chooses the bars on which a trade may enter.

On the log returns r_t of the closes, two running sums S+_t = max(0, S+_{t-1} + r_t) and
S-_t = min(0, S-_{t-1} + r_t); bar t is an event when S+_t > h_t (S+ restarts at 0) or else when
S-_t < -h_t (S- restarts at 0). The threshold is h_t = k x sigma_t, with sigma_t the standard deviation of
the last `vol_window` log returns up to and including r_t: past-only, so an event at t is known at t's
close and bars appended later never move an earlier event. Before sigma is defined no bar is an event.

When a sweep turns it on, the fold's labels, its training and every backtest (the variants' and the
baselines') use event bars only: the comparison stays on one basis. What the filter amounted to on a fold
(`EventFilterFit`: the train window's median sigma and threshold, the share of bars it kept) is recorded on
the fold dataset, each trained artifact and its training events.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

EVENT_COLUMN = "event"


def rolling_sigma(close: pd.Series, vol_window: int) -> pd.Series:
    """sigma_t: the standard deviation of the last `vol_window` log returns, r_t included."""
    return np.log(close).diff().rolling(vol_window, min_periods=vol_window).std()


def cusum_events(close: pd.Series, *, k: float, vol_window: int) -> pd.Series:
    """True on the bars the symmetric CUSUM filter with h_t = k x sigma_t marks as events."""
    returns = np.log(close.to_numpy(dtype=float))
    returns = np.diff(returns, prepend=np.nan)
    threshold = k * rolling_sigma(close, vol_window).to_numpy()
    events = np.zeros(returns.size, dtype=bool)
    s_pos = s_neg = 0.0
    for t in np.flatnonzero(np.isfinite(threshold)).tolist():  # a sequential filter: one pass
        s_pos = max(0.0, s_pos + returns[t])
        s_neg = min(0.0, s_neg + returns[t])
        if s_neg < -threshold[t]:
            s_neg = 0.0
            events[t] = True
        elif s_pos > threshold[t]:
            s_pos = 0.0
            events[t] = True
    return pd.Series(events, index=close.index, name=EVENT_COLUMN)


@dataclass(frozen=True)
class EventFilterFit:
    """What the filter amounted to on one fold: its parameters, and on the train window the median sigma,
    the threshold k x that sigma, and the bars it kept."""

    kind: str
    k: float
    vol_window: int
    sigma: float
    threshold: float
    train_events: int
    train_event_share: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def fit_summary(
    close: pd.Series, events: pd.Series, train_index: pd.Index, *, k: float, vol_window: int
) -> EventFilterFit:
    sigma = float(rolling_sigma(close, vol_window).reindex(train_index).median())
    kept = events.reindex(train_index, fill_value=False)
    return EventFilterFit("cusum", k, vol_window, sigma, k * sigma, int(kept.sum()), float(kept.mean()))
