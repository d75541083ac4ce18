"""Where the time goes: the arithmetic with numbers, then real runs on a real instance (SQLite and PostgreSQL
storage) read back per asset and per model by `sweep_perf`, the `sweep_perf` asset and `cvn perf`."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import dagster as dg
import numpy as np
import pytest
import yaml

from cvn_assets.cli import main
from cvn_assets.core.config import parse_config
from cvn_assets.core.timings import RunTiming, StepTiming, per_asset, per_model, per_run
from cvn_assets.defs.perf import build_perf_asset, step_asset, sweep_perf
from cvn_assets.defs.sweep import Sweep
from cvn_assets_tests.conftest import small_raw_config
from cvn_assets_tests.in_process import load_bars, run_partition, sweep_defs


def test_percentiles_per_asset_and_model_and_the_share_outside_steps() -> None:
    steps = [
        StepTiming("r1", "model/xgboost_model", "xgboost", 2.0),
        StepTiming("r1", "predictions/xgboost_predictions", "xgboost", 1.0),
        StepTiming("r1", "features", None, 1.0),
        StepTiming("r2", "model/xgboost_model", "xgboost", 4.0),
        StepTiming("r2", "features", None, 3.0),
    ]
    runs = [RunTiming("r1", "tiny_sweep", 8.0, start_s=1.5), RunTiming("r2", "tiny_sweep", 10.0, start_s=0.5)]
    assets = per_asset(steps).set_index("asset")
    model = assets.loc["model/xgboost_model"]
    assert (model.runs, model.p50_s, model.max_s, model.total_s) == (2, 3.0, 4.0, 6.0)
    assert model.p95_s == pytest.approx(np.percentile([2.0, 4.0], 95)) == pytest.approx(3.9)
    assert assets.loc["features", "model"] is None
    models = per_model(steps).set_index("model")
    assert list(models.index) == ["xgboost"] and models.loc["xgboost", "p50_s"] == 3.5  # 3 s and 4 s a run
    summary = per_run(runs, steps)
    assert (summary.runs, summary.p50_s, summary.max_s) == (2, 9.0, 10.0)
    assert summary.outside_steps_share == pytest.approx(1 - 11.0 / 18.0)
    assert (summary.start_s, summary.start_p50_s, summary.steps) == ((1.5, 0.5), 1.0, 5)
    assert per_run([], []).outside_steps_share is None
    assert per_run([RunTiming("r3", "tiny_sweep", 1.0)], []).start_p50_s is None  # run in process: no launch


def test_a_step_reads_as_its_asset_and_model() -> None:
    sweep = Sweep.of(parse_config(small_raw_config()))
    assert step_asset(sweep, "tiny__model__xgboost_model") == ("model/xgboost_model", "xgboost")
    assert step_asset(sweep, "tiny__predictions__xgboost_predictions") == (
        "predictions/xgboost_predictions",
        "xgboost",
    )
    assert step_asset(sweep, "tiny__ensemble__blend_avg") == ("ensemble/blend_avg", "blend_avg")
    assert step_asset(sweep, "tiny__features") == ("features", None)
    assert step_asset(sweep, "tiny_results_checks") == ("results_checks", None)


@pytest.mark.usefixtures("small_hyperparams")
def test_sweep_perf_reads_the_runs_of_the_sweep_from_the_event_log(
    dagster_instance: dg.DagsterInstance,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    instance = dagster_instance
    config = parse_config(small_raw_config())
    sweep = Sweep.of(config)
    defs = sweep_defs(config, f"sqlite:///{tmp_path / 'results.db'}", tmp_path)
    fold = load_bars(defs, config, instance, "SYNA").folds[0]
    assert run_partition(defs, config, instance, "SYNA", fold.label).success

    perf = sweep_perf(instance, sweep, timedelta(days=1))
    assert perf.runs.runs == 3  # ohlcv of each crypto, and the partition
    assert 0.0 < perf.runs.outside_steps_share < 1.0
    assets = perf.assets.set_index("asset")
    assert {
        "ohlcv",
        "features/base_features",
        "fold_dataset",
        "model/xgboost_model",
        "economics",
        "baselines",
    } <= set(assets.index)
    assert assets.loc["ohlcv", "runs"] == 2 and assets.loc["model/xgboost_model", "runs"] == 1
    assert (perf.assets.p50_s <= perf.assets.p95_s).all() and (perf.assets.p95_s <= perf.assets.max_s).all()
    assert list(perf.models.model) == ["xgboost"]
    assert (
        sweep_perf(
            instance, Sweep.of(parse_config(small_raw_config(name="other"))), timedelta(days=1)
        ).runs.runs
        == 0
    )

    # The same figures as the sweep_perf asset's numeric metadata, which the UI plots over materializations.
    assert dg.materialize([build_perf_asset(sweep)], instance=instance).success
    recorded = instance.fetch_materializations(sweep.keys.perf, limit=1).records[0].asset_materialization
    meta = recorded.metadata
    assert meta["runs"].value == 3
    assert isinstance(meta["model/xgboost_model p50 s"], dg.FloatMetadataValue)
    assert meta["model xgboost p95 s"].value == round(perf.models.p95_s[0], 3)
    assert 0.0 < meta["share outside steps"].value < 1.0

    if instance.root_directory is not None and "postgres" not in type(instance.run_storage).__name__.lower():
        sweeps = tmp_path / "sweeps"
        sweeps.mkdir()
        (sweeps / "tiny.yaml").write_text(yaml.safe_dump(small_raw_config()))
        monkeypatch.setenv("CVN_SWEEPS_DIR", str(sweeps))
        monkeypatch.setenv("DAGSTER_HOME", instance.root_directory)
        assert main(["perf", "--sweep", "tiny", "--since", "1d"]) == 0
        printed = capsys.readouterr().out
        assert "== sweep tiny: 3 finished runs" in printed
        assert "model/xgboost_model" in printed and "outside the steps" in printed
