"""The run queue tags a run of the implicit asset job with the sweep its assets belong to; configured as the
embedded default's `dagster.yaml` and the Helm values configure it. (Launched through the webserver, with a
daemon, in test_launch.py.)"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import yaml
from dagster._serdes.config_class import ConfigurableClassData

from cvn_assets.core.config import load_config
from cvn_assets.definitions import build_definitions
from cvn_assets.instance_storage import instance_yaml
from cvn_assets.run_coordinator import SweepRunCoordinator, sweep_tags

REPO = Path(__file__).resolve().parents[1]
DEMO, OTHER = {"cvn/sweep": "demo", "cvn/run_id": "demo-abc"}, {"cvn/sweep": "other", "cvn/run_id": "other-d"}
FEATURES, ECONOMICS = dg.AssetKey(["demo", "features"]), dg.AssetKey(["demo", "economics", "economics_10bps"])
FOREIGN = dg.AssetKey(["other", "features"])
TAGS = {FEATURES: DEMO, ECONOMICS: DEMO, FOREIGN: OTHER, dg.AssetKey("untagged"): {}}


def asset_run(*keys: dg.AssetKey, checks: tuple[dg.AssetCheckKey, ...] = (), **tags: str) -> dg.DagsterRun:
    return dg.DagsterRun(
        job_name="__ASSET_JOB",
        asset_selection=frozenset(keys),
        asset_check_selection=frozenset(checks),
        tags={"dagster/partition": "BTCUSD|f000", **tags},
    )


def test_a_run_gets_the_sweep_its_selected_assets_agree_on() -> None:
    assert sweep_tags(asset_run(FEATURES, ECONOMICS), TAGS) == DEMO
    assert sweep_tags(asset_run(checks=(dg.AssetCheckKey(ECONOMICS, "baselines_complete"),)), TAGS) == DEMO
    assert sweep_tags(asset_run(FEATURES, FOREIGN), TAGS) == {}  # two sweeps: neither
    assert sweep_tags(asset_run(dg.AssetKey("untagged")), TAGS) == {}  # another code location's
    assert sweep_tags(asset_run(FEATURES, dg.AssetKey("untagged")), TAGS) == {}
    assert sweep_tags(asset_run(), TAGS) == {}  # a job run selecting nothing explicitly
    assert sweep_tags(asset_run(FEATURES, **{"cvn/sweep": "demo"}), TAGS) == {}  # tagged already: kept


def test_every_asset_of_a_sweep_carries_its_tags() -> None:
    config = load_config()
    graph = build_definitions([config]).resolve_asset_graph()
    keys = [key for key in graph.get_all_asset_keys() if key.path[0] == config.name]
    assert len(keys) > 10
    expected = {"cvn/sweep": config.name, "cvn/run_id": config.run_id}
    assert all(graph.get(key).tags.items() >= expected.items() for key in keys)


def test_the_embedded_default_queues_runs_through_it_with_single_flight(tmp_path: Path) -> None:
    (tmp_path / "dagster.yaml").write_text(instance_yaml(REPO / "dagster.yaml", tmp_path))
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert isinstance(instance.run_coordinator, SweepRunCoordinator)
        queue = instance.get_concurrency_config().run_queue_config
        assert queue is not None and queue.max_concurrent_runs == 2
        assert [limit["key"] for limit in queue.tag_concurrency_limits] == ["dagster/partition"]


def test_the_helm_values_configure_it_as_dagster_reads_a_custom_coordinator() -> None:
    values = yaml.safe_load((REPO / "deploy/helm/values.yaml").read_text())
    coordinator = values["dagsterDaemon"]["runCoordinator"]
    assert coordinator["type"] == "CustomRunCoordinator"
    custom = coordinator["config"]["customRunCoordinator"]
    data = ConfigurableClassData(custom["module"], custom["class"], yaml.safe_dump(custom["config"]))
    built = data.rehydrate(as_type=SweepRunCoordinator)
    queue = built.get_run_queue_config()
    assert queue.max_concurrent_runs == 8 and queue.tag_concurrency_limits[0]["key"] == "dagster/partition"
