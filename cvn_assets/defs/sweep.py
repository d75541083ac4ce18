"""One sweep as the Dagster layer sees it: its config and its keys. Built from configuration only."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

import dagster as dg

from cvn_assets.core.config import SweepConfig
from cvn_assets.core.folds import Fold
from cvn_assets.core.sweep_plan import fold_of
from cvn_assets.defs.code_versions import CodeVersions
from cvn_assets.defs.keys import SweepKeys, selected_assets


@dataclass(frozen=True)
class Sweep:
    config: SweepConfig
    keys: SweepKeys

    @classmethod
    def of(cls, config: SweepConfig) -> Sweep:
        return cls(config, SweepKeys(config.name, tuple(config.cryptos)))

    @property
    def name(self) -> str:
        return self.config.name

    @cached_property
    def code_versions(self) -> CodeVersions:
        return CodeVersions(self.config)

    def fold(self, fold_id: str) -> Fold:
        return fold_of(self.config, fold_id)

    def run_tags(self) -> dict[str, str]:
        """Tags on every run of the sweep, so runs filter by sweep in the UI."""
        return {"cvn/sweep": self.name, "cvn/run_id": self.config.run_id}


def model_threads(config: SweepConfig, instance: dg.DagsterInstance) -> int:
    """Threads for the model libraries in one run: `runtime.threads`, or with `auto` the machine's cores
    split across the runs the instance may execute at once, so concurrent runs do not oversubscribe."""
    if config.runtime.threads != "auto":
        return int(config.runtime.threads)
    return max(1, (os.cpu_count() or 1) // concurrent_runs(instance))


def concurrent_runs(instance: dg.DagsterInstance) -> int:
    """How many runs the instance executes at once (its run queue's limit; 1 without a queue)."""
    queue = instance.get_concurrency_config().run_queue_config
    limit = queue.max_concurrent_runs if queue is not None else 1
    return limit if limit and limit > 0 else os.cpu_count() or 1  # -1 / 0: unlimited


def sweep_of_run(run: dg.DagsterRun, sweeps: Mapping[str, Sweep]) -> Sweep | None:
    """The sweep a run belongs to: its `cvn/sweep` tag, else its job, else the assets it selected (a UI
    materialization of the sweep's assets runs Dagster's implicit job, untagged). None: another location's."""
    if run.tags.get("cvn/sweep") in sweeps:
        return sweeps[run.tags["cvn/sweep"]]
    for sweep in sweeps.values():
        if run.job_name in (sweep.keys.ohlcv_job, sweep.keys.sweep_job, sweep.keys.audit_job):
            return sweep
    selected = {key.path[0] for key in selected_assets(run)}
    return sweeps[selected.pop()] if len(selected) == 1 and next(iter(selected)) in sweeps else None
