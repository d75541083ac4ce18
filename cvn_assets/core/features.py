"""Past-only features. The value at bar t uses bars up to and including t, never a later one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cvn_assets.core.hashing import fingerprint

# Bump when the feature code changes meaning: it is part of every feature_hash.
FEATURE_CODE_VERSION = "features-v1"


@dataclass(frozen=True)
class FeatureSet:
    """The fitted feature set of a sweep: what feature_hash fingerprints."""

    names: tuple[str, ...]
    windows: tuple[int, ...]
    code_version: str = FEATURE_CODE_VERSION

    @property
    def feature_hash(self) -> str:
        return fingerprint(
            {"names": list(self.names), "windows": list(self.windows), "code_version": self.code_version}
        )


def feature_columns(windows: Sequence[int]) -> list[str]:
    """The columns `compute_features` returns, in order: two window-free columns and five per window."""
    per_window = ("ret", "vol", "atr_rel", "rsi", "volume_z")
    return ["range_rel", "close_pos", *(f"{name}_{w}" for w in sorted(set(windows)) for name in per_window)]


def warmup_bars(windows: Sequence[int]) -> int:
    """Bars at the start of a series whose features are NaN: the longest window and the bar before it."""
    return max(windows) + 1


def true_range(frame: pd.DataFrame) -> pd.Series:
    prev_close = frame["close"].shift(1)
    return pd.concat(
        [frame["high"] - frame["low"], (frame["high"] - prev_close).abs(), (frame["low"] - prev_close).abs()],
        axis=1,
    ).max(axis=1)


def average_true_range(frame: pd.DataFrame, window: int) -> pd.Series:
    return true_range(frame).rolling(window, min_periods=window).mean()


def compute_features(ohlcv: pd.DataFrame, windows: Sequence[int]) -> tuple[pd.DataFrame, FeatureSet]:
    """Returns, volatility, ATR, an RSI-like oscillator and volume features at each window."""
    close = ohlcv["close"]
    log_ret = np.log(close).diff()
    log_vol = np.log1p(ohlcv["volume"])
    gains, losses = log_ret.clip(lower=0), (-log_ret).clip(lower=0)
    cols: dict[str, pd.Series] = {
        "range_rel": (ohlcv["high"] - ohlcv["low"]) / close,
        "close_pos": ((close - ohlcv["low"]) / (ohlcv["high"] - ohlcv["low"])).fillna(0.5),
    }
    for w in sorted(set(windows)):
        cols[f"ret_{w}"] = np.log(close / close.shift(w))
        cols[f"vol_{w}"] = log_ret.rolling(w, min_periods=w).std()
        cols[f"atr_rel_{w}"] = average_true_range(ohlcv, w) / close
        up = gains.rolling(w, min_periods=w).mean()
        down = losses.rolling(w, min_periods=w).mean()
        cols[f"rsi_{w}"] = (up / (up + down)).fillna(0.5)
        mean, std = log_vol.rolling(w, min_periods=w).mean(), log_vol.rolling(w, min_periods=w).std()
        cols[f"volume_z_{w}"] = ((log_vol - mean) / std.replace(0, np.nan)).fillna(0.0)
    features = pd.DataFrame(cols, index=ohlcv.index)
    # Warm-up rows (a window not yet full) are NaN, not zero: the dataset builder drops them.
    features.iloc[: warmup_bars(windows)] = np.nan
    return features, FeatureSet(names=tuple(features.columns), windows=tuple(sorted(set(windows))))
