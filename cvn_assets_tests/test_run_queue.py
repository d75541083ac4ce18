"""Single flight and run hygiene through the path users take: a real webserver and daemon over the shipped
`dagster.yaml` (storage on SQLite or on the session's PostgreSQL, results in the same kind of database),
backfills launched through the webserver's GraphQL API.

One deployment per storage kind serves every test (starting the services is most of a test's time): the
single-flight test runs SYNA's partitions, the killed-run test one of SYNB's, whose run worker and
forkserver it kills; the terminate test comes last, on a sweep of its own whose bars only it loads (its
searches last, and would hold the queue and the results database's studies in the others)."""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import optuna
import pandas as pd
import pytest
import sqlalchemy as sa
import yaml

from cvn_assets import instance_storage
from cvn_assets.core.config import SweepConfig, parse_config
from cvn_assets.definitions import build_definitions
from cvn_assets.defs.resources import ResultsStore
from cvn_assets.defs.sweep import Sweep
from cvn_assets.launch import LAUNCH_BACKFILL, LOCATION, REPOSITORY
from cvn_assets.run_launcher import WARM_WORKER_TAG, recorded_worker
from cvn_assets.store.engine import upgrade
from cvn_assets.store.schema import BASELINE_KEY, RESULT_KEY, finetune_baselines, finetune_results
from cvn_assets.store.verdicts import read_verdicts
from cvn_assets_tests.conftest import fresh_database, hyperparameter_environ, small_raw_config
from cvn_assets_tests.in_process import load_bars, run_partition
from cvn_assets_tests.services import dagster_services, graphql
from cvn_assets_tests.test_automation import Ticks

pytestmark = pytest.mark.usefixtures("small_hyperparams")  # the in-process runs; the services get the same
REPO = Path(__file__).resolve().parents[1]
VOLATILE = ["id", "created_at", "dagster_run_id"]
N_TRIALS = 4
LONG, LONG_SEARCH_S = "long", 20  # the terminate test's sweep: each study searches for 20 s


@dataclass
class Deployment:
    home: Path  # CVN_HOME: artifacts (and the SQLite results database)
    dagster_home: Path
    db_url: str  # the results database
    env: dict[str, str]
    sweeps: list[SweepConfig]
    url: str = ""  # the webserver, once the services run
    first_folds: dict[str, str] | None = None  # sweep -> its first fold id, loaded before the services

    @property
    def log(self) -> Path:
        return self.dagster_home / "services.log"

    def defs(self, artifacts: Path | None = None, db_url: str | None = None) -> dg.Definitions:
        """The code location as the code server loads it (the same artifacts and results database)."""
        return build_definitions(
            self.sweeps,
            artifacts_dir=artifacts or self.home / "artifacts",
            results_store=ResultsStore(database_url=db_url or self.db_url),
        )

    def instance(self) -> dg.DagsterInstance:
        return dg.DagsterInstance.from_config(str(self.dagster_home))


def _raw_sweeps() -> list[dict]:
    """A sweep in fixed mode, one in search mode, and a long search (for a run still going when the
    terminate test stops it: a warm run of the others ends in about 1.5 s); cron once a year: no scheduled
    tick during the test."""
    common = {"costs_bps": [10], "operations": {"cron": "0 6 1 1 *"}}
    search = {"mode": "search", "n_trials": N_TRIALS, "sampler_startup_trials": 2}
    long = {"mode": "search", "n_trials": 100_000, "timeout_s": LONG_SEARCH_S, "sampler_startup_trials": 2}
    return [small_raw_config(name="fixed", **common), small_raw_config(name="search", hpo=search, **common),
            small_raw_config(name=LONG, hpo=long, **common)]  # fmt: skip


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def deployment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    """The shipped embedded dagster.yaml, with run monitoring polling every 2 s and, for PostgreSQL, the
    instance's and the results' storage on the session's server; every sweep's bars and folds loaded in
    process, then the webserver and daemon started over it."""
    tmp_path = tmp_path_factory.mktemp(f"queue_{request.param}")
    home, dagster_home, sweeps_dir = tmp_path / "home", tmp_path / "home" / "dagster", tmp_path / "sweeps"
    dagster_home.mkdir(parents=True)
    sweeps_dir.mkdir()
    configs = []
    for raw in _raw_sweeps():
        (sweeps_dir / f"{raw['name']}.yaml").write_text(yaml.safe_dump(raw))
        configs.append(parse_config(raw))
    instance_yaml = yaml.safe_load(instance_storage.instance_yaml(REPO / "dagster.yaml", dagster_home))
    instance_yaml["run_monitoring"]["poll_interval_seconds"] = 2
    env = {
        **os.environ,
        **hyperparameter_environ(),
        "DAGSTER_HOME": str(dagster_home),
        "CVN_HOME": str(home),
        "CVN_SWEEPS_DIR": str(sweeps_dir),
    }

    @contextmanager
    def deploy(db_url: str) -> Iterator[Deployment]:
        (dagster_home / "dagster.yaml").write_text(yaml.safe_dump(instance_yaml))
        upgrade(db_url)
        deployment = Deployment(home, dagster_home, db_url, {**env, "CVN_DATABASE_URL": db_url}, configs)
        with deployment.instance() as instance:
            deployment.first_folds = _preload(deployment, instance)
        with dagster_services(dagster_home, deployment.env) as url:
            deployment.url = url
            yield deployment

    if request.param == "sqlite":
        with deploy(f"sqlite:///{home / 'results.db'}") as deployment:
            yield deployment
        return
    server = request.getfixturevalue("postgres_server")
    with fresh_database(server) as dagster_db, fresh_database(server) as results_db:
        instance_yaml["storage"] = {
            "postgres": {"postgres_url": dagster_db.replace("+psycopg://", "+psycopg2://")}
        }
        with deploy(results_db) as deployment:
            yield deployment


def _backfill(url: str, job: str, partition: str) -> str:
    params = {
        "selector": {
            "partitionSetName": f"{job}_partition_set",
            "repositorySelector": {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY},
        },
        "partitionNames": [partition],
    }
    launched = graphql(url, LAUNCH_BACKFILL, {"params": params})["data"]["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    return launched["backfillId"]


def _wait_for(what: str, probe, timeout_s: float, log: Path):  # noqa: ANN001, ANN202
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"{what} did not happen in {timeout_s:.0f} s; see {log}")


def _preload(deployment: Deployment, instance: dg.DagsterInstance) -> dict[str, str]:
    """Bars and folds of every sweep but the long one, loaded in process before the daemon starts: sweep ->
    first fold id."""
    defs = deployment.defs()
    return {
        c.name: load_bars(defs, c, instance, "SYNA").folds[0].fold_id
        for c in deployment.sweeps
        if c.name != LONG
    }


def _rows(db_url: str, run_id: str) -> list[pd.DataFrame]:
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            return [
                pd.read_sql(sa.select(t).where(t.c.run_id == run_id), conn)
                .drop(columns=VOLATILE)
                .sort_values(list(key), ignore_index=True)
                for t, key in ((finetune_results, RESULT_KEY), (finetune_baselines, BASELINE_KEY))
            ]
    finally:
        engine.dispose()


def _clean_rows(
    deployment: Deployment, config: SweepConfig, crypto: str, tmp_path: Path
) -> list[pd.DataFrame]:
    """The partition's rows from a clean run: a fresh instance and a fresh results database of the same kind."""

    tmp_path.mkdir(parents=True, exist_ok=True)

    def run(db_url: str) -> list[pd.DataFrame]:
        upgrade(db_url)
        defs = deployment.defs(artifacts=tmp_path / "clean_artifacts", db_url=db_url)
        with dg.instance_for_test() as instance:
            load_bars(defs, config, instance, crypto)
            assert run_partition(defs, config, instance, crypto, "f00").success
        return _rows(db_url, config.run_id)

    if deployment.db_url.startswith("sqlite"):
        return run(f"sqlite:///{tmp_path / 'clean.db'}")
    with fresh_database(deployment.db_url) as clean_url:
        return run(clean_url)


@pytest.mark.timeout(600)
def test_two_launches_of_one_partition_run_one_after_the_other(
    deployment: Deployment, tmp_path: Path
) -> None:
    """Each sweep's partition launched twice at once (fixed and search modes): the run queue's per-partition
    limit runs them one after the other; the study holds exactly n_trials; the rows are a clean run's."""
    folds, log = deployment.first_folds or {}, deployment.log
    partitions = {"fixed": f"SYNA|{folds['fixed']}", "search": f"SYNA|{folds['search']}"}
    for name, partition in partitions.items():
        for _ in range(2):
            _backfill(deployment.url, f"{name}_sweep", partition)
    with deployment.instance() as instance:

        def finished() -> list[dg.RunRecord] | None:
            records = [
                r
                for r in instance.get_run_records()
                if r.dagster_run.job_name in ("fixed_sweep", "search_sweep")
            ]
            done = len(records) == 4 and all(r.dagster_run.is_finished for r in records)
            return records if done else None

        records = _wait_for("four runs", finished, 480, log)

    assert all(r.dagster_run.status == dg.DagsterRunStatus.SUCCESS for r in records), log
    for name, config in zip(("fixed", "search"), deployment.sweeps[:2], strict=True):
        pair = sorted(
            (r for r in records if r.dagster_run.job_name == f"{name}_sweep"), key=lambda r: r.start_time or 0
        )
        assert [r.dagster_run.tags["dagster/partition"] for r in pair] == [partitions[name]] * 2
        assert pair[1].start_time >= pair[0].end_time, f"{name}: the two runs of one partition overlapped"
        rows = _rows(deployment.db_url, config.run_id)
        for got, clean in zip(rows, _clean_rows(deployment, config, "SYNA", tmp_path / name), strict=True):
            pd.testing.assert_frame_equal(got, clean)
    studies = optuna.get_all_study_summaries(deployment.db_url)
    assert len(studies) == 1 and studies[0].n_trials == N_TRIALS  # one study, searched once, resumed once


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _next_cron_tick(after: dt.datetime) -> dt.datetime:
    """The next 0 6 1 1 * (January 1st, 06:00 UTC) after `after`, and 30 s: the sensor's next evaluation."""
    tick = dt.datetime(after.year + 1, 1, 1, 6, tzinfo=dt.UTC)
    return tick + dt.timedelta(seconds=30)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("deployment", ["postgresql"], indirect=True)
def test_two_audits_of_one_cell_capture_it_once_and_the_second_reuses_it(deployment: Deployment) -> None:
    """Two re-audits of a cell never captured (its fold dataset and model missing), launched at once through
    the webserver on PostgreSQL: the first captures it, the second waits (one run per partition) and
    reuses it; the study is searched once; both store their verdicts."""
    search = deployment.sweeps[1]
    keys = Sweep.of(search).keys
    with deployment.instance() as instance:
        second_fold = sorted(instance.get_dynamic_partitions(keys.folds_partitions.name))[1]
    partition = f"SYNA|{second_fold}"
    for _ in range(2):
        _backfill(deployment.url, keys.light_diagnostics_job, partition)
    with deployment.instance() as instance:

        def finished() -> list[dg.RunRecord] | None:
            records = instance.get_run_records(dg.RunsFilter(job_name=keys.light_diagnostics_job))
            return records if len(records) == 2 and all(r.dagster_run.is_finished for r in records) else None

        first, second = sorted(_wait_for("two audits", finished, 480, deployment.log),
                               key=lambda r: r.start_time or 0)  # fmt: skip
        assert all(r.dagster_run.status == dg.DagsterRunStatus.SUCCESS for r in (first, second))
        assert second.start_time >= first.end_time, "two audits of one cell overlapped"

        def captured(record: dg.RunRecord) -> dict[str, bool]:
            events = instance.get_records_for_run(
                record.dagster_run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
            ).records
            return {
                e.event_log_entry.asset_materialization.asset_key.path[-1]: bool(
                    e.event_log_entry.asset_materialization.metadata.get("reused")
                )
                for e in events
                if e.event_log_entry.asset_materialization.asset_key.path[1]
                in ("features", "fold_dataset", "model")
            }

        assert captured(first) == {"base_features": False, "fold_dataset": False, "xgboost_model": False}
        assert captured(second) == {"base_features": True, "fold_dataset": True, "xgboost_model": True}
    test_start = second_fold.split("_", 1)[1]  # the study names the fold by its windows
    studies = [
        s for s in optuna.get_all_study_summaries(deployment.db_url)
        if s.study_name.startswith(f"{search.run_id}/xgboost/SYNA/") and f"_{test_start}_" in s.study_name
    ]  # fmt: skip
    assert len(studies) == 1 and studies[0].n_trials == N_TRIALS  # searched once, by the first audit
    engine = sa.create_engine(deployment.db_url)
    try:
        with engine.connect() as conn:
            verdicts = read_verdicts(conn, search.run_id, "SYNA", second_fold)
    finally:
        engine.dispose()
    assert {v["diagnostic"] for v in verdicts} == {"adversarial_validation", "drift", "leakage",
                                                   "reproducibility_anchor", "trial_invariance"}  # fmt: skip
    assert {v["dagster_run_id"] for v in verdicts} == {second.dagster_run.run_id}
    trial = next(v for v in verdicts if v["diagnostic"] == "trial_invariance")
    assert trial["status"] == "PASS" and f"all {N_TRIALS} trials" in trial["summary"]


def _running_worker(instance: dg.DagsterInstance, job: str) -> tuple[str, int] | None:
    """The job's STARTED run and its worker's pid, once the worker recorded it."""
    runs = instance.get_runs(dg.RunsFilter(job_name=job, statuses=[dg.DagsterRunStatus.STARTED]))
    worker = recorded_worker(instance, runs[0].run_id) if runs else None
    return (runs[0].run_id, worker[0]) if worker else None


@pytest.mark.timeout(600)
def test_a_run_whose_process_died_is_failed_and_requested_again(deployment: Deployment) -> None:
    """`dagster dev` killed mid-run (the run's process and the process it was forked from): run monitoring
    marks the run failed, and the next scheduled tick requests its partition again."""
    fixed = deployment.sweeps[0]
    keys = Sweep.of(fixed).keys
    with deployment.instance() as instance:
        ticks = Ticks(deployment.defs(), instance)
        ticks.at(dt.datetime.now(dt.UTC))  # the sensor's first evaluation: nothing is due yet
    partition = f"SYNB|{(deployment.first_folds or {})['fixed']}"  # never run: SYNA's ran before
    log = deployment.log
    _backfill(deployment.url, keys.sweep_job, partition)
    with deployment.instance() as instance:
        # The run once it runs (a run killed while STARTING fails on run monitoring's start timeout).
        run_id, pid = _wait_for(
            "the run's start", lambda: _running_worker(instance, keys.sweep_job), 240, log
        )
        os.kill(_parent(pid), signal.SIGKILL)  # the forkserver that started the run...
        os.kill(pid, signal.SIGKILL)  # ...and the run's own process
        failed = _wait_for(
            "the run marked failed",
            lambda: (run := instance.get_run_by_id(run_id)) and run.status == dg.DagsterRunStatus.FAILURE,
            120,
            log,
        )
        assert failed
        said = [r.event_log_entry.message for r in instance.get_records_for_run(run_id).records]
        assert any(f"run worker process {pid} is gone" in m for m in said), said[-5:]

    with deployment.instance() as instance:
        ticks.instance = instance
        requested = ticks.at(_next_cron_tick(dt.datetime.now(dt.UTC)))
    assert partition in requested.get(keys.economics(10).to_user_string(), set())


TERMINATE_RUN = """
mutation Terminate($runId: String!) {
  terminateRun(runId: $runId) {
    __typename
    ... on TerminateRunFailure { message }
    ... on PythonError { message }
  }
}
"""


def _command_line(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def _gone(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"


@pytest.mark.timeout(600)
def test_a_run_starts_warm_and_terminate_in_the_ui_cancels_it(deployment: Deployment) -> None:
    """The run is forked from the daemon's preloaded forkserver (not spawned afresh by the code server), in
    a process of its own; the UI's Terminate stops that process inside its step and the run ends CANCELED,
    also when the first signal lands in xgboost's ctypes callback, which drops it (the launcher resends)."""
    config = next(c for c in deployment.sweeps if c.name == LONG)
    keys, log = Sweep.of(config).keys, deployment.log
    with deployment.instance() as instance:
        fold_id = load_bars(deployment.defs(), config, instance, "SYNA").folds[0].fold_id
    _backfill(deployment.url, keys.sweep_job, f"SYNA|{fold_id}")
    with deployment.instance() as instance:
        try:
            run_id, pid = _wait_for(
                "the run's start", lambda: _running_worker(instance, keys.sweep_job), 240, log
            )
            run = instance.get_run_by_id(run_id)
            assert run is not None and run.tags.get(WARM_WORKER_TAG) == socket.gethostname(), run and run.tags
            assert "multiprocessing.forkserver" in _command_line(_parent(pid)), _command_line(_parent(pid))
            # Inside the model's step (its search lasts 20 s): a SIGTERM there interrupts the step, as a
            # run pod's on Kubernetes.
            _wait_for("the model's step", lambda: any(
                r.event_log_entry.step_key and "model" in r.event_log_entry.step_key
                for r in instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.STEP_START).records
            ), 240, log)  # fmt: skip
            terminated = graphql(deployment.url, TERMINATE_RUN, {"runId": run_id})["data"]["terminateRun"]
            assert terminated["__typename"] == "TerminateRunSuccess", terminated
            ended = _wait_for(
                "the run canceled",
                lambda: (r := instance.get_run_by_id(run_id)) and r.is_finished and r,
                120,
                log,
            )
            assert ended.status == dg.DagsterRunStatus.CANCELED, ended.status
            _wait_for("its process gone", lambda: _gone(pid), 30, log)
        finally:  # any other run of the long sweep (its fold sensor's, once the folds exist) stopped too
            for other in instance.get_runs(dg.RunsFilter(tags={"cvn/sweep": LONG})):
                if not other.is_finished:
                    graphql(deployment.url, TERMINATE_RUN, {"runId": other.run_id})
