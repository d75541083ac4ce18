"""Model and ensemble registries.

`@register_model("name")` on an adapter class, `@register_ensemble("name", base_models=[...])` on an
ensemble class. Plugins are found by importing every module of the in-tree `harness/models/` and
`harness/ensembles/` folders and every entry point of the `cvn_assets.plugins` group (third-party packages
declare `[project.entry-points."cvn_assets.plugins"] name = "their_pkg.module"`). A plugin that fails to
import is skipped with a `plugin_skipped` warning event naming it; the code location still loads.

Adapters follow scikit-learn's estimator shape: construction stores the parameters and does no work;
`fit(X, y, X_val, y_val, sample_weight)` trains; `predict_proba(X)` returns an (n, 2) array.
"""

from __future__ import annotations

import importlib
import pkgutil
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from types import ModuleType
from typing import Any, ClassVar, Protocol

import numpy as np
import pandas as pd

from cvn_assets.harness.events import Event, emit

PLUGIN_GROUP = "cvn_assets.plugins"


class ModelAdapter(Protocol):
    calibration: ClassVar[str]  # "isotonic" unless the adapter knows better
    best_iteration: int | None
    n_estimators_final: int | None
    native: Any

    def fit(
        self,
        X: pd.DataFrame,
        y: pd.Series,
        X_val: pd.DataFrame,
        y_val: pd.Series,
        sample_weight: np.ndarray | None,
    ) -> ModelAdapter: ...

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray: ...


class Ensemble(Protocol):
    def fit(self, val: Mapping[str, np.ndarray], y_val: np.ndarray) -> Ensemble: ...

    def predict(self, probabilities: Mapping[str, np.ndarray]) -> np.ndarray: ...

    def fitted_params(self) -> dict[str, Any]: ...


AdapterFactory = Callable[[Mapping[str, Any], int, int], ModelAdapter]  # (params, seed, threads)
EnsembleFactory = Callable[[Mapping[str, Any], int, int], Ensemble]


@dataclass(frozen=True)
class EnsembleSpec:
    name: str
    factory: EnsembleFactory
    base_models: tuple[str, ...]


_MODELS: dict[str, AdapterFactory] = {}
# The harness node that takes hyperparameters of its own: meta-labeling's secondary classifier.
META_LABEL = "meta_label"
# model, ensemble or node name -> short code used in hyperparameter keys (XGB, LGB, STACK_LR, META, ...)
_MODEL_CODES: dict[str, str] = {META_LABEL: "META"}
_ENSEMBLES: dict[str, EnsembleSpec] = {}
_SKIPPED: dict[str, Event] = {}
_discovered = False
_entry_points_imported = False


def _hyperparameter_code(name: str, code: str | None) -> str:
    """`code` names the plugin in hyperparameter keys (CVN_HPO_<CODE>_...); default: the name upper-cased."""
    code = (code or name).upper()
    if not code.replace("_", "").isalnum():
        raise ValueError(f"hyperparameter code '{code}' of '{name}' must be letters, digits and underscores")
    taken = {c: n for n, c in _MODEL_CODES.items() if n != name}
    if code in taken:
        raise ValueError(f"hyperparameter code '{code}' of '{name}' is already used by '{taken[code]}'")
    return code


def register_model(name: str, code: str | None = None) -> Callable[[AdapterFactory], AdapterFactory]:
    def decorate(factory: AdapterFactory) -> AdapterFactory:
        _check_unique(name, factory, _MODELS.get(name), _ENSEMBLES.get(name))
        _MODEL_CODES[name] = _hyperparameter_code(name, code)
        _MODELS[name] = factory
        return factory

    return decorate


def register_ensemble(
    name: str, base_models: Sequence[str], code: str | None = None
) -> Callable[[EnsembleFactory], EnsembleFactory]:
    if len(base_models) < 2:
        raise ValueError(f"ensemble '{name}' needs at least two base models, got {list(base_models)}")

    def decorate(factory: EnsembleFactory) -> EnsembleFactory:
        existing = _ENSEMBLES.get(name)
        _check_unique(name, factory, existing.factory if existing else None, _MODELS.get(name))
        _MODEL_CODES[name] = _hyperparameter_code(name, code)
        _ENSEMBLES[name] = EnsembleSpec(name, factory, tuple(base_models))
        return factory

    return decorate


def _check_unique(name: str, factory: object, same_kind: object, other_kind: object) -> None:
    if other_kind is not None or (same_kind is not None and qualname(same_kind) != qualname(factory)):
        raise ValueError(f"plugin name '{name}' is registered twice")


def qualname(obj: object) -> str:
    """Module and qualified name: the same function registered again (a module imported twice) is not a
    second registration."""
    return f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', '')}"


def check_plugin_name(kind: str, name: str) -> None:
    """A feature set's or a diagnostic's name: lower-case letters, digits and underscores."""
    if not name.replace("_", "").isalnum() or not name[:1].isalpha() or name != name.lower():
        raise ValueError(f"{kind} name '{name}' must be lower-case letters, digits and underscores")


def import_folder(package: ModuleType, kind: str) -> None:
    """Import every module of an in-tree plugin folder (`import_plugin` each)."""
    for module in pkgutil.iter_modules(package.__path__):
        import_plugin(f"{package.__name__}.{module.name}", kind)


def import_plugin(module: str, kind: str) -> None:
    """Import one plugin module; a failure is recorded as `plugin_skipped`, never raised."""
    try:
        importlib.import_module(module)
    except Exception as exc:  # a broken plugin must not take the code location down
        _SKIPPED[module] = emit(
            "plugin_skipped",
            plugin=module,
            kind=kind,
            error=f"{type(exc).__name__}: {exc} ({traceback.extract_tb(exc.__traceback__)[-1].filename})",
        )


def discover_entry_points(force: bool = False) -> None:
    """Import every `cvn_assets.plugins` entry point (once per process unless forced): a plugin module may
    register models, ensembles and feature sets."""
    global _entry_points_imported
    if _entry_points_imported and not force:
        return
    for entry in entry_points(group=PLUGIN_GROUP):
        import_plugin(entry.value.split(":")[0], f"entry point {entry.name}")
    _entry_points_imported = True


def discover(force: bool = False) -> None:
    """Import the in-tree plugin folders and the entry-point plugins (once per process unless forced)."""
    global _discovered
    if _discovered and not force:
        return
    from cvn_assets.harness import ensembles, models

    for package, kind in ((models, "model"), (ensembles, "ensemble")):
        import_folder(package, kind)
    discover_entry_points(force)
    _discovered = True


def registered_models() -> list[str]:
    discover()
    return sorted(_MODELS)


def model_code(name: str) -> str:
    """The hyperparameter-key code of a registered model or ensemble."""
    discover()
    if name not in _MODEL_CODES:
        raise KeyError(f"no model or ensemble registered as '{name}'; registered: {sorted(_MODEL_CODES)}")
    return _MODEL_CODES[name]


def hyperparameter_owners() -> list[str]:
    """Every registered model and ensemble: what has hyperparameter keys."""
    discover()
    return sorted(_MODEL_CODES)


def registered_ensembles() -> dict[str, EnsembleSpec]:
    discover()
    return dict(sorted(_ENSEMBLES.items()))


def skipped_plugins() -> dict[str, Event]:
    discover()
    return dict(_SKIPPED)


def get_model(name: str) -> AdapterFactory:
    discover()
    if name not in _MODELS:
        raise KeyError(f"no model registered as '{name}'; registered: {sorted(_MODELS)}")
    return _MODELS[name]


def get_ensemble(name: str) -> EnsembleSpec:
    discover()
    if name not in _ENSEMBLES:
        raise KeyError(f"no ensemble registered as '{name}'; registered: {sorted(_ENSEMBLES)}")
    return _ENSEMBLES[name]
