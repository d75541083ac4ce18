"""The feature-set registry: a sweep factor beside the models and ensembles.

`@register_feature_set("name", columns=..., params=..., requires=[...], code_version=...)` on a pure
function `compute(inputs) -> DataFrame`. It declares

    columns       the columns it produces for a crypto, from its parameters (checked on every computation)
    warmup        the bars at the start of a series whose features are not yet defined (NaN): past those,
                  every column must be defined on every bar of a fold, or the fold is not covered
    params        its parameters and their defaults (a sweep overrides them: `feature_sets.<name>.params`);
                  `windows` defaults to the sweep's `features.windows`
    requires      other cryptos whose bars it reads (`["BTCUSD"]`): loaded beside the crypto's own, and
                  counted by the working-set estimate
    code_version  bumped when its output changes meaning

Its `feature_hash` is made of its name, its resolved parameters and its code version. Feature sets are
found like models and ensembles: every module of the in-tree `features/sets/` folder, then the
`cvn_assets.plugins` entry points (a plugin that fails to import is skipped with a `plugin_skipped` event).

Values at bar t may use bars up to and including t only: every feature set is past-only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from cvn_assets.core.errors import ConfigError, DataCoverageError
from cvn_assets.core.hashing import fingerprint
from cvn_assets.harness.registry import check_plugin_name, discover_entry_points, import_folder, qualname

BASE = "base"  # today's features: every sweep's default feature set


@dataclass(frozen=True)
class FeatureInputs:
    """What a feature set computes from: the crypto's whole series and the required cryptos' series."""

    crypto: str
    bars: pd.DataFrame
    params: Mapping[str, Any]
    others: Mapping[str, pd.DataFrame] = field(default_factory=dict)


Compute = Callable[[FeatureInputs], pd.DataFrame]
Columns = Callable[[Mapping[str, Any], str], Sequence[str]]  # (params, crypto) -> column names
Warmup = Callable[[Mapping[str, Any]], int]  # params -> bars


@dataclass(frozen=True)
class FeatureSetSpec:
    name: str
    compute: Compute
    columns: Columns
    warmup: Warmup
    params: Mapping[str, Any]
    requires: tuple[str, ...]
    code_version: str

    def resolve_params(self, overrides: Mapping[str, Any], windows: Sequence[int]) -> dict[str, Any]:
        """Its defaults, `windows` from the sweep, then the sweep's overrides (an unknown one is an error)."""
        unknown = sorted(set(overrides) - set(self.params))
        if unknown:
            raise ConfigError(
                f"feature_sets.{self.name}.params.{unknown[0]}",
                f"feature set '{self.name}' has no parameter '{unknown[0]}'; its parameters: "
                f"{sorted(self.params)}",
            )
        params = dict(self.params)
        if "windows" in params:
            params["windows"] = sorted(set(windows))
        return params | dict(overrides)

    def required_for(self, crypto: str) -> tuple[str, ...]:
        """The other cryptos whose bars it reads for `crypto` (a crypto never requires itself)."""
        return tuple(c for c in self.requires if c != crypto)

    def feature_hash(self, params: Mapping[str, Any]) -> str:
        return fingerprint(
            {"feature_set": self.name, "params": dict(params), "code_version": self.code_version}
        )

    def run(self, crypto: str, bars: pd.DataFrame, params: Mapping[str, Any],
            others: Mapping[str, pd.DataFrame]) -> pd.DataFrame:  # fmt: skip
        """The features, checked against the declared columns and index (one row per bar of `bars`)."""
        missing = [c for c in self.required_for(crypto) if c not in others]
        if missing:
            raise DataCoverageError(f"feature set '{self.name}' of {crypto} needs the bars of {missing}")
        frame = self.compute(FeatureInputs(crypto, bars, params, others))
        declared = list(self.columns(params, crypto))
        if list(frame.columns) != declared or not frame.index.equals(bars.index):
            raise ValueError(
                f"feature set '{self.name}' produced columns {list(frame.columns)[:5]}... on "
                f"{len(frame)} rows; it declares {declared[:5]}... on the {len(bars)} bars of {crypto}"
            )
        return frame


_FEATURE_SETS: dict[str, FeatureSetSpec] = {}
_discovered = False


def register_feature_set(
    name: str,
    *,
    columns: Columns,
    warmup: Warmup,
    params: Mapping[str, Any] | None = None,
    requires: Sequence[str] = (),
    code_version: str,
) -> Callable[[Compute], Compute]:
    check_plugin_name("feature set", name)

    def decorate(compute: Compute) -> Compute:
        existing = _FEATURE_SETS.get(name)
        if existing is not None and qualname(existing.compute) != qualname(compute):
            raise ValueError(f"feature set '{name}' is registered twice")
        _FEATURE_SETS[name] = FeatureSetSpec(
            name, compute, columns, warmup, dict(params or {}), tuple(requires), code_version
        )
        return compute

    return decorate


def discover(force: bool = False) -> None:
    """Import the in-tree feature sets, then every plugin (once per process unless forced)."""
    global _discovered
    if _discovered and not force:
        return
    from cvn_assets.features import sets

    import_folder(sets, "feature set")
    discover_entry_points(force)  # a plugin may register a feature set (not the model libraries)
    _discovered = True


def registered_feature_sets() -> list[str]:
    discover()
    return sorted(_FEATURE_SETS)


def get_feature_set(name: str) -> FeatureSetSpec:
    discover()
    if name not in _FEATURE_SETS:
        raise KeyError(f"no feature set registered as '{name}'; registered: {sorted(_FEATURE_SETS)}")
    return _FEATURE_SETS[name]
