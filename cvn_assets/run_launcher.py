"""Run launchers: the embedded default's (`LocalRunLauncher`) and production's (`SizedK8sRunLauncher`).

`LocalRunLauncher` is Dagster's DefaultRunLauncher with warm run workers and a run-worker health check.

Warm workers (`warm_start.py`, on unless `warm_start: false`): each run is forked from a process that has
already imported Dagster and the model libraries, instead of the code server spawning a fresh interpreter
per run (6-8 s before the first step on two cores). A run whose code location runs under another Python
is launched through its code server as before.

Dagster's run monitoring fails a STARTED run whose worker died only when the launcher can say so
(K8sRunLauncher in production can). The default launcher cannot: when a run's process is killed with its
code server (`dagster dev` killed, the machine out of memory), the run stays STARTED forever and its
partition is never requested again. This launcher reads the pid the code server recorded for the run
("Started process for run (pid: N)") and reports the worker dead when that process is gone.

It checks only runs whose code server is on this host: a pid means nothing on another machine, so a run
served from elsewhere reports RUNNING and is left to run monitoring's `max_runtime_seconds`.

`SizedK8sRunLauncher` is dagster-k8s's K8sRunLauncher (one pod per run) whose runs carry the memory their
partition needs, however they were launched (UI, backfill, sensor, `cvn sweep`): at launch it estimates
the run's working set (`defs/sizing.py`), adds the chosen profile's `dagster-k8s/config` tag to the run,
and launches; a partition too large for the largest profile fails before any pod starts, its message
naming the estimate and the profile to add. A `dagster-k8s/config` tag a person set on the run is kept.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
from dagster import Field, Noneable, StringSource
from dagster_k8s import K8sRunLauncher

from cvn_assets.core.errors import CvnError
from cvn_assets.dagster_internals import (
    GRPC_INFO_TAG,
    CheckRunHealthResult,
    DefaultRunLauncher,
    LaunchRunContext,
    ResumeRunContext,
    WorkerStatus,
)

LOCAL_HOSTS = {None, "", "localhost", "127.0.0.1", "::1"}
PID_EVENT = "Started process for run (pid: "
WARM_WORKER_TAG = "cvn/warm_worker_host"  # the host whose forkserver started the run
# Terminate: the worker is sent SIGTERM again this often until its run has finished, for at most this long.
TERMINATE_RESEND_EVERY_S, TERMINATE_RESEND_FOR_S = 3.0, 60.0


class LocalRunLauncher(DefaultRunLauncher):
    def __init__(
        self,
        inst_data: Any = None,
        warm_start: bool = True,
        preload_modules: Sequence[str] | None = None,
    ) -> None:
        super().__init__(inst_data=inst_data)
        self._warm_start = warm_start
        from cvn_assets.warm_start import PRELOAD

        self._preload = tuple(preload_modules) if preload_modules is not None else PRELOAD

    @classmethod
    def config_type(cls) -> dict[str, Field]:
        return {
            "warm_start": Field(
                bool,
                default_value=True,
                description="Fork each run from a process with Dagster and the model libraries already "
                "imported (cvn_assets/warm_start.py); false: the code server spawns each run afresh.",
            ),
            "preload_modules": Field(
                Noneable([str]),
                is_required=False,
                description="The modules that process imports (default: cvn_assets.warm_start.PRELOAD).",
            ),
        }

    @classmethod
    def from_config_value(cls, inst_data: Any, config_value: Mapping[str, Any]) -> LocalRunLauncher:
        return cls(inst_data=inst_data, **config_value)

    def register_instance(self, instance: dg.DagsterInstance) -> None:
        super().register_instance(instance)
        if self._warm_start:
            from cvn_assets import warm_start

            warm_start.prestart_in_daemon(self._preload)

    def launch_run(self, context: LaunchRunContext) -> None:
        from cvn_assets import warm_start

        run = context.dagster_run
        if not (self._warm_start and warm_start.can_fork(run)):
            super().launch_run(context)
            return
        try:
            warm_start.start_worker(run, self._instance, self._preload)
        except Exception as exc:  # the forkserver could not start: the run still runs, started cold
            self._instance.report_engine_event(
                f"warm start unavailable ({type(exc).__name__}: {exc}); starting the run through its code server",
                run,
                cls=self.__class__,
            )
            super().launch_run(context)
            return
        self._instance.add_run_tags(run.run_id, {WARM_WORKER_TAG: socket.gethostname()})
        self._run_ids.add(run.run_id)

    def terminate(self, run_id: str) -> bool:
        """A warm run: SIGTERM to its worker (again every few seconds until the run has finished), which
        Dagster's run worker takes as an interrupt and ends the run CANCELED (as a run pod's SIGTERM on
        Kubernetes); any other run through its code server."""
        run = self._instance.get_run_by_id(run_id)
        if run is None or WARM_WORKER_TAG not in run.tags:
            return super().terminate(run_id)
        if run.is_finished:
            return False
        self._instance.report_run_canceling(run)
        started = recorded_worker(self._instance, run_id)
        if started is None or not _served_here(run):
            self._instance.report_engine_event(
                "no run worker of this host to stop (not started yet, or started elsewhere)",
                run,
                cls=self.__class__,
            )
            return False
        try:
            os.kill(started[0], signal.SIGTERM)
        except ProcessLookupError:
            return False
        threading.Thread(
            target=_resend_until_finished, args=(self._instance, run_id, *started), daemon=True
        ).start()
        return True

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: dg.DagsterRun) -> CheckRunHealthResult:
        if not _served_here(run):
            return CheckRunHealthResult(WorkerStatus.RUNNING, "code server on another host: not checked")
        started = recorded_worker(self._instance, run.run_id)
        if started is None:  # executed in process, or the pid is not recorded yet
            return CheckRunHealthResult(WorkerStatus.RUNNING, "no run worker pid recorded")
        pid, recorded_at = started
        if _alive_since(pid, recorded_at):
            return CheckRunHealthResult(WorkerStatus.RUNNING, run_worker_id=str(pid))
        return CheckRunHealthResult(
            WorkerStatus.FAILED, f"run worker process {pid} is gone", run_worker_id=str(pid)
        )


def recorded_worker(instance: dg.DagsterInstance, run_id: str) -> tuple[int, float] | None:
    """The pid the code server recorded for the run's process, and when; None before it did (or in process)."""
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT, limit=20).records
    for record in records:
        entry = record.event_log_entry
        if entry.message.startswith(PID_EVENT):
            return int(entry.message[len(PID_EVENT) :].split(")")[0]), entry.timestamp
    return None


def _resend_until_finished(instance: dg.DagsterInstance, run_id: str, pid: int, recorded_at: float) -> None:
    """SIGTERM again every few seconds until the run has finished. Dagster's run worker raises the signal
    as an interrupt wherever the step's Python is at that moment; inside a library's ctypes callback
    (xgboost builds its DMatrix through one) the interrupt is printed and dropped ("Exception ignored on
    calling ctypes callback function"), and the search went on to SUCCESS. A later signal lands elsewhere."""
    deadline = time.monotonic() + TERMINATE_RESEND_FOR_S
    while time.monotonic() < deadline:
        time.sleep(TERMINATE_RESEND_EVERY_S)
        run = instance.get_run_by_id(run_id)
        if run is None or run.is_finished or not _alive_since(pid, recorded_at):
            return
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return


def _served_here(run: dg.DagsterRun) -> bool:
    if WARM_WORKER_TAG in run.tags:
        return run.tags[WARM_WORKER_TAG] == socket.gethostname()
    info = json.loads(run.tags.get(GRPC_INFO_TAG, "{}"))
    return bool(info.get("socket")) or info.get("host") in LOCAL_HOSTS


def _alive_since(pid: int, recorded_at: float) -> bool:
    """Whether `pid` is a live process that existed when its pid was recorded (not a reused pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        pass
    started = _process_start_time(pid)
    return started is None or started <= recorded_at + 1.0


def _process_start_time(pid: int) -> float | None:
    """The process's start as an epoch (Linux /proc); None where /proc is not there to ask."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = next(
            float(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime")
        )
    except (OSError, StopIteration):
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after the command name: field 3 (state) onwards
    if fields[0] == "Z":  # a zombie is dead; its parent has not reaped it yet
        return float("inf")
    ticks = int(fields[19])  # field 22: starttime, in clock ticks since boot
    return boot + ticks / os.sysconf("SC_CLK_TCK")


class SizedK8sRunLauncher(K8sRunLauncher):
    """K8sRunLauncher whose runs carry `dagster-k8s/config` resources chosen from their working-set
    estimate. Configured like K8sRunLauncher, plus `sweeps_dir` (default: CVN_SWEEPS_DIR, else the
    packaged sweeps): where it reads the sweep configs the code location serves. Profiles come from
    CVN_K8S_PROFILES (`defs/sizing.py`)."""

    def __init__(self, sweeps_dir: str | None = None, **kwargs: object) -> None:
        self._sweeps_dir = Path(sweeps_dir) if sweeps_dir else None
        super().__init__(**kwargs)

    @classmethod
    def config_type(cls) -> dict[str, Field]:
        return {
            **K8sRunLauncher.config_type(),
            "sweeps_dir": Field(
                Noneable(StringSource),
                is_required=False,
                description="Directory of the sweep configs the code location serves (default: "
                "CVN_SWEEPS_DIR, else the packaged sweeps).",
            ),
        }

    @classmethod
    def from_config_value(cls, inst_data: object, config_value: dict) -> SizedK8sRunLauncher:
        return cls(inst_data=inst_data, **config_value)

    def launch_run(self, context: LaunchRunContext) -> None:
        super().launch_run(context._replace(dagster_run=self.sized(context.dagster_run)))

    def resume_run(self, context: ResumeRunContext) -> None:
        super().resume_run(context._replace(dagster_run=self.sized(context.dagster_run)))

    def sized(self, run: dg.DagsterRun) -> dg.DagsterRun:
        """The run with its sizing tags added (and stored); a run of no served sweep as it is. Raises
        SizingError, after failing the run with its one-line message, when the run fits no profile."""
        # Imported here, not at the top: the embedded default's daemon and webserver load this module for
        # LocalRunLauncher only, and need none of the sweep code.
        from cvn_assets.defs import sizing

        if sizing.set_by_person(run.tags):
            return self._noting_estimate(run)
        try:
            sweeps = sizing.served_sweeps(self._sweeps_dir)
            found = sizing.size_run(self._instance, run, sweeps, sizing.profiles_from_env())
        except CvnError as exc:
            message = f"run {run.run_id} not launched: {exc}"
            self._instance.report_run_failed(run, message)
            raise sizing.SizingError(message) from None
        if found is None:
            return run
        self._instance.add_run_tags(run.run_id, found.tags())
        self._instance.report_engine_event(
            f"{found.what}: estimated working set {found.working_set}; profile {found.run_profile.name}"
            + (f" (orchestrating; each step pod {found.profile.name})" if found.steps_in_pods else ""),
            run,
            cls=self.__class__,
        )
        return self._instance.get_run_by_id(run.run_id) or run

    def _noting_estimate(self, run: dg.DagsterRun) -> dg.DagsterRun:
        """A run whose resources a person set keeps them, even above every profile; the estimate is
        added beside them where it can be made."""
        from cvn_assets.defs import sizing

        try:
            sweeps = sizing.served_sweeps(self._sweeps_dir)
            estimate = sizing.run_working_set(self._instance, run, sweeps)
        except CvnError:
            return run
        if estimate is None:
            return run
        self._instance.add_run_tags(run.run_id, {sizing.WORKING_SET_TAG: f"{estimate.total_gib:.2f}"})
        return self._instance.get_run_by_id(run.run_id) or run
