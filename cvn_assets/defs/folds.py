"""Folds grow with the data: new fold keys are planned from what the `ohlcv` materializations recorded
(each crypto's first and last bar), never from the data itself, so planning is cheap and loading the code
location reads nothing. The sensor adds the keys of folds the data now covers and requests their
crypto x fold partitions in the same tick. No fold is planned until every crypto has been loaded (or
rejected): the folds' shared origin and end depend on every crypto's span. A fold key of the long form an
instance holds from before the short form (`f003_2019-09-24_2019-12-23`) is replaced by the short one
(`f03_2019-09-24`) in the same tick: its partitions run again under the new key and replace their rows,
which the store's migration 0007 has already renamed. `cvn sweep` leaves new folds
to the sensor and adds them through the same function only when the sensor is stopped."""

from __future__ import annotations

from dataclasses import dataclass, field

import dagster as dg
import pandas as pd

from cvn_assets.core.folds import current_fold_id
from cvn_assets.core.sweep_plan import DataSpan, SweepPlan, plan_from_spans
from cvn_assets.defs.data_assets import FIRST_BAR, LAST_BAR, REJECTED
from cvn_assets.defs.keys import partition_key
from cvn_assets.defs.sweep import Sweep


@dataclass(frozen=True)
class RecordedData:
    spans: dict[str, DataSpan]  # each loaded crypto's first and last bar
    rejected: dict[str, str]  # cryptos whose latest ohlcv attempt rejected the data, and why
    pending: list[str]  # cryptos never loaded yet


def recorded_data(instance: dg.DagsterInstance, sweep: Sweep) -> RecordedData:
    """What the latest `ohlcv` materialization (or rejection) of each crypto recorded."""
    key = sweep.keys.ohlcv
    spans: dict[str, DataSpan] = {}
    rejected: dict[str, str] = {}
    pending: list[str] = []
    for crypto in sweep.config.cryptos:
        where = dg.AssetRecordsFilter(asset_key=key, asset_partitions=[crypto])
        loaded = instance.fetch_materializations(where, limit=1).records
        failed = instance.fetch_observations(where, limit=1).records
        if failed and (not loaded or failed[0].storage_id > loaded[0].storage_id):
            observation = failed[0].asset_observation
            rejected[crypto] = str(observation.metadata[REJECTED].value) if observation else "rejected"
        elif loaded and loaded[0].asset_materialization is not None:
            meta = loaded[0].asset_materialization.metadata
            spans[crypto] = DataSpan(
                pd.Timestamp(str(meta[FIRST_BAR].value)), pd.Timestamp(str(meta[LAST_BAR].value))
            )
        else:
            pending.append(crypto)
    return RecordedData(spans, rejected, pending)


@dataclass(frozen=True)
class FoldUpdate:
    plan: SweepPlan
    new_fold_ids: list[str]
    # Long-form keys (from before the short form) of folds in the plan: removed when the new keys are added.
    superseded: list[str] = field(default_factory=list)

    def partitions(self, fold_ids: list[str] | None = None) -> list[dg.MultiPartitionKey]:
        """crypto x fold keys of the planned cryptos, for `fold_ids` (default: the new folds)."""
        folds = self.new_fold_ids if fold_ids is None else fold_ids
        return [partition_key(c, f) for f in folds for c in self.plan.cryptos]


def fold_update(instance: dg.DagsterInstance, sweep: Sweep) -> FoldUpdate:
    """The folds the recorded data covers, and which of them are new. No fold is planned while a crypto
    has never been loaded: the shared origin and end depend on every crypto's span."""
    data = recorded_data(instance, sweep)
    if data.pending:
        waiting = dict.fromkeys(data.pending, "its ohlcv partition has not been materialized yet")
        return FoldUpdate(SweepPlan(sweep.config, (), data.rejected | waiting), [])
    plan = plan_from_spans(sweep.config, data.spans, data.rejected)
    existing = instance.get_dynamic_partitions(sweep.keys.folds_partitions.name)
    known, planned = set(existing), set(plan.fold_ids)
    superseded = [k for k in existing if current_fold_id(k) != k and current_fold_id(k) in planned]
    return FoldUpdate(plan, [f for f in plan.fold_ids if f not in known], superseded)


def add_new_folds(instance: dg.DagsterInstance, sweep: Sweep) -> FoldUpdate:
    """Add the fold keys the recorded data now covers (what the sensor does, for `cvn sweep`)."""
    update = fold_update(instance, sweep)
    name = sweep.keys.folds_partitions.name
    if update.new_fold_ids:
        instance.add_dynamic_partitions(name, update.new_fold_ids)
    for key in update.superseded:
        instance.delete_dynamic_partition(name, key)
    return update


def build_fold_sensor(sweep: Sweep) -> dg.SensorDefinition:
    keys = sweep.keys

    @dg.sensor(
        name=keys.fold_sensor,
        job_name=keys.sweep_job,
        minimum_interval_seconds=5,  # cheap: it reads the instance, never the data
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Adds the folds of sweep {sweep.name} that every crypto's recorded bars now cover (test "
        "window plus the labels' horizon) and requests their crypto x fold partitions.",
    )
    def new_folds(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        update = fold_update(context.instance, sweep)
        for crypto, why in update.plan.rejected.items():
            context.log.warning(f"{sweep.name}: {crypto} is left out of the fold plan: {why}")
        if not update.new_fold_ids and not update.superseded:
            return dg.SkipReason(f"no new fold: {len(update.plan.folds)} folds cover the recorded data")
        requests: list[dg.AddDynamicPartitionsRequest | dg.DeleteDynamicPartitionsRequest] = [
            keys.folds_partitions.build_add_request(update.new_fold_ids)
        ]
        if update.superseded:
            requests.append(keys.folds_partitions.build_delete_request(update.superseded))
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(partition_key=key, run_key=f"{sweep.name}:{key}", tags=sweep.run_tags())
                for key in update.partitions()
            ],
            dynamic_partitions_requests=requests,
        )

    return new_folds
