"""model/<name> and predictions/<name> for every configured model, ensemble/<name> for every active
ensemble: all built from the registries, all through the harness's single entry points."""

from collections.abc import Sequence
from typing import Any

import dagster as dg

from cvn_assets import steps
from cvn_assets.core.datasets import FoldDataset
from cvn_assets.core.secrets import scrub, secret_values
from cvn_assets.defs.hyperparam_assets import FALLBACKS_METADATA
from cvn_assets.defs.metadata import readable, readable_values
from cvn_assets.defs.resources import ResultsStore
from cvn_assets.defs.sweep import Sweep, model_threads
from cvn_assets.defs.tracking import MlflowTracking, TrackedRun
from cvn_assets.defs.tracking_records import log_ensemble, log_model
from cvn_assets.harness.contracts import TrainedArtifact
from cvn_assets.harness.events import Event
from cvn_assets.harness.predictions import VariantPredictions
from cvn_assets.harness.registry import META_LABEL, get_ensemble
from cvn_assets.hyperparams.model_params import ModelHyperparams


def events_metadata(events: Sequence[Event]) -> dict[str, dg.MetadataValue]:
    """Every event as structured metadata; the same keys for every model."""
    return {f"event/{e.name}": dg.MetadataValue.json(readable_values(e.fields)) for e in events}


# The kind badge each registered library shows in the UI; a plugin model shows "python".
MODEL_KINDS = {"xgboost": "xgboost", "lightgbm": "lightgbm", "catboost": "catboost", "logreg": "sklearn"}


def _model_assets(sweep: Sweep, name: str) -> list[dg.AssetsDefinition]:
    cfg, keys = sweep.config, sweep.keys
    partitions = keys.crypto_fold_partitions

    @dg.asset(
        key=keys.model(name),
        partitions_def=partitions,
        group_name=keys.group("models"),
        code_version=sweep.code_versions.model(name),
        kinds={MODEL_KINDS.get(name, "python")},
        ins={"dataset": dg.AssetIn(keys.fold_dataset), "hyperparameters": dg.AssetIn(keys.hyperparameters)},
        description=f"{name} trained through the one harness entry point, train_one: with its resolved "
        "hyperparameters, or with the winner of an Optuna search over its resolved ranges.",
    )
    def model(
        context: dg.AssetExecutionContext,
        dataset: FoldDataset,
        hyperparameters: dict[str, ModelHyperparams],
        results_store: ResultsStore,
        mlflow: MlflowTracking,
    ) -> TrainedArtifact:
        hp = hyperparameters[name]
        mlflow.ensure_ready(sweep.name)  # a tracking store that is down fails the step before training
        artifact = steps.train_model(
            cfg,
            name,
            dataset,
            hp,
            results_store.database_url,
            meta=hyperparameters.get(META_LABEL),
            threads=model_threads(cfg, context.instance),
            on_wait=context.log.warning,
        )
        for event in artifact.events:
            context.log.info(f"{event.name} {event.fields}")
        search = artifact.search
        tracked = log_model(context, mlflow, sweep, artifact)
        context.add_output_metadata(
            {
                "model_hyperparams": dg.MetadataValue.json(scrub(artifact.hyperparams, secret_values())),
                "hpo_mode": "search" if hp.search else "fixed",
                FALLBACKS_METADATA: len(hp.fallbacks),
                **({"hpo_search": dg.MetadataValue.json(search.as_dict())} if search else {}),
                "threshold": readable(artifact.threshold),
                "threshold_source": artifact.threshold_source,
                "val_metrics": dg.MetadataValue.json(readable_values(artifact.val_metrics.as_dict())),
                "test_metrics": dg.MetadataValue.json(readable_values(artifact.test_metrics.as_dict())),
                **events_metadata(artifact.events),
                **tracked_metadata(tracked),
            }
        )
        return artifact

    @dg.asset(
        key=keys.predictions(name),
        partitions_def=partitions,
        group_name=keys.group("models"),
        code_version=sweep.code_versions.predictions(name),
        kinds={"pandas"},
        ins={"artifact": dg.AssetIn(keys.model(name)), "dataset": dg.AssetIn(keys.fold_dataset)},
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
        "threshold": readable(preds.threshold),
        "mean_p_val": readable(float(preds.validation.mean())),
        "mean_p_test": readable(float(preds.test.mean())),
        "signals_val": int((preds.validation >= preds.threshold).sum()),
        "signals_test": int((preds.test >= preds.threshold).sum()),
    }


def tracked_metadata(tracked: TrackedRun | None) -> dict[str, Any]:
    """The MLflow run a materialization logged (nothing when tracking is off)."""
    return tracked.metadata() if tracked else {}


def _ensemble_asset(sweep: Sweep, name: str) -> dg.AssetsDefinition:
    cfg, keys = sweep.config, sweep.keys
    spec = get_ensemble(name)
    base_models = spec.base_models

    @dg.asset(
        key=keys.ensemble(name),
        partitions_def=keys.crypto_fold_partitions,
        group_name=keys.group("ensembles"),
        code_version=sweep.code_versions.ensemble(name),
        kinds={"python"},
        ins={"dataset": dg.AssetIn(keys.fold_dataset), "hyperparameters": dg.AssetIn(keys.hyperparameters)}
        | {f"base__{m}": dg.AssetIn(keys.predictions(m)) for m in base_models},
        description=f"{name} over the stored predictions of {', '.join(base_models)} (no base model is retrained).",
    )
    def ensemble(
        context: dg.AssetExecutionContext,
        dataset: FoldDataset,
        hyperparameters: dict[str, ModelHyperparams],
        mlflow: MlflowTracking,
        **base: VariantPredictions,
    ) -> VariantPredictions:
        mlflow.ensure_ready(sweep.name)
        preds = steps.ensemble(
            cfg,
            name,
            dataset,
            {m: base[f"base__{m}"] for m in base_models},
            hyperparameters[name],
            threads=model_threads(cfg, context.instance),
        )
        for event in preds.events:
            context.log.info(f"{event.name} {event.fields}")
        tracked = log_ensemble(context, mlflow, sweep, preds, base_models)
        context.add_output_metadata(
            {
                **_predictions_metadata(preds),
                "ensemble_params": dg.MetadataValue.json(scrub(preds.hyperparams, secret_values())),
                **events_metadata(preds.events),
                **tracked_metadata(tracked),
            }
        )
        return preds

    return ensemble


def build_model_assets(sweep: Sweep) -> list[dg.AssetsDefinition]:
    models = [a for name in steps.model_names(sweep.config) for a in _model_assets(sweep, name)]
    return models + [_ensemble_asset(sweep, name) for name in steps.ensemble_names(sweep.config)]


def variant_keys(sweep: Sweep) -> dict[str, dg.AssetKey]:
    """Every variant scored in economics: models' predictions, then ensembles."""
    keys = sweep.keys
    return {m: keys.predictions(m) for m in steps.model_names(sweep.config)} | {
        e: keys.ensemble(e) for e in steps.ensemble_names(sweep.config)
    }
