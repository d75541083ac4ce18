"""A sweep's jobs: ohlcv per crypto, the sweep per crypto x fold (every crypto x fold asset and every check
of the partition, the diagnostics aside), the report over all partitions, the audit (the sweep-wide checks
alone, to re-audit without materializing), and the diagnostics' audits of cells, full and light."""

from __future__ import annotations

import dagster as dg

from cvn_assets.defs.capture import FULL, LIGHT
from cvn_assets.defs.checks import AUDITS
from cvn_assets.defs.diagnostic_assets import audit_tags, capture_keys, subjects
from cvn_assets.defs.executors import executor_for, executor_tags
from cvn_assets.defs.sweep import Sweep


def audit_check_keys(sweep: Sweep) -> list[dg.AssetCheckKey]:
    """The sweep-wide checks: the results-store audits and the fallback rate."""
    keys = sweep.keys
    return [keys.fallback_rate_check, *(dg.AssetCheckKey(keys.results_store, name) for name in AUDITS)]


def build_jobs(sweep: Sweep) -> list[dg.UnresolvedAssetJobDefinition]:
    keys, tags = sweep.keys, sweep.run_tags()
    diagnostics = list(subjects(sweep))
    downstream = (
        dg.AssetSelection.key_prefixes([sweep.name])
        - dg.AssetSelection.assets(keys.ohlcv, keys.results_store, keys.perf, keys.report, *diagnostics)
        - dg.AssetSelection.checks(*audit_check_keys(sweep))
    )
    audit = dg.AssetSelection.assets(*capture_keys(sweep), *diagnostics) - dg.AssetSelection.checks(
        *audit_check_keys(sweep)
    )
    # The crypto x fold job runs its steps where `operations.executor` says; the other jobs are small and
    # keep the code location's in-process executor.
    kind = sweep.config.operations.executor
    return [
        dg.define_asset_job(
            keys.ohlcv_job,
            selection=dg.AssetSelection.assets(keys.ohlcv),
            partitions_def=keys.crypto_partitions,
            tags=tags,
            description=f"Load and validate the bars of one crypto of sweep {sweep.name}; new folds follow "
            "from them (the new-folds sensor).",
        ),
        dg.define_asset_job(
            keys.sweep_job,
            selection=downstream,
            partitions_def=keys.crypto_fold_partitions,
            tags={**tags, **executor_tags(kind)},
            executor_def=executor_for(kind, {sweep.name: sweep}),
            description=f"Features, dataset, hyperparameters, models, predictions, baselines and economics of "
            f"one crypto x fold of sweep {sweep.name}, with every check of the partition.",
        ),
        dg.define_asset_job(
            keys.report_job,
            selection=dg.AssetSelection.assets(keys.report, keys.perf)
            | dg.AssetSelection.checks(*audit_check_keys(sweep)),
            tags=tags,
            description=f"What closes a sweep of {sweep.name}: the proxy-vs-economy report over all its "
            "rows, the sweep-wide audits of the results store, and sweep_perf (all three also refresh by "
            "themselves when the rows change).",
        ),
        *(
            dg.define_asset_job(
                name,
                selection=audit,
                partitions_def=keys.crypto_fold_partitions,
                tags={**tags, **audit_tags(mode)},
                description=f"Re-audit cells of sweep {sweep.name} ({what}): every diagnostic on the captured "
                "fold, which is reused where current (changed code or data is computed again, exactly what "
                "changed). `cvn audit` launches the same.",
            )
            for name, mode, what in (
                (keys.diagnostics_job, FULL, "a full audit, with the reproducibility anchor"),
                (
                    keys.light_diagnostics_job,
                    LIGHT,
                    "a light audit: the anchor is skipped, and the audit shows as downgraded",
                ),
            )
            if diagnostics
        ),
        dg.define_asset_job(
            keys.audit_job,
            selection=dg.AssetSelection.checks(*audit_check_keys(sweep)),
            tags=tags,
            description=f"Re-audit sweep {sweep.name} without materializing: the results-store checks over "
            "all its rows, and the hyperparameter fallback rate.",
        ),
    ]
