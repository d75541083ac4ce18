"""Timeframes (bar sizes) and duration strings such as '90d' or '12h'."""

from __future__ import annotations

import re

import pandas as pd

# Bar sizes a sweep may use, 1m to 1d, in seconds.
TIMEFRAME_SECONDS: dict[str, int] = {
    "1m": 60,
    "3m": 180,
    "5m": 300,
    "15m": 900,
    "30m": 1800,
    "1h": 3600,
    "2h": 7200,
    "4h": 14400,
    "6h": 21600,
    "8h": 28800,
    "12h": 43200,
    "1d": 86400,
}

_DURATION = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def bar_delta(timeframe: str) -> pd.Timedelta:
    return pd.Timedelta(seconds=TIMEFRAME_SECONDS[timeframe])


def bars_per_year(timeframe: str) -> float:
    """Crypto trades around the clock: a year is 365 days of bars."""
    return 365 * 86400 / TIMEFRAME_SECONDS[timeframe]


def parse_duration(text: str) -> pd.Timedelta:
    """'90d' -> 90 days. Units: m (minutes), h, d, w. Raises ValueError on anything else."""
    match = _DURATION.match(str(text))
    if not match or int(match.group(1)) <= 0:
        raise ValueError(f"'{text}' is not a positive duration like '90d', '12h', '4w' or '30m'")
    return pd.Timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])
