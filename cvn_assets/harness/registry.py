"""Model registry: `@register_model("name")` on an adapter class makes it trainable by name.

Adapters follow scikit-learn's estimator shape: construction stores the parameters and does no work;
`fit(X, y, X_val, y_val)` trains; `predict_proba(X)` returns an (n, 2) array; `best_iteration` is an int
or None. Modules under `cvn_assets/harness/models/` are imported on first use, so a new model is one file.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)


class ModelAdapter(Protocol):
    best_iteration: int | None

    def fit(self, X: pd.DataFrame, y: pd.Series, X_val: pd.DataFrame, y_val: pd.Series) -> ModelAdapter: ...

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray: ...


AdapterFactory = Callable[[Mapping[str, Any], int, int], ModelAdapter]  # (params, seed, threads)

_MODELS: dict[str, AdapterFactory] = {}
_discovered = False


def register_model(name: str) -> Callable[[AdapterFactory], AdapterFactory]:
    def decorate(factory: AdapterFactory) -> AdapterFactory:
        if name in _MODELS and _MODELS[name] is not factory:
            raise ValueError(f"model '{name}' is registered twice ({_MODELS[name]!r} and {factory!r})")
        _MODELS[name] = factory
        return factory

    return decorate


def _discover() -> None:
    global _discovered
    if _discovered:
        return
    from cvn_assets.harness import models

    for module in pkgutil.iter_modules(models.__path__):
        importlib.import_module(f"{models.__name__}.{module.name}")
    _discovered = True


def registered_models() -> list[str]:
    _discover()
    return sorted(_MODELS)


def get_model(name: str) -> AdapterFactory:
    _discover()
    if name not in _MODELS:
        raise KeyError(f"no model registered as '{name}'; registered: {sorted(_MODELS)}")
    return _MODELS[name]
