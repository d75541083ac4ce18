"""MLflow for real: a tiny sweep's partitions materialized in process log one MLflow run per model and
ensemble, read back through `MlflowClient` (tags, params, metrics, the native files, loaded again); the
report registers its pick per cost level under an alias that moves; a planted secret never reaches MLflow;
a tracking server that is down fails the step in one line; two processes open a new store at once."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from cvn_assets.core.config import parse_config
from cvn_assets.core.secrets import MASK, flatten, is_secret_key, scrub, scrub_text, secret_values
from cvn_assets.core.sweep_plan import plan_sweep
from cvn_assets.defs.keys import partition_key
from cvn_assets.defs.sweep import Sweep
from cvn_assets.defs.tracking import (
    MODEL,
    MlflowTracking,
    Pick,
    RunRecord,
    champion_alias,
    experiment_name,
    registered_model_name,
    tracking_from_env,
)
from cvn_assets.harness.native_files import load_skops
from cvn_assets.hyperparams.types import PARAM_TYPES
from cvn_assets.store.engine import get_engine
from cvn_assets.store.schema import finetune_results
from cvn_assets.version import code_version
from cvn_assets_tests.conftest import SMALL_HYPERPARAMS, small_raw_config
from cvn_assets_tests.in_process import materialize_sweep, run_partition, sweep_defs

pytestmark = pytest.mark.usefixtures("small_hyperparams", "mlflow_tracking")

PLANTED = "s3cr3t-planted"
PLANTED_URL_PASSWORD = "pw-planted-4242"
MODELS = ("xgboost", "lightgbm", "catboost")
ENSEMBLES = ("blend_avg", "blend_weighted", "stack_logreg_shrink", "stack_xgb_meta")
UI = "http://dagster.internal:3000"
TRACKING = "MLFLOW_TRACKING_URI"


def _client(home: Path) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{home / 'mlflow.db'}")


def _artifact_files(client: Any, run_id: str, folder: Path) -> dict[str, bytes]:
    """Every artifact file of a run, by its path in the run."""
    local = Path(client.download_artifacts(run_id, "", str(folder)))
    return {str(p.relative_to(local)): p.read_bytes() for p in local.rglob("*") if p.is_file()}


def _results(db_url: str) -> pd.DataFrame:
    with get_engine(db_url).connect() as conn:
        return pd.read_sql(sa.select(finetune_results), conn)


def test_every_model_and_ensemble_of_every_partition_is_tracked_and_the_pick_registered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Planted secrets: a hyperparameter whose key ends in _TOKEN, and a password in a URL of the config.
    monkeypatch.setitem(PARAM_TYPES, "api_token", str)
    monkeypatch.setenv("CVN_HPO_XGB_1H_API_TOKEN", PLANTED)
    monkeypatch.setenv("CVN_UI_BASE_URL", UI)
    raw = small_raw_config(
        universe={"SYNA": {"kind": "synthetic"}},
        models={m: {} for m in MODELS},
        costs_bps=[0, 10],
    )
    raw["data"]["s3_endpoint_url"] = f"http://minio:{PLANTED_URL_PASSWORD}@127.0.0.1:9000"
    plan = plan_sweep(parse_config(raw))
    config, sweep = plan.config, Sweep.of(plan.config)
    db_url = f"sqlite:///{tmp_path / 'results.db'}"
    home = tmp_path / "cvn_home"  # CVN_HOME (conftest): the embedded default's store is under it
    defs = sweep_defs(plan, db_url, tmp_path)
    with dg.instance_for_test() as instance:
        report = materialize_sweep(defs, config, instance)
        assert report.ok, report.failed
        fold_ids = plan.fold_ids
        assert len(fold_ids) == 2

        client = _client(home)
        experiment = client.get_experiment_by_name(experiment_name(config.name))
        runs = client.search_runs([experiment.experiment_id], max_results=1000)
        variants = (*MODELS, *ENSEMBLES)
        assert sorted(r.info.run_name for r in runs) == sorted(
            f"{v} · SYNA · {f}" for v in variants for f in fold_ids
        )
        assert {r.info.status for r in runs} == {"FINISHED"}
        results = _results(db_url)
        by_name = {r.info.run_name: r for r in runs}
        for fold_id in fold_ids:
            dataset_hash = (
                instance.fetch_materializations(
                    dg.AssetRecordsFilter(
                        asset_key=sweep.keys.fold_dataset, asset_partitions=[f"SYNA|{fold_id}"]
                    ),
                    limit=1,
                )
                .records[0]
                .asset_materialization.metadata["data_hash"]
                .value
            )
            for variant in variants:
                run = by_name[f"{variant} · SYNA · {fold_id}"]
                tags, metrics = run.data.tags, run.data.metrics
                assert tags["cvn/sweep"] == "tiny" and tags["cvn/run_id"] == config.run_id
                assert (tags["cvn/crypto"], tags["cvn/fold"], tags["cvn/variant"]) == (
                    "SYNA",
                    fold_id,
                    variant,
                )
                assert tags["cvn/data_hash"] == dataset_hash and tags["cvn/code_version"] == code_version()
                assert len(tags["cvn/feature_hash"]) >= 8
                dagster_run = instance.get_run_by_id(tags["dagster/run_id"])
                assert dagster_run is not None and dagster_run.tags["dagster/partition"] == f"SYNA|{fold_id}"
                assert tags["dagster/run_url"] == f"{UI}/runs/{dagster_run.run_id}"
                # Metrics under the results store's column names, equal to the rows'.
                row = results[(results.variant == variant) & (results.fold_id == fold_id)].iloc[0]
                for column in ("f1_buy_val", "auc_buy_val", "brier_test", "logloss_test", "ece_val"):
                    assert metrics[column] == pytest.approx(row[column]), (variant, column)
                assert tags["cvn/kind"] == (MODEL if variant in MODELS else "ensemble")
        xgb = by_name[f"xgboost · SYNA · {fold_ids[0]}"]
        assert int(xgb.data.params["max_depth"]) == SMALL_HYPERPARAMS["xgboost"]["max_depth"]
        assert xgb.data.params["api_token"] == MASK
        assert xgb.data.tags["cvn/library"] == "xgboost"
        import xgboost

        assert xgb.data.tags["cvn/library_version"] == xgboost.__version__
        # The asset's metadata names its MLflow run, and masks the secret as MLflow does.
        event = instance.get_latest_materialization_event(sweep.keys.model("xgboost"))
        metadata = event.asset_materialization.metadata
        assert metadata["model_hyperparams"].value["api_token"] == MASK
        assert metadata["mlflow_run_id"].value == by_name[f"xgboost · SYNA · {fold_ids[-1]}"].info.run_id

        _the_native_files_load_back(defs, sweep, client, by_name, fold_ids[0], tmp_path / "dl")
        _ensembles_name_their_base_runs(client, by_name, fold_ids[-1], tmp_path / "ens")

        # The report registers its pick per cost level: models:/tiny-SYNA@tiny-<cost>bps-champion.
        assert defs.resolve_job_def(sweep.keys.report_job).execute_in_process(instance=instance).success
        champions = _champions(client, config)
        picked = _report_picks(instance, sweep)
        for cost, version in champions.items():
            run = client.get_run(version.run_id)
            assert run.data.tags["cvn/variant"] == picked[cost]
            assert run.data.tags["cvn/fold"] == fold_ids[-1]  # the latest fold: the model to deploy
        _the_alias_resolves(home, config.name, config.costs_bps[0], tmp_path / "models")

        # Re-materializing a partition logs a new run (history); the report's next pick moves the alias.
        assert run_partition(defs, config, instance, "SYNA", fold_ids[-1]).success
        runs_after = client.search_runs([experiment.experiment_id], max_results=1000)
        assert len(runs_after) == len(runs) + len(variants)
        assert defs.resolve_job_def(sweep.keys.report_job).execute_in_process(instance=instance).success
        moved = _champions(client, config)
        for cost, version in moved.items():
            assert version.run_id != champions[cost].run_id  # the newest run of the same partition
            assert int(version.version) > int(champions[cost].version)
        name = registered_model_name(config.name, "SYNA")
        assert len(client.search_model_versions(f"name = '{name}'")) >= 2  # the older pick stays, unaliased

        _no_planted_secret_in_any_run(client, runs_after, tmp_path / "all")


def _champions(client: Any, config: Any) -> dict[int, Any]:
    name = registered_model_name(config.name, "SYNA")
    return {
        c: client.get_model_version_by_alias(name, champion_alias(config.name, c)) for c in config.costs_bps
    }


def _report_picks(instance: dg.DagsterInstance, sweep: Sweep) -> dict[int, str]:
    metadata = instance.get_latest_materialization_event(sweep.keys.report).asset_materialization.metadata
    over = {int(r.data["cost_bps"]): r.data["picked"] for r in metadata["overfitting"].value.records}
    table = metadata["mlflow_champions"].value.records
    assert {(int(r.data["cost_bps"]), r.data["variant"]) for r in table} == set(over.items())
    assert all(r.data["crypto"] == "SYNA" and r.data["version"] >= 1 for r in table)
    return over


def _the_native_files_load_back(
    defs: dg.Definitions, sweep: Sweep, client: Any, by_name: dict[str, Any], fold_id: str, folder: Path
) -> None:
    """The XGBoost file loads into XGBoost and predicts what the stored artifact predicts; each library's
    own format is there with its version beside it, and the calibrator loads through skops."""
    import xgboost

    with defs.get_asset_value_loader() as loader:
        key = partition_key("SYNA", fold_id)
        artifact = loader.load_asset_value(sweep.keys.model("xgboost"), partition_key=key)
        dataset = loader.load_asset_value(sweep.keys.fold_dataset, partition_key=key)
    files = _artifact_files(client, by_name[f"xgboost · SYNA · {fold_id}"].info.run_id, folder / "xgb")
    assert {
        "model/model.ubj",
        "model/model.json",
        "model/calibrator.skops",
        "model/sweep_config.json",
    } <= set(files)
    (folder / "model.ubj").write_bytes(files["model/model.ubj"])
    loaded = xgboost.XGBClassifier()
    loaded.load_model(str(folder / "model.ubj"))
    X_test = dataset.test[list(dataset.feature_names)]
    np.testing.assert_allclose(loaded.predict_proba(X_test), artifact.raw_proba(dataset.test), rtol=1e-6)
    described = json.loads(files["model/model.json"])
    assert described["native_file"]["library_version"] == xgboost.__version__
    assert described["threshold"] == pytest.approx(artifact.threshold)
    calibrator = load_skops(files["model/calibrator.skops"], "calibrator")
    p = loaded.predict_proba(X_test)[:, 1]
    np.testing.assert_allclose(
        np.clip(calibrator.predict(p), 1e-6, 1 - 1e-6), artifact.predict_proba(dataset.test)[:, 1], atol=1e-9
    )
    for model, native in (("lightgbm", "model.txt"), ("catboost", "model.cbm")):
        run = by_name[f"{model} · SYNA · {fold_id}"]
        assert run.data.tags["cvn/native_file"] == native
        assert f"model/{native}" in {a.path for a in client.list_artifacts(run.info.run_id, "model")}


def _ensembles_name_their_base_runs(client: Any, by_name: dict[str, Any], fold_id: str, folder: Path) -> None:
    for ensemble in ENSEMBLES:
        run = by_name[f"{ensemble} · SYNA · {fold_id}"]
        files = _artifact_files(client, run.info.run_id, folder / ensemble)
        described = json.loads(files["ensemble/ensemble.json"])
        assert described["base_runs"] == {m: by_name[f"{m} · SYNA · {fold_id}"].info.run_id for m in MODELS}
        assert described["fitted_params"] and run.data.params["cvn.base_models"] == ",".join(MODELS)
    weights = by_name[f"blend_avg · SYNA · {fold_id}"].data.params
    assert float(weights["weights.xgboost"]) == pytest.approx(1 / 3)


def _the_alias_resolves(home: Path, sweep: str, cost: int, folder: Path) -> None:
    import mlflow.artifacts

    uri = f"models:/{registered_model_name(sweep, 'SYNA')}@{champion_alias(sweep, cost)}"
    with pytest.MonkeyPatch.context() as env:  # MLflow's fluent API reads the store from the environment
        env.setenv(TRACKING, f"sqlite:///{home / 'mlflow.db'}")
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(folder)))
    names = {p.name for p in local.rglob("*") if p.is_file()}
    assert "sweep_config.json" in names and ({"model.json", "ensemble.json"} & names)


def _no_planted_secret_in_any_run(client: Any, runs: list[Any], folder: Path) -> None:
    """Every parameter, tag and artifact byte of every run: no planted secret."""
    for run in runs:
        texts = [*run.data.params.values(), *run.data.params, *run.data.tags.values()]
        assert not [t for t in texts if PLANTED in t or PLANTED_URL_PASSWORD in t], run.info.run_name
        for path, data in _artifact_files(client, run.info.run_id, folder / run.info.run_id).items():
            assert PLANTED.encode() not in data and PLANTED_URL_PASSWORD.encode() not in data, path
    config = json.loads(
        _artifact_files(client, runs[0].info.run_id, folder / "cfg")[
            f"{runs[0].data.tags['cvn/kind']}/sweep_config.json"
        ]
    )
    assert config["data"]["s3_endpoint_url"] == f"http://minio:{MASK}@127.0.0.1:9000"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_tracking_server_that_is_down_fails_the_step_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    password = "hunter2-not-shown"
    uri = f"http://cvn:{password}@127.0.0.1:{_free_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    (tmp_path / "cvn_home" / "mlflow.db").unlink()  # the fixture's embedded store: none may be made
    plan = plan_sweep(parse_config(small_raw_config(universe={"SYNA": {"kind": "synthetic"}})))
    defs = sweep_defs(plan, f"sqlite:///{tmp_path / 'results.db'}", tmp_path)
    with dg.instance_for_test() as instance:
        started = time.perf_counter()
        report = materialize_sweep(defs, plan.config, instance, folds=["f00"])
        assert time.perf_counter() - started < 120  # not MLflow's minutes of retries
    (error,) = report.failed.values()
    assert error.startswith("tiny__model__xgboost_model: ") and "Connection refused" in error
    assert f"MLflow tracking at http://cvn:{MASK}@127.0.0.1" in error
    assert "MLFLOW_TRACKING_URI" in error and "CVN_MLFLOW=off" in error
    assert password not in error and "\n" not in error
    assert not (tmp_path / "cvn_home" / "mlflow.db").exists()


def test_tracking_is_configured_from_the_environment(tmp_path: Path) -> None:
    assert not tracking_from_env({"CVN_MLFLOW": "off"}).enabled
    default = tracking_from_env({})
    assert default.enabled and default.tracking_uri == f"sqlite:///{tmp_path / 'cvn_home' / 'mlflow.db'}"
    assert default.artifact_root == (tmp_path / "cvn_home" / "mlartifacts").as_uri()
    server = tracking_from_env({"MLFLOW_TRACKING_URI": "http://u:p@mlflow:5000"})
    # Read through EnvVar at run time: the URI (and any credentials in it) never shows in the UI.
    assert isinstance(server.tracking_uri, dg.EnvVar) and server.tracking_uri.env_var_name == TRACKING
    assert server.artifact_root == "" and server.registry_uri == ""
    database = tracking_from_env(
        {"MLFLOW_TRACKING_URI": "postgresql://u:p@db/mlflow", "MLFLOW_REGISTRY_URI": "x"}
    )
    assert isinstance(database.registry_uri, dg.EnvVar) and database.artifact_root.startswith("file://")
    off = MlflowTracking(enabled=False)
    record = RunRecord("s", "n", MODEL, {}, {}, {})
    assert (
        off.log_run(record) is None
        and off.register_champions(Sweep.of(parse_config(small_raw_config())), []) == []
    )


def test_the_alias_moves_to_the_new_pick(tmp_path: Path) -> None:
    """Directly on the resource: xgboost picked, then lightgbm: one alias, on the newest pick's version."""
    tracking = MlflowTracking(
        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", artifact_root=(tmp_path / "art").as_uri()
    )
    sweep = Sweep.of(parse_config(small_raw_config()))
    tags = {
        "cvn/run_id": sweep.config.run_id,
        "cvn/crypto": "SYNA",
        "cvn/fold": "f000_x",
        "cvn/data_hash": "d",
    }
    run_ids = {}
    for variant in ("xgboost", "lightgbm"):
        record = RunRecord(
            "tiny", f"{variant} · SYNA · f000_x", MODEL, tags | {"cvn/variant": variant, "cvn/kind": MODEL},
            {"max_depth": "3"}, {"f1_buy_val": 0.5}, {"model.json": b"{}"},
        )  # fmt: skip
        tracked = tracking.log_run(record)
        assert tracked is not None and tracked.seconds < 30
        run_ids[variant] = tracked.run_id
    client, name, alias = tracking.client(), registered_model_name("tiny", "SYNA"), champion_alias("tiny", 10)
    for variant in ("xgboost", "xgboost", "lightgbm"):  # the same pick twice: the same version
        (row,) = tracking.register_champions(sweep, [Pick(10, "SYNA", variant, "f000_x", "d")])
        assert (
            client.get_model_version_by_alias(name, alias).run_id == run_ids[variant] == row["mlflow_run_id"]
        )
    versions = client.search_model_versions(f"name = '{name}'")
    assert sorted(int(v.version) for v in versions) == [1, 2]
    assert [v.aliases for v in versions if v.run_id == run_ids["xgboost"]] == [[]]
    (missing,) = tracking.register_champions(sweep, [Pick(0, "SYNA", "catboost", "f000_x", "d")])
    assert missing["model_uri"] is None  # no MLflow run of that pick: listed, not registered


OPEN_STORE = """
import sys, time
from cvn_assets.defs.tracking import MlflowTracking, RunRecord
import mlflow, mlflow.store.tracking.sqlalchemy_store
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
tracking = MlflowTracking(tracking_uri=sys.argv[1], artifact_root=sys.argv[3])
print(tracking.log_run(RunRecord("race", "r", "model", {}, {"p": "1"}, {"m": 1.0})).run_id)
"""


def test_two_processes_open_a_new_store_at_once(tmp_path: Path) -> None:
    """The embedded default's two runs starting together on a new store: both migrate-or-wait under the
    lock, create-or-find the one experiment, and log their runs."""
    uri, start = f"sqlite:///{tmp_path / 'mlflow.db'}", time.time() + 10  # past both processes' imports
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN_STORE, uri, str(start), (tmp_path / "art").as_uri()],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=240)[0] for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    (experiment,) = [e for e in client.search_experiments() if e.name == experiment_name("race")]
    assert len(client.search_runs([experiment.experiment_id])) == 2


def test_secrets_are_scrubbed() -> None:
    assert all(
        map(is_secret_key, ["api_key", "API_TOKEN", "CVN_HPO_XGB_1H_API_KEY", "db.password", "secret"])
    )
    assert not any(map(is_secret_key, ["max_depth", "monkey", "keys", "tokenizer", 3]))
    params = {
        "api_token": "t0ken",
        "nested": {"db_password": "pw", "ok": 1, "deeper": {"aws_secret": "x"}},
        "url": "postgresql+psycopg://cvn:hunter2@db:5432/cvn",
        "hook": "https://h/x?sig=abc&token=def&a=1",
        "list": ["leak-value-123", 2],
    }
    clean = scrub(params, {"leak-value-123"})
    assert clean == {
        "api_token": MASK,
        "nested": {"db_password": MASK, "ok": 1, "deeper": {"aws_secret": MASK}},
        "url": f"postgresql+psycopg://cvn:{MASK}@db:5432/cvn",
        "hook": f"https://h/x?sig={MASK}&token={MASK}&a=1",
        "list": [MASK, 2],
    }
    assert flatten(clean)["nested.deeper.aws_secret"] == MASK and flatten({"e": {}}) == {"e": {}}
    assert scrub_text("http://user@host/x") == "http://user@host/x"  # no password, nothing to mask
    assert secret_values({"SLACK_TOKEN": "xoxb-123456", "SHORT_KEY": "1", "HOME": "/root"}) == {"xoxb-123456"}
