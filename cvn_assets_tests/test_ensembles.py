"""Ensembles on the real BTC sample: fit on the base models' stored validation predictions, scored like models."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from sklearn.metrics import roc_auc_score

from cvn_assets import steps
from cvn_assets.core.config import parse_config
from cvn_assets.core.sweep_plan import SweepPlan, plan_sweep
from cvn_assets.definitions import build_definitions
from cvn_assets.defs.resources import ResultsStore
from cvn_assets.hyperparams.resolver import Resolver
from cvn_assets.store.engine import get_engine
from cvn_assets_tests.conftest import small_raw_config
from cvn_assets_tests.in_process import materialize_sweep

# Sweeps here train small models; their hyperparameters come from the environment (conftest).
pytestmark = pytest.mark.usefixtures("small_hyperparams")

ENSEMBLES = {"blend_avg", "blend_weighted", "stack_logreg_shrink", "stack_xgb_meta"}


@pytest.fixture(scope="module")
def btc_plan() -> SweepPlan:
    raw = small_raw_config(
        name="btc",
        universe={"BTCUSD": {"kind": "table", "path": "bundled:btcusd_1h.csv.gz"}},
        folds={"train": "360d", "validation": "60d", "test": "60d", "max_folds": 1},
        models={"xgboost": {}, "lightgbm": {}, "catboost": {}},
    )
    return plan_sweep(parse_config(raw))


def test_each_ensemble_combines_stored_predictions(btc_plan: SweepPlan) -> None:
    bars = steps.ohlcv(btc_plan.config, "BTCUSD")
    dataset = steps.cell_dataset(btc_plan.config, "BTCUSD", btc_plan.folds[0], bars)
    hps = steps.hyperparameters(btc_plan.config, Resolver(None))  # from the environment (conftest)
    base = {
        m: steps.predictions(steps.train_model(btc_plan.config, m, dataset, hps[m]), dataset)
        for m in ("xgboost", "lightgbm", "catboost")
    }
    assert set(steps.ensemble_names(btc_plan.config)) == ENSEMBLES
    y_val = dataset.validation["label"].to_numpy()
    out = {name: steps.ensemble(btc_plan.config, name, dataset, base, hps[name]) for name in ENSEMBLES}
    for name, preds in out.items():
        assert preds.validation.shape == (len(dataset.validation),) and preds.test.shape == (
            len(dataset.test),
        )
        assert np.all((preds.test > 0) & (preds.test < 1)), name
        assert preds.data_hash == dataset.data_hash and preds.hyperparams["base_models"] == [
            "xgboost",
            "lightgbm",
            "catboost",
        ]
        assert [e.name for e in preds.events] == ["theta_picked"]
    np.testing.assert_allclose(out["blend_avg"].test, np.mean([base[m].test for m in base], axis=0))
    weights = out["blend_weighted"].hyperparams["weights"]
    assert sum(weights.values()) == pytest.approx(1.0)
    edges = {m: max(roc_auc_score(y_val, base[m].validation) - 0.5, 0) for m in base}
    if sum(edges.values()) > 0:
        assert weights == pytest.approx({m: e / sum(edges.values()) for m, e in edges.items()})
    assert set(out["stack_logreg_shrink"].hyperparams["coef"]) == set(base)
    assert out["stack_logreg_shrink"].hyperparams["C"] == 0.5


def test_ensembles_round_trip_through_the_graph_on_btc(btc_plan: SweepPlan, tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'r.db'}"
    defs = build_definitions(
        [btc_plan.config], artifacts_dir=tmp_path / "a", results_store=ResultsStore(database_url=db_url)
    )
    with dg.instance_for_test() as instance:
        report = materialize_sweep(defs, btc_plan.config, instance)
    assert report.ok and not report.failed_checks, (report.failed, report.failed_checks)
    with get_engine(db_url).connect() as conn:
        rows = pd.read_sql(
            sa.text(
                "select variant, cost_bps, n_trades_test, auc_buy_test, model_hyperparams, feature_hash from finetune_results"
            ),
            conn,
        )
    assert set(rows.variant) == {"xgboost", "lightgbm", "catboost"} | ENSEMBLES
    assert len(rows) == 7 * len(btc_plan.config.costs_bps)
    assert rows.model_hyperparams.str.len().gt(2).all() and rows.feature_hash.nunique() == 1
