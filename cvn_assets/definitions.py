"""Assembles the code location's Definitions from a sweep plan.

`dagster dev` / `workspace.yaml` load the module-level `defs`, built from the config at CVN_SWEEP_CONFIG
(the packaged default when unset). Tests and the CLI call `build_definitions` with their own plan.
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from cvn_assets.config import load_config
from cvn_assets.core.sweep_plan import SweepPlan, plan_sweep
from cvn_assets.defs.checks import build_checks
from cvn_assets.defs.data_assets import build_data_assets
from cvn_assets.defs.economics_assets import build_economics_assets
from cvn_assets.defs.hyperparam_assets import build_hyperparameter_assets
from cvn_assets.defs.jobs import build_jobs
from cvn_assets.defs.model_assets import build_model_assets
from cvn_assets.defs.resources import ResultsStore, results_store_from_env
from cvn_assets.store.engine import cvn_home


def build_definitions(
    plan: SweepPlan, *, artifacts_dir: Path | None = None, results_store: ResultsStore | None = None
) -> dg.Definitions:
    artifacts = artifacts_dir or cvn_home() / "artifacts"
    hp_asset, *hp_checks = build_hyperparameter_assets(plan)
    return dg.Definitions(
        assets=[
            *build_data_assets(plan),
            hp_asset,
            *build_model_assets(plan),
            *build_economics_assets(plan),
        ],
        asset_checks=[*hp_checks, *build_checks(plan)],
        jobs=build_jobs(plan),
        resources={
            "io_manager": dg.FilesystemIOManager(base_dir=str(artifacts)),
            "results_store": results_store or results_store_from_env(),
        },
    )


def load_plan() -> SweepPlan:
    path = os.environ.get("CVN_SWEEP_CONFIG")
    return plan_sweep(load_config(path), source=path)


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(load_plan())
