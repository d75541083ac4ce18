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
from cvn_assets.core.config import SweepConfig
from cvn_assets.harness.registry import get_ensemble, get_model
from cvn_assets.report.page import build_page
from cvn_assets.version import step_version


def _chain(own: str, *upstream: str) -> str:
    return hashlib.sha256("/".join([own, *upstream]).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class CodeVersions:
    config: SweepConfig

    @cached_property
    def ohlcv(self) -> str:
        return step_version(steps.ohlcv)

    @cached_property
    def features(self) -> str:
        return _chain(step_version(steps.features), self.ohlcv)

    @cached_property
    def fold_dataset(self) -> str:
        return _chain(step_version(steps.fold_dataset), self.features)

    @cached_property
    def hyperparameters(self) -> str:
        return step_version(steps.hyperparameters)

    def model(self, name: str) -> str:
        return _chain(
            step_version(steps.train_model, get_model(name)), self.fold_dataset, self.hyperparameters
        )

    def predictions(self, name: str) -> str:
        return _chain(step_version(steps.predictions), self.model(name))

    def ensemble(self, name: str) -> str:
        spec = get_ensemble(name)
        bases = [self.predictions(m) for m in spec.base_models]
        return _chain(
            step_version(steps.ensemble, spec.factory), self.fold_dataset, self.hyperparameters, *bases
        )

    @cached_property
    def baselines(self) -> str:
        return _chain(step_version(steps.baseline_rows), self.fold_dataset)

    @cached_property
    def economics(self) -> str:
        variants = [self.predictions(m) for m in steps.model_names(self.config)]
        variants += [self.ensemble(e) for e in steps.ensemble_names(self.config)]
        return _chain(step_version(steps.result_rows), self.baselines, *variants)

    @cached_property
    def report(self) -> str:
        # build_page: the statistics, the tables and the plots are the report's code too.
        return _chain(step_version(steps.report_cell, build_page), self.economics)
