"""Feature sets as a sweep factor: the registry, the BTC overlay's alignment and coverage, and a sweep with
two feature sets through Dagster (one basis per cell, baselines once, every pair a variant)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from cvn_assets import steps
from cvn_assets.core.baselines import BASELINE_TYPES
from cvn_assets.core.config import SweepConfig, parse_config
from cvn_assets.core.errors import ConfigError, DataCoverageError
from cvn_assets.core.features import compute_features, feature_columns
from cvn_assets.core.loaders import load_ohlcv
from cvn_assets.core.proxy_economy import ALL_MODELS, build_report, verdicts, versus_feature_sets
from cvn_assets.core.sweep_plan import plan_sweep
from cvn_assets.defs.sweep import Sweep
from cvn_assets.features.registry import FeatureInputs, get_feature_set, registered_feature_sets
from cvn_assets.features.sets.btc_overlay import PREFIX
from cvn_assets.store.engine import get_engine
from cvn_assets.store.reports import summary, sweep_rows
from cvn_assets.store.schema import finetune_baselines, finetune_results
from cvn_assets_tests.conftest import small_raw_config
from cvn_assets_tests.fixtures import clean_bars
from cvn_assets_tests.in_process import load_bars, materialize_sweep, run_partition, sweep_defs

WINDOWS = {"windows": [6, 24]}


def _bars(n: int, seed: int) -> pd.DataFrame:
    """Bars indexed by timestamp, as the ohlcv asset holds them."""
    return clean_bars(n, seed=seed).set_index("timestamp")


def _overlay_config(**more: object) -> SweepConfig:
    universe = {"BTCUSD": {"kind": "synthetic"}, "SYNA": {"kind": "synthetic"}}
    sets = {"base": {}, "btc_overlay": {"models": ["xgboost"]}}
    return parse_config(small_raw_config(universe=universe, feature_sets=sets, **more))


def test_registry_holds_base_and_the_overlay_with_their_declarations() -> None:
    assert {"base", "btc_overlay"} <= set(registered_feature_sets())
    base, overlay = get_feature_set("base"), get_feature_set("btc_overlay")
    assert base.requires == () and overlay.requires == ("BTCUSD",)
    assert list(base.columns(WINDOWS, "SYNA")) == feature_columns([6, 24])
    assert list(overlay.columns(WINDOWS, "SYNA")) == [
        *feature_columns([6, 24]),
        *(PREFIX + c for c in feature_columns([6, 24])),
    ]
    assert overlay.required_for("BTCUSD") == () and overlay.required_for("SYNA") == ("BTCUSD",)
    # name, parameters and code version make the hash
    assert base.feature_hash(WINDOWS) != overlay.feature_hash(WINDOWS)
    assert base.feature_hash(WINDOWS) != base.feature_hash({"windows": [6, 12]})
    assert base.feature_hash(WINDOWS) == base.feature_hash({"windows": [6, 24]})


def test_a_feature_set_must_produce_what_it_declares() -> None:
    bars = _bars(200, 0)
    spec = get_feature_set("base")
    wrong = type(spec)(**{**spec.__dict__, "columns": lambda params, crypto: ["only_this"]})
    with pytest.raises(ValueError, match="declares"):
        wrong.run("SYNA", bars, WINDOWS, {})


def test_unknown_feature_set_or_parameter_or_missing_btc_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"feature_sets\.nope.*no feature set registered"):
        steps.feature_set_names(parse_config(small_raw_config(feature_sets=["base", "nope"])))
    with pytest.raises(ConfigError, match=r"feature_sets\.base\.params\.depth"):
        steps.feature_set_names(
            parse_config(small_raw_config(feature_sets={"base": {"params": {"depth": 3}}}))
        )
    # The small sweep's universe (SYNA, SYNB) has no BTC: the overlay names a crypto that needs it.
    with pytest.raises(ConfigError, match=r"feature_sets\.btc_overlay.*SYNA needs the bars of \['BTCUSD'\]"):
        steps.feature_set_names(parse_config(small_raw_config(feature_sets=["btc_overlay"])))
    with pytest.raises(ConfigError, match=r"feature_sets\.btc_overlay\.models"):
        parse_config(small_raw_config(feature_sets={"btc_overlay": {"models": ["catboost"]}}))


def test_the_default_feature_set_leaves_the_run_id_as_it_was() -> None:
    plain = parse_config(small_raw_config())
    assert plain.feature_sets == parse_config(small_raw_config(feature_sets=["base"])).feature_sets
    assert plain.run_id == parse_config(small_raw_config(feature_sets=["base"])).run_id
    assert plain.run_id != parse_config(small_raw_config(feature_sets=["base", "btc_overlay"])).run_id


def _overlay(crypto_bars: pd.DataFrame, btc_bars: pd.DataFrame) -> pd.DataFrame:
    spec = get_feature_set("btc_overlay")
    return spec.compute(FeatureInputs("SYNA", crypto_bars, WINDOWS, {"BTCUSD": btc_bars}))


def _btc_columns(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[[c for c in frame.columns if c.startswith(PREFIX)]]


def _past_only(overlay: Callable[[pd.DataFrame, pd.DataFrame], pd.DataFrame]) -> bool:
    """Whether the overlay at each bar t is unchanged when BTC's bars after t change."""
    own, btc = _bars(400, 1), _bars(400, 2)
    before = _btc_columns(overlay(own, btc))
    for t in (150, 260, 399):
        changed = btc.copy()
        changed.iloc[t + 1 :, :4] *= 1.3
        after = _btc_columns(overlay(own, changed))
        if not before.iloc[: t + 1].equals(after.iloc[: t + 1]):
            return False
    return True


def test_the_overlay_is_btcs_past_only_features_aligned_on_timestamps() -> None:
    own, btc = _bars(400, 1), _bars(400, 2)
    frame = _overlay(own, btc)
    expected, _ = compute_features(btc, [6, 24])
    pd.testing.assert_frame_equal(_btc_columns(frame), expected.add_prefix(PREFIX))
    pd.testing.assert_frame_equal(frame[feature_columns([6, 24])], compute_features(own, [6, 24])[0])
    assert _past_only(_overlay)


def test_a_series_shifted_by_one_bar_shows_the_alignment_has_no_look_ahead() -> None:
    own, btc = _bars(400, 1), _bars(400, 2)
    shifted = btc.copy()
    shifted.index = shifted.index + pd.Timedelta("1h")  # each BTC bar closes one bar later
    aligned, late = _btc_columns(_overlay(own, btc)), _btc_columns(_overlay(own, shifted))
    # At the crypto's bar t the overlay holds BTC's bar t-1: one bar behind, never the bar ahead.
    pd.testing.assert_frame_equal(late.iloc[1:], aligned.iloc[:-1].set_axis(late.index[1:]))
    # Half a bar later: BTC's bar is not yet closed at the crypto's t, so the overlay holds its bar t-1.
    half = btc.copy()
    half.index = half.index + pd.Timedelta("30min")
    pd.testing.assert_frame_equal(_btc_columns(_overlay(own, half)).iloc[1:], late.iloc[1:])

    def leaky(crypto_bars: pd.DataFrame, btc_bars: pd.DataFrame) -> pd.DataFrame:
        later, _ = compute_features(btc_bars, [6, 24])  # aligned to the next bar: a look-ahead
        return later.reindex(crypto_bars.index, method="bfill").shift(-1).add_prefix(PREFIX)

    assert not _past_only(leaky)


def test_for_btc_itself_the_overlay_equals_base() -> None:
    bars = _bars(300, 4)
    spec = get_feature_set("btc_overlay")
    frame = spec.run("BTCUSD", bars, WINDOWS, {})
    pd.testing.assert_frame_equal(frame, get_feature_set("base").run("BTCUSD", bars, WINDOWS, {}))


def test_btc_that_does_not_cover_the_fold_fails_naming_the_crypto_and_fold() -> None:
    cfg = _overlay_config()
    plan = plan_sweep(cfg)
    fold = plan.folds[0]
    bars = {c: load_ohlcv(cfg, c) for c in cfg.cryptos}
    short = bars["BTCUSD"].loc[bars["BTCUSD"].index < fold.test_end - pd.Timedelta("5D")]
    with pytest.raises(
        DataCoverageError, match=rf"BTCUSD's bars for btc_overlay .* fold {fold.fold_id} of SYNA"
    ):
        steps.features(cfg, "btc_overlay", "SYNA", fold, bars["SYNA"], {"BTCUSD": short})
    # BTC starts with the fold but long after the crypto: its warm-up leaves the overlay undefined inside
    # the fold where the crypto's own features are defined (a sliding fold starts after the first bar).
    sliding = _overlay_config(folds={"scheme": "sliding", "train": "90d", "validation": "20d", "test": "20d"})
    fold = plan_sweep(sliding).folds[1]
    late = bars["BTCUSD"].loc[bars["BTCUSD"].index >= fold.train_start]
    with pytest.raises(
        DataCoverageError, match=rf"SYNA fold {fold.fold_id}: feature set 'btc_overlay' is undefined"
    ):
        steps.features(sliding, "btc_overlay", "SYNA", fold, bars["SYNA"], {"BTCUSD": late})
    with pytest.raises(DataCoverageError, match=r"needs the bars of BTCUSD; materialize ohlcv\[BTCUSD\]"):
        steps.features(cfg, "btc_overlay", "SYNA", fold, bars["SYNA"], {})


def test_one_dataset_holds_every_feature_set_on_the_same_rows() -> None:
    cfg = _overlay_config()
    fold = plan_sweep(cfg).folds[0]
    bars = {c: load_ohlcv(cfg, c) for c in cfg.cryptos}
    dataset = steps.cell_dataset(cfg, "SYNA", fold, bars)
    base, overlay = dataset.for_feature_set("base"), dataset.for_feature_set("btc_overlay")
    assert len(overlay.feature_names) == 2 * len(base.feature_names)
    assert base.data_hash == overlay.data_hash and base.feature_hash != overlay.feature_hash
    assert base.train.index.equals(overlay.train.index)
    assert not dataset.train[list(overlay.feature_names)].isna().any().any()
    only_base = parse_config(small_raw_config(universe=dict(cfg.universe), feature_sets=["base"]))
    alone = steps.cell_dataset(only_base, "SYNA", fold, bars)
    assert alone.train.index.equals(dataset.train.index)  # the same basis whatever sets sit beside it
    with pytest.raises(KeyError, match="no feature set 'l2'"):
        dataset.for_feature_set("l2")


@pytest.mark.usefixtures("small_hyperparams")
def test_a_sweep_with_two_feature_sets_scores_every_pair_on_one_basis(tmp_path: Path) -> None:
    # Tiny models trade erratically: the over-trading finding is not what this test is about.
    checks = {"over_trading_ratio": 1000.0}
    folds = {"train": "90d", "validation": "20d", "test": "20d", "max_folds": 1}  # one fold: 2 partition runs
    cfg = _overlay_config(models={"xgboost": {}, "lightgbm": {}}, checks=checks, folds=folds)
    plan = plan_sweep(cfg)
    db_url = f"sqlite:///{tmp_path / 'results.db'}"
    defs = sweep_defs(plan, db_url, tmp_path)
    keys = Sweep.of(cfg).keys
    graph = defs.get_repository_def().asset_graph
    names = [k.path[-1] for k in graph.get_all_asset_keys()]
    assert len(names) == len(set(names)), "two graph nodes read the same"
    assert keys.features("btc_overlay") in graph.get_all_asset_keys()
    assert keys.model("xgboost", "btc_overlay").path[-1] == "xgboost_on_btc_overlay_model"
    assert keys.model("lightgbm", "btc_overlay") not in graph.get_all_asset_keys()  # xgboost only
    with dg.instance_for_test() as instance:
        report = materialize_sweep(defs, cfg, instance)
        assert report.ok and not report.failed_checks, (report.failed, report.failed_checks)
        # The report asset compares the feature sets: in each cost's verdict and in its own table.
        assert defs.resolve_job_def(keys.report_job).execute_in_process(instance=instance).success
        shown = instance.get_latest_materialization_event(keys.report).asset_materialization.metadata
        assert "btc_overlay has a higher OOS sortino than base" in shown["verdict at 10 bps"].value
        compared = shown["feature sets (OOS sortino)"].value.records
        assert {r.data["feature_set"] for r in compared} == {"btc_overlay"}
    engine = get_engine(db_url)
    with engine.connect() as conn:
        results = pd.read_sql(sa.select(finetune_results), conn)
        baselines = pd.read_sql(sa.select(finetune_baselines), conn)
    cells = len(cfg.cryptos) * len(plan.folds) * len(cfg.costs_bps)
    pairs = sorted(zip(results["feature_set"], results["variant"], strict=True))
    assert sorted(set(pairs)) == [("base", "lightgbm"), ("base", "xgboost"), ("btc_overlay", "xgboost")]
    assert len(results) == 3 * cells
    assert len(baselines) == len(BASELINE_TYPES) * cells  # once per cell and cost, not per feature set
    per_cell = results.groupby(["crypto", "fold_id", "cost_bps"])
    assert (per_cell["data_hash"].nunique() == 1).all()  # one basis for every feature set
    assert results.groupby("feature_set")["feature_hash"].nunique().tolist() == [1, 1]
    labelled, _ = sweep_rows(engine, cfg.run_id)
    assert set(labelled["variant"]) == {"lightgbm", "xgboost", "xgboost@btc_overlay"}
    assert {"xgboost@btc_overlay"} <= set(summary(engine, cfg.run_id)["name"])
    report = build_report(*sweep_rows(engine, cfg.run_id))
    assert set(report.overfitting["variants"]) == {3}  # the odds count every (feature set, model) tried
    assert set(report.feature_sets["feature_set"]) == {"btc_overlay"}
    lines = verdicts(report)
    assert len(lines) == len(cfg.costs_bps) and all(
        "btc_overlay has a higher OOS sortino than base" in x for x in lines
    )
    btc = results[(results["crypto"] == "BTCUSD") & (results["variant"] == "xgboost")]
    # For BTC the overlay equals base: the same features, so the same predictions and money.
    by_set = btc.set_index(["fold_id", "cost_bps", "feature_set"])["sortino_test"].unstack("feature_set")
    np.testing.assert_allclose(by_set["base"], by_set["btc_overlay"])


def test_the_report_compares_feature_sets_model_by_model_with_a_paired_test() -> None:
    rows = []
    for cell in range(10):
        for model, edge in (("xgboost", 0.1), ("logreg", -0.05)):
            for feature_set, label in (("base", model), ("btc_overlay", f"{model}@btc_overlay")):
                sortino = cell / 10 + (edge if feature_set == "btc_overlay" else 0.0)
                rows.append({"crypto": "SYNA", "fold_id": f"f{cell:02d}_2020-01-01", "cost_bps": 10,
                             "feature_set": feature_set, "variant": label, "sortino_test": sortino,
                             "total_return_test": sortino / 10})  # fmt: skip
    compared = versus_feature_sets(pd.DataFrame(rows))
    on_sortino = compared[compared["outcome"] == "sortino_test"].set_index("model")
    assert set(on_sortino.index) == {"xgboost", "logreg", ALL_MODELS}
    assert (
        on_sortino.loc["xgboost", "share_better"] == 1.0 and on_sortino.loc["logreg", "share_better"] == 0.0
    )
    assert on_sortino.loc["xgboost", "sign_p"] == pytest.approx(2 * 0.5**10)
    assert on_sortino.loc["xgboost", "mean_difference"] == pytest.approx(0.1)
    assert on_sortino.loc[ALL_MODELS, "cells"] == 20 and on_sortino.loc[ALL_MODELS, "share_better"] == 0.5
    assert set(compared["reference"]) == {"base"} and set(compared["feature_set"]) == {"btc_overlay"}
    # One feature set: nothing to compare.
    assert versus_feature_sets(pd.DataFrame([r for r in rows if r["feature_set"] == "base"])).empty


@pytest.mark.usefixtures("small_hyperparams")
def test_a_partition_whose_btc_bars_are_not_stored_fails_naming_the_partition_to_materialize(
    tmp_path: Path,
) -> None:
    import shutil

    cfg = _overlay_config()
    defs = sweep_defs(plan_sweep(cfg), f"sqlite:///{tmp_path / 'results.db'}", tmp_path)
    with dg.instance_for_test() as instance:
        load_bars(defs, cfg, instance, "SYNA")
        shutil.rmtree(tmp_path / "artifacts" / cfg.name / "ohlcv" / "BTCUSD")  # lost, or never written
        result = run_partition(defs, cfg, instance, "SYNA", "f00")
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert failure.step_key == "tiny__features__btc_overlay_features"
    message = failure.step_failure_data.user_failure_data.description
    assert "tiny/ohlcv partition BTCUSD has not been materialized yet" in message
