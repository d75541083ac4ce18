"""Each model library called directly, the way its own documentation shows: the reference the harness is
held to (parity tests) and measured against (bench/harness_overhead.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import xgboost as xgb
from catboost import CatBoostClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def direct_model(name: str, params: Mapping[str, Any], seed: int, threads: int) -> Any:
    if name == "xgboost":
        return xgb.XGBClassifier(**params, random_state=seed, n_jobs=threads)
    if name == "lightgbm":
        return lgb.LGBMClassifier(**params, random_state=seed, n_jobs=threads, verbose=-1)
    if name == "catboost":
        return CatBoostClassifier(
            **params, random_seed=seed, thread_count=threads, verbose=False, allow_writing_files=False
        )
    if name == "logreg":
        return make_pipeline(StandardScaler(), LogisticRegression(**params, random_state=seed))
    raise KeyError(name)


def direct_fit(name: str, params: Mapping[str, Any], seed: int, threads: int, X: pd.DataFrame, y: pd.Series,
               weights: np.ndarray | None) -> Any:  # fmt: skip
    model = direct_model(name, params, seed, threads)
    if name == "logreg":
        return model.fit(X, y, logisticregression__sample_weight=weights)
    return model.fit(X, y, sample_weight=weights)
