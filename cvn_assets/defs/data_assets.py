"""ohlcv[crypto] -> features[crypto x fold] -> fold_dataset[crypto x fold]."""

import warnings

import dagster as dg
import pandas as pd

from cvn_assets import steps
from cvn_assets.core.datasets import SPLITS, FoldDataset, LabeledFeatures
from cvn_assets.core.sweep_plan import SweepPlan
from cvn_assets.defs.keys import (
    FEATURES,
    FOLD_DATASET,
    OHLCV,
    crypto_and_fold,
    crypto_fold_partitions,
    crypto_partitions,
)
from cvn_assets.version import code_version


def _crypto_of() -> dg.MultiToSingleDimensionPartitionMapping:
    # Beta in Dagster 1.13 and the one mapping that says "every fold of a crypto reads that crypto's bars".
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        return dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name="crypto")


def build_data_assets(plan: SweepPlan) -> list[dg.AssetsDefinition]:
    by_crypto_fold = crypto_fold_partitions(plan)

    @dg.asset(
        key=OHLCV,
        partitions_def=crypto_partitions(plan),
        group_name="data",
        code_version=code_version(),
        description="Validated OHLCV bars of one crypto. Rejected data fails here, naming the file and row.",
    )
    def ohlcv(context: dg.AssetExecutionContext) -> pd.DataFrame:
        crypto = context.partition_key
        bars = steps.ohlcv(plan, crypto)
        source = plan.config.universe[crypto]
        context.add_output_metadata(
            {
                "source": getattr(source, "path", source.kind),
                "rows": len(bars),
                "first_bar": str(bars.index[0]),
                "last_bar": str(bars.index[-1]),
            }
        )
        return bars

    @dg.asset(
        key=FEATURES,
        partitions_def=by_crypto_fold,
        group_name="data",
        code_version=code_version(),
        ins={
            "bars": dg.AssetIn(
                OHLCV,
                partition_mapping=_crypto_of(),
            )
        },
        description="Past-only features and triple-barrier labels over the fold's span.",
    )
    def features(context: dg.AssetExecutionContext, bars: pd.DataFrame) -> LabeledFeatures:
        crypto, fold_id = crypto_and_fold(context)
        labeled = steps.features(plan, crypto, fold_id, bars)
        context.add_output_metadata(
            {
                "rows": len(labeled.frame),
                "n_features": len(labeled.feature_names),
                "feature_hash": labeled.feature_hash,
                "buy_label_share": float(labeled.frame["label"].mean()),
            }
        )
        return labeled

    @dg.asset(
        key=FOLD_DATASET,
        partitions_def=by_crypto_fold,
        group_name="data",
        code_version=code_version(),
        ins={"labeled": dg.AssetIn(FEATURES)},
        description="Train / validation / test rows of the fold, purged, with a canonical content hash.",
    )
    def fold_dataset(context: dg.AssetExecutionContext, labeled: LabeledFeatures) -> FoldDataset:
        _, fold_id = crypto_and_fold(context)
        dataset = steps.fold_dataset(plan, fold_id, labeled)
        meta: dict[str, object] = {"data_hash": dataset.data_hash, "feature_hash": dataset.feature_hash}
        for split in SPLITS:
            frame = dataset.split(split)
            start, end = dataset.fold.windows()[split]
            meta[f"{split}_window"] = f"{start} to {end}"
            meta[f"n_{split}"] = len(frame)
            meta[f"{split}_buy_share"] = float(frame["label"].mean())
        context.add_output_metadata(meta)
        return dataset

    return [ohlcv, features, fold_dataset]
