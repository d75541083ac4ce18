"""Run a sweep the way the UI does: partition backfills launched through the webserver's GraphQL schema
(here in process, on the same instance), queued to the run coordinator and executed by Dagster's daemon
under `dagster.yaml`'s concurrency. Progress and the outcome are read back from the instance.

`cvn sweep` and `cvn demo` use this; nothing here executes a step itself.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
from dagster_graphql.cli import execute_query

from cvn_assets.code_server import LOCATION, shared_code_server, workspace_target
from cvn_assets.core.errors import CvnError
from cvn_assets.dagster_internals import (
    BULK_ACTION_TERMINAL_STATUSES,
    WorkspaceProcessContext,
    all_daemons_healthy,
)
from cvn_assets.defs.alerts import step_error
from cvn_assets.defs.folds import add_new_folds, fold_update
from cvn_assets.defs.sweep import Sweep

REPOSITORY = "__repository__"
LAUNCH_BACKFILL = """
mutation LaunchBackfill($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on PartitionSetNotFoundError { message }
    ... on InvalidSubsetError { message }
    ... on UnauthorizedError { message }
  }
}
"""
LAUNCH_RUN = """
mutation LaunchRun($executionParams: ExecutionParams!) {
  launchRun(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on UnauthorizedError { message }
  }
}
"""
TERMINAL_RUN = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}
Progress = Callable[[str], None]


class LaunchError(CvnError):
    """The sweep could not be submitted to the instance."""


@dataclass
class SweepOutcome:
    runs: dict[str, dg.DagsterRunStatus] = field(default_factory=dict)  # partition -> final status
    failures: dict[str, str] = field(default_factory=dict)  # partition -> first error
    failed_checks: dict[str, list[str]] = field(default_factory=dict)  # partition -> ERROR check keys
    warned_checks: dict[str, list[str]] = field(default_factory=dict)  # partition -> failed WARN checks
    checks_passed: int = 0
    # Cryptos whose bars loaded but hold no fold of the plan (too short), with why: not run at all.
    left_out: dict[str, str] = field(default_factory=dict)
    # Whether a crypto left out fails the sweep (unless `operations.skip_cryptos_without_folds`).
    left_out_fails: bool = True

    @property
    def ok(self) -> bool:
        return not self.failures and not self.failed_checks and not (self.left_out and self.left_out_fails)

    @property
    def succeeded(self) -> int:
        return sum(s == dg.DagsterRunStatus.SUCCESS for s in self.runs.values())


DAEMON_LOCK = "cvn-daemon.lock"  # under DAGSTER_HOME: held by the daemon a `cvn sweep` started, for its life
DAEMON_STOPPED = (
    "cvn-daemon.stopped"  # under DAGSTER_HOME: when the last daemon a `cvn` command started exited
)
HEARTBEAT_TOLERANCE_S = 90
PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when its parent dies


def die_with_parent(parent: int) -> Callable[[], None]:
    """For the child before it execs: SIGKILL when the process that started it dies (even by kill -9), so
    the daemon never outlives its `cvn sweep` (Linux; elsewhere the lock below still refuses a second).

    SIGKILL, not SIGTERM: the daemon can swallow a one-shot SIGTERM while it starts (seen in CI, where it
    then ran on for the rest of the session). Nothing it holds needs a clean stop: its writes are database
    transactions, and the code server (this process's child) exits on its missed heartbeat. A normal end of the sweep
    still stops it with SIGTERM first (`running_daemon`)."""

    def arm() -> None:
        if sys.platform.startswith("linux"):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
            if os.getppid() != parent:  # the parent died before the request took effect
                os._exit(1)

    return arm


@dataclass(frozen=True)
class Daemon:
    """The daemon a sweep's runs go through, as `running_daemon` found or started it."""

    stopped: Callable[[], str | None]  # why the daemon stopped, if it did
    workspace: Path | None = None  # the shared code server's workspace, when the daemon was started here


@contextmanager
def running_daemon(instance: dg.DagsterInstance, home: Path) -> Iterator[Daemon]:
    """Dagster's daemon for this instance: the one already running (e.g. under `dagster dev`), or one
    started here for the duration of the sweep, on a code server it shares with this process's launcher
    (`code_server.py`).

    The daemon started here exits when this process dies, however it dies, and holds a lock under the
    Dagster home for as long as it lives: a later `cvn sweep` on the same home refuses to start a second one
    beside it, naming its pid."""
    if daemon_running(instance):
        yield Daemon(stopped=lambda: None)
        return
    home.mkdir(parents=True, exist_ok=True)
    log_path = home / "daemon.log"
    lock_path = Path(instance.root_directory) / DAEMON_LOCK
    daemon = Path(sys.executable).with_name("dagster-daemon")
    with lock_path.open("a+") as lock, log_path.open("ab") as log:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            pid = lock.read().strip() or "?"
            raise LaunchError(
                f"a Dagster daemon started by an earlier `cvn sweep` on this home is still running (pid {pid}, "
                f"lock {lock_path}); wait for it to exit, or stop it with `kill {pid}`"
            ) from None
        with shared_code_server(instance, output=log) as workspace:
            # The daemon inherits the locked descriptor: the lock is held until the daemon itself exits.
            process = subprocess.Popen(
                [str(daemon), "run", "-w", str(workspace)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=os.environ.copy(),
                pass_fds=(lock.fileno(),),
                preexec_fn=die_with_parent(os.getpid()),  # only a prctl call between fork and exec
            )
            lock.seek(0)
            lock.truncate()
            lock.write(str(process.pid))
            lock.flush()

            def stopped() -> str | None:
                if process.poll() is None:
                    return None
                return f"the Dagster daemon exited with status {process.returncode}; its log: {log_path}"

            try:
                yield Daemon(stopped=stopped, workspace=workspace)
            finally:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                # Its last heartbeats stay in the instance and look healthy for a while: say it is gone.
                (Path(instance.root_directory) / DAEMON_STOPPED).write_text(str(time.time()))


def daemon_running(instance: dg.DagsterInstance) -> bool:
    """Whether a daemon heartbeats for this instance now: every required daemon beat within three of its
    30 s intervals (Dagster's own health check tolerates half an hour), and after the last daemon a `cvn`
    command started had stopped (whose final heartbeats would otherwise pass for a live daemon's)."""
    if not all_daemons_healthy(instance, heartbeat_tolerance_seconds=HEARTBEAT_TOLERANCE_S):
        return False
    marker = Path(instance.root_directory) / DAEMON_STOPPED
    try:
        stopped_at = float(marker.read_text())
    except (OSError, ValueError):
        return True
    beats = instance.get_daemon_heartbeats().values()
    return bool(beats) and min(beat.timestamp for beat in beats) > stopped_at


class SweepLauncher:
    def __init__(
        self,
        instance: dg.DagsterInstance,
        sweep: Sweep,
        on_progress: Progress,
        daemon: Daemon | None = None,
    ) -> None:
        self.daemon_stopped = daemon.stopped if daemon else lambda: None
        self.instance = instance
        self.sweep = sweep
        self.say = on_progress
        # The daemon's code server when it was started here; otherwise one of this process's own.
        self.workspace = WorkspaceProcessContext(
            instance, workspace_target(daemon.workspace if daemon else None), code_server_log_level="WARNING"
        )

    def close(self) -> None:
        self.workspace.__exit__(None, None, None)

    def sensor_running(self) -> bool:
        """Whether the sweep's new-folds sensor is on (it is unless someone stopped it in the UI)."""
        repository = (
            self.workspace.create_request_context().get_code_location(LOCATION).get_repository(REPOSITORY)
        )
        sensor = repository.get_sensor(self.sweep.keys.fold_sensor)
        stored = self.instance.get_instigator_state(sensor.get_remote_origin_id(), sensor.selector_id)
        return sensor.get_current_instigator_state(stored).is_running

    def runs_since(self, started_at: datetime) -> dict[str, str]:
        """partition -> run id of the sweep job's runs created since `started_at`."""
        runs = self.instance.get_runs(
            dg.RunsFilter(job_name=self.sweep.keys.sweep_job, created_after=started_at)
        )
        return {run.tags.get("dagster/partition", run.run_id): run.run_id for run in runs}

    def await_sensor_runs(
        self, partitions: list[str], started_at: datetime, timeout_s: float = 120.0
    ) -> dict[str, str]:
        """Wait for the new-folds sensor to add the new folds and request their partitions; past the timeout
        (a sensor that is on but not ticking), add the folds here and launch what it did not request."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            requested = self.runs_since(started_at)
            if all(p in requested for p in partitions):
                return requested
            why = self.daemon_stopped()
            if why:
                raise LaunchError(why)
            time.sleep(1.0)
        self.say(f"  the {self.sweep.keys.fold_sensor} sensor did not request the new folds in {timeout_s:.0f} s; "
                 "adding them here")  # fmt: skip
        add_new_folds(self.instance, self.sweep)
        return self.runs_since(started_at)

    def backfill(self, job_name: str, partitions: list[str]) -> str:
        """Launch a backfill of `job_name` over `partitions`, exactly as the UI's Backfill button does."""
        params = {
            "selector": {
                "partitionSetName": f"{job_name}_partition_set",
                "repositorySelector": {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY},
            },
            "partitionNames": partitions,
            "tags": [{"key": k, "value": v} for k, v in self.sweep.run_tags().items()],
            "title": f"cvn sweep {self.sweep.name}",
        }
        launched = self._mutate(LAUNCH_BACKFILL, {"params": params}, "launchPartitionBackfill",
                                "LaunchBackfillSuccess", f"a backfill of {job_name}")  # fmt: skip
        return launched["backfillId"]

    def launch_run(self, job_name: str) -> str:
        """Launch one run of an unpartitioned job, exactly as the UI's Materialize button does."""
        params = {
            "selector": {
                "repositoryLocationName": LOCATION,
                "repositoryName": REPOSITORY,
                "jobName": job_name,
            },
            "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in self.sweep.run_tags().items()]},
        }
        launched = self._mutate(LAUNCH_RUN, {"executionParams": params}, "launchRun", "LaunchRunSuccess",
                                f"a run of {job_name}")  # fmt: skip
        return launched["run"]["runId"]

    def _mutate(self, query: str, variables: dict, field: str, success: str, what: str) -> dict:
        """A launch mutation through the webserver's GraphQL schema: its `success` payload, or LaunchError."""
        result = execute_query(self.workspace, query, variables)
        payload = (result.get("data") or {}).get(field) or {}
        if payload.get("__typename") != success:
            problem = payload.get("message") or result.get("errors") or payload.get("__typename")
            raise LaunchError(f"could not launch {what}: {problem}")
        return payload

    def wait(
        self,
        backfill_id: str | None,
        what: str,
        total: int,
        also: list[str] | None = None,
        poll_s: float = 1.0,
    ) -> dict[str, dg.DagsterRun]:
        """Wait for the backfill's runs (and the runs `also` names) to finish, printing progress read from
        the instance."""
        started, last, said_at = time.monotonic(), (-1, -1), 0.0
        while True:
            backfill = self.instance.get_backfill(backfill_id) if backfill_id else None
            found = (
                self.instance.get_runs(dg.RunsFilter(tags={"dagster/backfill": backfill_id}))
                if backfill_id
                else []
            )
            found += self.instance.get_runs(dg.RunsFilter(run_ids=also)) if also else []
            runs = {run.tags.get("dagster/partition", run.run_id): run for run in found}
            done = [r for r in runs.values() if r.status in TERMINAL_RUN]
            failed = sum(r.status != dg.DagsterRunStatus.SUCCESS for r in done)
            elapsed = time.monotonic() - started
            # A line when a run finishes, and one every half minute while they run.
            if (len(done), failed) != last or elapsed - said_at >= 30:
                self.say(f"  {what}: {len(done)}/{total} done, {failed} failed, {elapsed:.0f} s")
                last, said_at = (len(done), failed), elapsed
            # Every partition's run finished (the backfill's own status follows on the daemon's next pass).
            finished = len(runs) >= total or (
                backfill_id is None
                or backfill is not None
                and backfill.status in BULK_ACTION_TERMINAL_STATUSES
            )
            if finished and len(done) == len(runs):
                return runs
            why = self.daemon_stopped()
            if why:
                raise LaunchError(f"{what}: {why}")
            time.sleep(poll_s)

    def outcome(self, runs: dict[str, dg.DagsterRun], into: SweepOutcome) -> SweepOutcome:
        for partition, run in runs.items():
            into.runs[partition] = run.status
            for record in self.instance.get_records_for_run(
                run.run_id,
                of_type={dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.ASSET_CHECK_EVALUATION},
            ).records:
                event = record.event_log_entry.dagster_event
                if event is None:
                    continue
                if event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
                    evaluation = event.event_specific_data
                    if evaluation.passed:
                        into.checks_passed += 1
                    else:
                        # A failed WARN check is a finding to read (e.g. a degenerate variant); only a
                        # failed ERROR check fails the sweep.
                        why = f": {evaluation.description}" if evaluation.description else ""
                        failed = (
                            into.warned_checks
                            if evaluation.severity == dg.AssetCheckSeverity.WARN
                            else into.failed_checks
                        )
                        failed.setdefault(partition, []).append(
                            f"{evaluation.asset_check_key.to_user_string()}{why}"
                        )
                elif partition not in into.failures:
                    into.failures[partition] = step_error(event)
            if run.status != dg.DagsterRunStatus.SUCCESS and partition not in into.failures:
                into.failures[partition] = f"run {run.run_id} ended {run.status.value}"
        return into


def launch_sweep(
    instance: dg.DagsterInstance, sweep: Sweep, home: Path, on_progress: Progress = print
) -> SweepOutcome:
    """ohlcv of every crypto, the folds its bars cover, then every crypto x fold, then the report over
    them: backfills and a run launched through the instance, run under its concurrency.

    New folds are the new-folds sensor's to add and request, as they are when bars arrive through the UI:
    while it runs, this waits for its runs of the new folds instead of launching them twice, and launches
    a backfill of the rest (the folds that existed before). With the sensor stopped, it adds them itself.
    """
    outcome = SweepOutcome()
    started_at = datetime.now(UTC)
    folds_before = set(instance.get_dynamic_partitions(sweep.keys.folds_partitions.name))
    with running_daemon(instance, home) as daemon:
        launcher = SweepLauncher(instance, sweep, on_progress, daemon)
        try:
            cryptos = sweep.config.cryptos
            ohlcv_runs = launcher.wait(
                launcher.backfill(sweep.keys.ohlcv_job, cryptos), "ohlcv", len(cryptos)
            )
            launcher.outcome(ohlcv_runs, outcome)
            loaded = {c for c, run in ohlcv_runs.items() if run.status == dg.DagsterRunStatus.SUCCESS}
            update = fold_update(instance, sweep)
            outcome.left_out = {c: why for c, why in update.plan.rejected.items() if c in loaded}
            outcome.left_out_fails = not sweep.config.operations.skip_cryptos_without_folds
            for crypto, why in outcome.left_out.items():
                on_progress(f"  left out {crypto}: {why}")
            new_folds = [f for f in update.plan.fold_ids if f not in folds_before]
            if new_folds:
                on_progress(f"  new folds: {', '.join(new_folds)}")
            keys = [
                k for k in update.partitions(update.plan.fold_ids) if k.keys_by_dimension["crypto"] in loaded
            ]
            partitions = [str(k) for k in keys]
            new_partitions = [str(k) for k in keys if k.keys_by_dimension["fold"] in new_folds]
            if new_partitions and launcher.sensor_running():
                requested = launcher.await_sensor_runs(new_partitions, started_at)
            else:
                add_new_folds(instance, sweep)
                requested = launcher.runs_since(started_at)
            todo = [p for p in partitions if p not in requested]
            if partitions:
                backfill_id = launcher.backfill(sweep.keys.sweep_job, todo) if todo else None
                also = [requested[p] for p in partitions if p in requested]
                runs = launcher.wait(backfill_id, "crypto x fold", len(partitions), also=also)
                launcher.outcome(runs, outcome)
            if partitions and not outcome.failures:
                # The report over every partition (the automation also refreshes it when rows change).
                report = launcher.wait(None, "report", 1, also=[launcher.launch_run(sweep.keys.report_job)])
                launcher.outcome({sweep.keys.report.to_user_string(): r for r in report.values()}, outcome)
            elif partitions:
                on_progress(f"  report: not run while a partition failed; it refreshes by itself once they "
                            f"succeed, or Materialize {sweep.keys.report.to_user_string()}")  # fmt: skip
        finally:
            launcher.close()
    return outcome
