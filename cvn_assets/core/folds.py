"""The walk-forward fold plan, derived from the data's own timestamps (never the clock).

Fold k of the plan, with `gap` = (purge + embargo) bars:

    train [train_start, train_end)  gap  validation [val_start, val_end)  gap  test [test_start, test_end)  gap

The train window starts at the origin (expanding) or slides by `step` (sliding); every window of fold k
is the same offset from the origin whatever data comes after it, so appending bars only adds folds.
A fold exists once the data covers its test window *and the gap after it*: the purge is at least the
label horizon, so every test row's label is known and the fold's rows never change afterwards.
Windows are half-open, in UTC.

A fold's id is its Dagster partition key: its position and its test window's start, e.g. `f03_2019-09-24`
(with the time of day when the test window does not start at midnight). The id alone, with the config,
rebuilds the whole fold (`fold_from_id`), so a run never needs the data to know its windows; the exact start
in the id also means a changed origin gives new ids, never a known id over another window. At 14 characters
it reads whole where the UI truncates (a filter chip holds about 100 pixels). Ids of the long form written
before (`f003_2019-09-24_2019-12-23`, with the test window's end) are read as their short form
(`current_fold_id`).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from cvn_assets.core.config import FoldSettings
from cvn_assets.core.errors import ConfigError
from cvn_assets.core.timeframes import bar_delta, parse_duration

_DATE = "%Y-%m-%d"
_DATE_TIME = "%Y-%m-%dT%H:%M"


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
        return f"{self.label}_{_when(self.test_start)}"

    @property
    def windows_id(self) -> str:
        """The fold by its position and whole test window, `f003_2019-09-24_2019-12-23` (the partition key
        before the short form): what names its Optuna studies and so seeds their samplers, so the key
        shown in the UI can change without moving a study or changing a search's draws."""
        start, end = self.test_start, self.test_end
        fmt = _DATE if start == start.normalize() and end == end.normalize() else _DATE_TIME
        return f"f{self.index:03d}_{start:{fmt}}_{end:{fmt}}"

    @property
    def label(self) -> str:
        """The short name, `f03`: the fold's position in its plan (two digits at least)."""
        return f"f{self.index:02d}"

    def windows(self) -> dict[str, tuple[pd.Timestamp, pd.Timestamp]]:
        return {
            "train": (self.train_start, self.train_end),
            "validation": (self.val_start, self.val_end),
            "test": (self.test_start, self.test_end),
        }


def _when(ts: pd.Timestamp) -> str:
    return f"{ts:{_DATE if ts == ts.normalize() else _DATE_TIME}}"


def current_fold_id(fold_id: str) -> str:
    """`fold_id` in today's form: a long-form id (`f003_2019-09-24_2019-12-23`, written before the short
    form) becomes `f03_2019-09-24`; anything else is returned as it is."""
    parts = fold_id.split("_")
    if len(parts) != 3 or not parts[0].startswith("f") or not parts[0][1:].isdigit():
        return fold_id
    return f"f{int(parts[0][1:]):02d}_{parts[1]}"


@dataclass(frozen=True)
class _Lengths:
    train: pd.Timedelta
    validation: pd.Timedelta
    test: pd.Timedelta
    step: pd.Timedelta
    gap: pd.Timedelta


def _lengths(settings: FoldSettings, timeframe: str, purge_bars: int) -> _Lengths:
    train, validation, test = (
        parse_duration(d) for d in (settings.train, settings.validation, settings.test)
    )
    step = parse_duration(settings.step) if settings.step else test
    return _Lengths(
        train, validation, test, step, (purge_bars + settings.embargo_bars) * bar_delta(timeframe)
    )


def _fold_at(origin: pd.Timestamp, k: int, scheme: str, n: _Lengths) -> Fold:
    train_end = origin + n.train + k * n.step
    train_start = origin if scheme == "expanding" else origin + k * n.step
    val_start = train_end + n.gap
    val_end = val_start + n.validation
    test_start = val_end + n.gap
    return Fold(k, train_start, train_end, val_start, val_end, test_start, test_start + n.test)


def plan_folds(
    origin: pd.Timestamp,
    last_bar: pd.Timestamp,
    *,
    timeframe: str,
    settings: FoldSettings,
    purge_bars: int,
) -> list[Fold]:
    """Every fold whose test window and the gap after it end at or before the bar after `last_bar`."""
    n = _lengths(settings, timeframe, purge_bars)
    data_end = last_bar + bar_delta(timeframe)  # exclusive end of the data
    folds: list[Fold] = []
    k = 0
    while settings.max_folds is None or k < settings.max_folds:
        fold = _fold_at(origin, k, settings.scheme, n)
        if fold.test_end + n.gap > data_end:
            break
        folds.append(fold)
        k += 1
    return folds


def fold_from_id(
    fold_id: str, *, timeframe: str, settings: FoldSettings, purge_bars: int, origin: pd.Timestamp | None
) -> Fold:
    """Rebuild a fold from its id (short, or the long form from before) and the sweep's fold settings; an id
    this plan cannot have produced (another sweep's, or one from before the fold settings changed) raises
    naming it."""
    n = _lengths(settings, timeframe, purge_bars)
    wanted = current_fold_id(fold_id)
    try:
        label, start = wanted.split("_")
        if not label.startswith("f"):
            raise ValueError(label)
        k = int(label[1:])
        test_start = pd.Timestamp(start, tz="UTC")
    except ValueError:
        raise ConfigError("folds", f"'{fold_id}' is not a fold id like f03_2019-09-24") from None
    if origin is None:
        origin = test_start - 2 * n.gap - n.validation - n.train - k * n.step
    fold = _fold_at(origin, k, settings.scheme, n)
    if fold_id not in (fold.fold_id, fold.windows_id) or (
        settings.max_folds is not None and k >= settings.max_folds
    ):
        raise ConfigError(
            "folds",
            f"fold '{fold_id}' does not belong to this sweep's fold plan (fold {k} of this plan would be "
            f"'{fold.fold_id}'); the fold settings or the data's origin changed since it was added",
        )
    return fold


def plan_span(settings: FoldSettings, timeframe: str, purge_bars: int) -> pd.Timedelta:
    """The data span the first fold needs (train, validation, test and the three gaps): what a user must
    have before any fold exists."""
    n = _lengths(settings, timeframe, purge_bars)
    return n.train + n.validation + n.test + 3 * n.gap
