"""model/<name> and predictions/<name> for every model the sweep config names (all through `train_one`)."""

import dagster as dg

from cvn_assets import steps
from cvn_assets.core.datasets import FoldDataset
from cvn_assets.core.errors import ConfigError
from cvn_assets.core.sweep_plan import SweepPlan
from cvn_assets.defs.keys import FOLD_DATASET, crypto_fold_partitions, model_key, predictions_key
from cvn_assets.harness.predictions import VariantPredictions
from cvn_assets.harness.registry import get_model
from cvn_assets.harness.train import TrainedArtifact
from cvn_assets.version import code_version


def _model_assets(plan: SweepPlan, name: str) -> list[dg.AssetsDefinition]:
    partitions = crypto_fold_partitions(plan)

    @dg.asset(
        key=model_key(name),
        partitions_def=partitions,
        group_name="models",
        code_version=code_version(),
        ins={"dataset": dg.AssetIn(FOLD_DATASET)},
        description=f"{name} trained on the fold's train split through the one harness entry point train_one.",
    )
    def model(context: dg.AssetExecutionContext, dataset: FoldDataset) -> TrainedArtifact:
        artifact = steps.train_model(plan, name, dataset)
        context.add_output_metadata(
            {
                "model_hyperparams": dg.MetadataValue.json(artifact.hyperparams),
                "training_time_sec": artifact.training_time_sec,
                "best_iteration": artifact.best_iteration if artifact.best_iteration is not None else -1,
                "class_balance": artifact.class_balance,
                "threshold": artifact.threshold,
                "dataset_shape": dg.MetadataValue.json(artifact.dataset_shape),
                "feature_hash": artifact.feature_hash,
                "data_hash": artifact.data_hash,
            }
        )
        return artifact

    @dg.asset(
        key=predictions_key(name),
        partitions_def=partitions,
        group_name="models",
        code_version=code_version(),
        ins={"artifact": dg.AssetIn(model_key(name)), "dataset": dg.AssetIn(FOLD_DATASET)},
        description=f"Validation and out-of-sample probabilities of {name}.",
    )
    def predictions(
        context: dg.AssetExecutionContext, artifact: TrainedArtifact, dataset: FoldDataset
    ) -> VariantPredictions:
        preds = steps.predictions(artifact, dataset)
        context.add_output_metadata(
            {
                "mean_p_val": float(preds.validation.mean()),
                "mean_p_test": float(preds.test.mean()),
                "signals_test": int((preds.test >= preds.threshold).sum()),
            }
        )
        return preds

    return [model, predictions]


def build_model_assets(plan: SweepPlan) -> list[dg.AssetsDefinition]:
    for name in plan.config.models:
        try:
            get_model(name)
        except KeyError as exc:  # fail at load, naming the config key, not at the first materialization
            raise ConfigError(f"models.{name}", str(exc.args[0])) from None
    return [a for name in plan.config.models for a in _model_assets(plan, name)]
