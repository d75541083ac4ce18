"""Writers of OHLCV files in the formats users bring: generic tables and Binance kline dumps."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd


def clean_bars(n: int = 48, start: str = "2024-01-01", freq: str = "1h", seed: int = 0) -> pd.DataFrame:
    """A valid OHLCV frame with a `timestamp` column."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.concatenate([[100.0], close[:-1]])
    high = np.maximum(open_, close) * 1.002
    low = np.minimum(open_, close) * 0.998
    ts = pd.date_range(start, periods=n, freq=freq, tz="UTC")
    return pd.DataFrame(
        {
            "timestamp": ts,
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": rng.uniform(1, 10, n),
        }
    )


def binance_rows(frame: pd.DataFrame, unit: str) -> str:
    """The 12-column headerless spot kline CSV; open times in 'ms' or 'us'."""
    scale = {"ms": 10**6, "us": 10**3}[unit]
    open_time = frame["timestamp"].astype("int64") // scale
    step = (frame["timestamp"].iloc[1] - frame["timestamp"].iloc[0]).value // scale
    lines = []
    for t, o, h, lo, c, v in zip(
        open_time, frame.open, frame.high, frame.low, frame.close, frame.volume, strict=True
    ):
        lines.append(
            f"{t},{o:.8f},{h:.8f},{lo:.8f},{c:.8f},{v:.8f},{t + step - 1},{v * c:.8f},42,{v / 2:.8f},{v * c / 2:.8f},0"
        )
    return "\n".join(lines) + "\n"


def write_binance_month(
    directory: Path, symbol: str, month: str, frame: pd.DataFrame, unit: str, zipped: bool
) -> Path:
    name = f"{symbol}-1h-{month}.csv"
    text = binance_rows(frame, unit)
    if not zipped:
        path = directory / name
        path.write_text(text)
        return path
    path = directory / f"{symbol}-1h-{month}.zip"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, text)
    path.write_bytes(buffer.getvalue())
    return path
