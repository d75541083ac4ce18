"""Code and data versions that mean something: an asset's code version covers the code that computes it,
so editing the CLI leaves every partition fresh and editing the feature code marks features and what
follows stale; new bars mark only the partitions of the crypto they belong to stale, and re-materializing
those leaves the models fresh because the fold's rows did not change."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.asset_graph_view.asset_graph_view import AssetGraphView, TemporalContext
from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus
from dagster._time import get_current_datetime

import cvn_assets.version as version
from cvn_assets.core.config import parse_config
from cvn_assets.defs.sweep import Sweep
from cvn_assets_tests.conftest import small_raw_config
from cvn_assets_tests.fixtures import clean_bars
from cvn_assets_tests.in_process import load_bars, run_partition, sweep_defs

pytestmark = pytest.mark.usefixtures("small_hyperparams")


def _edited(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, module: str) -> None:
    """Make the code version see `module` with one more line, as after an edit."""
    original = version._module_path(module)
    assert original is not None
    copy = tmp_path / f"{module}.py"
    copy.write_text(original.read_text() + "\n# an edit\n")
    real = version._module_path
    monkeypatch.setattr(version, "_module_path", lambda name: copy if name == module else real(name))
    version._imports_of.cache_clear()


def _statuses(defs: dg.Definitions, instance: dg.DagsterInstance, partition: str) -> dict[str, StaleStatus]:
    graph = defs.resolve_asset_graph()
    view = AssetGraphView(
        temporal_context=TemporalContext(effective_dt=get_current_datetime(), last_event_id=None),
        instance=instance,
        asset_graph=graph,
    )
    resolver = CachingStaleStatusResolver(instance, graph, loading_context=view)
    return {
        key.to_user_string(): resolver.get_status(key, partition)
        for key in graph.materializable_asset_keys
        # crypto x fold, what a sweep run materializes (the diagnostics are an audit's)
        if isinstance(graph.get(key).partitions_def, dg.MultiPartitionsDefinition)
        and key.path[1] != "diagnostics"
    }


def test_code_versions_follow_the_code_that_computes_each_asset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "bars.csv"
    bars = clean_bars(n=24 * 200, start="2021-01-01", seed=5)
    bars.iloc[: 24 * 170].to_csv(path, index=False)
    config = parse_config(
        small_raw_config(
            universe={"BARS": {"kind": "table", "path": str(path)}, "SYNA": {"kind": "synthetic"}}
        )
    )
    keys = Sweep.of(config).keys
    db_url = f"sqlite:///{tmp_path / 'r.db'}"
    with dg.instance_for_test() as instance:
        defs = sweep_defs(config, db_url, tmp_path)
        for crypto in ("BARS", "SYNA"):
            load_bars(defs, config, instance, crypto)
            assert run_partition(defs, config, instance, crypto, "f00").success
        plan = load_bars(defs, config, instance, "SYNA")
        bars_part, syna_part = (f"{c}|{plan.fold_ids[0]}" for c in ("BARS", "SYNA"))
        assert set(_statuses(defs, instance, bars_part).values()) == {StaleStatus.FRESH}

        # Editing the CLI changes no asset's code version: everything stays fresh.
        with monkeypatch.context() as patch:
            _edited(patch, tmp_path, "cvn_assets.cli")
            edited = sweep_defs(config, db_url, tmp_path)
            assert set(_statuses(edited, instance, bars_part).values()) == {StaleStatus.FRESH}

        # Editing the feature code marks features and everything downstream stale, and nothing upstream.
        with monkeypatch.context() as patch:
            _edited(patch, tmp_path, "cvn_assets.core.features")
            edited = sweep_defs(config, db_url, tmp_path)
            statuses = _statuses(edited, instance, syna_part)
            assert statuses[keys.features("base").to_user_string()] == StaleStatus.STALE
            assert statuses[keys.economics(10).to_user_string()] == StaleStatus.STALE
            assert statuses[keys.hyperparameters.to_user_string()] == StaleStatus.FRESH

        # New bars for BARS: only BARS's partitions turn stale.
        bars.to_csv(path, index=False)
        load_bars(defs, config, instance, "BARS")
        assert (
            _statuses(defs, instance, bars_part)[keys.features("base").to_user_string()] == StaleStatus.STALE
        )
        assert set(_statuses(defs, instance, syna_part).values()) == {StaleStatus.FRESH}
        # Re-materializing the features and the dataset: same rows, same data versions, the models stay fresh.
        job = defs.resolve_job_def(keys.sweep_job)
        assert job.execute_in_process(
            partition_key=dg.MultiPartitionKey({"crypto": "BARS", "fold": plan.fold_ids[0]}),
            instance=instance,
            asset_selection=[keys.features("base"), keys.fold_dataset],
        ).success
        assert set(_statuses(defs, instance, bars_part).values()) == {StaleStatus.FRESH}


def test_every_process_computes_the_same_code_versions() -> None:
    """The webserver, the daemon and each run's code server compute the versions separately; with
    per-process string hashing they must still agree, or every partition reads as unsynced (and the
    scheduled refresh re-runs it) after each restart."""
    script = (
        "from cvn_assets.core.config import parse_config\n"
        "from cvn_assets.defs.sweep import Sweep\n"
        "from cvn_assets_tests.conftest import small_raw_config\n"
        "cv = Sweep.of(parse_config(small_raw_config())).code_versions\n"
        "print(cv.features('base'), cv.model('xgboost'), cv.baselines, cv.economics, cv.report)\n"
    )
    printed = {
        subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(printed) == 1
