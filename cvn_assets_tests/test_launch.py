"""The path users take: a real webserver and daemon, a backfill launched through the webserver's GraphQL API
(what the UI's button sends), and the new-folds sensor growing the sweep from there."""

from __future__ import annotations

import os
import time
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa
import yaml

from cvn_assets.instance_storage import instance_yaml
from cvn_assets.launch import LAUNCH_BACKFILL, LAUNCH_RUN, LOCATION, REPOSITORY
from cvn_assets_tests.conftest import small_raw_config
from cvn_assets_tests.services import dagster_services, graphql

pytestmark = pytest.mark.usefixtures("small_hyperparams")
REPO = Path(__file__).resolve().parents[1]


ASSET_NODES = "query { assetNodes { assetKey { path } description } }"


def test_a_ui_backfill_of_ohlcv_grows_the_sweep_through_the_sensor(tmp_path: Path) -> None:
    sweeps, home = tmp_path / "sweeps", tmp_path / "home"
    sweeps.mkdir()
    (sweeps / "tiny.yaml").write_text(yaml.safe_dump(small_raw_config()))
    # A broken file beside it (a model no plugin registers): shown as such, the good sweep unaffected.
    (sweeps / "broken.yaml").write_text(
        yaml.safe_dump(small_raw_config(name="broken", models={"xgbooost": {}}))
    )
    dagster_home = home / "dagster"
    dagster_home.mkdir(parents=True)
    (dagster_home / "dagster.yaml").write_text(instance_yaml(REPO / "dagster.yaml", dagster_home))
    env = {
        **os.environ,
        "DAGSTER_HOME": str(dagster_home),
        "CVN_HOME": str(home),
        "CVN_SWEEPS_DIR": str(sweeps),
    }

    with dagster_services(dagster_home, env) as url:
        params = {
            "selector": {
                "partitionSetName": "tiny_ohlcv_partition_set",
                "repositorySelector": {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY},
            },
            "partitionNames": ["SYNA", "SYNB"],
        }
        launched = graphql(url, LAUNCH_BACKFILL, {"params": params})["data"]["launchPartitionBackfill"]
        assert launched["__typename"] == "LaunchBackfillSuccess", launched
        # A Materialize from an asset page: Dagster's implicit job with no job tags. The run queue tags it
        # with its sweep as it is submitted.
        asset_page = {
            "selector": {
                "repositoryLocationName": LOCATION,
                "repositoryName": REPOSITORY,
                "jobName": "__ASSET_JOB",
                "assetSelection": [{"path": ["tiny", "sweep_perf"]}],
                "assetCheckSelection": [],
            },
            "mode": "default",
            "executionMetadata": {"tags": []},
        }
        page_run = graphql(url, LAUNCH_RUN, {"executionParams": asset_page})["data"]["launchRun"]
        assert page_run["__typename"] == "LaunchRunSuccess", page_run

        # The daemon runs ohlcv; the sensor then adds the folds the bars cover and requests every
        # crypto x fold, which the run queue executes two at a time.
        results = home / "results.db"
        deadline, rows = time.monotonic() + 420, pd.DataFrame()
        while time.monotonic() < deadline:
            if results.exists():
                engine = sa.create_engine(f"sqlite:///{results}")
                try:
                    with engine.connect() as conn:
                        rows = pd.read_sql(
                            sa.text("select crypto, fold_id, cost_bps from finetune_results"), conn
                        )
                except sa.exc.OperationalError:  # not migrated yet
                    pass
                finally:
                    engine.dispose()
            if len(rows) == 2 * 2 * 2:
                break
            time.sleep(2)
        assert len(rows) == 8, f"rows after the wait: {len(rows)}; see {dagster_home / 'services.log'}"

        nodes = {
            "/".join(n["assetKey"]["path"]): n["description"]
            for n in graphql(url, ASSET_NODES)["data"]["assetNodes"]
        }
        assert "tiny/economics/economics_10bps" in nodes and "tiny/proxy_economy_report" in nodes
        assert not any(k.startswith("broken/") and k != "broken/sweep_config" for k in nodes)
        assert "INVALID sweep file" in nodes["broken/sweep_config"]
        assert (
            "config key 'models.xgbooost': no model registered as 'xgbooost'" in nodes["broken/sweep_config"]
        )

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        assert instance.get_dynamic_partitions("tiny_folds") == sorted(set(rows.fold_id))
        runs = instance.get_runs(dg.RunsFilter(job_name="tiny_sweep"))
        assert len(runs) == 4 and all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
        assert all(r.tags["cvn/sweep"] == "tiny" for r in runs)
        tagged = instance.get_run_by_id(page_run["run"]["runId"])
        assert tagged.job_name == "__ASSET_JOB"
        assert tagged.tags["cvn/sweep"] == "tiny" and tagged.tags["cvn/run_id"] == runs[0].tags["cvn/run_id"]
        assert instance.get_runs(dg.RunsFilter(tags={"cvn/sweep": "tiny"}, job_name="__ASSET_JOB"))
        # The partitioned checks ran in those runs, each naming its partition.
        key = dg.AssetCheckKey(dg.AssetKey(["tiny", "economics", "economics_10bps"]), "baselines_complete")
        evaluations = [
            e
            for run in runs
            for e in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
            if e.dagster_event.event_specific_data.asset_check_key == key
        ]
        assert len(evaluations) == 4
        assert {e.dagster_event.event_specific_data.partition for e in evaluations} == {
            f"{c}|{f}" for c in ("SYNA", "SYNB") for f in set(rows.fold_id)
        }
        # The broken file's check was reported failed by its sensor, with the one-line error, without a run.
        broken = dg.AssetCheckKey(dg.AssetKey(["broken", "sweep_config"]), "config_valid")
        record = instance.event_log_storage.get_latest_asset_check_execution_by_key([broken])[broken]
        evaluation = record.event.dagster_event.event_specific_data
        assert not evaluation.passed and "models.xgbooost" in evaluation.description
        assert str(sweeps / "broken.yaml") in evaluation.description
