"""Scheduled backfills as data grows: Dagster's declarative automation, one sensor per sweep.

On every tick of the sweep's cron (`operations.cron`, Mondays 06:00 UTC by default):
  * `ohlcv` is reloaded for every crypto, so bars that arrived since are read; the new-folds sensor adds
    the folds they complete and runs them at once;
  * every crypto x fold partition of an asset that is missing, or stale (its code version changed, or the
    data version of an upstream asset of the partition changed), is requested once the reload is done:
    at most `operations.max_partitions_per_tick` partitions per evaluation, oldest folds first, the rest
    on the next evaluations (every 30 s). An asset whose parent is requested because it is missing or its
    code changed goes with it, so a partition is one run. A partition that failed is missing, so the next
    cron tick requests it again;
  * when everything is fresh, no partition is requested.

Appended bars do not make an existing fold stale here: they never change its rows (see
test_appending_bars_adds_folds_and_never_changes_one), so re-running every old fold each week would only
cost time. Revised history is taken in by re-materializing the crypto's partitions (the UI marks them
stale).

`build_schedule_from_partitioned_job` rejects a static x dynamic partitions definition; automation
conditions evaluate on it. The conditions are Dagster's own plus `OldestPartitions`, which bounds an
evaluation. The sensor that evaluates them runs by default (Dagster's default automation sensor starts
stopped).
"""

from __future__ import annotations

import dagster as dg

from cvn_assets.core.errors import ConfigError
from cvn_assets.defs.keys import split_partition_key
from cvn_assets.defs.sweep import Sweep

AC = dg.AutomationCondition
# How often the sensor evaluates: a cron tick is acted on within this many seconds, and each later
# evaluation takes the next batch of partitions.
EVALUATION_INTERVAL_S = 30


class OldestPartitions(dg.AutomationCondition):
    """True for at most `limit` of its candidates: the oldest folds first, then by crypto, so the assets of a
    partition pick the same partitions from the same candidates. Put it last in an AND: its candidates are
    what the other operands left."""

    def __init__(self, limit: int) -> None:
        self.limit = limit

    @property
    def name(self) -> str:
        return f"oldest_{self.limit}_partitions"

    @property
    def description(self) -> str:
        return f"at most {self.limit} crypto x fold partitions per evaluation, oldest folds first"

    def evaluate(self, context: dg.AutomationContext) -> dg.AutomationResult:  # type: ignore[override]
        candidates = context.candidate_subset
        keys = candidates.expensively_compute_partition_keys()
        if len(keys) <= self.limit:
            return dg.AutomationResult(context, candidates)
        chosen = sorted(keys, key=lambda key: split_partition_key(key)[::-1])[: self.limit]  # fold, crypto
        subset = context.asset_graph_view.compute_intersection_with_partition_keys(set(chosen), candidates)
        return dg.AutomationResult(context, subset)


def _handled() -> dg.AutomationCondition:
    return (AC.newly_requested() | AC.newly_updated() | AC.initial_evaluation()).with_label("handled")


def reload_bars(sweep: Sweep) -> dg.AutomationCondition:
    """ohlcv: once per cron tick, so bars that arrived since are read."""
    ops = sweep.config.operations
    return (_cron_tick(sweep).since(_handled()) & ~AC.in_progress()).with_label(
        f"reload the bars on {ops.cron} ({ops.timezone})"
    )


def refresh_partitions(sweep: Sweep) -> dg.AutomationCondition:
    """Every crypto x fold asset: requested after a cron tick while missing or stale, in bounded batches."""
    ops = sweep.config.operations
    bars = dg.AssetSelection.assets(sweep.keys.ohlcv)
    own_work = (AC.missing() | AC.code_version_changed().since(_handled())).with_label(
        "missing, or its code changed"
    )
    # Not ohlcv's: appended bars never change an existing fold (the fold's rows and data hash stay the
    # same), so a reload adds folds (the new-folds sensor) without re-running the old ones.
    upstream_data_changed = (
        AC.any_deps_match(AC.data_version_changed()).ignore(bars).since(_handled())
    ).with_label("an upstream data version changed")
    # With a parent requested because it is missing or its code changed: one run per partition.
    with_parent = AC.any_deps_match(AC.will_be_requested() & own_work).with_label(
        "a parent is requested because it is missing or its code changed"
    )
    waiting = (
        AC.in_progress() | AC.any_deps_match(AC.in_progress() | (AC.missing() & ~AC.will_be_requested()))
    ).with_label("in progress, or waiting for an upstream")
    return (
        _cron_tick(sweep).since(_handled()).with_label("a cron tick since it was last handled")
        & (own_work | upstream_data_changed | with_parent)
        & ~waiting
        & OldestPartitions(ops.max_partitions_per_tick)
    ).with_label(f"missing or stale after {ops.cron} ({ops.timezone})")


def _cron_tick(sweep: Sweep) -> dg.AutomationCondition:
    ops = sweep.config.operations
    try:
        return AC.cron_tick_passed(ops.cron, ops.timezone)
    except Exception:  # Dagster's CheckError: the only thing that fails here is a cron that does not parse
        raise ConfigError(
            "operations.cron",
            f"{ops.cron!r} is not a cron schedule: write five fields, e.g. '0 6 * * 1' for Mondays at 06:00",
            source=f"sweep {sweep.name}",
        ) from None


def run_with_asset() -> dg.AutomationCondition:
    """A partition's checks: evaluated in the run that materializes the asset they check."""
    return AC.any_deps_match(AC.will_be_requested()).with_label("its asset is requested")


def run_with_report(sweep: Sweep) -> dg.AutomationCondition:
    """What a sweep closes with (the sweep-wide audits, sweep_perf): requested with the report, so every
    refresh of the report over the sweep's rows also re-audits them."""
    report = dg.AssetSelection.assets(sweep.keys.report)
    return AC.any_deps_match(AC.will_be_requested()).allow(report).with_label("the report is requested")


def with_automation(sweep: Sweep, assets: list[dg.AssetsDefinition]) -> list[dg.AssetsDefinition]:
    """The sweep's assets with their automation conditions: ohlcv reloads, the rest refresh."""
    reload, refresh = reload_bars(sweep), refresh_partitions(sweep)

    def condition(spec: dg.AssetSpec) -> dg.AssetSpec:
        if spec.key == sweep.keys.results_store:  # the external results database: nothing to run
            return spec
        return spec.replace_attributes(
            automation_condition=reload if spec.key == sweep.keys.ohlcv else refresh
        )

    return list(dg.map_asset_specs(condition, assets))


def build_automation_sensor(sweep: Sweep) -> dg.AutomationConditionSensorDefinition:
    return dg.AutomationConditionSensorDefinition(
        name=f"{sweep.name}_scheduled_refresh",
        target=dg.AssetSelection.key_prefixes([sweep.name]),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=EVALUATION_INTERVAL_S,
        run_tags=sweep.run_tags(),
        use_user_code_server=True,  # OldestPartitions is our own condition class
        description=f"Sweep {sweep.name} on {sweep.config.operations.cron} "
        f"({sweep.config.operations.timezone}): reloads the bars, then requests every crypto x fold "
        f"partition that is missing or stale, {sweep.config.operations.max_partitions_per_tick} per "
        "evaluation at most.",
    )
