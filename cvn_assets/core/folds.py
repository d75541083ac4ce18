"""The walk-forward fold plan, derived from the data's own timestamps (never the clock).

Fold k of the plan, with `gap` = (purge + embargo) bars:

    train [train_start, train_end)  gap  validation [val_start, val_end)  gap  test [test_start, test_end)

The train window starts at the origin (expanding) or slides by `step` (sliding); every window of fold k
is the same offset from the origin whatever data comes after it, so appending bars only adds folds.
A fold exists once the data covers its whole test window. Windows are half-open, in UTC.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from cvn_assets.config import FoldSettings
from cvn_assets.core.timeframes import bar_delta, parse_duration


@dataclass(frozen=True)
class Fold:
    index: int
    train_start: pd.Timestamp
    train_end: pd.Timestamp
    val_start: pd.Timestamp
    val_end: pd.Timestamp
    test_start: pd.Timestamp
    test_end: pd.Timestamp

    @property
    def fold_id(self) -> str:
        return fold_id(self.index)

    def windows(self) -> dict[str, tuple[pd.Timestamp, pd.Timestamp]]:
        return {
            "train": (self.train_start, self.train_end),
            "validation": (self.val_start, self.val_end),
            "test": (self.test_start, self.test_end),
        }


def fold_id(index: int) -> str:
    return f"f{index:03d}"


def plan_folds(
    origin: pd.Timestamp,
    last_bar: pd.Timestamp,
    *,
    timeframe: str,
    settings: FoldSettings,
    purge_bars: int,
) -> list[Fold]:
    """All folds whose test window ends at or before the bar after `last_bar`."""
    bar = bar_delta(timeframe)
    train, validation, test = (
        parse_duration(d) for d in (settings.train, settings.validation, settings.test)
    )
    step = parse_duration(settings.step) if settings.step else test
    gap = (purge_bars + settings.embargo_bars) * bar
    data_end = last_bar + bar  # exclusive end of the data

    folds: list[Fold] = []
    k = 0
    while settings.max_folds is None or k < settings.max_folds:
        train_end = origin + train + k * step
        train_start = origin if settings.scheme == "expanding" else origin + k * step
        val_start = train_end + gap
        val_end = val_start + validation
        test_start = val_end + gap
        test_end = test_start + test
        if test_end > data_end:
            break
        folds.append(Fold(k, train_start, train_end, val_start, val_end, test_start, test_end))
        k += 1
    return folds


def plan_span(settings: FoldSettings, timeframe: str, purge_bars: int) -> pd.Timedelta:
    """The data span the first fold needs: what a user must have before any fold exists."""
    gap = (purge_bars + settings.embargo_bars) * bar_delta(timeframe)
    return sum((parse_duration(d) for d in (settings.train, settings.validation, settings.test)), gap * 2)
