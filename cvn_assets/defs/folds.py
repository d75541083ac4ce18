"""Folds grow with the data: new fold keys are planned from what the `ohlcv` materializations recorded
(each crypto's first and last bar), never from the data itself, so planning is cheap and loading the code
location reads nothing. The sensor adds the keys of folds the data now covers and requests their
crypto x fold partitions in the same tick; `cvn sweep` adds them through the same function."""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg
import pandas as pd

from cvn_assets.core.sweep_plan import DataSpan, SweepPlan, plan_from_spans
from cvn_assets.defs.data_assets import FIRST_BAR, LAST_BAR
from cvn_assets.defs.keys import partition_key
from cvn_assets.defs.sweep import Sweep


def recorded_spans(instance: dg.DagsterInstance, sweep: Sweep) -> dict[str, DataSpan]:
    """Each crypto's span as its latest `ohlcv` materialization recorded it (cryptos never materialized
    are left out)."""
    spans: dict[str, DataSpan] = {}
    for crypto in sweep.config.cryptos:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=sweep.keys.ohlcv, asset_partitions=[crypto]), limit=1
        ).records
        materialization = records[0].asset_materialization if records else None
        if materialization is None or FIRST_BAR not in materialization.metadata:
            continue
        meta = materialization.metadata
        spans[crypto] = DataSpan(
            pd.Timestamp(str(meta[FIRST_BAR].value)), pd.Timestamp(str(meta[LAST_BAR].value))
        )
    return spans


@dataclass(frozen=True)
class FoldUpdate:
    plan: SweepPlan
    new_fold_ids: list[str]

    def partitions(self, fold_ids: list[str] | None = None) -> list[dg.MultiPartitionKey]:
        """crypto x fold keys of the planned cryptos, for `fold_ids` (default: the new folds)."""
        folds = self.new_fold_ids if fold_ids is None else fold_ids
        return [partition_key(c, f) for f in folds for c in self.plan.cryptos]


def fold_update(instance: dg.DagsterInstance, sweep: Sweep) -> FoldUpdate:
    plan = plan_from_spans(sweep.config, recorded_spans(instance, sweep))
    existing = set(instance.get_dynamic_partitions(sweep.keys.folds_partitions.name))
    return FoldUpdate(plan, [f for f in plan.fold_ids if f not in existing])


def add_new_folds(instance: dg.DagsterInstance, sweep: Sweep) -> FoldUpdate:
    """Add the fold keys the recorded data now covers (what the sensor does, for `cvn sweep`)."""
    update = fold_update(instance, sweep)
    if update.new_fold_ids:
        instance.add_dynamic_partitions(sweep.keys.folds_partitions.name, update.new_fold_ids)
    return update


def build_fold_sensor(sweep: Sweep) -> dg.SensorDefinition:
    keys = sweep.keys

    @dg.sensor(
        name=keys.fold_sensor,
        job_name=keys.sweep_job,
        minimum_interval_seconds=10,  # cheap: it reads the instance, never the data
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Adds the folds of sweep {sweep.name} that every crypto's recorded bars now cover (test "
        "window plus the labels' horizon) and requests their crypto x fold partitions.",
    )
    def new_folds(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        update = fold_update(context.instance, sweep)
        for crypto, why in update.plan.rejected.items():
            context.log.warning(f"{sweep.name}: {crypto} is left out of the fold plan: {why}")
        if not update.new_fold_ids:
            return dg.SkipReason(f"no new fold: {len(update.plan.folds)} folds cover the recorded data")
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(partition_key=key, run_key=f"{sweep.name}:{key}", tags=sweep.run_tags())
                for key in update.partitions()
            ],
            dynamic_partitions_requests=[keys.folds_partitions.build_add_request(update.new_fold_ids)],
        )

    return new_folds
