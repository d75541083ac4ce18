"""ohlcv[crypto] -> features/<set>[crypto x fold] (one per feature set) -> fold_dataset[crypto x fold], for
one sweep."""

import warnings

import dagster as dg
import pandas as pd

from cvn_assets import steps
from cvn_assets.core.datasets import SPLITS, FeatureFrame
from cvn_assets.core.errors import CvnError
from cvn_assets.core.hashing import frame_digest
from cvn_assets.defs.capture import Capture
from cvn_assets.defs.io_manager import ArtifactIOManager
from cvn_assets.defs.keys import crypto_and_fold
from cvn_assets.defs.metadata import readable, readable_values
from cvn_assets.defs.sweep import Sweep
from cvn_assets.features.registry import get_feature_set

# What the `ohlcv` materialization records, and the fold sensor reads to plan folds without the data.
FIRST_BAR, LAST_BAR = "first_bar", "last_bar"
REJECTED = "rejected"  # on the observation a failed ohlcv partition records: why its data was rejected


def _crypto_of() -> dg.MultiToSingleDimensionPartitionMapping:
    # Beta in Dagster 1.13 and the one mapping that says "every fold of a crypto reads that crypto's bars".
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        return dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name="crypto")


def _features_asset(sweep: Sweep, name: str) -> dg.AssetsDefinition:
    """features/<name>: one feature set's columns over the fold's span, from the crypto's bars and those
    of the cryptos the set requires (their stored ohlcv partitions, whichever crypto this partition is).

    Dagster gives an asset one input per upstream asset, with one partition mapping, so the required
    cryptos' bars cannot be a second input from `ohlcv`: they are read through the same IO manager
    (`ArtifactIOManager.load_partition`), and a partition whose required bars are not stored fails naming
    the ohlcv partition to materialize. Their lineage is in the materialization's metadata."""
    cfg, keys = sweep.config, sweep.keys
    spec = get_feature_set(name)
    required = sorted({c for crypto in cfg.cryptos for c in spec.required_for(crypto)})
    needs = f" and the bars of {', '.join(required)}" if required else ""

    @dg.asset(
        key=keys.features(name),
        partitions_def=keys.crypto_fold_partitions,
        group_name=keys.group("data"),
        code_version=sweep.code_versions.features(name),
        kinds={"pandas"},
        ins={"bars": dg.AssetIn(keys.ohlcv, partition_mapping=_crypto_of())},
        description=f"Feature set {name}: past-only features of the crypto{needs}, over the fold's span.",
    )
    def features(
        context: dg.AssetExecutionContext, bars: pd.DataFrame, io_manager: dg.ResourceParam[ArtifactIOManager]
    ) -> dg.Output:  # a FeatureFrame, or `Reused` in an audit (hence no type to check)
        crypto, fold_id = crypto_and_fold(context)
        capture = Capture.of(context, io_manager, {keys.ohlcv: crypto})
        reused = capture.reuse_if_current()
        if reused is not None:
            return reused
        needed = spec.required_for(crypto)
        try:
            others = {c: io_manager.load_partition(keys.ohlcv, c) for c in needed}
            frame = steps.features(cfg, name, crypto, sweep.fold(fold_id), bars, others)
        except CvnError as exc:
            raise dg.Failure(description=str(exc)) from None
        return dg.Output(
            frame,
            # The content, so new bars after the fold leave everything downstream fresh.
            data_version=dg.DataVersion(frame_digest(frame.frame)[:16]),
            metadata={
                "rows": len(frame.frame),
                "n_features": len(frame.feature_names),
                "feature_hash": frame.feature_hash,
                "params": dg.MetadataValue.json(steps.feature_set_params(cfg, name)),
                **({"requires": ", ".join(f"ohlcv[{c}]" for c in needed)} if needed else {}),
                **capture.metadata,
            },
        )

    return features


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

    feature_sets = steps.feature_set_names(cfg)
    features = [_features_asset(sweep, name) for name in feature_sets]

    @dg.asset(
        key=keys.fold_dataset,
        partitions_def=keys.crypto_fold_partitions,
        group_name=keys.group("data"),
        code_version=versions.fold_dataset,
        kinds={"pandas"},
        ins={"bars": dg.AssetIn(keys.ohlcv, partition_mapping=_crypto_of())}
        | {f"features__{name}": dg.AssetIn(keys.features(name)) for name in feature_sets},
        description="Train / validation / test rows of the fold, purged, with triple-barrier labels and every "
        "feature set's columns: one basis for every variant and baseline of the cell. Its data version "
        "is its content hash (`data_hash` on every result row).",
    )
    def fold_dataset(
        context: dg.AssetExecutionContext,
        bars: pd.DataFrame,
        io_manager: dg.ResourceParam[ArtifactIOManager],
        **features: FeatureFrame,
    ) -> dg.Output:  # a FoldDataset, or `Reused` in an audit
        crypto, fold_id = crypto_and_fold(context)
        upstream = {keys.ohlcv: crypto, **{keys.features(n): context.partition_key for n in feature_sets}}
        capture = Capture.of(context, io_manager, upstream)
        reused = capture.reuse_if_current()
        if reused is not None:
            return reused
        try:
            frames = [features[f"features__{name}"] for name in feature_sets]
            dataset = steps.fold_dataset(cfg, crypto, sweep.fold(fold_id), bars, frames)
        except CvnError as exc:
            raise dg.Failure(description=str(exc)) from None
        meta: dict[str, object] = {
            **capture.metadata,
            "data_hash": dataset.data_hash,
            "feature_sets": ", ".join(c.feature_set for c in dataset.feature_sets),
        }
        if dataset.event_filter is not None:  # the CUSUM filter's fit: its sigma and threshold on train
            meta["event_filter"] = dg.MetadataValue.json(readable_values(dataset.event_filter.as_dict()))
            meta["event_filter_threshold"] = readable(dataset.event_filter.threshold)
        for split in SPLITS:
            frame = dataset.split(split)
            start, end = dataset.fold.windows()[split]
            meta[f"{split}_window"] = f"{start} to {end}"
            meta[f"n_{split}"] = len(frame)
            meta[f"{split}_buy_share"] = readable(float(dataset.xy(split)[1].mean()))
            if dataset.event_filter is not None:
                meta[f"{split}_events"] = int(frame["event"].sum())
        return dg.Output(dataset, data_version=dg.DataVersion(dataset.data_hash), metadata=meta)

    return [ohlcv, *features, fold_dataset]
