"""Run workers that start warm: each run in its own process, forked from one that has already imported
Dagster and the model libraries.

Dagster's default launcher asks the code server to start each run, and the code server spawns a fresh
interpreter per run (`multiprocessing` "spawn"), which imports dagster, pandas, scikit-learn, scipy and
the boosting libraries again: 6-8 s of every run on two cores before its first step. Here the run
launcher (in the daemon) hands the run to a `multiprocessing` forkserver instead. The forkserver is a
clean, single-threaded interpreter started once, which imports the libraries in `PRELOAD`; every run is
a fork of it that executes exactly what `dagster api execute_run` executes (the run worker dagster_docker
and dagster_k8s start), so:
  * each run is still its own process: a crash or an OOM kill ends that run only, and the worker records
    its pid ("Started process for run (pid: N)") for run monitoring's health check, as before;
  * our own code (`cvn_assets`, the sweep configs) is not preloaded: each run imports it fresh from disk,
    so an edit or a code-location reload reaches the next run as it does with the code server (~0.4 s);
  * a forkserver that died (killed with its runs) is started again by the next launch;
  * inside the worker, a dynamic partition once found is remembered for the rest of the run (Dagster asks
    the instance again for every partitioned input and output: ~370 queries per demo cell on SQLite).
"""

from __future__ import annotations

import functools
import multiprocessing
import multiprocessing.forkserver
import multiprocessing.process
import os
import sys
import threading
from functools import cache
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from pathlib import Path

import dagster as dg

from cvn_assets.dagster_internals import ExecuteRunArgs, execute_run_command
from cvn_assets.instance_queries import QUERY_LOG_ENV, counting

# What a run worker imports before and during its steps, outside our own package: most of its start
# (measured with `python -X importtime` on a demo cell). A module that is not installed is skipped.
PRELOAD = (
    "dagster",
    "dagster_postgres",
    "pandas",
    "numpy",
    "scipy.stats",
    "sklearn.isotonic",
    "sklearn.linear_model",
    "sqlalchemy.orm",
    "optuna",
    "xgboost",
    "lightgbm",
    "catboost",
    "pyarrow.parquet",
    "pyarrow.dataset",
    "upath",
    "skops.io",  # the stored format of scikit-learn models: 1.6 s
    "mlflow",  # tracking, on in the embedded default: 1.5 s with its SQL store
    "mlflow.store.tracking.sqlalchemy_store",
    "matplotlib.pyplot",  # the report's figures
)


@cache
def forkserver(preload: tuple[str, ...] = PRELOAD) -> BaseContext:
    """The forkserver context, its server importing `preload` (a module that is not installed is
    skipped). One per process; the server itself starts on the first run."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(preload))
    return context


def prestart_in_daemon(preload: tuple[str, ...] = PRELOAD) -> None:
    """In Dagster's daemon (which launches the queued runs), start the forkserver now, in the background,
    so the first run does not wait for its imports (~6 s). Elsewhere (the webserver, `cvn` commands) the
    launcher only stops runs, and no forkserver is started until one launches a run."""
    entry = Path(sys.argv[0])
    # `dagster-daemon run`, or `python -m dagster._daemon run` (how `dagster dev` starts it).
    if entry.name != "dagster-daemon" and entry.parts[-2:] != ("_daemon", "__main__.py"):
        return
    forkserver(preload)
    threading.Thread(
        target=multiprocessing.forkserver.ensure_running, name="cvn-forkserver", daemon=True
    ).start()


def can_fork(run: dg.DagsterRun) -> bool:
    """Whether the run may be forked here: its code runs on this interpreter, in this process's
    environment (see `shares_environment`)."""
    origin = run.job_code_origin
    location = run.remote_job_origin.repository_origin.code_location_origin if run.remote_job_origin else None
    return origin is not None and same_interpreter(origin.executable_path) and shares_environment(location)


def same_interpreter(executable: str) -> bool:
    """Whether `executable` is this process's interpreter: the same file in the same environment's folder
    (`.venv/bin/python` and `.venv/bin/python3` are one; the same Python in another venv is not)."""
    here, there = Path(sys.executable), Path(executable)
    return here.parent.resolve() == there.parent.resolve() and here.resolve() == there.resolve()


def shares_environment(location: object) -> bool:
    """A run executes in its code location's environment (the settings a deployment gives the code server,
    which the daemon may not have). A forked run gets the daemon's, so only two kinds of code location
    qualify: one this daemon started itself (a workspace `python_module` or `python_file` entry: it
    inherits the daemon's environment), and one on a local socket (`cvn` and `dagster dev` start that
    beside the daemon, with one environment: `code_server.py`). A code server on a port is a deployment of its
    own: its runs start there, as Dagster starts them."""
    if location is None:
        return False
    if getattr(location, "socket", None):
        return True
    try:  # only a code location the daemon starts knows what it loads (a served one raises here)
        return location.loadable_target_origin is not None  # type: ignore[attr-defined]
    except Exception:
        return False


def start_worker(run: dg.DagsterRun, instance: dg.DagsterInstance, preload: tuple[str, ...]) -> BaseProcess:
    """Fork a run worker for `run` from the forkserver; returns as soon as the worker exists."""
    args = ExecuteRunArgs(
        job_origin=run.job_code_origin,
        run_id=run.run_id,
        instance_ref=instance.get_ref(),
        set_exit_code_on_failure=True,
    )
    worker = forkserver(preload).Process(
        target=execute_run, args=(dg.serialize_value(args),), name=f"dagster-run-{run.run_id}"
    )
    worker.start()
    # A run outlives the daemon that launched it, as it does under the code server: without this,
    # multiprocessing's exit hook would make a stopping daemon wait for (or, for a daemonic process,
    # kill) every run still going. The forkserver reaps the worker when it ends.
    multiprocessing.process._children.discard(worker)  # type: ignore[attr-defined]
    return worker


def remember_dynamic_partitions() -> None:
    """In a run worker only: `DagsterInstance.has_dynamic_partition` answers a partition it found once
    from memory for the rest of the process (the run). Folds are added, never changed (a legacy fold key
    is deleted once, when the fold's new key replaces it); a partition not found is asked again. Patched on the class because Dagster's step execution
    calls it on the instance it builds from the run's instance ref, which no hook reaches."""
    original = dg.DagsterInstance.has_dynamic_partition
    if getattr(original, "remembers", False):
        return
    found: set[tuple[str, str]] = set()

    @functools.wraps(original)
    def has_dynamic_partition(self: dg.DagsterInstance, partitions_def_name: str, partition_key: str) -> bool:
        if (partitions_def_name, partition_key) in found:
            return True
        exists = original(self, partitions_def_name, partition_key)
        if exists:
            found.add((partitions_def_name, partition_key))
        return exists

    has_dynamic_partition.remembers = True  # type: ignore[attr-defined]
    dg.DagsterInstance.has_dynamic_partition = has_dynamic_partition  # type: ignore[method-assign]


def execute_run(serialized_args: str) -> None:
    """In the forked worker: `dagster api execute_run ARGS`, with the same exit status (and the run's
    instance statements counted, where the bench asks: `instance_queries.py`)."""
    remember_dynamic_partitions()
    flush = None
    if os.environ.get(QUERY_LOG_ENV):
        flush = counting(dg.deserialize_value(serialized_args, ExecuteRunArgs).run_id)
    try:
        execute_run_command.main(args=[serialized_args], prog_name="dagster api execute_run")
    finally:
        if flush is not None:
            flush()
