"""Materialize a whole sweep on a Dagster instance: one run per crypto for ohlcv, then one run per
crypto x fold for everything downstream (what a backfill launched from the UI does, run by run)."""

from __future__ import annotations

from dataclasses import dataclass, field

import dagster as dg

from cvn_assets.core.sweep_plan import SweepPlan
from cvn_assets.defs.jobs import OHLCV_JOB, SWEEP_JOB


@dataclass
class SweepReport:
    succeeded: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # partition -> first error message
    failed_checks: dict[str, list[str]] = field(default_factory=dict)  # partition -> failed check keys
    checks_passed: int = 0

    @property
    def ok(self) -> bool:
        return not self.failed


def _first_error(result: dg.ExecuteInProcessResult) -> str:
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data and event.step_failure_data.error:
            error = event.step_failure_data.error
            while error.cause is not None:  # Dagster wraps the user's exception: report the one that says why
                error = error.cause
            return f"{event.step_key}: {error.message.strip()}"
    return "run failed"


def materialize_sweep(
    defs: dg.Definitions,
    plan: SweepPlan,
    instance: dg.DagsterInstance,
    cryptos: list[str] | None = None,
    folds: list[str] | None = None,
    on_partition=None,  # noqa: ANN001 - optional progress callback(partition, ok)
    log_level: str = "WARNING",
) -> SweepReport:
    """Every run's events still go to the instance (and the UI); `log_level` only sets what the console shows."""
    report = SweepReport()
    run_config = {"loggers": {"console": {"config": {"log_level": log_level}}}}
    ohlcv_job = defs.resolve_job_def(OHLCV_JOB)
    sweep_job = defs.resolve_job_def(SWEEP_JOB)
    loaded: list[str] = []
    for crypto in cryptos or plan.config.cryptos:
        result = ohlcv_job.execute_in_process(
            partition_key=crypto, instance=instance, raise_on_error=False, run_config=run_config
        )
        _record(report, f"ohlcv[{crypto}]", result, on_partition)
        if result.success:
            loaded.append(crypto)  # nothing downstream runs on rejected data
    for crypto in loaded:
        for fold_id in folds or plan.fold_ids:
            key = dg.MultiPartitionKey({"crypto": crypto, "fold": fold_id})
            result = sweep_job.execute_in_process(
                partition_key=key, instance=instance, raise_on_error=False, run_config=run_config
            )
            _record(report, f"{crypto}|{fold_id}", result, on_partition)
    return report


def _record(report: SweepReport, name: str, result: dg.ExecuteInProcessResult, on_partition) -> None:  # noqa: ANN001
    for event in result.all_events:
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            if evaluation.passed:
                report.checks_passed += 1
            else:
                report.failed_checks.setdefault(name, []).append(evaluation.asset_check_key.to_user_string())
    if result.success:
        report.succeeded.append(name)
    else:
        report.failed[name] = _first_error(result)
    if on_partition:
        on_partition(name, result.success)
