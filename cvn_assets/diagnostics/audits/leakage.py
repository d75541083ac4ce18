"""`leakage`: the purge and embargo, verified on the fold dataset's actual rows and label intervals.

A row's label interval is [its bar, its label_end]. Between an earlier split and a later one (train and
validation, train and test, validation and test) no two intervals may overlap, every row must lie in its
split's window (so the planned gap of purge plus embargo bars separates them), and every label of a split
must end before the next window starts. Any violation is a leak: FAIL, with the rows that leak.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from cvn_assets.core.datasets import SPLITS, FoldDataset
from cvn_assets.diagnostics.registry import XY_ONLY, register_diagnostic
from cvn_assets.diagnostics.verdicts import FAIL, PASS, Finding

MAX_LISTED = 20


def _outside_window(name: str, frame: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> list[dict]:
    outside = frame.index[(frame.index < start) | (frame.index >= end)]
    return [
        {"split": name, "row": str(t), "problem": f"outside its window {start} to {end}"} for t in outside
    ]


def _ns(values: pd.Index | pd.Series) -> np.ndarray:
    """Timestamps as int64 nanoseconds (UTC): a tz-aware index's to_numpy() is an object array, whose
    sorting and searching is a Python loop."""
    return pd.DatetimeIndex(values).asi8


def _overlaps(early: str, a: pd.DataFrame, late: str, b: pd.DataFrame) -> list[dict]:
    """Rows of `a` whose label interval overlaps the interval of some row of `b`."""
    order = np.argsort(_ns(b.index))
    b_start, b_end = _ns(b.index)[order], _ns(b["label_end"])[order]
    # An interval [s, e] of a overlaps one of b iff some b row starts at or before e and ends at or after
    # s: the latest label end among the b rows starting at or before e must reach s.
    running_end = np.maximum.accumulate(b_end)
    a_start, a_end = _ns(a.index), _ns(a["label_end"])
    k = np.searchsorted(b_start, a_end, side="right")
    hit = (k > 0) & (running_end[np.maximum(k - 1, 0)] >= a_start)
    return [
        {"split": early, "row": str(pd.Timestamp(t, tz="UTC")), "label_end": str(pd.Timestamp(e, tz="UTC")),
         "problem": f"its label interval overlaps {late} row {pd.Timestamp(b_start[0], tz='UTC')} onwards"}
        for t, e in zip(a_start[hit], a_end[hit], strict=True)
    ]  # fmt: skip


@register_diagnostic("leakage", consumes=XY_ONLY, code_version="1")
def leakage(dataset: FoldDataset, params: Mapping[str, Any]) -> Finding:
    """Purge and embargo on the actual rows: no train label interval overlaps a validation or test one, no
    validation interval a test one, and every row lies in its split's window."""
    windows = dataset.fold.windows()
    problems: list[dict] = []
    for name in SPLITS:
        problems += _outside_window(name, dataset.split(name), *windows[name])
    gaps: dict[str, float] = {}
    for i, early in enumerate(SPLITS):
        a = dataset.split(early)
        for late in SPLITS[i + 1 :]:
            b = dataset.split(late)
            problems += _overlaps(early, a, late, b)
            bar = (b.index[1] - b.index[0]) if len(b) > 1 else pd.Timedelta(1, "h")
            gaps[f"gap_bars_{early}_{late}"] = float((b.index.min() - a["label_end"].max()) / bar)
        if i + 1 < len(SPLITS):
            next_start = windows[SPLITS[i + 1]][0]
            late_labels = a.index[a["label_end"] >= next_start]
            problems += [
                {"split": early, "row": str(t), "problem": f"its label ends at or after {next_start}, where "
                 f"{SPLITS[i + 1]} starts (inside the purge)"} for t in late_labels
            ]  # fmt: skip
    figures = {"leaking_rows": len(problems), **gaps}
    if problems:
        first = problems[0]
        return Finding(
            FAIL,
            f"{len(problems)} leaking rows; first: {first['split']} row {first['row']}: {first['problem']}",
            figures,
            tuple(problems[:MAX_LISTED]),
        )
    smallest = min(gaps.values())
    return Finding(
        PASS, f"no label interval crosses a split; the smallest gap is {smallest:.0f} bars", figures
    )
