"""Validation and OOS probabilities of one variant (a model or an ensemble): what every `predictions/<name>`
and `ensemble/<name>` asset holds and what economics and ensembles consume."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cvn_assets.core.config import BASE_FEATURE_SET
from cvn_assets.core.datasets import FoldDataset
from cvn_assets.core.variants import variant_label
from cvn_assets.harness.contracts import SplitMetrics, TrainedArtifact
from cvn_assets.harness.events import Event


@dataclass(frozen=True)
class VariantPredictions:
    variant: str
    threshold: float
    hyperparams: dict[str, Any]
    optuna_trial_id: int | None  # Optuna's storage id of the winning trial (differs between fresh runs)
    feature_hash: str
    data_hash: str
    validation: np.ndarray  # calibrated P(label = 1) for each validation row of the fold dataset, in order
    test: np.ndarray
    # Classification metrics at `threshold`, computed once where the probabilities are made.
    val_metrics: SplitMetrics
    test_metrics: SplitMetrics
    events: tuple[Event, ...] = field(default=())
    feature_set: str = BASE_FEATURE_SET
    optuna_study: str | None = None  # the search's study and the winning trial's number in it
    optuna_trial_number: int | None = None

    @property
    def label(self) -> str:
        """The variant as reports name it: `xgboost`, or `xgboost@btc_overlay` on another feature set."""
        return variant_label(self.variant, self.feature_set)


def predict_splits(artifact: TrainedArtifact, dataset: FoldDataset) -> VariantPredictions:
    if artifact.version.data_hash != dataset.data_hash:
        raise ValueError(
            f"{artifact.model_name} was trained on data {artifact.version.data_hash}, not on this fold dataset "
            f"({dataset.data_hash}); re-materialize the model partition"
        )
    return VariantPredictions(
        variant=artifact.model_name,
        threshold=artifact.threshold,
        hyperparams=artifact.hyperparams,
        optuna_trial_id=artifact.optuna_trial_id,
        feature_hash=artifact.version.feature_hash,
        data_hash=artifact.version.data_hash,
        # The same dataset (checked above): the artifact's own calibrated probabilities are these splits'.
        validation=artifact.validation_proba,
        test=artifact.test_proba,
        val_metrics=artifact.val_metrics,
        test_metrics=artifact.test_metrics,
        feature_set=artifact.version.feature_set,
        optuna_study=artifact.search.study_name if artifact.search else None,
        optuna_trial_number=artifact.search.trial_number if artifact.search else None,
    )
