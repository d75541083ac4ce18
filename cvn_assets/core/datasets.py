"""Fold datasets: the train, validation and test rows of one crypto and fold, with a content hash."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from cvn_assets.core.errors import DatasetError
from cvn_assets.core.event_filter import EVENT_COLUMN, EventFilterFit
from cvn_assets.core.folds import Fold
from cvn_assets.core.hashing import canonical_json, fingerprint, frame_digest
from cvn_assets.core.labels import LABEL_COLUMNS

SPLITS = ("train", "validation", "test")
# Carried beside the features so the backtest can replay each trade exactly like its label.
MARKET_COLUMNS = ["close", "bar"]


@dataclass(frozen=True)
class FeatureFrame:
    """One feature set's features of one crypto over one fold's span: a `features/<set>` asset's value."""

    crypto: str
    feature_set: str
    frame: pd.DataFrame  # the feature columns, indexed by timestamp
    feature_hash: str

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(self.frame.columns)


@dataclass(frozen=True)
class FeatureColumns:
    """Which columns of a fold dataset one feature set contributed, and its hash."""

    feature_set: str
    names: tuple[str, ...]
    feature_hash: str


@dataclass(frozen=True)
class LabeledFeatures:
    """Every feature set's features and the labels of one crypto over one fold's span, joined."""

    crypto: str
    frame: pd.DataFrame  # feature columns, LABEL_COLUMNS and MARKET_COLUMNS, indexed by timestamp
    feature_sets: tuple[FeatureColumns, ...]

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Every stored feature column once, in the order the sets first name them."""
        return tuple(dict.fromkeys(name for columns in self.feature_sets for name in columns.names))


@dataclass(frozen=True)
class FoldDataset:
    """The train, validation and test rows of a crypto and fold, with every feature set's columns: one
    basis (rows, labels, prices, data_hash) for every variant and baseline of the cell. A model reads the
    view of its feature set (`for_feature_set`), whose feature_names and feature_hash are that set's."""

    crypto: str
    fold: Fold
    feature_names: tuple[str, ...]
    feature_hash: str
    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    data_hash: str
    feature_sets: tuple[FeatureColumns, ...] = ()
    feature_set: str | None = None  # the view's feature set; None: every set's columns
    # With the event filter on: what it amounted to on this fold (each split then holds an `event` column,
    # and only event rows are labels to train and evaluate on, and bars a trade may enter at).
    event_filter: EventFilterFit | None = None

    def for_feature_set(self, name: str) -> FoldDataset:
        """The same rows with only `name`'s feature columns as features (no frame is copied)."""
        for columns in self.feature_sets:
            if columns.feature_set == name:
                return replace(self, feature_names=columns.names, feature_hash=columns.feature_hash,
                               feature_set=name)  # fmt: skip
        raise KeyError(
            f"{self.crypto} fold {self.fold.fold_id}: the dataset holds no feature set '{name}' (it holds "
            f"{[c.feature_set for c in self.feature_sets]}); re-materialize its fold_dataset"
        )

    def split(self, name: str) -> pd.DataFrame:
        return {"train": self.train, "validation": self.validation, "test": self.test}[name]

    def events(self, name: str) -> np.ndarray | None:
        """The split's rows a trade may enter at (the event filter's bars); None: every row."""
        frame = self.split(name)
        return frame[EVENT_COLUMN].to_numpy(dtype=bool) if EVENT_COLUMN in frame else None

    def xy(self, name: str) -> tuple[pd.DataFrame, pd.Series]:
        """Features and labels of the split's rows a model learns from and is scored on: every row, or
        with the event filter on its event rows only."""
        frame = self.split(name)
        events = self.events(name)
        if events is not None:
            frame = frame.loc[events]
        return frame[list(self.feature_names)], frame["label"].astype(int)

    def xy_hash(self) -> str:
        """The canonical hash of what a model fits on and is scored on while it trains (the train and
        validation X/y of this view): every HPO trial of a cell, and its final fit, record it, so the
        trial-invariance diagnostic can tell they all saw the captured fold."""
        digest = hashlib.sha256()
        for split in ("train", "validation"):
            X, y = self.xy(split)
            digest.update(frame_digest(X).encode())
            digest.update(frame_digest(y.to_frame()).encode())
        return digest.hexdigest()[:16]


def fold_span(frame: pd.DataFrame, fold: Fold) -> pd.DataFrame:
    """The rows of the fold's span [train_start, test_end)."""
    return frame.loc[(frame.index >= fold.train_start) & (frame.index < fold.test_end)]


def label_features(
    crypto: str,
    ohlcv: pd.DataFrame,
    features: Sequence[FeatureFrame],
    labels: pd.DataFrame,
    fold: Fold,
    events: pd.Series | None = None,
) -> LabeledFeatures:
    """Join every feature set's features, the labels and prices (and the event filter's bars, when it is
    on), restricted to the fold's span."""
    market = labels.assign(close=ohlcv["close"], bar=range(len(ohlcv)))
    if events is not None:
        market[EVENT_COLUMN] = events.reindex(market.index, fill_value=False).to_numpy(dtype=bool)
    span = fold_span(market, fold)
    columns: dict[str, pd.Series] = {}
    sets: list[FeatureColumns] = []
    for frame in features:
        values = frame.frame.reindex(span.index)
        names: list[str] = []
        for name in frame.feature_names:
            # A column two sets both compute (btc_overlay's own columns are base's) is stored once; a
            # name taken by different values is kept apart under the set's name.
            stored = name
            if name in columns and not columns[name].equals(values[name]):
                stored = f"{frame.feature_set}__{name}"
            columns.setdefault(stored, values[name])
            names.append(stored)
        sets.append(FeatureColumns(frame.feature_set, tuple(names), frame.feature_hash))
    joined = pd.concat([pd.DataFrame(columns, index=span.index), span], axis=1)
    return LabeledFeatures(crypto, joined, tuple(sets))


def build_fold_dataset(
    labeled: LabeledFeatures, fold: Fold, event_filter: EventFilterFit | None = None
) -> FoldDataset:
    """Split into windows, dropping warm-up rows and unlabeled rows, and purging every row whose label
    ends at or after the start of the next window (the purge gap normally guarantees none)."""
    frame = labeled.frame
    usable = frame[list(labeled.feature_names)].notna().all(axis=1) & frame["label"].notna()
    next_start = {"train": fold.val_start, "validation": fold.test_start, "test": None}
    splits: dict[str, pd.DataFrame] = {}
    for name, (start, end) in fold.windows().items():
        keep = usable & (frame.index >= start) & (frame.index < end)
        if next_start[name] is not None:
            keep &= frame["label_end"] < next_start[name]
        market = [*MARKET_COLUMNS, *([EVENT_COLUMN] if EVENT_COLUMN in frame else [])]
        split = frame.loc[keep, [*labeled.feature_names, *LABEL_COLUMNS, *market]]
        labels = split.loc[split[EVENT_COLUMN], "label"] if EVENT_COLUMN in split else split["label"]
        if labels.empty or (name == "train" and labels.nunique() < 2):
            rows = "event rows" if EVENT_COLUMN in split else "usable rows"
            raise DatasetError(
                f"{labeled.crypto} fold {fold.fold_id}: the {name} window {start} to {end} has "
                f"{len(labels)} {rows} and labels {sorted(labels.unique())}; cannot train"
            )
        splits[name] = split

    digest = hashlib.sha256(
        canonical_json({k: [str(v[0]), str(v[1])] for k, v in fold.windows().items()}).encode()
    )
    for name in SPLITS:
        digest.update(frame_digest(splits[name]).encode())
    return FoldDataset(
        crypto=labeled.crypto,
        fold=fold,
        feature_names=labeled.feature_names,
        feature_hash=fingerprint([c.feature_hash for c in labeled.feature_sets]),
        data_hash=digest.hexdigest()[:16],
        feature_sets=labeled.feature_sets,
        event_filter=event_filter,
        **splits,
    )
