"""`btc_overlay`: the crypto's `base` features, and beside them BTC's (`btc_` + the base name) as they
stood at each of the crypto's bars.

Alignment is on timestamps with no look-ahead: at the crypto's bar t the overlay holds BTC's features of
its bar t (both closed at the same instant) or, where BTC has no bar at t, of its latest bar before t;
never a later one. For BTC itself the overlay would repeat its own features, so there it equals `base`
(the same columns and values; its feature_hash names this set). A non-BTC crypto needs BTC in the sweep's
universe (checked when the config loads) and BTC's bars covering each fold (checked per partition).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from cvn_assets.core.features import compute_features, feature_columns, warmup_bars
from cvn_assets.features.registry import FeatureInputs, register_feature_set

BTC = "BTCUSD"
PREFIX = "btc_"


def columns(params: Mapping[str, Any], crypto: str) -> list[str]:
    own = feature_columns(params["windows"])
    return own if crypto == BTC else [*own, *(PREFIX + name for name in own)]


@register_feature_set(
    "btc_overlay",
    columns=columns,
    warmup=lambda params: warmup_bars(params["windows"]),
    params={"windows": [6, 24, 72]},  # the sweep's features.windows
    requires=[BTC],
    code_version="btc-overlay-v1",
)
def btc_overlay(inputs: FeatureInputs) -> pd.DataFrame:
    windows = inputs.params["windows"]
    own, _ = compute_features(inputs.bars, windows)
    if inputs.crypto == BTC:
        return own
    btc, _ = compute_features(inputs.others[BTC], windows)
    # BTC's latest bar at or before each of the crypto's timestamps; before BTC's first bar: NaN.
    aligned = btc.reindex(own.index, method="ffill").add_prefix(PREFIX)
    return pd.concat([own, aligned], axis=1)
