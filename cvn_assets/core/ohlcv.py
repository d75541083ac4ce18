"""The OHLCV frame contract and its validation.

A validated frame has a UTC `DatetimeIndex` named `timestamp` (sorted, unique, on the timeframe's grid,
no gap beyond the tolerance) and float columns open, high, low, close, volume. Rejections name the
source file and the 1-based data row, so a user can open the file and look.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cvn_assets.core.errors import DataValidationError
from cvn_assets.core.timeframes import bar_delta

OHLCV_COLUMNS = ["open", "high", "low", "close", "volume"]
REQUIRED_COLUMNS = ["timestamp", *OHLCV_COLUMNS]

# Provenance columns a loader may attach so that errors found after concatenating several files
# still name the right file and row. They are dropped from the validated frame.
SOURCE_COL = "_source"
ROW_COL = "_row"


def _where(frame: pd.DataFrame, position: int, default_source: str) -> tuple[str, int]:
    if SOURCE_COL in frame.columns:
        return str(frame[SOURCE_COL].iloc[position]), int(frame[ROW_COL].iloc[position])
    return default_source, position + 1


def _reject(
    frame: pd.DataFrame, mask: np.ndarray, source: str, problem: str, column: str | None = None
) -> None:
    bad = np.flatnonzero(mask)
    if bad.size:
        where, row = _where(frame, int(bad[0]), source)
        more = f" ({bad.size} rows in all)" if bad.size > 1 else ""
        raise DataValidationError(where, f"{problem}{more}", row, column)


def _not_finite(raw: object, value: float) -> str:
    """What is wrong with a value that did not become a finite number, in the words a person would use."""
    if np.isinf(value):
        return "infinite value"
    if raw is None or (isinstance(raw, float) and np.isnan(raw)) or str(raw).strip().lower() in _MISSING:
        return "NaN or missing value"
    text = str(raw)
    return f"'{text[:40]}{'...' if len(text) > 40 else ''}' is not a number"


_MISSING = {"", "nan", "na", "n/a", "null", "none", "<na>"}


def validate_ohlcv(
    frame: pd.DataFrame, source: str, timeframe: str, gap_tolerance_bars: int = 0
) -> pd.DataFrame:
    """Check every rule and return the clean frame indexed by timestamp; raise on the first violation."""
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise DataValidationError(source, f"missing column(s) {missing}; expected {REQUIRED_COLUMNS}")
    if frame.empty:
        raise DataValidationError(source, "no rows: the file is empty")
    frame = frame.reset_index(drop=True)

    ts = frame["timestamp"]
    _reject(frame, ts.isna().to_numpy(), source, "timestamp is missing or unparseable")
    values = {c: pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=float) for c in OHLCV_COLUMNS}
    for col, arr in values.items():
        bad = ~np.isfinite(arr)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            _reject(frame, bad, source, _not_finite(frame[col].iloc[first], arr[first]), column=col)
    o, h, lo, c, v = (values[k] for k in OHLCV_COLUMNS)
    _reject(frame, (o <= 0) | (h <= 0) | (lo <= 0) | (c <= 0), source, "non-positive price")
    _reject(frame, h < np.maximum(o, c), source, "high is below max(open, close)")
    _reject(frame, lo > np.minimum(o, c), source, "low is above min(open, close)")
    _reject(frame, v < 0, source, "negative volume")

    ns = ts.astype("int64").to_numpy()
    step = bar_delta(timeframe).value
    diffs = np.diff(ns, prepend=ns[0] - step)
    _reject(frame, diffs < 0, source, "timestamps are not sorted (earlier than the previous row)")
    _reject(frame, diffs == 0, source, "duplicate timestamp (same as the previous row)")
    _reject(frame, diffs % step != 0, source, f"timestamp is off the {timeframe} grid")
    max_gap = (gap_tolerance_bars + 1) * step
    gap = diffs > max_gap
    if gap.any():
        first = int(np.flatnonzero(gap)[0])
        missing_bars = diffs[first] // step - 1
        _reject(
            frame,
            gap,
            source,
            f"gap of {missing_bars} missing bar(s) before this row exceeds the tolerance of "
            f"{gap_tolerance_bars} (data.gap_tolerance_bars)",
        )

    clean = pd.DataFrame(values, index=pd.DatetimeIndex(ts, name="timestamp"))
    return clean[OHLCV_COLUMNS]
