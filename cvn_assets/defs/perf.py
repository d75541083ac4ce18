"""Where a sweep's time goes, read from the Dagster event log: each finished run of the sweep since a moment,
its wall time (from its launch, so the run process's start counts, to its end), and each step's time
(STEP_START to its end). `cvn perf` prints the figures; the sweep's
`sweep_perf` asset records them as numeric metadata, so the UI plots them over time. The arithmetic is in
`core/timings.py`."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import dagster as dg
import pandas as pd

from cvn_assets.core.timeframes import parse_duration
from cvn_assets.core.timings import (
    DEFAULT_WINDOW,
    RunSummary,
    RunTiming,
    StepTiming,
    per_asset,
    per_model,
    per_run,
)
from cvn_assets.defs.automation import run_with_report
from cvn_assets.defs.diagnostic_assets import ELAPSED, subjects
from cvn_assets.defs.metadata import rows_table
from cvn_assets.defs.sweep import Sweep, sweep_of_run

STEP_ENDS = {dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE}
FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE]
MODEL_GROUPS = {"model": "_model", "predictions": "_predictions", "ensemble": ""}


@dataclass(frozen=True)
class SweepPerf:
    sweep: str
    since: datetime
    runs: RunSummary
    assets: pd.DataFrame  # core.timings.COLUMNS, one row per asset
    models: pd.DataFrame  # the same columns, one row per model
    # The same columns, one row per (diagnostic, model): each verdict's own time inside the cell's
    # diagnostics step (the capture it reused or recomputed is in `assets`).
    diagnostics: pd.DataFrame


def step_asset(sweep: Sweep, step_key: str) -> tuple[str, str | None]:
    """The asset a step materializes, as its path inside the sweep, and the model it trains or predicts
    with: `demo__model__xgboost_model` -> (`model/xgboost_model`, `xgboost`). A check step keeps its name."""
    prefix = f"{sweep.name}__"
    if not step_key.startswith(prefix):
        return step_key.removeprefix(f"{sweep.name}_"), None
    path = step_key[len(prefix) :].split("__")
    group, name = (path[0], path[-1]) if len(path) > 1 else (None, path[0])
    model = name.removesuffix(MODEL_GROUPS[group]) if group in MODEL_GROUPS else None
    return "/".join(path), model


def sweep_timings(
    instance: dg.DagsterInstance, sweep: Sweep, since: datetime
) -> tuple[list[RunTiming], list[StepTiming]]:
    """The sweep's runs that finished since `since`, however launched, and their steps."""
    runs: list[RunTiming] = []
    steps: list[StepTiming] = []
    records = instance.get_run_records(dg.RunsFilter(statuses=FINISHED, updated_after=since))
    for record in records:
        run = record.dagster_run
        if (
            record.start_time is None
            or record.end_time is None
            or sweep_of_run(run, {sweep.name: sweep}) is None
        ):
            continue
        started: dict[str, float] = {}
        first_step: float | None = None
        launched = record.start_time  # from the launch (process start included) where the run was queued
        events = instance.get_records_for_run(
            run.run_id, of_type={dg.DagsterEventType.RUN_STARTING, dg.DagsterEventType.STEP_START, *STEP_ENDS}
        ).records
        for event in events:
            entry = event.event_log_entry
            kind = entry.dagster_event.event_type if entry.dagster_event else None
            if kind == dg.DagsterEventType.RUN_STARTING:
                launched = min(launched, entry.timestamp)
            elif entry.step_key is None:
                continue
            elif kind == dg.DagsterEventType.STEP_START:
                started[entry.step_key] = entry.timestamp
                first_step = entry.timestamp if first_step is None else min(first_step, entry.timestamp)
            elif entry.step_key in started:
                asset, model = step_asset(sweep, entry.step_key)
                steps.append(
                    StepTiming(run.run_id, asset, model, entry.timestamp - started.pop(entry.step_key))
                )
        start = first_step - launched if first_step is not None else None
        runs.append(RunTiming(run.run_id, run.job_name, record.end_time - launched, start))
    return runs, steps


def diagnostic_timings(instance: dg.DagsterInstance, sweep: Sweep, since: datetime) -> list[StepTiming]:
    """Each diagnostic's time on each cell (and model) since `since`, from its materializations' metadata."""
    found: list[StepTiming] = []
    for key, subject in subjects(sweep).items():
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, after_timestamp=since.timestamp()), limit=10_000
        ).records
        for record in records:
            entry = (
                record.asset_materialization.metadata.get(ELAPSED) if record.asset_materialization else None
            )
            if entry is not None:
                model = subject.model[0] if subject.model else None
                found.append(
                    StepTiming(record.run_id, f"diagnostic {subject.diagnostic}", model, float(entry.value))
                )
    return found


def sweep_perf(instance: dg.DagsterInstance, sweep: Sweep, window: timedelta) -> SweepPerf:
    since = datetime.now(UTC) - window
    runs, steps = sweep_timings(instance, sweep, since)
    return SweepPerf(
        sweep.name,
        since,
        per_run(runs, steps),
        per_asset(steps),
        per_model(steps),
        per_asset(diagnostic_timings(instance, sweep, since)),
    )


def perf_metadata(perf: SweepPerf) -> dict[str, dg.MetadataValue]:
    """Numeric metadata the UI plots across materializations: per asset and per model p50, p95 and max
    (seconds), the run counts, and the share of run time outside the steps."""
    meta: dict[str, dg.MetadataValue] = {"runs": dg.MetadataValue.int(perf.runs.runs)}
    if perf.runs.runs:
        meta |= {
            "run p50 s": _seconds(perf.runs.p50_s),
            "run p95 s": _seconds(perf.runs.p95_s),
            "run max s": _seconds(perf.runs.max_s),
            "share outside steps": dg.MetadataValue.float(round(perf.runs.outside_steps_share or 0.0, 4)),
        }
        if perf.runs.start_p50_s is not None:
            meta["run start to first step p50 s"] = _seconds(perf.runs.start_p50_s)
    for frame, label in ((perf.assets, "asset"), (perf.models, "model")):
        for row in frame.itertuples():
            name = row.asset if label == "asset" else f"model {row.model}"
            meta |= {
                f"{name} p50 s": _seconds(row.p50_s),
                f"{name} p95 s": _seconds(row.p95_s),
                f"{name} max s": _seconds(row.max_s),
                f"{name} runs": dg.MetadataValue.int(int(row.runs)),
            }
    for row in (
        perf.diagnostics.groupby("asset", as_index=False)
        .agg(p50_s=("p50_s", "median"), p95_s=("p95_s", "max"), runs=("runs", "sum"))
        .itertuples()
    ):
        meta |= {f"{row.asset} p50 s": _seconds(row.p50_s), f"{row.asset} p95 s": _seconds(row.p95_s)}
    table = pd.concat([perf.assets, perf.models, perf.diagnostics], ignore_index=True)
    meta["steps"] = rows_table(table.to_dict("records"), list(table.columns))
    return meta


def _seconds(value: float | None) -> dg.FloatMetadataValue:
    return dg.MetadataValue.float(round(value or 0.0, 3))  # milliseconds are all a duration here means


def build_perf_asset(sweep: Sweep) -> dg.AssetsDefinition:
    keys = sweep.keys

    @dg.asset(
        key=keys.perf,
        group_name=keys.group("operations"),
        kinds={"dagster"},
        deps=[keys.report],  # refreshed with the report, which closes each sweep
        # On each cron tick whatever its dependency did (Dagster's on_cron would wait for the report).
        automation_condition=(
            dg.AutomationCondition.cron_tick_passed(
                sweep.config.operations.cron, sweep.config.operations.timezone
            )
            | run_with_report(sweep)
        ).with_label("on the sweep's cron, or with the report"),
        description=f"Where sweep {sweep.name}'s time goes over the last {DEFAULT_WINDOW}: p50, p95 and max "
        "duration per asset and per model, run counts, and the share of run time outside the steps "
        "(Dagster's own overhead), read from the event log. Refreshed with the report after each sweep and on "
        "the sweep's cron; `cvn perf` prints the same.",
    )
    def sweep_perf_asset(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        perf = sweep_perf(context.instance, sweep, parse_duration(DEFAULT_WINDOW).to_pytimedelta())
        return dg.MaterializeResult(metadata=perf_metadata(perf))

    return sweep_perf_asset
