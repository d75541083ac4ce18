"""The production topology on one machine, as separate processes on loopback:

  dagster code-server   serves the code location over gRPC (runs start in its child processes)
  dagster-webserver     the UI and its GraphQL API, loading the location from the code server
  dagster-daemon        backfills, the run queue (per-partition limit), sensors, run monitoring
  PostgreSQL            Dagster's instance storage (`deploy/dagster.yaml`, credentials from the env), the
                        results database, and MLflow's store: three databases on one server
  moto S3 server        the artifacts (parquet, native model files) and MLflow's artifacts
  mlflow server         tracking and registry on PostgreSQL, artifacts proxied to S3

A tiny sweep's ohlcv partition is backfilled through the webserver's GraphQL API; the new-folds sensor adds
its fold and requests the crypto x fold run; the run, its checks, artifacts, MLflow run and rows are read
back from where production keeps them. An alert (a failed run) is delivered by the daemon, the daemon is
restarted, and the alert is not sent again: the sensor's cursor lives in PostgreSQL, not in the daemon.
The automation then refreshes the report, which registers its pick on the tracking server.
"""

from __future__ import annotations

import io
import json
import logging
import os
import time
import urllib.error
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa
import yaml
from dagster._core.definitions.run_request import InstigatorType
from dagster._core.scheduler.instigation import TickStatus
from dagster._core.storage.event_log.base import EventLogCursor
from dagster_postgres import PostgresRunStorage

from cvn_assets.core.config import parse_config
from cvn_assets.defs.alerts import SENSOR_NAME, AlertCursor
from cvn_assets.defs.sweep import Sweep
from cvn_assets.defs.tracking import champion_alias, experiment_name, registered_model_name
from cvn_assets.launch import LAUNCH_BACKFILL, LOCATION, REPOSITORY
from cvn_assets.store.schema import finetune_baselines, finetune_results
from cvn_assets_tests.conftest import fresh_database, hyperparameter_environ, small_raw_config
from cvn_assets_tests.services import (
    Receiver,
    ServiceProcess,
    code_server,
    dagster_daemon,
    dagster_webserver,
    free_port,
    graphql,
    grpc_workspace,
    http_receiver,
    mlflow_server,
)

pytestmark = pytest.mark.timeout(600)
REPO = Path(__file__).resolve().parents[1]
BUCKET, PREFIX = "cvn-topology", "artifacts"
PG_PASSWORD = "topology-pw"  # the test cluster trusts loopback; the password travels as production's does
PSYCOPG2 = "postgresql+psycopg2"  # the driver dagster-postgres speaks
YEARLY = {"cron": "0 6 1 1 *"}  # no scheduled refresh tick during the test
# One crypto, one fold, XGBoost only, one cost: the smallest partition that runs every step.
TINY_RAW = small_raw_config(
    universe={"SYNA": {"kind": "synthetic"}},
    folds={**small_raw_config()["folds"], "max_folds": 1},
    costs_bps=[10],
    operations=YEARLY,
)
TINY = parse_config(TINY_RAW)
NODATA = "nodata"  # a sweep whose only source does not exist: its ohlcv run fails, the alert's cause
T = TypeVar("T")


@dataclass
class Topology:
    url: str  # the webserver
    dagster_home: Path
    cvn_home: Path
    dagster_db: str  # the instance's storage (SQLAlchemy URL)
    results_db: str
    mlflow_db: str
    mlflow_uri: str
    s3_endpoint: str
    receiver: Receiver
    daemon: ServiceProcess
    processes: list[ServiceProcess]

    def instance(self) -> dg.DagsterInstance:
        """The instance as every process builds it: `deploy/dagster.yaml` on PostgreSQL."""
        return dg.DagsterInstance.from_config(str(self.dagster_home))

    def logs(self) -> str:
        """Each process's log tail, for an assertion's message."""
        return "\n".join(f"--- {p.name} ({p.log}):\n{p.tail(25)}" for p in self.processes)

    def wait(self, what: str, probe: Callable[[], T | None], timeout_s: float) -> T:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = probe()
            if found:
                return found
            dead = [p.name for p in self.processes if not p.running()]
            if dead:
                raise AssertionError(f"{', '.join(dead)} exited while waiting for {what}\n{self.logs()}")
            time.sleep(1.0)
        raise AssertionError(f"{what} did not happen in {timeout_s:.0f} s\n{self.logs()}")

    def s3(self) -> Any:
        return _s3_client(self.s3_endpoint)


def _s3_client(endpoint: str) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _sweep_files(folder: Path) -> Path:
    """The tiny sweep, and `nodata`, whose ohlcv run fails."""
    folder.mkdir()
    (folder / "tiny.yaml").write_text(yaml.safe_dump(TINY_RAW))
    nodata = small_raw_config(
        name=NODATA,
        universe={"BTC": {"kind": "table", "path": str(folder.parent / "nowhere.csv")}},
        costs_bps=[10],
        operations=YEARLY,
    )
    (folder / f"{NODATA}.yaml").write_text(yaml.safe_dump(nodata))
    return folder


def production_instance_yaml() -> dict[str, Any]:
    """`deploy/dagster.yaml` as shipped."""
    return yaml.safe_load((REPO / "deploy" / "dagster.yaml").read_text())


def test_the_production_instance_names_the_psycopg2_driver() -> None:
    db = yaml.safe_load((REPO / "deploy" / "dagster.yaml").read_text())["storage"]["postgres"]["postgres_db"]
    assert db.get("scheme") == PSYCOPG2, (
        "deploy/dagster.yaml: storage.postgres.postgres_db needs `scheme: postgresql+psycopg2`: without it "
        "SQLAlchemy 2.1 opens Dagster's storage with psycopg 3, on which dagster-postgres fails every event write"
    )


def _base_env() -> dict[str, str]:
    """The test's environment without a developer's Dagster, cvn or MLflow settings."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "CVN_", "MLFLOW_"))}


@pytest.fixture(scope="module")
def topology(
    postgres_server: str, s3_server: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Topology]:
    root = tmp_path_factory.mktemp("topology")
    logs = root / "logs"
    with ExitStack() as stack:
        werkzeug = logging.getLogger("werkzeug")  # the S3 server's request lines: noise in a failure's report
        stack.callback(werkzeug.setLevel, werkzeug.level)
        werkzeug.setLevel(logging.WARNING)
        dagster_db, results_db, mlflow_db = (
            stack.enter_context(fresh_database(postgres_server)) for _ in range(3)
        )
        receiver = stack.enter_context(http_receiver())
        s3_keys = {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        pg = sa.engine.make_url(dagster_db)
        instance_env = {
            "DAGSTER_PG_HOST": pg.host or "127.0.0.1",
            "DAGSTER_PG_PORT": str(pg.port),
            "DAGSTER_PG_DB": pg.database or "",
            "DAGSTER_PG_USER": pg.username or "postgres",
            "DAGSTER_PG_PASSWORD": PG_PASSWORD,
        }
        # This process reads the instance too (deploy/dagster.yaml takes its credentials from the env).
        patch = stack.enter_context(pytest.MonkeyPatch.context())
        for key, value in instance_env.items():
            patch.setenv(key, value)

        dagster_home, cvn_home = root / "dagster_home", root / "cvn_home"
        dagster_home.mkdir()
        (dagster_home / "dagster.yaml").write_text(yaml.safe_dump(production_instance_yaml()))
        _s3_client(s3_server).create_bucket(Bucket=BUCKET)

        web_port, grpc_port, mlflow_port = free_port(), free_port(), free_port()
        url, mlflow_uri = f"http://127.0.0.1:{web_port}", f"http://127.0.0.1:{mlflow_port}"
        dagster_env = {
            **_base_env(),
            **instance_env,
            "DAGSTER_HOME": str(dagster_home),
            "CVN_ALERT_WEBHOOK_URL": f"{receiver.url}/hook",
            "CVN_UI_BASE_URL": url,
        }
        # The code location: sensors are evaluated and runs execute here, so it holds every setting.
        code_env = {
            **dagster_env,
            **s3_keys,
            **hyperparameter_environ(TINY.timeframe),
            "CVN_HOME": str(cvn_home),
            "CVN_SWEEPS_DIR": str(_sweep_files(root / "sweeps")),
            "CVN_DATABASE_URL": results_db,
            "CVN_ARTIFACTS_BUCKET": BUCKET,
            "CVN_ARTIFACTS_PREFIX": PREFIX,
            "AWS_ENDPOINT_URL": s3_server,
            "MLFLOW_TRACKING_URI": mlflow_uri,
            "PYTHONUNBUFFERED": "1",
        }
        mlflow_env = {**_base_env(), **s3_keys, "MLFLOW_S3_ENDPOINT_URL": s3_server}
        workspace = grpc_workspace(root / "workspace.yaml", grpc_port, LOCATION)

        mlflow = mlflow_server(
            mlflow_port, mlflow_db, f"s3://{BUCKET}/mlflow", mlflow_env, logs / "mlflow.log"
        )
        code = code_server(grpc_port, code_env, logs / "code_server.log")
        webserver = dagster_webserver(web_port, workspace, dagster_env, logs / "webserver.log")
        daemon = dagster_daemon(workspace, dagster_env, logs / "daemon.log")
        processes = [mlflow, code, webserver, daemon]
        for process in processes:
            stack.callback(process.stop)  # last started, first stopped; each even on failure
        # MLflow starts beside the rest (the runs need it, loading the location does not); the webserver
        # and the daemon load the location from the code server, so they start once it serves.
        mlflow.start()
        code.start().wait_ready()
        webserver.start()
        daemon.start()
        mlflow.wait_ready()
        webserver.wait_ready()
        topology = Topology(
            url=url,
            dagster_home=dagster_home,
            cvn_home=cvn_home,
            dagster_db=dagster_db,
            results_db=results_db,
            mlflow_db=mlflow_db,
            mlflow_uri=mlflow_uri,
            s3_endpoint=s3_server,
            receiver=receiver,
            daemon=daemon,
            processes=processes,
        )
        yield topology
        daemon.stop()  # launches nothing more
        _end_runs_in_flight(topology)


def _end_runs_in_flight(topology: Topology) -> None:
    """Before the servers stop: runs the automation requested meanwhile (the report) are terminated, so no
    run process outlives its code server."""
    with topology.instance() as instance:
        running = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]
        for run in instance.get_runs(dg.RunsFilter(statuses=running)):
            instance.run_launcher.terminate(run.run_id)
        for run in instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.QUEUED])):
            instance.report_run_canceled(run)


def _backfill(url: str, job: str, partitions: list[str]) -> str:
    """A backfill of `job`'s partitions, as the UI's Backfill button sends it."""
    params = {
        "selector": {
            "partitionSetName": f"{job}_partition_set",
            "repositorySelector": {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY},
        },
        "partitionNames": partitions,
    }
    try:
        answer = graphql(url, LAUNCH_BACKFILL, {"params": params})
    except urllib.error.HTTPError as exc:
        raise AssertionError(
            f"the webserver answered {exc.code}: {exc.read().decode(errors='replace')}"
        ) from None
    launched = answer["data"]["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    return launched["backfillId"]


@pytest.fixture(scope="module")
def failing_backfill(topology: Topology) -> str:
    """The alert's cause, launched first (the daemon's backfill loop picks both backfills up together):
    ohlcv of `nodata`, whose source file does not exist."""
    return _backfill(topology.url, f"{NODATA}_ohlcv", ["BTC"])


def _finished(instance: dg.DagsterInstance, **filters: Any) -> list[dg.DagsterRun] | None:
    runs = instance.get_runs(dg.RunsFilter(**filters))
    return runs if runs and all(r.is_finished for r in runs) else None


@contextmanager
def _connect(url: str) -> Iterator[sa.Connection]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


@dataclass(frozen=True)
class PartitionRun:
    run: dg.DagsterRun  # the crypto x fold run
    fold: str
    partition: str


@pytest.fixture(scope="module")
def partition_run(topology: Topology, failing_backfill: str) -> PartitionRun:
    """ohlcv[SYNA] backfilled through the webserver's GraphQL API, as the UI's button does; the daemon runs
    it, the new-folds sensor then adds the fold its bars cover and requests the crypto x fold run."""
    keys = Sweep.of(TINY).keys
    of_backfill = {"dagster/backfill": _backfill(topology.url, keys.ohlcv_job, ["SYNA"])}
    with topology.instance() as instance:
        (ohlcv,) = topology.wait("the ohlcv run", lambda: _finished(instance, tags=of_backfill), 240)
        assert ohlcv.status == dg.DagsterRunStatus.SUCCESS, topology.logs()
        (run,) = topology.wait(
            "the crypto x fold run", lambda: _finished(instance, job_name=keys.sweep_job), 300
        )
        (fold,) = instance.get_dynamic_partitions(keys.folds_partitions.name)
    return PartitionRun(run, fold, f"SYNA|{fold}")


def test_a_partition_runs_across_the_production_topology(
    topology: Topology, partition_run: PartitionRun
) -> None:
    keys = Sweep.of(TINY).keys
    run, fold, partition = partition_run.run, partition_run.fold, partition_run.partition
    assert run.status == dg.DagsterRunStatus.SUCCESS, topology.logs()
    assert run.tags["dagster/partition"] == partition
    assert run.tags.get("dagster/sensor_name") == keys.fold_sensor

    # The run's check evaluations, from the instance's PostgreSQL storage: no ERROR check failed.
    with topology.instance() as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        evaluations = [
            r.event_log_entry.dagster_event.event_specific_data
            for r in instance.get_records_for_run(
                run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
            ).records
        ]
    checked = {(e.asset_key.to_user_string(), e.check_name) for e in evaluations}
    assert ("tiny/economics/economics_10bps", "baselines_complete") in checked, checked
    assert {e.partition for e in evaluations} == {partition}
    failed = [(e.check_name, e.severity.value, e.description) for e in evaluations if not e.passed]
    assert not [f for f in failed if f[1] == "ERROR"], failed
    # The same, as rows of Dagster's own tables in PostgreSQL.
    with _connect(topology.dagster_db) as conn:
        status = conn.execute(sa.text("select status from runs where run_id = :r"), {"r": run.run_id})
        assert status.scalar_one() == "SUCCESS"
        executions = conn.execute(
            sa.text("select execution_status from asset_check_executions where run_id = :r"),
            {"r": run.run_id},
        ).scalars()
        assert sorted(executions) == sorted("SUCCEEDED" if e.passed else "FAILED" for e in evaluations)

    # The artifacts, on S3 under <prefix>/<sweep>/<asset>/<crypto>/<fold>/, and nowhere on the local disk.
    s3 = topology.s3()
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}/tiny/")
    objects = {o["Key"] for o in listed.get("Contents", [])}
    folder = "/".join([PREFIX, *keys.fold_dataset.path, "SYNA", fold])
    assert {f"{folder}/{s}.parquet" for s in ("train", "validation", "test")} <= objects, sorted(objects)
    model_folder = "/".join([PREFIX, *keys.model("xgboost").path, "SYNA", fold])
    (model_file,) = [k.rsplit("/", 1)[1] for k in objects if k.startswith(f"{model_folder}/model.")]
    assert model_file in ("model.ubj", "model.json"), sorted(objects)
    body = s3.get_object(Bucket=BUCKET, Key=f"{folder}/train.parquet")["Body"].read()
    assert len(pd.read_parquet(io.BytesIO(body))) > 0
    assert not (topology.cvn_home / "artifacts").exists()

    # The results rows, in the PostgreSQL results database, joined to the run and to their config.
    with _connect(topology.results_db) as conn:
        results = pd.read_sql(sa.select(finetune_results).where(finetune_results.c.fold_id == fold), conn)
        baselines = pd.read_sql(
            sa.select(finetune_baselines).where(finetune_baselines.c.fold_id == fold), conn
        )
    assert set(results.variant) == {"xgboost"} and set(results.crypto) == {"SYNA"}
    assert set(results.cost_bps) == {10} and set(results.dagster_run_id) == {run.run_id}
    assert results.model_hyperparams.notna().all() and (results.feature_hash != "unknown").all()
    assert len(baselines) > 0 and set(baselines.cost_bps) == {10}

    # MLflow: one run per model of the partition on the tracking server (PostgreSQL), its files on S3.
    mlrun = _mlflow_run(topology, fold)
    assert mlrun.info.status == "FINISHED"
    assert mlrun.data.tags["dagster/run_id"] == run.run_id
    assert mlrun.data.tags["dagster/run_url"] == f"{topology.url}/runs/{run.run_id}"
    assert mlrun.data.metrics["f1_buy_val"] == pytest.approx(results.f1_buy_val.iloc[0])
    logged = {a.path for a in _mlflow(topology).list_artifacts(mlrun.info.run_id, "model")}
    assert f"model/{model_file}" in logged, logged
    # Proxied by the server to s3://<bucket>/mlflow/<experiment>/<run>/artifacts/model/<file>.
    proxied = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="mlflow/").get("Contents", [])]
    assert any(k.endswith(f"/{mlrun.info.run_id}/artifacts/model/{model_file}") for k in proxied), proxied
    with _connect(topology.mlflow_db) as conn:
        query = sa.text("select status from runs where run_uuid = :r")
        assert conn.execute(query, {"r": mlrun.info.run_id}).scalar_one() == "FINISHED"


def _mlflow(topology: Topology) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=topology.mlflow_uri)


def _mlflow_run(topology: Topology, fold: str) -> Any:
    """The partition's one MLflow run (XGBoost is its only model)."""
    client = _mlflow(topology)
    experiment = client.get_experiment_by_name(experiment_name("tiny"))
    assert experiment is not None, topology.logs()
    runs = client.search_runs(
        [experiment.experiment_id], f"tags.`cvn/crypto` = 'SYNA' and tags.`cvn/fold` = '{fold}'"
    )
    assert [r.data.tags["cvn/variant"] for r in runs] == ["xgboost"]
    return runs[0]


def _alert_state(instance: dg.DagsterInstance) -> tuple[AlertCursor, list[Any]]:
    """The alerts sensor's cursor as the instance stores it, and its ticks, newest first."""
    (state,) = [
        s
        for s in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR)
        if s.name == SENSOR_NAME
    ]
    ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=20)
    return AlertCursor.parse(state.instigator_data.cursor), ticks


def _storage_id(cursor: str) -> int:
    return EventLogCursor.parse(cursor).storage_id()


def test_the_alerts_cursor_survives_a_daemon_restart(topology: Topology, failing_backfill: str) -> None:
    failure = dg.DagsterEventType.RUN_FAILURE.value
    received: list[dict[str, Any]] = []

    def alerts_of(run_id: str) -> list[dict[str, Any]]:
        received.extend(json.loads(body) for _, body in topology.receiver.take())
        return [a for a in received if a.get("run_id") == run_id and a["kind"] == "run_failed"]

    with topology.instance() as instance:
        (failed,) = topology.wait(
            "the failing ohlcv run",
            lambda: _finished(instance, tags={"dagster/backfill": failing_backfill}),
            240,
        )
        assert failed.status == dg.DagsterRunStatus.FAILURE
        # The daemon delivers the alert, and the tick that sent it records its cursor in PostgreSQL.
        (alert,) = topology.wait("the alert's delivery", lambda: alerts_of(failed.run_id), 120)
        before = topology.wait(
            "the delivering tick's cursor",
            lambda: (c := _alert_state(instance)[0]).after.get(failure) and not c.pending and c,
            60,
        )
    assert alert["sweep"] == NODATA and alert["partition"] == "BTC"
    assert "no data files found" in alert["error"]
    assert alert["run_url"] == f"{topology.url}/runs/{failed.run_id}"

    old_pid = topology.daemon.pid
    topology.daemon.restart()  # SIGTERM, as an operator's restart or a pod's rollout sends it
    restarted_at = time.time()  # the old daemon is gone; the new one is starting
    assert topology.daemon.pid != old_pid
    with topology.instance() as instance:
        # The new daemon's first tick of the sensor: it reads the stored cursor, not a fresh one.
        tick = topology.wait(
            "a tick of the restarted daemon",
            lambda: next(
                (t for t in _alert_state(instance)[1] if t.timestamp > restarted_at and t.is_completed), None
            ),
            120,
        )
        after, _ = _alert_state(instance)
    assert tick.status in (TickStatus.SKIPPED, TickStatus.SUCCESS), tick
    assert after.since == before.since, "the cursor was reset"
    assert _storage_id(after.after[failure]) >= _storage_id(before.after[failure])
    assert not after.pending
    # Delivered exactly once, and nothing at all delivered twice.
    assert len(alerts_of(failed.run_id)) == 1, received
    bodies = [json.dumps(a, sort_keys=True) for a in received]
    assert len(bodies) == len(set(bodies)), received


def test_the_report_registers_its_pick_on_the_tracking_server(
    topology: Topology, partition_run: PartitionRun
) -> None:
    """The automation refreshes the report once the partition's rows are in (its condition is eager); the
    report registers the variant it picks in MLflow's registry, on the server, under the cost's alias."""
    keys = Sweep.of(TINY).keys

    def report_runs(instance: dg.DagsterInstance) -> list[dg.DagsterRun] | None:
        runs = [r for r in instance.get_runs() if keys.report in (r.asset_selection or ())]
        return runs if runs and all(r.is_finished for r in runs) else None

    with topology.instance() as instance:
        reports = topology.wait("the report's run", lambda: report_runs(instance), 300)
    assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in reports), topology.logs()
    version = _mlflow(topology).get_model_version_by_alias(
        registered_model_name("tiny", "SYNA"), champion_alias("tiny", 10)
    )
    assert version.run_id == _mlflow_run(topology, partition_run.fold).info.run_id
    assert version.status == "READY"
