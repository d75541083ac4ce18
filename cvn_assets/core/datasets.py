"""Fold datasets: the train, validation and test rows of one crypto and fold, with a content hash."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pandas as pd

from cvn_assets.core.errors import DatasetError
from cvn_assets.core.folds import Fold
from cvn_assets.core.hashing import canonical_json, frame_digest
from cvn_assets.core.labels import LABEL_COLUMNS

SPLITS = ("train", "validation", "test")
# Carried beside the features so the backtest can replay each trade exactly like its label.
MARKET_COLUMNS = ["close", "bar"]


@dataclass(frozen=True)
class LabeledFeatures:
    """Features and labels of one crypto over one fold's span: the `features` asset's value."""

    crypto: str
    frame: pd.DataFrame  # feature columns, LABEL_COLUMNS and MARKET_COLUMNS, indexed by timestamp
    feature_names: tuple[str, ...]
    feature_hash: str


@dataclass(frozen=True)
class FoldDataset:
    crypto: str
    fold: Fold
    feature_names: tuple[str, ...]
    feature_hash: str
    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    data_hash: str

    def split(self, name: str) -> pd.DataFrame:
        return {"train": self.train, "validation": self.validation, "test": self.test}[name]

    def xy(self, name: str) -> tuple[pd.DataFrame, pd.Series]:
        frame = self.split(name)
        return frame[list(self.feature_names)], frame["label"].astype(int)


def label_features(
    crypto: str,
    ohlcv: pd.DataFrame,
    features: pd.DataFrame,
    labels: pd.DataFrame,
    feature_names: tuple[str, ...],
    feature_hash: str,
    fold: Fold,
) -> LabeledFeatures:
    """Join features, labels and prices, restricted to the fold's span [train_start, test_end)."""
    frame = features.join(labels).assign(close=ohlcv["close"], bar=range(len(ohlcv)))
    span = (frame.index >= fold.train_start) & (frame.index < fold.test_end)
    return LabeledFeatures(crypto, frame.loc[span], feature_names, feature_hash)


def build_fold_dataset(labeled: LabeledFeatures, fold: Fold) -> FoldDataset:
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
        split = frame.loc[keep, [*labeled.feature_names, *LABEL_COLUMNS, *MARKET_COLUMNS]]
        if split.empty or (name == "train" and split["label"].nunique() < 2):
            raise DatasetError(
                f"{labeled.crypto} fold {fold.fold_id}: the {name} window {start} to {end} has "
                f"{len(split)} usable rows and labels {sorted(split['label'].unique())}; cannot train"
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
        feature_hash=labeled.feature_hash,
        data_hash=digest.hexdigest()[:16],
        **splits,
    )
