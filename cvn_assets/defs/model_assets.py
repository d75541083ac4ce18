"""model/<name> and predictions/<name> for every configured model, ensemble/<name> for every active
ensemble: all built from the registries, all through the harness's single entry points."""

from collections.abc import Sequence

import dagster as dg

from cvn_assets import steps
from cvn_assets.core.datasets import FoldDataset
from cvn_assets.core.sweep_plan import SweepPlan
from cvn_assets.defs.hyperparam_assets import FALLBACKS_METADATA
from cvn_assets.defs.keys import (
    FOLD_DATASET,
    HYPERPARAMETERS,
    crypto_fold_partitions,
    ensemble_key,
    model_key,
    predictions_key,
)
from cvn_assets.defs.resources import ResultsStore
from cvn_assets.harness.contracts import TrainedArtifact
from cvn_assets.harness.events import Event
from cvn_assets.harness.predictions import VariantPredictions
from cvn_assets.harness.registry import META_LABEL, get_ensemble
from cvn_assets.hyperparams.model_params import ModelHyperparams
from cvn_assets.version import code_version


def events_metadata(events: Sequence[Event]) -> dict[str, dg.MetadataValue]:
    """Every event as structured metadata; the same keys for every model."""
    return {f"event/{e.name}": dg.MetadataValue.json(e.fields) for e in events}


def _model_assets(plan: SweepPlan, name: str) -> list[dg.AssetsDefinition]:
    partitions = crypto_fold_partitions(plan)

    @dg.asset(
        key=model_key(name),
        partitions_def=partitions,
        group_name="models",
        code_version=code_version(),
        ins={"dataset": dg.AssetIn(FOLD_DATASET), "hyperparameters": dg.AssetIn(HYPERPARAMETERS)},
        description=f"{name} trained through the one harness entry point, train_one: with its resolved "
        "hyperparameters, or with the winner of an Optuna search over its resolved ranges.",
    )
    def model(
        context: dg.AssetExecutionContext,
        dataset: FoldDataset,
        hyperparameters: dict[str, ModelHyperparams],
        results_store: ResultsStore,
    ) -> TrainedArtifact:
        hp = hyperparameters[name]
        artifact = steps.train_model(
            plan, name, dataset, hp, results_store.database_url, meta=hyperparameters.get(META_LABEL)
        )
        for event in artifact.events:
            context.log.info(f"{event.name} {event.fields}")
        search = artifact.search
        context.add_output_metadata(
            {
                "model_hyperparams": dg.MetadataValue.json(artifact.hyperparams),
                "hpo_mode": "search" if hp.search else "fixed",
                FALLBACKS_METADATA: len(hp.fallbacks),
                **({"hpo_search": dg.MetadataValue.json(search.as_dict())} if search else {}),
                "threshold": artifact.threshold,
                "threshold_source": artifact.threshold_source,
                "val_metrics": dg.MetadataValue.json(artifact.val_metrics.as_dict()),
                "test_metrics": dg.MetadataValue.json(artifact.test_metrics.as_dict()),
                **events_metadata(artifact.events),
            }
        )
        return artifact

    @dg.asset(
        key=predictions_key(name),
        partitions_def=partitions,
        group_name="models",
        code_version=code_version(),
        ins={"artifact": dg.AssetIn(model_key(name)), "dataset": dg.AssetIn(FOLD_DATASET)},
        description=f"Calibrated validation and out-of-sample probabilities of {name}.",
    )
    def predictions(
        context: dg.AssetExecutionContext, artifact: TrainedArtifact, dataset: FoldDataset
    ) -> VariantPredictions:
        preds = steps.predictions(artifact, dataset)
        context.add_output_metadata(_predictions_metadata(preds))
        return preds

    return [model, predictions]


def _predictions_metadata(preds: VariantPredictions) -> dict[str, float | int]:
    return {
        "threshold": preds.threshold,
        "mean_p_val": float(preds.validation.mean()),
        "mean_p_test": float(preds.test.mean()),
        "signals_val": int((preds.validation >= preds.threshold).sum()),
        "signals_test": int((preds.test >= preds.threshold).sum()),
    }


def _ensemble_asset(plan: SweepPlan, name: str) -> dg.AssetsDefinition:
    base_models = get_ensemble(name).base_models

    @dg.asset(
        key=ensemble_key(name),
        partitions_def=crypto_fold_partitions(plan),
        group_name="ensembles",
        code_version=code_version(),
        ins={"dataset": dg.AssetIn(FOLD_DATASET), "hyperparameters": dg.AssetIn(HYPERPARAMETERS)}
        | {f"base__{m}": dg.AssetIn(predictions_key(m)) for m in base_models},
        description=f"{name} over the stored predictions of {', '.join(base_models)} (no base model is retrained).",
    )
    def ensemble(
        context: dg.AssetExecutionContext,
        dataset: FoldDataset,
        hyperparameters: dict[str, ModelHyperparams],
        **base: VariantPredictions,
    ) -> VariantPredictions:
        preds = steps.ensemble(
            plan, name, dataset, {m: base[f"base__{m}"] for m in base_models}, hyperparameters[name]
        )
        for event in preds.events:
            context.log.info(f"{event.name} {event.fields}")
        context.add_output_metadata(
            {
                **_predictions_metadata(preds),
                "ensemble_params": dg.MetadataValue.json(preds.hyperparams),
                **events_metadata(preds.events),
            }
        )
        return preds

    return ensemble


def build_model_assets(plan: SweepPlan) -> list[dg.AssetsDefinition]:
    models = [a for name in steps.model_names(plan) for a in _model_assets(plan, name)]
    return models + [_ensemble_asset(plan, name) for name in steps.ensemble_names(plan)]


def variant_keys(plan: SweepPlan) -> dict[str, dg.AssetKey]:
    """Every variant scored in economics: models' predictions, then ensembles."""
    return {m: predictions_key(m) for m in steps.model_names(plan)} | {
        e: ensemble_key(e) for e in steps.ensemble_names(plan)
    }
