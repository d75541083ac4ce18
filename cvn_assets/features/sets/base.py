"""`base`: returns, volatility, ATR, an RSI-like oscillator and volume features of the crypto's own bars
at each window (`core/features.py`). Every sweep's default feature set."""

from __future__ import annotations

import pandas as pd

from cvn_assets.core.features import FEATURE_CODE_VERSION, compute_features, feature_columns, warmup_bars
from cvn_assets.features.registry import BASE, FeatureInputs, register_feature_set


@register_feature_set(
    BASE,
    columns=lambda params, crypto: feature_columns(params["windows"]),
    warmup=lambda params: warmup_bars(params["windows"]),
    params={"windows": [6, 24, 72]},  # the sweep's features.windows
    code_version=FEATURE_CODE_VERSION,
)
def base(inputs: FeatureInputs) -> pd.DataFrame:
    features, _ = compute_features(inputs.bars, inputs.params["windows"])
    return features
