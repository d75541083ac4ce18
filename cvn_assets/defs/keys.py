"""Asset keys and partition definitions, named in one place."""

from __future__ import annotations

import dagster as dg

from cvn_assets.core.sweep_plan import SweepPlan

OHLCV = dg.AssetKey("ohlcv")
FEATURES = dg.AssetKey("features")
FOLD_DATASET = dg.AssetKey("fold_dataset")
HYPERPARAMETERS = dg.AssetKey("hyperparameters")
COVERAGE_CHECK = dg.AssetCheckKey(HYPERPARAMETERS, "hyperparameters_complete")
FALLBACK_RATE_CHECK = dg.AssetCheckKey(HYPERPARAMETERS, "hpo_fallback_rate")


def model_key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["model", name])


def predictions_key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["predictions", name])


def ensemble_key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["ensemble", name])


def cost_name(cost_bps: int) -> str:
    return f"cost_{cost_bps}bps"


def economics_key(cost_bps: int) -> dg.AssetKey:
    # Cost is an asset-key dimension: Dagster allows two partition dimensions and both are taken.
    return dg.AssetKey(["economics", cost_name(cost_bps)])


def baselines_key(cost_bps: int) -> dg.AssetKey:
    return dg.AssetKey(["baselines", cost_name(cost_bps)])


def crypto_partitions(plan: SweepPlan) -> dg.StaticPartitionsDefinition:
    return dg.StaticPartitionsDefinition(plan.config.cryptos)


def crypto_fold_partitions(plan: SweepPlan) -> dg.MultiPartitionsDefinition:
    return dg.MultiPartitionsDefinition(
        {"crypto": crypto_partitions(plan), "fold": dg.StaticPartitionsDefinition(plan.fold_ids)}
    )


def crypto_and_fold(context: dg.AssetExecutionContext) -> tuple[str, str]:
    key = context.partition_key
    assert isinstance(key, dg.MultiPartitionKey)
    return key.keys_by_dimension["crypto"], key.keys_by_dimension["fold"]
