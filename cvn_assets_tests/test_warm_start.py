"""Warm run workers (`cvn_assets/warm_start.py`) in numbers; the runs themselves start warm in every test
that goes through the daemon, and `test_run_queue` checks their process, Terminate and a killed worker."""

from __future__ import annotations

import importlib
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import dagster as dg
import pytest

from cvn_assets import run_launcher, warm_start


@pytest.mark.parametrize("module", warm_start.PRELOAD)
def test_every_preloaded_module_imports(module: str) -> None:
    """The forkserver skips a module that fails to import without a word: a renamed one would quietly
    make every run start cold again."""
    importlib.import_module(module)


def test_a_found_dynamic_partition_is_asked_once_a_missing_one_every_time() -> None:
    """In a run worker (a subprocess here: the patch is for the worker's whole life)."""
    script = textwrap.dedent(
        """
        import dagster as dg
        from cvn_assets.warm_start import remember_dynamic_partitions

        asked = []
        original = dg.DagsterInstance.has_dynamic_partition
        def counting(self, name, key):
            asked.append(key)
            return original(self, name, key)
        dg.DagsterInstance.has_dynamic_partition = counting
        remember_dynamic_partitions()
        remember_dynamic_partitions()  # a second call does not wrap twice
        with dg.instance_for_test() as instance:
            instance.add_dynamic_partitions("folds", ["f00"])
            found = [instance.has_dynamic_partition("folds", "f00") for _ in range(3)]
            missing = [instance.has_dynamic_partition("folds", "f01") for _ in range(2)]
            instance.add_dynamic_partitions("folds", ["f01"])
            added = instance.has_dynamic_partition("folds", "f01")
        print(found, missing, added, asked)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert (
        done.stdout.split("\n")[-2] == "[True, True, True] [False, False] True ['f00', 'f01', 'f01', 'f01']"
    )


def test_a_run_of_another_python_is_left_to_its_code_server() -> None:
    """A run with no code origin is never forked; the run's own interpreter and environment decide."""
    assert not warm_start.can_fork(dg.DagsterRun(job_name="noop", run_id="c"))


def test_only_a_code_location_sharing_the_daemons_environment_is_forked() -> None:
    """Started by this daemon (a workspace python_module entry) or on a local socket (`dagster dev`): its
    runs may be forked. A code server on a port (a deployment with its own settings, as in
    test_production_topology) keeps starting its runs itself."""
    managed = SimpleNamespace(loadable_target_origin=object(), location_name="cvn_assets")
    dev = SimpleNamespace(socket="/tmp/dagster-dev.sock", host="localhost", port=None)
    deployed = SimpleNamespace(socket=None, host="127.0.0.1", port=4266)
    assert warm_start.shares_environment(managed) and warm_start.shares_environment(dev)
    assert not warm_start.shares_environment(deployed) and not warm_start.shares_environment(None)


# Drops the first SIGTERM (as xgboost's ctypes callback drops the interrupt it raises) and exits on the next.
DROPS_THE_FIRST_SIGTERM = """
import signal, sys, time
seen = []
def on_term(*_):
    seen.append(1)
    if len(seen) > 1:
        sys.exit(3)
signal.signal(signal.SIGTERM, on_term)
print("ready", flush=True)
time.sleep(60)
"""


def test_terminate_resends_sigterm_until_the_run_has_finished(monkeypatch: pytest.MonkeyPatch) -> None:
    """A warm run whose first SIGTERM was dropped inside a step is signalled again, and stops."""
    monkeypatch.setattr(run_launcher, "TERMINATE_RESEND_EVERY_S", 0.2)
    worker = subprocess.Popen(
        [sys.executable, "-c", DROPS_THE_FIRST_SIGTERM], stdout=subprocess.PIPE, text=True
    )
    try:
        assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
        with dg.instance_for_test() as instance:
            run = instance.add_run(dg.DagsterRun(job_name="a_job", status=dg.DagsterRunStatus.STARTED))
            worker.send_signal(signal.SIGTERM)  # the launcher's first: dropped
            run_launcher._resend_until_finished(instance, run.run_id, worker.pid, time.time())
        assert worker.wait(timeout=10) == 3  # the second signal stopped it
    finally:
        worker.kill()


def test_a_run_is_forked_for_any_name_of_this_interpreter_in_this_environment_only(tmp_path: Path) -> None:
    """A code server started as `.venv/bin/python` records that path; the daemon runs as `python3` of the
    same venv (its entry point's shebang): one interpreter, so its runs are forked warm. The same Python
    linked from another folder (another environment) is not this one."""
    here = Path(sys.executable)
    alias = tmp_path / "venv" / "bin"
    alias.mkdir(parents=True)
    (alias / "python").symlink_to(here.resolve())
    assert warm_start.same_interpreter(sys.executable)
    siblings = [p for p in here.parent.glob("python*") if p.resolve() == here.resolve() and p != here]
    for sibling in siblings:  # python3, python3.11 beside python
        assert warm_start.same_interpreter(str(sibling))
    assert not warm_start.same_interpreter(str(alias / "python"))
