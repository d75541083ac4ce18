"""The embedded default's run launcher: Dagster's DefaultRunLauncher plus a run-worker health check.

Dagster's run monitoring fails a STARTED run whose worker died only when the launcher can say so
(K8sRunLauncher in production can). The default launcher cannot: when a run's process is killed with its
code server (`dagster dev` killed, the machine out of memory), the run stays STARTED forever and its
partition is never requested again. This launcher reads the pid the code server recorded for the run
("Started process for run (pid: N)") and reports the worker dead when that process is gone.

It checks only runs whose code server is on this host: a pid means nothing on another machine, so a run
served from elsewhere reports RUNNING and is left to run monitoring's `max_runtime_seconds`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import dagster as dg
from dagster._core.launcher import DefaultRunLauncher
from dagster._core.launcher.base import CheckRunHealthResult, WorkerStatus
from dagster._core.storage.tags import GRPC_INFO_TAG

LOCAL_HOSTS = {None, "", "localhost", "127.0.0.1", "::1"}
PID_EVENT = "Started process for run (pid: "


class LocalRunLauncher(DefaultRunLauncher):
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


def _served_here(run: dg.DagsterRun) -> bool:
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
