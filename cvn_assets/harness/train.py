"""`train_one`: the single entry point every model asset calls, and the artifact it returns."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cvn_assets.core.datasets import FoldDataset
from cvn_assets.harness.registry import ModelAdapter, get_model


@dataclass(frozen=True)
class TrainedArtifact:
    """What a trained model hands downstream. It never carries the training data."""

    model_name: str
    adapter: ModelAdapter
    hyperparams: dict[str, Any]
    feature_names: tuple[str, ...]
    threshold: float
    best_iteration: int | None
    training_time_sec: float
    dataset_shape: dict[str, int]
    class_balance: float  # share of label 1 in the training split
    feature_hash: str
    data_hash: str
    code_version: str
    extra: dict[str, Any] = field(default_factory=dict)

    def predict_proba(self, split_features: Any) -> np.ndarray:
        proba = self.adapter.predict_proba(split_features[list(self.feature_names)])
        if proba.ndim != 2 or proba.shape[1] != 2:
            raise ValueError(
                f"{self.model_name}: predict_proba must return an (n, 2) array, got {proba.shape}"
            )
        return proba


def train_one(
    model_name: str,
    dataset: FoldDataset,
    params: Mapping[str, Any],
    *,
    threshold: float,
    seed: int,
    threads: int,
    code_version: str,
) -> TrainedArtifact:
    X, y = dataset.xy("train")
    X_val, y_val = dataset.xy("validation")
    adapter = get_model(model_name)(params, seed, threads)
    started = time.perf_counter()
    adapter.fit(X, y, X_val, y_val)
    elapsed = time.perf_counter() - started
    return TrainedArtifact(
        model_name=model_name,
        adapter=adapter,
        hyperparams=dict(params),
        feature_names=dataset.feature_names,
        threshold=threshold,
        best_iteration=adapter.best_iteration,
        training_time_sec=elapsed,
        dataset_shape={
            "n_train": len(dataset.train),
            "n_val": len(dataset.validation),
            "n_test": len(dataset.test),
            "n_features": len(dataset.feature_names),
        },
        class_balance=float(y.mean()),
        feature_hash=dataset.feature_hash,
        data_hash=dataset.data_hash,
        code_version=code_version,
    )
