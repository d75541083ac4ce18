"""Materialize a whole sweep on a Dagster instance: one run per crypto for ohlcv, one run per crypto x fold
for everything downstream (what a backfill launched from the UI does, run by run), then one run of the
results-store checks over the whole sweep."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import dagster as dg

from cvn_assets.core.sweep_plan import SweepPlan
from cvn_assets.defs.jobs import AUDIT_JOB, OHLCV_JOB, SWEEP_JOB

ProgressFn = Callable[[str, bool], None]


@dataclass
class SweepReport:
    succeeded: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # run -> first error message
    failed_checks: dict[str, list[str]] = field(default_factory=dict)  # run -> failed check keys
    checks_passed: int = 0

    @property
    def ok(self) -> bool:
        return not self.failed


class SweepRunner:
    """Launches the sweep's runs in process on `instance`; every run's events land in the instance (and the
    UI). `log_level` only sets what the console shows."""

    def __init__(
        self,
        defs: dg.Definitions,
        instance: dg.DagsterInstance,
        log_level: str = "WARNING",
        on_run: ProgressFn | None = None,
    ) -> None:
        self.defs = defs
        self.instance = instance
        self.run_config = {"loggers": {"console": {"config": {"log_level": log_level}}}}
        self.on_run = on_run
        self.report = SweepReport()

    def _execute(self, job_name: str, name: str, partition_key: str | None = None) -> bool:
        result = self.defs.resolve_job_def(job_name).execute_in_process(
            partition_key=partition_key,
            instance=self.instance,
            raise_on_error=False,
            run_config=self.run_config,
        )
        self._record(name, result)
        return result.success

    def ohlcv(self, crypto: str) -> bool:
        return self._execute(OHLCV_JOB, f"ohlcv[{crypto}]", crypto)

    def partition(self, crypto: str, fold_id: str) -> bool:
        key = dg.MultiPartitionKey({"crypto": crypto, "fold": fold_id})
        return self._execute(SWEEP_JOB, f"{crypto}|{fold_id}", key)

    def audit(self) -> bool:
        return self._execute(AUDIT_JOB, "results_store_checks")

    def _record(self, name: str, result: dg.ExecuteInProcessResult) -> None:
        for evaluation in result.get_asset_check_evaluations():
            if evaluation.passed:
                self.report.checks_passed += 1
            else:
                self.report.failed_checks.setdefault(name, []).append(
                    evaluation.asset_check_key.to_user_string()
                )
        if result.success:
            self.report.succeeded.append(name)
        else:
            self.report.failed[name] = _first_error(result)
        if self.on_run:
            self.on_run(name, result.success)


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
    on_run: ProgressFn | None = None,
    log_level: str = "WARNING",
) -> SweepReport:
    runner = SweepRunner(defs, instance, log_level, on_run)
    # Nothing downstream runs on a crypto whose bars were rejected.
    loaded = [crypto for crypto in cryptos or plan.config.cryptos if runner.ohlcv(crypto)]
    for crypto in loaded:
        for fold_id in folds or plan.fold_ids:
            runner.partition(crypto, fold_id)
    runner.audit()
    return runner.report
