"""Each asset's Dagster code version: the code that computes it and the code versions of what it reads.

A version hashes the asset's step function and the cvn_assets modules that step reaches (`step_version`),
chained with its upstream assets' versions, so editing the feature code marks features and everything
downstream stale at once, while editing the CLI (or any code no asset runs) leaves every partition fresh.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property

from cvn_assets import steps
from cvn_assets.core.config import BASE_FEATURE_SET, SweepConfig
from cvn_assets.diagnostics.audit import audit_one
from cvn_assets.diagnostics.registry import get_diagnostic
from cvn_assets.features.registry import get_feature_set
from cvn_assets.harness.registry import get_ensemble, get_model
from cvn_assets.report.page import build_page
from cvn_assets.version import step_version


def _chain(own: str, *upstream: str) -> str:
    return hashlib.sha256("/".join([own, *upstream]).encode()).hexdigest()[:12]


def _unless_base(feature_set: str) -> tuple[str, ...]:
    # The feature set a model trains on is part of what it computes; on base the version is as it was.
    return () if feature_set == BASE_FEATURE_SET else (feature_set,)


@dataclass(frozen=True)
class CodeVersions:
    config: SweepConfig

    @cached_property
    def ohlcv(self) -> str:
        return step_version(steps.ohlcv)

    def features(self, feature_set: str) -> str:
        return _chain(step_version(steps.features, get_feature_set(feature_set).compute), self.ohlcv)

    @cached_property
    def fold_dataset(self) -> str:
        sets = [self.features(name) for name in steps.feature_set_names(self.config)]
        return _chain(step_version(steps.fold_dataset), self.ohlcv, *sets)

    @cached_property
    def hyperparameters(self) -> str:
        return step_version(steps.hyperparameters)

    def model(self, name: str, feature_set: str = BASE_FEATURE_SET) -> str:
        own = step_version(steps.train_model, get_model(name))
        return _chain(own, self.fold_dataset, self.hyperparameters, *_unless_base(feature_set))

    def predictions(self, name: str, feature_set: str = BASE_FEATURE_SET) -> str:
        return _chain(step_version(steps.predictions), self.model(name, feature_set))

    def ensemble(self, name: str, feature_set: str = BASE_FEATURE_SET) -> str:
        spec = get_ensemble(name)
        bases = [self.predictions(m, feature_set) for m in spec.base_models]
        return _chain(
            step_version(steps.ensemble, spec.factory), self.fold_dataset, self.hyperparameters, *bases
        )

    @cached_property
    def baselines(self) -> str:
        return _chain(step_version(steps.baseline_rows), self.fold_dataset)

    @cached_property
    def economics(self) -> str:
        variants = [
            (self.ensemble if v.is_ensemble else self.predictions)(v.name, v.feature_set)
            for v in steps.variants(self.config)
        ]
        return _chain(step_version(steps.result_rows), self.baselines, *variants)

    def diagnostic(self, name: str, model: str | None = None, feature_set: str = BASE_FEATURE_SET) -> str:
        """Its own code (and the audit's), chained with what it reads: the fold dataset, and the model
        (and for the anchor the rows) of a per-model diagnostic."""
        spec = get_diagnostic(name)
        upstream = [self.fold_dataset]
        if model is not None:
            upstream.append(self.model(model, feature_set))
        if "stored_rows" in spec.inputs:
            upstream.append(self.economics)
        own = step_version(steps.diagnose, spec.diagnose, audit_one)
        return _chain(own, spec.code_version, *upstream)

    @cached_property
    def report(self) -> str:
        # build_page: the statistics, the tables and the plots are the report's code too.
        return _chain(step_version(steps.report_cell, build_page), self.economics)
