"""What every consumer of a trained model reads. Nothing here carries the raw training data."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np

from cvn_assets.core.config import BASE_FEATURE_SET
from cvn_assets.core.event_filter import EventFilterFit
from cvn_assets.harness.events import Event
from cvn_assets.harness.nodes.calibration import Calibrator
from cvn_assets.harness.nodes.meta_label import MetaLabeler
from cvn_assets.harness.registry import ModelAdapter

Range = tuple[Any, Any, str]  # (min, max, linear|log)


class SearchSpace(Protocol):
    """What an HPO search reads of a model's resolved hyperparameters (`hyperparams.ModelHyperparams`)."""

    model: str
    values: dict[str, Any]  # the defaults: trial 0, and every parameter not searched
    ranges: dict[str, Range]

    @property
    def fingerprint(self) -> str: ...


@dataclass(frozen=True)
class SplitMetrics:
    f1_buy: float
    auc_buy: float | None  # None when the split holds one class only
    brier: float
    ece: float
    logloss: float

    def as_dict(self) -> dict[str, float | None]:
        return asdict(self)


@dataclass(frozen=True)
class DatasetShape:
    n_train: int
    n_val: int
    n_test: int
    n_features: int
    class_balance: float  # share of label 1 ("buy") in the training split

    def as_dict(self) -> dict[str, int | float]:
        return asdict(self)


@dataclass(frozen=True)
class FeatureVersion:
    feature_hash: str
    data_hash: str
    code_version: str
    feature_set: str = BASE_FEATURE_SET  # what it was trained on (artifacts written before: base)


@dataclass(frozen=True)
class SearchSummary:
    """How an Optuna search chose a model's hyperparameters (absent in fixed-parameter mode)."""

    study_name: str
    trial_id: int  # the best trial's id in Optuna's `trials` table: unique across every study stored
    trial_number: int  # its number within the study
    best_value: float  # validation log loss of the best trial
    n_complete: int
    n_pruned: int
    search_time_sec: float
    library_time_sec: float  # of which inside the library's fit and predict

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TrainedArtifact:
    model_name: str
    adapter: ModelAdapter
    calibrator: Calibrator
    threshold: float
    threshold_source: str  # "config", "sweep" or "config_after_guard"
    hyperparams: dict[str, Any]
    feature_names: tuple[str, ...]
    training_time_sec: float
    shape: DatasetShape
    version: FeatureVersion
    val_metrics: SplitMetrics
    test_metrics: SplitMetrics
    # Calibrated P(buy) of the dataset it was trained on (validation and test rows, in order): computed for
    # the metrics anyway, so the predictions step need not predict again. Predictions, not training data.
    validation_proba: np.ndarray
    test_proba: np.ndarray
    events: tuple[Event, ...] = field(default=())
    meta_model: MetaLabeler | None = None
    search: SearchSummary | None = None
    # The CUSUM event filter's fit on the fold it was trained on (its sigma and threshold); None when off.
    event_filter: EventFilterFit | None = None

    @property
    def optuna_trial_id(self) -> int | None:
        return self.search.trial_id if self.search else None

    @property
    def best_iteration(self) -> int | None:
        return self.adapter.best_iteration

    @property
    def native(self) -> Any:
        """The library's own model object (XGBClassifier, LGBMClassifier, ...)."""
        return self.adapter.native

    def raw_proba(self, frame: Any) -> np.ndarray:
        """The adapter's uncalibrated (n, 2) probabilities."""
        proba = np.asarray(self.adapter.predict_proba(frame[list(self.feature_names)]), dtype=float)
        if proba.ndim != 2 or proba.shape[1] != 2:
            raise ValueError(
                f"{self.model_name}: predict_proba must return an (n, 2) array, got {proba.shape}"
            )
        return proba

    def predict_proba(self, frame: Any) -> np.ndarray:
        """Calibrated (n, 2) probabilities: what thresholds, metrics and economics use."""
        p = self.calibrator.transform(self.raw_proba(frame)[:, 1])
        return np.column_stack([1 - p, p])
