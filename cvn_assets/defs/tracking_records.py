"""What one MLflow run holds, built from a partition's model or ensemble: its tags (the sweep, the cell,
its data and the Dagster run), parameters with secrets masked, validation and test metrics named as the
results store's columns, and its files (the native model file, the calibrator, a description and the
sweep's config). `log_model` and `log_ensemble` are what the assets call; `defs/tracking.py` is the store.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg

from cvn_assets.core.config import BASE_FEATURE_SET
from cvn_assets.core.secrets import flatten, scrub, scrub_text, secret_values
from cvn_assets.core.variants import variant_label
from cvn_assets.defs.alert_channels import AlertChannels
from cvn_assets.defs.keys import crypto_and_fold
from cvn_assets.defs.sweep import Sweep
from cvn_assets.defs.tracking import (
    ENSEMBLE,
    MAX_PARAM_LENGTH,
    MODEL,
    MlflowTracking,
    PartitionTags,
    RunRecord,
    TrackedRun,
)
from cvn_assets.harness.contracts import SplitMetrics, TrainedArtifact
from cvn_assets.harness.native_files import adapter_file, adapter_state, skops_file
from cvn_assets.harness.predictions import VariantPredictions
from cvn_assets.version import code_version


@dataclass(frozen=True)
class Origin:
    """Where a run comes from: the sweep, the partition and the Dagster run."""

    sweep: str
    run_id: str  # the sweep's identity: name + config fingerprint
    crypto: str
    fold_id: str
    dagster_run_id: str
    asset: str
    partition: str
    run_url: str | None

    @classmethod
    def of(cls, context: dg.AssetExecutionContext, sweep: Sweep) -> Origin:
        crypto, fold_id = crypto_and_fold(context)
        return cls(
            sweep=sweep.name,
            run_id=sweep.config.run_id,
            crypto=crypto,
            fold_id=fold_id,
            dagster_run_id=context.run_id,
            asset=context.asset_key.to_user_string(),
            partition=str(context.partition_key),
            run_url=AlertChannels.from_env().run_url(context.run_id),
        )

    def tags(
        self,
        variant: str,
        kind: str,
        feature_hash: str,
        data_hash: str,
        code: str | None = None,
        feature_set: str = BASE_FEATURE_SET,
    ) -> dict[str, str]:
        link = f"[{self.dagster_run_id}]({self.run_url})" if self.run_url else self.dagster_run_id
        return {
            "cvn/sweep": self.sweep,
            "cvn/run_id": self.run_id,
            "cvn/variant": variant_label(variant, feature_set),  # as the report names it
            "cvn/feature_set": feature_set,
            "cvn/kind": kind,
            "cvn/crypto": self.crypto,
            "cvn/fold": self.fold_id,
            "cvn/feature_hash": feature_hash,
            "cvn/data_hash": data_hash,
            "cvn/code_version": code or code_version(),
            "dagster/run_id": self.dagster_run_id,
            "dagster/asset": self.asset,
            "dagster/partition": self.partition,
            **({"dagster/run_url": self.run_url} if self.run_url else {}),
            "mlflow.note.content": f"{self.asset} [{self.partition}], Dagster run {link}",
        }


def split_metrics(val: SplitMetrics, test: SplitMetrics) -> dict[str, float | None]:
    """Named as the results store's columns, so the two join by name."""
    return {f"{k}_val": v for k, v in val.as_dict().items()} | {
        f"{k}_test": v for k, v in test.as_dict().items()
    }


def model_record(origin: Origin, sweep: Sweep, artifact: TrainedArtifact) -> RunRecord:
    secrets = secret_values()
    hyperparams = scrub(artifact.hyperparams, secrets)
    native = adapter_file(artifact.adapter)
    search = artifact.search.as_dict() if artifact.search else None
    described = {
        "model": artifact.model_name,
        "native_file": native.describe() | {"sha256": hashlib.sha256(native.data).hexdigest()},
        "threshold": artifact.threshold,
        "threshold_source": artifact.threshold_source,
        "calibration": artifact.calibrator.method,
        "feature_names": list(artifact.feature_names),
        "hyperparams": hyperparams,
        "adapter_state": adapter_state(artifact.adapter),
        "dataset_shape": artifact.shape.as_dict(),
        "val_metrics": artifact.val_metrics.as_dict(),
        "test_metrics": artifact.test_metrics.as_dict(),
        "hpo_search": search,
    }
    files = {
        native.name: native.data,
        "model.json": _json(scrub(described, secrets)),
        "calibrator.skops": skops_file(artifact.calibrator.model, "calibrator.skops").data,
        "sweep_config.json": _json(scrub(sweep.config.model_dump(mode="json"), secrets)),
    }
    if artifact.meta_model is not None:
        files["meta_model.skops"] = skops_file(artifact.meta_model.model, "meta_model.skops").data
    version = artifact.version
    tags = origin.tags(
        artifact.model_name,
        MODEL,
        version.feature_hash,
        version.data_hash,
        version.code_version,
        version.feature_set,
    ) | {
        "cvn/library": native.library,
        "cvn/library_version": native.library_version,
        "cvn/native_file": native.name,
        **(
            {"optuna/study": search["study_name"], "optuna/trial_id": str(search["trial_id"])}
            if search
            else {}
        ),
    }
    metrics = split_metrics(artifact.val_metrics, artifact.test_metrics) | {
        "threshold": artifact.threshold,
        "training_time_sec": artifact.training_time_sec,
        **artifact.shape.as_dict(),
        "best_iteration": artifact.best_iteration,
        **(
            {f"hpo_{k}": search[k] for k in ("best_value", "n_complete", "n_pruned", "search_time_sec")}
            if search
            else {}
        ),
    }
    params = hyperparams | {
        "cvn.hpo_mode": "search" if search else "fixed",
        "cvn.threshold_source": artifact.threshold_source,
        "cvn.calibration": artifact.calibrator.method,
        "cvn.timeframe": sweep.config.timeframe,
    }
    return _record(origin, tags["cvn/variant"], MODEL, tags, params, metrics, files, secrets)


def ensemble_record(
    origin: Origin,
    sweep: Sweep,
    preds: VariantPredictions,
    base_models: Sequence[str],
    base_runs: Mapping[str, str],
) -> RunRecord:
    secrets = secret_values()
    fitted = scrub(preds.hyperparams, secrets)
    described = {
        "ensemble": preds.variant,
        "base_models": list(base_models),
        "base_runs": dict(base_runs),  # the MLflow runs of the base models' predictions it combined
        "fitted_params": fitted,
        "threshold": preds.threshold,
        "feature_hash": preds.feature_hash,
        "data_hash": preds.data_hash,
        "val_metrics": preds.val_metrics.as_dict(),
        "test_metrics": preds.test_metrics.as_dict(),
    }
    files = {
        "ensemble.json": _json(scrub(described, secrets)),
        "sweep_config.json": _json(scrub(sweep.config.model_dump(mode="json"), secrets)),
    }
    tags = origin.tags(
        preds.variant, ENSEMBLE, preds.feature_hash, preds.data_hash, feature_set=preds.feature_set
    ) | {"cvn/base_models": ",".join(base_models)}
    metrics = split_metrics(preds.val_metrics, preds.test_metrics) | {"threshold": preds.threshold}
    params = fitted | {"cvn.base_models": ",".join(base_models), "cvn.timeframe": sweep.config.timeframe}
    return _record(origin, preds.label, ENSEMBLE, tags, params, metrics, files, secrets)


def _record(
    origin: Origin,
    variant: str,
    kind: str,
    tags: Mapping[str, str],
    params: Mapping[str, Any],
    metrics: Mapping[str, Any],
    files: dict[str, bytes],
    secrets: frozenset[str],
) -> RunRecord:
    return RunRecord(
        sweep=origin.sweep,
        name=f"{variant} · {origin.crypto} · {origin.fold_id}",
        kind=kind,
        tags={k: scrub_text(str(v), secrets) for k, v in tags.items()},
        params={k: scrub_text(_param(v), secrets)[:MAX_PARAM_LENGTH] for k, v in flatten(params).items()},
        metrics={k: float(v) for k, v in metrics.items() if _finite(v)},
        files=files,
    )


def _param(value: Any) -> str:
    return json.dumps(value) if isinstance(value, list | tuple | dict) else str(value)


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _json(value: Any) -> bytes:
    return json.dumps(value, indent=2, sort_keys=True, default=str).encode()


# -- what the assets call ----------------------------------------------------------------------------------
def log_model(
    context: dg.AssetExecutionContext, tracking: MlflowTracking, sweep: Sweep, artifact: TrainedArtifact
) -> TrackedRun | None:
    if not tracking.enabled:
        return None
    return tracking.log_run(model_record(Origin.of(context, sweep), sweep, artifact))


def log_ensemble(
    context: dg.AssetExecutionContext,
    tracking: MlflowTracking,
    sweep: Sweep,
    preds: VariantPredictions,
    base_models: Sequence[str],
) -> TrackedRun | None:
    if not tracking.enabled:
        return None
    origin = Origin.of(context, sweep)
    partition = PartitionTags(origin.run_id, origin.crypto, origin.fold_id, preds.data_hash).tags(MODEL)
    key = (tracking.tracking_uri, origin.dagster_run_id, *partition.values(), preds.feature_set, *base_models)
    if key not in _base_runs:
        labels = {variant_label(m, preds.feature_set): m for m in base_models}
        runs = tracking.latest_runs(sweep.name, partition, list(labels))
        _base_runs[key] = {labels[label]: run.info.run_id for label, run in runs.items()}
    return tracking.log_run(ensemble_record(origin, sweep, preds, base_models, _base_runs[key]))


# The ensembles of one Dagster run share their base models' runs: searched once per run and partition.
_base_runs: dict[tuple[str, ...], dict[str, str]] = {}
