"""One training path for every model: parity with the libraries, identical events, one artifact shape."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pandas as pd
import pytest

from cvn_assets import steps
from cvn_assets.core.config import HarnessSettings, parse_config
from cvn_assets.core.datasets import FoldDataset
from cvn_assets.core.sweep_plan import plan_sweep
from cvn_assets.harness.events import EVENT_SCHEMAS, TRAINING_EVENTS
from cvn_assets.harness.nodes.class_balance import balance_classes
from cvn_assets.harness.registry import registered_models
from cvn_assets.harness.train import train_one
from cvn_assets_tests.conftest import small_raw_config
from cvn_assets_tests.reference_calls import direct_fit

PARAMS = {
    "xgboost": {"n_estimators": 30, "max_depth": 3, "learning_rate": 0.1},
    "lightgbm": {"n_estimators": 30, "num_leaves": 7, "learning_rate": 0.1},
    "catboost": {"iterations": 30, "depth": 3, "learning_rate": 0.1},
    "logreg": {"C": 0.5, "max_iter": 500},
}
SEED, THREADS = 7, 2


@pytest.fixture(scope="module")
def dataset() -> FoldDataset:
    plan = plan_sweep(parse_config(small_raw_config()))
    bars = steps.ohlcv(plan.config, "SYNA")
    return steps.cell_dataset(plan.config, "SYNA", plan.folds[1], bars)


def _train(name: str, dataset: FoldDataset, **harness: object):  # noqa: ANN202
    return train_one(name, dataset, PARAMS[name], harness=HarnessSettings(**harness), threshold=0.4,
                     seed=SEED, threads=THREADS, code_version="test", meta_params={"C": 1.0})  # fmt: skip


def test_every_in_tree_model_is_registered() -> None:
    assert {"xgboost", "lightgbm", "catboost", "logreg"} <= set(registered_models())


@pytest.mark.parametrize(
    ("name", "tolerance"), [("xgboost", 1e-9), ("lightgbm", 1e-6), ("catboost", 1e-6), ("logreg", 1e-9)]
)
@pytest.mark.parametrize("balance", ["none", "balanced"])
def test_harness_predictions_equal_the_library_called_directly(
    dataset: FoldDataset, name: str, tolerance: float, balance: str
) -> None:
    X, y = dataset.xy("train")
    X_test, _ = dataset.xy("test")
    artifact = _train(name, dataset, class_balance=balance)
    weights = balance_classes(y.to_numpy(), balance).weights
    direct = direct_fit(name, PARAMS[name], SEED, THREADS, X, y, weights).predict_proba(X_test)
    np.testing.assert_allclose(artifact.raw_proba(dataset.test), direct, rtol=0, atol=tolerance)


def test_every_model_emits_the_same_events_with_the_same_fields(
    dataset: FoldDataset, caplog: pytest.LogCaptureFixture
) -> None:
    types: dict[tuple[str, str], set[str]] = {}
    trained = 0
    with caplog.at_level(logging.INFO, logger="cvn_assets.events"):
        for name in registered_models():
            if name not in PARAMS:
                continue
            artifact = _train(name, dataset)
            trained += 1
            assert [e.name for e in artifact.events] == list(TRAINING_EVENTS)
            for event in artifact.events:
                assert set(event.fields) == set(EVENT_SCHEMAS[event.name])
                assert event.fields["model_type"] == name
                for key, value in event.fields.items():
                    if (
                        value is not None
                    ):  # best_iteration and n_estimators_final are None where no value exists
                        types.setdefault((event.name, key), set()).add(type(value).__name__)
    assert trained == len(PARAMS)
    assert {k: v for k, v in types.items() if len(v) > 1} == {}  # each field has one type across all models
    logged = [r.getMessage() for r in caplog.records if r.name == "cvn_assets.events"]
    assert sum('"event": "training_complete"' in m for m in logged) == len(PARAMS)  # one JSON record each


def test_artifact_contract(dataset: FoldDataset) -> None:
    artifact = _train("lightgbm", dataset)
    with pytest.raises(dataclasses.FrozenInstanceError):
        artifact.threshold = 0.1  # type: ignore[misc]
    assert artifact.predict_proba(dataset.test).shape == (len(dataset.test), 2)
    assert np.allclose(artifact.predict_proba(dataset.test).sum(axis=1), 1.0)
    assert artifact.shape.n_train == len(dataset.train) and artifact.shape.n_features == len(
        dataset.feature_names
    )
    assert (
        artifact.version.data_hash == dataset.data_hash
        and artifact.version.feature_hash == dataset.feature_hash
    )
    assert artifact.native is artifact.adapter.native and artifact.hyperparams == PARAMS["lightgbm"]
    assert artifact.val_metrics.auc_buy is not None and artifact.test_metrics.brier > 0
    # It never carries the training data: no frame or array of training length anywhere on it.
    for f in dataclasses.fields(artifact):
        value = getattr(artifact, f.name)
        assert not isinstance(value, pd.DataFrame | pd.Series)
        assert not (isinstance(value, np.ndarray) and len(value) == len(dataset.train))
    assert not any(isinstance(v, pd.DataFrame) for v in vars(artifact.adapter).values())


def test_threshold_sweep_and_meta_labeling_are_opt_in_and_guarded(dataset: FoldDataset) -> None:
    plain = _train("xgboost", dataset)
    assert plain.threshold_source == "config" and plain.threshold == 0.4 and plain.meta_model is None
    swept = _train(
        "xgboost",
        dataset,
        threshold_sweep=True,
        max_trade_ratio=1.5,
        meta_labeling={"enabled": True},
    )
    picked = next(e for e in swept.events if e.name == "theta_picked")
    assert picked.fields["source"] in {"sweep", "config_after_guard"}
    if picked.fields["source"] == "sweep":
        assert picked.fields["val_signal_rate"] <= 1.5 * picked.fields["base_rate"] + 1e-12
    complete = next(e for e in swept.events if e.name == "training_complete")
    assert complete.fields["meta_labeling"] == (swept.meta_model is not None)


def test_stored_probabilities_are_the_calibrated_predictions_of_the_splits(dataset: FoldDataset) -> None:
    from cvn_assets.harness.predictions import predict_splits

    artifact = _train("xgboost", dataset)
    preds = predict_splits(artifact, dataset)
    np.testing.assert_allclose(
        preds.validation, artifact.predict_proba(dataset.validation)[:, 1], rtol=0, atol=1e-12
    )
    np.testing.assert_allclose(preds.test, artifact.predict_proba(dataset.test)[:, 1], rtol=0, atol=1e-12)


def test_carried_metrics_equal_metrics_of_the_carried_probabilities(dataset: FoldDataset) -> None:
    from cvn_assets.harness.metrics import classification_metrics
    from cvn_assets.harness.predictions import predict_splits

    preds = predict_splits(_train("lightgbm", dataset), dataset)
    for split, metrics, proba in (
        ("validation", preds.val_metrics, preds.validation),
        ("test", preds.test_metrics, preds.test),
    ):
        expected = classification_metrics(dataset.split(split)["label"].to_numpy(), proba, preds.threshold)
        assert metrics.as_dict() == pytest.approx(expected)
