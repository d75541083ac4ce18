"""model/<name> and predictions/<name> for every configured model, ensemble/<name> for every active
ensemble: all built from the registries, all through the harness's single entry points."""

from collections.abc import Sequence
from typing import Any

import dagster as dg

from cvn_assets import steps
from cvn_assets.core.config import BASE_FEATURE_SET
from cvn_assets.core.datasets import FoldDataset
from cvn_assets.core.secrets import scrub, secret_values
from cvn_assets.core.variants import SEPARATOR
from cvn_assets.defs.capture import Capture
from cvn_assets.defs.hyperparam_assets import FALLBACKS_METADATA
from cvn_assets.defs.io_manager import ArtifactIOManager
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


def _on_set(feature_set: str) -> str:
    return "" if feature_set == BASE_FEATURE_SET else f" on feature set {feature_set}"


def _model_assets(sweep: Sweep, name: str, feature_set: str) -> list[dg.AssetsDefinition]:
    cfg, keys = sweep.config, sweep.keys
    partitions = keys.crypto_fold_partitions
    model_key, predictions_key = keys.model(name, feature_set), keys.predictions(name, feature_set)

    @dg.asset(
        key=model_key,
        partitions_def=partitions,
        group_name=keys.group("models"),
        code_version=sweep.code_versions.model(name, feature_set),
        kinds={MODEL_KINDS.get(name, "python")},
        ins={"dataset": dg.AssetIn(keys.fold_dataset), "hyperparameters": dg.AssetIn(keys.hyperparameters)},
        description=f"{name}{_on_set(feature_set)}, trained through the one harness entry point, "
        "train_one: with its resolved "
        "hyperparameters, or with the winner of an Optuna search over its resolved ranges.",
    )
    def model(
        context: dg.AssetExecutionContext,
        dataset: FoldDataset,
        hyperparameters: dict[str, ModelHyperparams],
        results_store: ResultsStore,
        mlflow: MlflowTracking,
        io_manager: dg.ResourceParam[ArtifactIOManager],
    ) -> dg.Output:  # a TrainedArtifact, or `Reused` in an audit
        upstream = {keys.fold_dataset: context.partition_key, keys.hyperparameters: context.partition_key}
        capture = Capture.of(context, io_manager, upstream)
        reused = capture.reuse_if_current()
        if reused is not None:  # an audit run, and this cell's model is current: not trained again
            return reused
        hp = hyperparameters[name]
        mlflow.ensure_ready(sweep.name)  # a tracking store that is down fails the step before training
        artifact = steps.train_model(
            cfg,
            name,
            dataset.for_feature_set(feature_set),
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
                "feature_set": feature_set,
                "feature_hash": artifact.version.feature_hash,
                **(
                    {"event_filter": dg.MetadataValue.json(readable_values(artifact.event_filter.as_dict()))}
                    if artifact.event_filter
                    else {}
                ),
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
                **capture.metadata,
            }
        )
        return dg.Output(artifact)

    @dg.asset(
        key=predictions_key,
        partitions_def=partitions,
        group_name=keys.group("models"),
        code_version=sweep.code_versions.predictions(name, feature_set),
        kinds={"pandas"},
        ins={"artifact": dg.AssetIn(model_key), "dataset": dg.AssetIn(keys.fold_dataset)},
        description=f"Calibrated validation and out-of-sample probabilities of {name}{_on_set(feature_set)}.",
    )
    def predictions(
        context: dg.AssetExecutionContext, artifact: TrainedArtifact, dataset: FoldDataset
    ) -> VariantPredictions:
        preds = steps.predictions(artifact, dataset.for_feature_set(feature_set))
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


def _ensemble_asset(sweep: Sweep, name: str, feature_set: str) -> dg.AssetsDefinition:
    cfg, keys = sweep.config, sweep.keys
    spec = get_ensemble(name)
    base_models = spec.base_models

    @dg.asset(
        key=keys.ensemble(name, feature_set),
        partitions_def=keys.crypto_fold_partitions,
        group_name=keys.group("ensembles"),
        code_version=sweep.code_versions.ensemble(name, feature_set),
        kinds={"python"},
        ins={"dataset": dg.AssetIn(keys.fold_dataset), "hyperparameters": dg.AssetIn(keys.hyperparameters)}
        | {f"base__{m}": dg.AssetIn(keys.predictions(m, feature_set)) for m in base_models},
        description=f"{name} over the stored predictions of {', '.join(base_models)}{_on_set(feature_set)} "
        "(no base model is retrained).",
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
            dataset.for_feature_set(feature_set),
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
    built: list[dg.AssetsDefinition] = []
    for v in steps.variants(sweep.config):
        if v.is_ensemble:
            built.append(_ensemble_asset(sweep, v.name, v.feature_set))
        else:
            built += _model_assets(sweep, v.name, v.feature_set)
    return built


def variant_keys(sweep: Sweep) -> dict[str, dg.AssetKey]:
    """Every variant scored in economics, by its label: models' predictions, then ensembles."""
    keys = sweep.keys
    return {
        v.label: (keys.ensemble if v.is_ensemble else keys.predictions)(v.name, v.feature_set)
        for v in steps.variants(sweep.config)
    }


def input_name(label: str) -> str:
    """A variant's input name in the assets reading every variant (`xgboost@btc_overlay` is no identifier)."""
    return "pred__" + label.replace(SEPARATOR, "__on__")
