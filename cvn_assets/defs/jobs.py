"""Jobs: ohlcv per crypto, and the sweep per crypto x fold (every crypto x fold asset and its checks)."""

from __future__ import annotations

import dagster as dg

from cvn_assets.core.sweep_plan import SweepPlan
from cvn_assets.defs.keys import COVERAGE_CHECK, OHLCV, crypto_fold_partitions, crypto_partitions

OHLCV_JOB = "ohlcv_job"
SWEEP_JOB = "sweep_job"
AUDIT_JOB = "results_audit_job"


def build_jobs(plan: SweepPlan) -> list[dg.UnresolvedAssetJobDefinition]:
    return [
        dg.define_asset_job(
            OHLCV_JOB,
            selection=dg.AssetSelection.assets(OHLCV),
            partitions_def=crypto_partitions(plan),
            description="Load and validate the bars of one crypto.",
        ),
        dg.define_asset_job(
            SWEEP_JOB,
            # The results-store checks audit the whole sweep, so a sweep runs them once at its end
            # (results_audit_job) instead of once per partition; a partition materialized on its own from
            # the UI still runs them. The hyperparameter coverage check runs in every partition: it blocks
            # training on an incomplete configuration.
            selection=(dg.AssetSelection.all() - dg.AssetSelection.assets(OHLCV)).without_checks()
            | dg.AssetSelection.checks(COVERAGE_CHECK),
            partitions_def=crypto_fold_partitions(plan),
            description="Features, dataset, hyperparameters, models, predictions, baselines and economics of one "
            "crypto x fold.",
        ),
        dg.define_asset_job(
            AUDIT_JOB,
            selection=dg.AssetSelection.all_asset_checks(),
            description="The results-store checks alone: after a sweep, or to re-audit without materializing.",
        ),
    ]
