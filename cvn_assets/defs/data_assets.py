"""ohlcv[crypto] -> features[crypto x fold] -> fold_dataset[crypto x fold], for one sweep."""

import warnings

import dagster as dg
import pandas as pd

from cvn_assets import steps
from cvn_assets.core.datasets import SPLITS, FoldDataset, LabeledFeatures
from cvn_assets.core.errors import CvnError
from cvn_assets.core.hashing import frame_digest
from cvn_assets.defs.keys import crypto_and_fold
from cvn_assets.defs.metadata import readable
from cvn_assets.defs.sweep import Sweep

# What the `ohlcv` materialization records, and the fold sensor reads to plan folds without the data.
FIRST_BAR, LAST_BAR = "first_bar", "last_bar"
REJECTED = "rejected"  # on the observation a failed ohlcv partition records: why its data was rejected


def _crypto_of() -> dg.MultiToSingleDimensionPartitionMapping:
    # Beta in Dagster 1.13 and the one mapping that says "every fold of a crypto reads that crypto's bars".
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        return dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name="crypto")


def build_data_assets(sweep: Sweep) -> list[dg.AssetsDefinition]:
    cfg, keys, versions = sweep.config, sweep.keys, sweep.code_versions

    @dg.asset(
        key=keys.ohlcv,
        partitions_def=keys.crypto_partitions,
        group_name=keys.group("data"),
        code_version=versions.ohlcv,
        kinds={"pandas"},
        description="Validated OHLCV bars of one crypto. Rejected or unreachable data fails here, naming "
        "the crypto, the file and the row. Its first and last bar decide which folds exist.",
    )
    def ohlcv(context: dg.AssetExecutionContext) -> dg.Output[pd.DataFrame]:
        crypto = context.partition_key
        try:
            bars = steps.ohlcv(cfg, crypto)
        except CvnError as exc:
            # Recorded, so fold planning leaves this crypto out (named) instead of waiting for its bars.
            context.log_event(
                dg.AssetObservation(asset_key=keys.ohlcv, partition=crypto, metadata={REJECTED: str(exc)})
            )
            raise dg.Failure(description=f"ohlcv[{crypto}] of sweep {cfg.name}: {exc}") from None
        source = cfg.universe[crypto]
        return dg.Output(
            bars,
            data_version=dg.DataVersion(frame_digest(bars)[:16]),
            metadata={
                "source": getattr(source, "path", source.kind),
                "rows": len(bars),
                FIRST_BAR: str(bars.index[0]),
                LAST_BAR: str(bars.index[-1]),
            },
        )

    @dg.asset(
        key=keys.features,
        partitions_def=keys.crypto_fold_partitions,
        group_name=keys.group("data"),
        code_version=versions.features,
        kinds={"pandas"},
        ins={"bars": dg.AssetIn(keys.ohlcv, partition_mapping=_crypto_of())},
        description="Past-only features and triple-barrier labels over the fold's span.",
    )
    def features(context: dg.AssetExecutionContext, bars: pd.DataFrame) -> dg.Output[LabeledFeatures]:
        crypto, fold_id = crypto_and_fold(context)
        try:
            labeled = steps.features(cfg, crypto, sweep.fold(fold_id), bars)
        except CvnError as exc:
            raise dg.Failure(description=str(exc)) from None
        return dg.Output(
            labeled,
            # The content, so new bars after the fold leave everything downstream fresh.
            data_version=dg.DataVersion(frame_digest(labeled.frame)[:16]),
            metadata={
                "rows": len(labeled.frame),
                "n_features": len(labeled.feature_names),
                "feature_hash": labeled.feature_hash,
                "buy_label_share": readable(float(labeled.frame["label"].mean())),
            },
        )

    @dg.asset(
        key=keys.fold_dataset,
        partitions_def=keys.crypto_fold_partitions,
        group_name=keys.group("data"),
        code_version=versions.fold_dataset,
        kinds={"pandas"},
        ins={"labeled": dg.AssetIn(keys.features)},
        description="Train / validation / test rows of the fold, purged; its data version is its content "
        "hash (`data_hash` on every result row).",
    )
    def fold_dataset(context: dg.AssetExecutionContext, labeled: LabeledFeatures) -> dg.Output[FoldDataset]:
        _, fold_id = crypto_and_fold(context)
        try:
            dataset = steps.fold_dataset(sweep.fold(fold_id), labeled)
        except CvnError as exc:
            raise dg.Failure(description=str(exc)) from None
        meta: dict[str, object] = {"data_hash": dataset.data_hash, "feature_hash": dataset.feature_hash}
        for split in SPLITS:
            frame = dataset.split(split)
            start, end = dataset.fold.windows()[split]
            meta[f"{split}_window"] = f"{start} to {end}"
            meta[f"n_{split}"] = len(frame)
            meta[f"{split}_buy_share"] = readable(float(frame["label"].mean()))
        return dg.Output(dataset, data_version=dg.DataVersion(dataset.data_hash), metadata=meta)

    return [ohlcv, features, fold_dataset]
