"""`combine_one`: the single path every ensemble asset calls. It fits the ensemble on its base models'
stored validation predictions (never retraining a base model), predicts validation and test, and picks
the threshold with the same node as every model."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from cvn_assets.core.config import BASE_FEATURE_SET, HarnessSettings
from cvn_assets.core.datasets import FoldDataset
from cvn_assets.harness.predictions import VariantPredictions
from cvn_assets.harness.registry import get_ensemble
from cvn_assets.harness.train import choose_threshold, split_metrics


def combine_one(
    name: str,
    dataset: FoldDataset,
    base: Mapping[str, VariantPredictions],
    params: Mapping[str, Any],
    *,
    harness: HarnessSettings,
    threshold: float,
    seed: int,
    threads: int,
) -> VariantPredictions:
    spec = get_ensemble(name)
    missing = [m for m in spec.base_models if m not in base]
    if missing:
        raise ValueError(f"ensemble {name} needs the predictions of {missing}")
    for model in spec.base_models:
        if base[model].data_hash != dataset.data_hash:
            raise ValueError(
                f"{name}: predictions of {model} belong to data {base[model].data_hash}, not {dataset.data_hash}"
            )
    feature_set = dataset.feature_set or BASE_FEATURE_SET
    other = [m for m in spec.base_models if base[m].feature_set != feature_set]
    if other:
        raise ValueError(f"{name} on {feature_set}: the predictions of {other} are of another feature set")
    y_val = dataset.xy("validation")[1].to_numpy()  # the rows the base models were scored on
    val = {m: base[m].validation for m in spec.base_models}
    ensemble = spec.factory(params, seed, threads).fit(val, y_val)
    p_val = np.asarray(ensemble.predict(val), dtype=float)
    p_test = np.asarray(ensemble.predict({m: base[m].test for m in spec.base_models}), dtype=float)
    choice, events = choose_threshold(name, p_val, y_val, threshold, harness)
    y_test = dataset.xy("test")[1].to_numpy()
    return VariantPredictions(
        variant=name,
        threshold=choice.threshold,
        hyperparams={"base_models": list(spec.base_models), **ensemble.fitted_params()},
        optuna_trial_id=None,
        feature_hash=dataset.feature_hash,
        data_hash=dataset.data_hash,
        validation=p_val,
        test=p_test,
        val_metrics=split_metrics(y_val, p_val, choice.threshold),
        test_metrics=split_metrics(y_test, p_test, choice.threshold),
        events=tuple(events),
        feature_set=feature_set,
    )
