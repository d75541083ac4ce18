"""How each value an asset returns is stored: a folder with a manifest (`artifact.json`: the kind, the small
structured fields, the library versions that wrote it) beside its data files.

| value                       | files                                                               |
|-----------------------------|---------------------------------------------------------------------|
| bars (DataFrame)            | frame.parquet                                                       |
| FeatureFrame                | frame.parquet                                                       |
| FoldDataset                 | train.parquet, validation.parquet, test.parquet                     |
| hyperparameters             | the manifest only                                                   |
| TrainedArtifact             | model.<ubj/txt/cbm/skops>, calibrator.skops, [meta_model.skops], probabilities.parquet |
| VariantPredictions          | probabilities.parquet                                               |

A new kind of value is one codec added here; a value of a type without one is refused, never pickled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from cvn_assets.artifacts.json_values import dumps, from_json_value, loads, to_json_value
from cvn_assets.artifacts.location import ArtifactFolder
from cvn_assets.core.config import BASE_FEATURE_SET
from cvn_assets.core.datasets import SPLITS, FeatureColumns, FeatureFrame, FoldDataset
from cvn_assets.core.event_filter import EventFilterFit
from cvn_assets.core.folds import Fold
from cvn_assets.harness.contracts import (
    DatasetShape,
    FeatureVersion,
    SearchSummary,
    SplitMetrics,
    TrainedArtifact,
)
from cvn_assets.harness.events import Event
from cvn_assets.harness.native_files import (
    NativeFile,
    adapter_file,
    adapter_state,
    library_version,
    load_skops,
    restore_adapter,
    skops_file,
)
from cvn_assets.harness.nodes.calibration import Calibrator
from cvn_assets.harness.nodes.meta_label import MetaLabeler
from cvn_assets.harness.predictions import VariantPredictions
from cvn_assets.harness.registry import get_model
from cvn_assets.hyperparams.model_params import ModelHyperparams

MANIFEST = "artifact.json"
FORMAT_VERSION = 1
FRAME = "frame.parquet"
PROBABILITIES = "probabilities.parquet"
CALIBRATOR = "calibrator.skops"
META_MODEL = "meta_model.skops"


class UnstorableValue(TypeError):
    pass


def written_by() -> dict[str, str]:
    return {name: library_version(name) for name in ("cvn_assets", "pandas", "pyarrow", "numpy")}


@dataclass(frozen=True)
class Codec:
    kind: str
    accepts: Callable[[Any], bool]
    write: Callable[[ArtifactFolder, Any], dict[str, Any]]  # writes the data files, returns manifest fields
    read: Callable[[ArtifactFolder, dict[str, Any]], Any]


# --- frames -----------------------------------------------------------------------------------------------


def _write_frame(folder: ArtifactFolder, frame: pd.DataFrame) -> dict[str, Any]:
    folder.write_frame(FRAME, frame)
    return {"files": [FRAME], "rows": len(frame), "columns": len(frame.columns)}


def _write_features(folder: ArtifactFolder, value: FeatureFrame) -> dict[str, Any]:
    folder.write_frame(FRAME, value.frame)
    fields = {"crypto": value.crypto, "feature_set": value.feature_set, "feature_hash": value.feature_hash}
    return {"files": [FRAME], "rows": len(value.frame), **fields}


def _read_features(folder: ArtifactFolder, manifest: dict[str, Any]) -> FeatureFrame:
    return FeatureFrame(
        manifest["crypto"], manifest["feature_set"], folder.read_frame(FRAME), manifest["feature_hash"]
    )


def _write_dataset(folder: ArtifactFolder, value: FoldDataset) -> dict[str, Any]:
    files = [f"{split}.parquet" for split in SPLITS]
    for split, name in zip(SPLITS, files, strict=True):
        folder.write_frame(name, value.split(split))
    return {
        "files": files,
        "rows": {split: len(value.split(split)) for split in SPLITS},
        "crypto": value.crypto,
        "fold": value.fold,
        "feature_names": value.feature_names,
        "feature_hash": value.feature_hash,
        "data_hash": value.data_hash,
        "feature_sets": value.feature_sets,
        "event_filter": value.event_filter,
    }


def _read_dataset(folder: ArtifactFolder, manifest: dict[str, Any]) -> FoldDataset:
    return FoldDataset(
        crypto=manifest["crypto"],
        fold=from_json_value(Fold, manifest["fold"]),
        feature_names=tuple(manifest["feature_names"]),
        feature_hash=manifest["feature_hash"],
        data_hash=manifest["data_hash"],
        feature_sets=from_json_value(tuple[FeatureColumns, ...], manifest.get("feature_sets", [])),
        event_filter=from_json_value(EventFilterFit | None, manifest.get("event_filter")),
        **{split: folder.read_frame(f"{split}.parquet") for split in SPLITS},
    )


# --- hyperparameters --------------------------------------------------------------------------------------


def _is_hyperparameters(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and bool(value)
        and all(isinstance(v, ModelHyperparams) for v in value.values())
    )


def _write_hyperparameters(folder: ArtifactFolder, value: dict[str, ModelHyperparams]) -> dict[str, Any]:
    return {"files": [], "models": value}


def _read_hyperparameters(folder: ArtifactFolder, manifest: dict[str, Any]) -> dict[str, ModelHyperparams]:
    return {name: from_json_value(ModelHyperparams, hp) for name, hp in manifest["models"].items()}


# --- probabilities (predictions, and the trained model's own) ---------------------------------------------


def _write_probabilities(folder: ArtifactFolder, validation: np.ndarray, test: np.ndarray) -> None:
    splits = np.repeat(["validation", "test"], [len(validation), len(test)])
    p = np.concatenate([np.asarray(validation, dtype=float), np.asarray(test, dtype=float)])
    folder.write_frame(PROBABILITIES, pd.DataFrame({"split": splits, "p_buy": p}))


def _read_probabilities(folder: ArtifactFolder) -> tuple[np.ndarray, np.ndarray]:
    frame = folder.read_frame(PROBABILITIES)
    split = frame["split"].to_numpy()
    p = frame["p_buy"].to_numpy(dtype=float)
    return p[split == "validation"], p[split == "test"]


def _events(data: list[Any]) -> tuple[Event, ...]:
    return from_json_value(tuple[Event, ...], data)


def _write_predictions(folder: ArtifactFolder, value: VariantPredictions) -> dict[str, Any]:
    _write_probabilities(folder, value.validation, value.test)
    fields = {
        k: getattr(value, k)
        for k in (
            "variant",
            "feature_set",
            "optuna_study",
            "optuna_trial_number",
            "threshold",
            "hyperparams",
            "optuna_trial_id",
            "feature_hash",
            "data_hash",
            "val_metrics",
            "test_metrics",
            "events",
        )
    }
    return {"files": [PROBABILITIES], **fields}


def _read_predictions(folder: ArtifactFolder, manifest: dict[str, Any]) -> VariantPredictions:
    validation, test = _read_probabilities(folder)
    return VariantPredictions(
        variant=manifest["variant"],
        feature_set=manifest.get("feature_set", BASE_FEATURE_SET),
        optuna_study=manifest.get("optuna_study"),
        optuna_trial_number=manifest.get("optuna_trial_number"),
        threshold=float(manifest["threshold"]),
        hyperparams=manifest["hyperparams"],
        optuna_trial_id=manifest["optuna_trial_id"],
        feature_hash=manifest["feature_hash"],
        data_hash=manifest["data_hash"],
        validation=validation,
        test=test,
        val_metrics=from_json_value(SplitMetrics, manifest["val_metrics"]),
        test_metrics=from_json_value(SplitMetrics, manifest["test_metrics"]),
        events=_events(manifest["events"]),
    )


# --- trained models ---------------------------------------------------------------------------------------


def _adapter_record(artifact: TrainedArtifact) -> tuple[NativeFile, dict[str, Any]]:
    adapter = artifact.adapter
    record = {
        "params": getattr(adapter, "params", {}),
        "seed": getattr(adapter, "seed", 0),
        "threads": getattr(adapter, "threads", 1),
        **adapter_state(adapter),
    }
    return adapter_file(adapter), record


def _write_trained(folder: ArtifactFolder, artifact: TrainedArtifact) -> dict[str, Any]:
    native, adapter = _adapter_record(artifact)
    folder.write_bytes(native.name, native.data)
    calibrator = skops_file(artifact.calibrator.model, CALIBRATOR)
    folder.write_bytes(CALIBRATOR, calibrator.data)
    files = [native.name, CALIBRATOR, PROBABILITIES]
    meta = None
    if artifact.meta_model is not None:
        folder.write_bytes(META_MODEL, skops_file(artifact.meta_model.model, META_MODEL).data)
        files.append(META_MODEL)
        meta = {
            "n_signals": artifact.meta_model.n_signals,
            "precision_primary": artifact.meta_model.precision_primary,
        }
    _write_probabilities(folder, artifact.validation_proba, artifact.test_proba)
    fields = {
        k: getattr(artifact, k)
        for k in (
            "model_name",
            "threshold",
            "threshold_source",
            "hyperparams",
            "feature_names",
            "training_time_sec",
            "shape",
            "version",
            "val_metrics",
            "test_metrics",
            "events",
            "search",
            "event_filter",
        )
    }
    return {
        "files": files,
        "model_file": native.describe(),
        "adapter": adapter,
        "calibration": {"method": artifact.calibrator.method, "file": calibrator.describe()},
        "meta_model": meta,
        **fields,
    }


def _read_trained(folder: ArtifactFolder, manifest: dict[str, Any]) -> TrainedArtifact:
    name = manifest["model_name"]
    record = manifest["model_file"]
    native = NativeFile(
        record["name"], folder.read_bytes(record["name"]), record["library"], record["library_version"]
    )
    state = manifest["adapter"]
    adapter = get_model(name)(state["params"], state["seed"], state["threads"])
    restore_adapter(adapter, native, state)
    calibrator = Calibrator(
        manifest["calibration"]["method"], load_skops(folder.read_bytes(CALIBRATOR), f"{name} {CALIBRATOR}")
    )
    meta = manifest["meta_model"]
    meta_model = None
    if meta is not None:
        pipeline = load_skops(folder.read_bytes(META_MODEL), f"{name} {META_MODEL}")
        meta_model = MetaLabeler(pipeline, int(meta["n_signals"]), float(meta["precision_primary"]))
    validation, test = _read_probabilities(folder)
    return TrainedArtifact(
        model_name=name,
        adapter=adapter,
        calibrator=calibrator,
        threshold=float(manifest["threshold"]),
        threshold_source=manifest["threshold_source"],
        hyperparams=manifest["hyperparams"],
        feature_names=tuple(manifest["feature_names"]),
        training_time_sec=float(manifest["training_time_sec"]),
        shape=from_json_value(DatasetShape, manifest["shape"]),
        version=from_json_value(FeatureVersion, manifest["version"]),
        val_metrics=from_json_value(SplitMetrics, manifest["val_metrics"]),
        test_metrics=from_json_value(SplitMetrics, manifest["test_metrics"]),
        validation_proba=validation,
        test_proba=test,
        events=_events(manifest["events"]),
        meta_model=meta_model,
        search=from_json_value(SearchSummary | None, manifest["search"]),
        event_filter=from_json_value(EventFilterFit | None, manifest.get("event_filter")),
    )


CODECS = (
    Codec("frame", lambda v: isinstance(v, pd.DataFrame), _write_frame, lambda f, m: f.read_frame(FRAME)),
    Codec("feature_frame", lambda v: isinstance(v, FeatureFrame), _write_features, _read_features),
    Codec("fold_dataset", lambda v: isinstance(v, FoldDataset), _write_dataset, _read_dataset),
    Codec("hyperparameters", _is_hyperparameters, _write_hyperparameters, _read_hyperparameters),
    Codec("trained_model", lambda v: isinstance(v, TrainedArtifact), _write_trained, _read_trained),
    Codec("predictions", lambda v: isinstance(v, VariantPredictions), _write_predictions, _read_predictions),
)
_BY_KIND = {codec.kind: codec for codec in CODECS}


def write_value(folder: ArtifactFolder, value: Any, what: str) -> dict[str, Any]:
    """Write `value` into `folder` (data files first, the manifest last, then any file an earlier value
    left there removed); returns the manifest as JSON values."""
    codec = next((c for c in CODECS if c.accepts(value)), None)
    if codec is None:
        raise UnstorableValue(
            f"{what}: the artifact store has no format for a {type(value).__name__}; add a codec in "
            "cvn_assets/artifacts/formats.py (values are never pickled)"
        )
    fields = codec.write(folder, value)
    manifest = to_json_value(
        {"kind": codec.kind, "format": FORMAT_VERSION, "written_by": written_by(), **fields}
    )
    folder.write_bytes(MANIFEST, dumps(manifest))
    stale = folder.names() - {MANIFEST, *manifest["files"]}
    for name in sorted(n for n in stale if not n.startswith(".")):
        folder.remove(name)
    return manifest


def read_value(folder: ArtifactFolder) -> Any:
    """The value stored in `folder`; FileNotFoundError when none was written."""
    manifest = loads(folder.read_bytes(MANIFEST))
    codec = _BY_KIND.get(manifest.get("kind"))
    if codec is None or manifest.get("format") != FORMAT_VERSION:
        raise ValueError(
            f"{folder.path}: stored as {manifest.get('kind')!r} format {manifest.get('format')}, which this "
            f"version reads as format {FORMAT_VERSION}; re-materialize it"
        )
    return codec.read(folder, manifest)
