"""Jobs: ohlcv per crypto, and the sweep per crypto x fold (every crypto x fold asset and its checks)."""

from __future__ import annotations

import dagster as dg

from cvn_assets.core.sweep_plan import SweepPlan
from cvn_assets.defs.keys import OHLCV, crypto_fold_partitions, crypto_partitions

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
            selection=dg.AssetSelection.all() - dg.AssetSelection.assets(OHLCV),
            partitions_def=crypto_fold_partitions(plan),
            description="Features, dataset, models, predictions, baselines and economics of one crypto x fold.",
        ),
        dg.define_asset_job(
            AUDIT_JOB,
            selection=dg.AssetSelection.all_asset_checks(),
            description="Re-run the results-store checks alone, without materializing anything.",
        ),
    ]
