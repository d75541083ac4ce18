"""Every validation rule rejects bad data, naming the file and the 1-based data row."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cvn_assets.core.errors import DataValidationError
from cvn_assets.core.loaders import RawFile, parse_table
from cvn_assets.core.ohlcv import validate_ohlcv
from cvn_assets_tests.fixtures import clean_bars


def _load_csv(tmp_path: Path, frame: pd.DataFrame, tolerance: int = 0) -> pd.DataFrame:
    path = tmp_path / "bars.csv"
    frame.to_csv(path, index=False)
    raw = RawFile(str(path), path.read_bytes())
    return validate_ohlcv(parse_table(raw), str(path), "1h", tolerance)


def test_clean_data_passes_and_is_indexed_by_utc_time(tmp_path: Path) -> None:
    out = _load_csv(tmp_path, clean_bars())
    assert list(out.columns) == ["open", "high", "low", "close", "volume"]
    assert out.index.tz is not None and out.index.is_monotonic_increasing and len(out) == 48


def _corrupt(row: int, **values: object) -> pd.DataFrame:
    frame = clean_bars()
    for col, value in values.items():
        if isinstance(value, str):  # a cell that is text, as a CSV may hold
            frame[col] = frame[col].astype(object)
        frame.loc[row, col] = value
    return frame


@pytest.mark.parametrize(
    ("frame", "row", "message"),
    [
        (_corrupt(5, close=np.nan), 6, "column 'close': NaN or missing value"),
        (_corrupt(7, volume=np.inf), 8, "column 'volume': infinite value"),
        (_corrupt(4, volume="1,5"), 5, "column 'volume': '1,5' is not a number"),
        (_corrupt(3, open=-1.0, low=-2.0), 4, "non-positive price"),
        (_corrupt(9, high=1.0), 10, "high is below max(open, close)"),
        (_corrupt(11, low=10_000.0), 12, "low is above min(open, close)"),
        (_corrupt(2, volume=-0.5), 3, "negative volume"),
    ],
)
def test_value_rules_name_file_and_row(tmp_path: Path, frame: pd.DataFrame, row: int, message: str) -> None:
    with pytest.raises(DataValidationError) as info:
        _load_csv(tmp_path, frame)
    assert info.value.row == row
    assert info.value.source.endswith("bars.csv")
    assert message in str(info.value)


def test_unsorted_duplicate_and_off_grid_timestamps(tmp_path: Path) -> None:
    frame = clean_bars()
    swapped = frame.copy()
    swapped.loc[[10, 11], "timestamp"] = swapped.loc[[11, 10], "timestamp"].to_numpy()
    with pytest.raises(DataValidationError, match="not sorted") as info:
        _load_csv(tmp_path, swapped)
    assert info.value.row == 12

    dup = frame.copy()
    dup.loc[20, "timestamp"] = dup.loc[19, "timestamp"]
    with pytest.raises(DataValidationError, match="duplicate timestamp") as info:
        _load_csv(tmp_path, dup)
    assert info.value.row == 21

    off = frame.copy()
    off.loc[30:, "timestamp"] = off.loc[30:, "timestamp"] + pd.Timedelta(minutes=7)
    with pytest.raises(DataValidationError, match="off the 1h grid") as info:
        _load_csv(tmp_path, off)
    assert info.value.row == 31


def test_gap_beyond_tolerance_rejected_within_tolerance_accepted(tmp_path: Path) -> None:
    frame = clean_bars().drop(index=[15, 16]).reset_index(drop=True)  # two missing bars before data row 16
    with pytest.raises(DataValidationError, match="gap of 2 missing bar") as info:
        _load_csv(tmp_path, frame, tolerance=1)
    assert info.value.row == 16
    assert len(_load_csv(tmp_path, frame, tolerance=2)) == 46


def test_missing_column_empty_and_truncated_files(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match=r"missing column\(s\) \['volume'\]"):
        _load_csv(tmp_path, clean_bars().drop(columns="volume"))

    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataValidationError, match="empty.csv.*empty"):
        parse_table(RawFile(str(empty), empty.read_bytes()))

    header_only = tmp_path / "header.csv"
    header_only.write_text("timestamp,open,high,low,close,volume\n")
    with pytest.raises(DataValidationError, match="header.csv.*no data rows"):
        parse_table(RawFile(str(header_only), header_only.read_bytes()))

    data = gzip.compress(clean_bars().to_csv(index=False).encode())
    with pytest.raises(DataValidationError, match="cut.csv.gz.*truncated or corrupt"):
        parse_table(RawFile(str(tmp_path / "cut.csv.gz"), data[: len(data) // 2]))

    # A CSV cut mid-line leaves a row with missing fields: it is caught as a NaN value on that row.
    text = clean_bars().to_csv(index=False)
    cut = tmp_path / "cut.csv"
    cut.write_text(text[: text.rfind(",") - 3])
    with pytest.raises(DataValidationError) as info:
        validate_ohlcv(parse_table(RawFile(str(cut), cut.read_bytes())), str(cut), "1h")
    assert info.value.row == 48 and "cut.csv" in str(info.value)


def test_corrupt_parquet_is_named(tmp_path: Path) -> None:
    path = tmp_path / "bars.parquet"
    clean_bars().to_parquet(path)
    data = path.read_bytes()
    with pytest.raises(DataValidationError, match="bars.parquet.*cannot be read"):
        parse_table(RawFile(str(path), data[: len(data) // 2]))
