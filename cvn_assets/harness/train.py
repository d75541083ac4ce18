"""`train_one`: the single training path every model asset calls.

    training_started -> class balancing -> fit -> calibration -> threshold -> metrics -> [meta-labeling]
    -> training_complete

Every step is a canonical node (harness/nodes) shared by all models; the adapter only fits and predicts.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from cvn_assets.core.config import BASE_FEATURE_SET, HarnessSettings
from cvn_assets.core.datasets import FoldDataset
from cvn_assets.harness.adapter import RoundHook
from cvn_assets.harness.contracts import (
    DatasetShape,
    FeatureVersion,
    SearchSummary,
    SplitMetrics,
    TrainedArtifact,
)
from cvn_assets.harness.events import Event, emit
from cvn_assets.harness.metrics import classification_metrics
from cvn_assets.harness.nodes.calibration import fit_calibrator
from cvn_assets.harness.nodes.class_balance import ClassBalance, balance_classes
from cvn_assets.harness.nodes.meta_label import fit_meta_labeler
from cvn_assets.harness.nodes.threshold import ThresholdChoice, pick_threshold
from cvn_assets.harness.registry import ModelAdapter, get_model


def threshold_events(model_type: str, choice: ThresholdChoice, harness: HarnessSettings) -> list[Event]:
    events = []
    if choice.rejected_best is not None:
        events.append(
            emit(
                "theta_rejected",
                model_type=model_type,
                threshold=choice.rejected_best,
                val_signal_rate=float(choice.rejected_signal_rate),
                base_rate=choice.base_rate,
                max_trade_ratio=harness.max_trade_ratio,
                n_rejected=choice.n_rejected,
            )
        )
    events.append(
        emit(
            "theta_picked",
            model_type=model_type,
            threshold=choice.threshold,
            source=choice.source,
            val_signal_rate=choice.val_signal_rate,
            base_rate=choice.base_rate,
        )
    )
    return events


def choose_threshold(
    model_type: str, p_val: np.ndarray, y_val: np.ndarray, configured: float, harness: HarnessSettings
) -> tuple[ThresholdChoice, list[Event]]:
    choice = pick_threshold(
        p_val,
        y_val,
        configured=configured,
        sweep=harness.threshold_sweep,
        grid=harness.threshold_grid,
        max_trade_ratio=harness.max_trade_ratio,
    )
    return choice, threshold_events(model_type, choice, harness)


def split_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> SplitMetrics:
    return SplitMetrics(**classification_metrics(y, p, threshold))


def fit_adapter(
    model_name: str,
    dataset: FoldDataset,
    params: Mapping[str, Any],
    balance: ClassBalance,
    *,
    seed: int,
    threads: int,
    on_round: RoundHook | None = None,
) -> tuple[ModelAdapter, float]:
    """Fit the registered adapter on the train split (watching validation when it early-stops or reports
    rounds); returns it and the seconds spent in the library's fit. The one place any model is fit."""
    X, y = dataset.xy("train")
    X_val, y_val = dataset.xy("validation")
    adapter = get_model(model_name)(params, seed, threads)
    if on_round is not None:  # an adapter without round callbacks simply never calls it
        adapter.on_round = on_round  # type: ignore[attr-defined]
    started = time.perf_counter()
    adapter.fit(X, y, X_val, y_val, balance.weights)
    return adapter, time.perf_counter() - started


def filter_fields(dataset: FoldDataset) -> dict[str, Any]:
    """The event filter in every model's training events, under the same names (None when it is off)."""
    fit = dataset.event_filter
    return {
        "event_filter": fit.kind if fit else None,
        "event_filter_sigma": fit.sigma if fit else None,
        "event_filter_threshold": fit.threshold if fit else None,
    }


def train_one(
    model_name: str,
    dataset: FoldDataset,
    params: Mapping[str, Any],
    *,
    harness: HarnessSettings,
    threshold: float,
    seed: int,
    threads: int,
    code_version: str,
    search: SearchSummary | None = None,
    meta_params: Mapping[str, Any] | None = None,
) -> TrainedArtifact:
    """Train `model_name` with `params` (resolved defaults, or the winner of `search`) and everything the
    harness adds around the fit; `meta_params` are the meta-labeler's, needed when it is enabled."""
    if harness.meta_labeling.enabled and meta_params is None:
        raise ValueError(f"{model_name}: meta-labeling is enabled but its hyperparameters were not given")
    X, y = dataset.xy("train")
    X_val, y_val = dataset.xy("validation")
    X_test, y_test = dataset.xy("test")
    shape = DatasetShape(len(X), len(X_val), len(X_test), X.shape[1], float(y.mean()))
    events = [
        emit(
            "training_started",
            model_type=model_name,
            seed=seed,
            **shape.as_dict(),
            **filter_fields(dataset),
            xy_hash=dataset.xy_hash(),
        )
    ]

    balance = balance_classes(y.to_numpy(), harness.class_balance)
    events.append(
        emit(
            "class_balance_applied",
            model_type=model_name,
            method=balance.method,
            base_rate=balance.base_rate,
            pos_weight=balance.pos_weight,
            neg_weight=balance.neg_weight,
        )
    )

    adapter, training_time = fit_adapter(model_name, dataset, params, balance, seed=seed, threads=threads)

    raw = adapter.predict_proba(X_val)
    calibrator = fit_calibrator(adapter.calibration, np.asarray(raw)[:, 1], y_val.to_numpy())
    p_val = calibrator.transform(np.asarray(raw)[:, 1])
    p_test = calibrator.transform(np.asarray(adapter.predict_proba(X_test))[:, 1])

    choice, theta_events = choose_threshold(model_name, p_val, y_val.to_numpy(), threshold, harness)
    events += theta_events
    val_metrics = split_metrics(y_val.to_numpy(), p_val, choice.threshold)
    test_metrics = split_metrics(y_test.to_numpy(), p_test, choice.threshold)

    meta_model = (
        fit_meta_labeler(X_val, y_val.to_numpy(), p_val, choice.threshold, meta_params, seed)
        if harness.meta_labeling.enabled and meta_params is not None
        else None
    )
    events.append(
        emit(
            "training_complete",
            model_type=model_name,
            n_estimators_final=adapter.n_estimators_final,
            best_iteration=adapter.best_iteration,
            training_time_sec=training_time,
            **shape.as_dict(),
            threshold=choice.threshold,
            calibration=calibrator.method,
            meta_labeling=meta_model is not None,
            **{f"val_{k}": v for k, v in val_metrics.as_dict().items()},
        )
    )
    return TrainedArtifact(
        model_name=model_name,
        adapter=adapter,
        calibrator=calibrator,
        threshold=choice.threshold,
        threshold_source=choice.source,
        hyperparams=dict(params),
        feature_names=dataset.feature_names,
        training_time_sec=training_time,
        shape=shape,
        version=FeatureVersion(
            dataset.feature_hash, dataset.data_hash, code_version, dataset.feature_set or BASE_FEATURE_SET
        ),
        val_metrics=val_metrics,
        test_metrics=test_metrics,
        validation_proba=p_val,
        test_proba=p_test,
        events=tuple(events),
        meta_model=meta_model,
        search=search,
        event_filter=dataset.event_filter,
    )
