"""Models, ensembles and feature sets are plugins: a file dropped into the in-tree folders, or a third-party
package's entry point, adds assets, economics rows and baselines coverage with no other change."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa

from cvn_assets.core.config import parse_config
from cvn_assets.core.sweep_plan import plan_sweep
from cvn_assets.definitions import build_definitions
from cvn_assets.defs.keys import partition_key
from cvn_assets.defs.resources import ResultsStore
from cvn_assets.defs.sweep import Sweep
from cvn_assets.features import registry as feature_registry
from cvn_assets.harness import registry
from cvn_assets.hyperparams.types import PARAM_TYPES
from cvn_assets.store.engine import get_engine
from cvn_assets_tests.conftest import small_raw_config
from cvn_assets_tests.in_process import materialize_sweep

# Sweeps here train small models; their hyperparameters come from the environment (conftest).
pytestmark = pytest.mark.usefixtures("small_hyperparams")

HARNESS = Path(registry.__file__).parent
DROPPED_MODEL = HARNESS / "models" / "zz_test_dropin_nb.py"
DROPPED_ENSEMBLE = HARNESS / "ensembles" / "zz_test_dropin_max.py"
FEATURE_SETS = Path(feature_registry.__file__).parent / "sets"
DROPPED_FEATURE_SET = FEATURE_SETS / "zz_test_dropin_momentum.py"
BROKEN_FEATURE_SET = FEATURE_SETS / "zz_test_broken_set.py"

FEATURE_SET_FILE = """
import pandas as pd

from cvn_assets.features.registry import register_feature_set


@register_feature_set(
    "dropin_momentum",
    columns=lambda params, crypto: [f"mom_{w}" for w in params["windows"]],
    warmup=lambda params: max(params["windows"]) + 1,
    params={"windows": [6]},
    code_version="dropin-momentum-v1",
)
def momentum(inputs):
    close = inputs.bars["close"]
    frame = pd.DataFrame({f"mom_{w}": close / close.shift(w) - 1 for w in inputs.params["windows"]})
    frame.iloc[: max(inputs.params["windows"]) + 1] = float("nan")
    return frame
"""

MODEL_FILE = """
from sklearn.naive_bayes import GaussianNB

from cvn_assets.harness.registry import register_model
from cvn_assets.hyperparams.types import declare_param_types

declare_param_types(var_smoothing=float)


@register_model("dropin_nb")
class DropInNaiveBayes:
    calibration = "isotonic"

    def __init__(self, params, seed, threads):
        self.params, self.best_iteration, self.n_estimators_final, self.native = dict(params), None, None, None

    def fit(self, X, y, X_val, y_val, sample_weight):
        self.native = GaussianNB(**self.params).fit(X, y, sample_weight=sample_weight)
        return self

    def predict_proba(self, X):
        return self.native.predict_proba(X)
"""
ENSEMBLE_FILE = """
import numpy as np

from cvn_assets.harness.registry import register_ensemble


@register_ensemble("dropin_max", base_models=["xgboost", "dropin_nb"])
class DropInMax:
    def __init__(self, params, seed, threads):
        self.models = []

    def fit(self, val, y_val):
        self.models = sorted(val)
        return self

    def predict(self, probabilities):
        return np.max([probabilities[m] for m in self.models], axis=0)

    def fitted_params(self):
        return {"rule": "max"}
"""
ENTRY_POINT_MODULE = """
from sklearn.tree import DecisionTreeClassifier

from cvn_assets.features.registry import register_feature_set
from cvn_assets.harness.registry import register_ensemble, register_model


@register_feature_set("ep_range", columns=lambda params, crypto: ["hl_range"], warmup=lambda params: 0,
                      code_version="ep-range-v1")
def hl_range(inputs):
    return ((inputs.bars["high"] - inputs.bars["low"]) / inputs.bars["close"]).to_frame("hl_range")


@register_model("ep_tree")
class EntryPointTree:
    calibration = "isotonic"

    def __init__(self, params, seed, threads):
        self.params, self.seed = dict(params), seed
        self.best_iteration, self.n_estimators_final, self.native = None, None, None

    def fit(self, X, y, X_val, y_val, sample_weight):
        self.native = DecisionTreeClassifier(**self.params, random_state=self.seed).fit(X, y, sample_weight=sample_weight)
        return self

    def predict_proba(self, X):
        return self.native.predict_proba(X)


@register_ensemble("ep_mean", base_models=["xgboost", "ep_tree"])
class EntryPointMean:
    def __init__(self, params, seed, threads):
        self.models = []

    def fit(self, val, y_val):
        self.models = sorted(val)
        return self

    def predict(self, probabilities):
        return sum(probabilities[m] for m in self.models) / len(self.models)

    def fitted_params(self):
        return {"rule": "mean"}
"""


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Drop the files, install a fake distribution with two entry points (one broken), rediscover; undo all."""
    site = tmp_path / "site"
    (site / "cvn_test_plugins-0.1.dist-info").mkdir(parents=True)
    (site / "cvn_test_plugins-0.1.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: cvn-test-plugins\nVersion: 0.1\n"
    )
    (site / "cvn_test_plugins-0.1.dist-info" / "entry_points.txt").write_text(
        "[cvn_assets.plugins]\nep_tree = cvn_test_ep_plugin\nbroken = cvn_test_broken_plugin\n"
    )
    (site / "cvn_test_ep_plugin.py").write_text(textwrap.dedent(ENTRY_POINT_MODULE))
    (site / "cvn_test_broken_plugin.py").write_text("import a_module_that_does_not_exist\n")
    monkeypatch.syspath_prepend(str(site))
    DROPPED_MODEL.write_text(MODEL_FILE)
    DROPPED_ENSEMBLE.write_text(ENSEMBLE_FILE)
    DROPPED_FEATURE_SET.write_text(FEATURE_SET_FILE)
    BROKEN_FEATURE_SET.write_text("raise ImportError('this feature set is broken')\n")
    try:
        registry.discover(force=True)
        feature_registry.discover(force=True)
        yield
    finally:
        for dropped in (DROPPED_MODEL, DROPPED_ENSEMBLE, DROPPED_FEATURE_SET, BROKEN_FEATURE_SET):
            dropped.unlink(missing_ok=True)
        for name in ("dropin_momentum", "ep_range"):
            feature_registry._FEATURE_SETS.pop(name, None)
        for name in ("dropin_nb", "ep_tree"):
            registry._MODELS.pop(name, None)
            registry._MODEL_CODES.pop(name, None)
        for name in ("dropin_max", "ep_mean"):
            registry._ENSEMBLES.pop(name, None)
        registry._SKIPPED.clear()
        PARAM_TYPES.pop("var_smoothing", None)
        for module in [m for m in sys.modules if "zz_test_" in m or m.startswith("cvn_test_")]:
            del sys.modules[module]


def test_a_broken_plugin_is_skipped_with_an_event_naming_it(plugins: None) -> None:
    skipped = registry.skipped_plugins()
    assert sorted(skipped) == ["cvn_assets.features.sets.zz_test_broken_set", "cvn_test_broken_plugin"]
    broken_set = skipped["cvn_assets.features.sets.zz_test_broken_set"]
    assert (
        broken_set.fields["kind"] == "feature set"
        and "this feature set is broken" in broken_set.fields["error"]
    )
    assert {"base", "btc_overlay", "dropin_momentum", "ep_range"} <= set(
        feature_registry.registered_feature_sets()
    )
    event = skipped["cvn_test_broken_plugin"]
    assert event.name == "plugin_skipped" and event.fields["kind"] == "entry point broken"
    assert (
        "ModuleNotFoundError" in event.fields["error"]
        and "a_module_that_does_not_exist" in event.fields["error"]
    )
    assert {"dropin_nb", "ep_tree", "xgboost"} <= set(registry.registered_models())


def test_a_dropped_feature_set_and_an_entry_point_one_become_assets_and_rows(
    plugins: None, tmp_path: Path
) -> None:
    raw = small_raw_config(feature_sets={"base": {}, "dropin_momentum": {"params": {"windows": [6, 12]}},
                                         "ep_range": {}})  # fmt: skip
    plan = plan_sweep(parse_config(raw))
    db_url = f"sqlite:///{tmp_path / 'r.db'}"
    defs = build_definitions(
        [plan.config], artifacts_dir=tmp_path / "artifacts", results_store=ResultsStore(database_url=db_url)
    )
    keys = {k.to_user_string() for k in defs.resolve_all_asset_keys()}
    assert {"tiny/features/dropin_momentum_features", "tiny/features/ep_range_features",
            "tiny/model/xgboost_on_dropin_momentum_model", "tiny/model/xgboost_on_ep_range_model"} <= keys  # fmt: skip
    with dg.instance_for_test() as instance:
        report = materialize_sweep(defs, plan.config, instance, cryptos=["SYNA"], folds=["f00"])
        assert report.ok, report.failed
    with get_engine(db_url).connect() as conn:
        rows = pd.read_sql(sa.text("select feature_set, variant, feature_hash from finetune_results"), conn)
    assert set(rows.feature_set) == {"base", "dropin_momentum", "ep_range"}
    assert rows.groupby("feature_set").feature_hash.nunique().tolist() == [1, 1, 1]
    assert rows.feature_hash.nunique() == 3


def test_dropped_files_and_entry_points_become_assets_rows_and_baselines(
    plugins: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = small_raw_config()
    raw["models"] |= {"dropin_nb": {}, "ep_tree": {}}
    # Plugin models have no committed values: their keys are set like any operator's.
    monkeypatch.setenv("CVN_HPO_DROPIN_NB_1H_VAR_SMOOTHING", "1e-9")
    monkeypatch.setenv("CVN_HPO_EP_TREE_1H_MAX_DEPTH", "3")
    plan = plan_sweep(parse_config(raw))
    db_url = f"sqlite:///{tmp_path / 'r.db'}"
    defs = build_definitions(
        [plan.config], artifacts_dir=tmp_path / "artifacts", results_store=ResultsStore(database_url=db_url)
    )
    keys = {k.to_user_string() for k in defs.resolve_all_asset_keys()}
    assert {"tiny/model/dropin_nb_model", "tiny/predictions/dropin_nb_predictions", "tiny/model/ep_tree_model",
            "tiny/predictions/ep_tree_predictions", "tiny/ensemble/dropin_max", "tiny/ensemble/ep_mean"} <= keys  # fmt: skip
    sweep_keys = Sweep.of(plan.config).keys
    model_key, ensemble_key = sweep_keys.model, sweep_keys.ensemble

    with dg.instance_for_test() as instance:
        report = materialize_sweep(defs, plan.config, instance, cryptos=["SYNA"], folds=["f00"])
        # ep_tree (a depth-3 tree, isotonic-calibrated) predicts a constant on this small fold: the
        # no_degenerate_variant WARN says so; every other check passes.
        warned = [k for keys in report.failed_checks.values() for k in keys]
        assert report.ok and warned == [
            f"tiny/economics/economics_{c}bps:no_degenerate_variant" for c in plan.config.costs_bps
        ], (report.failed, report.failed_checks)
        with get_engine(db_url).connect() as conn:
            results = pd.read_sql(
                sa.text(
                    "select variant, cost_bps, model_hyperparams, auc_buy_test, n_trades_test "
                    "from finetune_results"
                ),
                conn,
            )
            baselines = pd.read_sql(sa.text("select baseline_type, cost_bps from finetune_baselines"), conn)
        variants = {"xgboost", "dropin_nb", "ep_tree", "dropin_max", "ep_mean"}
        assert set(results.variant) == variants and len(results) == len(variants) * len(plan.config.costs_bps)
        constant = results[(results.auc_buy_test == 0.5) & (results.n_trades_test == 0)]
        assert set(constant.variant) == {"ep_tree"}  # the variant the WARN names
        assert len(baselines) == 3 * len(plan.config.costs_bps)
        assert results.set_index(["variant", "cost_bps"]).loc[("dropin_max", 0), "model_hyperparams"] == (
            '{"base_models":["xgboost","dropin_nb"],"rule":"max"}'
        )

        # An ensemble re-materialized alone reads the stored predictions: no base model is retrained.
        trained_before = {
            m: len(instance.fetch_materializations(model_key(m), limit=100).records)
            for m in ("xgboost", "dropin_nb")
        }
        result = defs.resolve_job_def(sweep_keys.sweep_job).execute_in_process(
            partition_key=partition_key("SYNA", plan.fold_ids[0]),
            instance=instance,
            asset_selection=[ensemble_key("dropin_max")],
        )
        assert result.success
        assert [e.asset_key for e in result.get_asset_materialization_events()] == [
            ensemble_key("dropin_max")
        ]
        assert trained_before == {
            m: len(instance.fetch_materializations(model_key(m), limit=100).records) for m in trained_before
        }
