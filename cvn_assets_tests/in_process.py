"""Tests' shortcut through a sweep: each run executed in this process on a real Dagster instance (ohlcv per
crypto, the new folds added as the sensor adds them, then every crypto x fold). The product launches the
same runs through the instance's queue (`cvn sweep`, the UI); tests of that path live in test_launch.py."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from cvn_assets.core.config import SweepConfig
from cvn_assets.core.sweep_plan import SweepPlan
from cvn_assets.definitions import build_definitions
from cvn_assets.defs.folds import add_new_folds
from cvn_assets.defs.keys import partition_key
from cvn_assets.defs.resources import ResultsStore
from cvn_assets.defs.sweep import Sweep

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
        sweep: Sweep,
        instance: dg.DagsterInstance,
        log_level: str = "WARNING",
        on_run: ProgressFn | None = None,
    ) -> None:
        self.defs = defs
        self.keys = sweep.keys
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
        return self._execute(self.keys.ohlcv_job, f"ohlcv[{crypto}]", crypto)

    def partition(self, crypto: str, fold_id: str) -> bool:
        return self._execute(self.keys.sweep_job, f"{crypto}|{fold_id}", partition_key(crypto, fold_id))

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
    config: SweepConfig,
    instance: dg.DagsterInstance,
    cryptos: list[str] | None = None,
    folds: list[str] | None = None,
    on_run: ProgressFn | None = None,
    log_level: str = "WARNING",
) -> SweepReport:
    """`folds` names folds by label (`f001`) or id; default: every fold the data covers."""
    sweep = Sweep.of(config)
    runner = SweepRunner(defs, sweep, instance, log_level, on_run)
    # Every crypto's bars are loaded (folds are planned from all of them); only `cryptos` are run, and
    # nothing downstream runs on a crypto whose bars were rejected.
    ok = {crypto for crypto in config.cryptos if runner.ohlcv(crypto)}
    loaded = [crypto for crypto in cryptos or config.cryptos if crypto in ok]
    plan = add_new_folds(instance, sweep).plan
    fold_ids = [f.fold_id for f in plan.folds if folds is None or f.label in folds or f.fold_id in folds]
    for crypto in loaded:
        for fold_id in fold_ids:
            runner.partition(crypto, fold_id)
    return runner.report


def sweep_defs(plan_or_config: SweepPlan | SweepConfig, db_url: str, tmp_path: Path) -> dg.Definitions:
    """The code location of one sweep, with its artifacts under tmp_path and its results in db_url."""
    config = plan_or_config.config if isinstance(plan_or_config, SweepPlan) else plan_or_config
    return build_definitions(
        [config], artifacts_dir=tmp_path / "artifacts", results_store=ResultsStore(database_url=db_url)
    )


def load_bars(
    defs: dg.Definitions, config: SweepConfig, instance: dg.DagsterInstance, crypto: str
) -> SweepPlan:
    """Materialize ohlcv[crypto] (and that of any crypto never loaded: folds are planned from every
    crypto's bars), then add the folds the bars cover; the plan so far."""
    sweep = Sweep.of(config)
    job = defs.resolve_job_def(sweep.keys.ohlcv_job)
    done = instance.get_materialized_partitions(sweep.keys.ohlcv)
    for name in config.cryptos:
        if name == crypto or name not in done:
            job.execute_in_process(partition_key=name, instance=instance, raise_on_error=False)
    return add_new_folds(instance, sweep).plan


def run_partition(
    defs: dg.Definitions, config: SweepConfig, instance: dg.DagsterInstance, crypto: str, fold: str
) -> dg.ExecuteInProcessResult:
    """The sweep job of one crypto x fold (`fold` by label, f000, or id), in process."""
    sweep = Sweep.of(config)
    plan = add_new_folds(instance, sweep).plan
    fold_id = next(f.fold_id for f in plan.folds if fold in (f.label, f.fold_id))
    return defs.resolve_job_def(sweep.keys.sweep_job).execute_in_process(
        partition_key=partition_key(crypto, fold_id), instance=instance, raise_on_error=False
    )
