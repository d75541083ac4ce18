"""The artifact store: every value an asset hands on is written as parquet, native model files and JSON
(never a pickle), read back exactly, on a local directory and on a real S3 endpoint (moto's server on
loopback), and the same sweep gives the same result rows on both."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import dagster as dg
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from cvn_assets.artifacts.formats import MANIFEST, UnstorableValue, read_value, write_value
from cvn_assets.artifacts.json_values import loads
from cvn_assets.artifacts.location import ArtifactFolder, ArtifactLocation, location_from_env
from cvn_assets.artifacts.published import LOCAL_REPORTS_URL, REPORTS_URL_ENV, publisher, reports_root
from cvn_assets.core.config import parse_config
from cvn_assets.defs.keys import partition_key
from cvn_assets.defs.sweep import Sweep
from cvn_assets.harness.contracts import TrainedArtifact
from cvn_assets.harness.native_files import UntrustedModelFile, load_skops
from cvn_assets.harness.predictions import VariantPredictions
from cvn_assets.store.engine import get_engine
from cvn_assets_tests.conftest import small_raw_config
from cvn_assets_tests.in_process import materialize_sweep, sweep_defs

MODELS = {"xgboost": {}, "lightgbm": {}, "catboost": {}, "logreg": {}}
VOLATILE = {"id", "dagster_run_id", "created_at"}  # which run wrote a row, and when


def _bucket(endpoint: str, name: str) -> None:
    s3 = boto3.client("s3", endpoint_url=endpoint)
    if name not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
        s3.create_bucket(Bucket=name)


def _s3_env(monkeypatch: pytest.MonkeyPatch, endpoint: str, bucket: str) -> ArtifactLocation:
    _bucket(endpoint, bucket)
    monkeypatch.setenv("CVN_ARTIFACTS_BUCKET", bucket)
    monkeypatch.setenv("CVN_ARTIFACTS_PREFIX", "runs/cvn")
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    return location_from_env(Path("/unused"))


def _rows(db_url: str, table: str) -> list[dict[str, Any]]:
    with get_engine(db_url).connect() as conn:
        rows = conn.execute(sa.text(f"SELECT * FROM {table}")).mappings().all()
    cleaned = [{k: v for k, v in row.items() if k not in VOLATILE} for row in rows]
    return sorted(cleaned, key=lambda r: tuple(str(r[k]) for k in sorted(r)))


def _sweep(tmp_path: Path, name: str, db_url: str, **overrides: Any) -> tuple[dg.Definitions, Any]:
    raw = small_raw_config(name=name, models=MODELS, **overrides)
    raw["universe"] = {"SYNA": {"kind": "synthetic"}}
    raw["folds"]["max_folds"] = 1
    config = parse_config(raw)
    return sweep_defs(config, db_url, tmp_path / name), config


def test_frames_round_trip_exactly_on_s3(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    location = _s3_env(monkeypatch, s3_server, "frames")
    index = pd.date_range("2024-01-01", periods=5, freq="h", tz="UTC", name="timestamp")
    frame = pd.DataFrame(
        {
            "close": [1.0, np.nan, 3.5, 1e-300, -0.0],
            "bar": np.arange(5),
            "flag": [True, False, True, True, False],
            "label": pd.array([1, 0, None, 1, 0], dtype="Int64"),
        },
        index=index,
    )
    folder = ArtifactFolder(location.path() / "demo" / "ohlcv" / "SYNA", location)
    manifest = write_value(folder, frame, "demo/ohlcv SYNA")
    back = read_value(folder)
    pd.testing.assert_frame_equal(back, frame, check_freq=False)
    assert manifest["kind"] == "frame" and manifest["written_by"]["pyarrow"]
    keys = {
        o["Key"]
        for o in boto3.client("s3", endpoint_url=s3_server).list_objects_v2(Bucket="frames")["Contents"]
    }
    assert keys == {"runs/cvn/demo/ohlcv/SYNA/frame.parquet", "runs/cvn/demo/ohlcv/SYNA/artifact.json"}


def test_a_large_frame_goes_up_in_parts_and_comes_back(
    s3_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    location = _s3_env(monkeypatch, s3_server, "large")
    rng = np.random.default_rng(7)
    frame = pd.DataFrame(rng.normal(size=(400_000, 10)), columns=[f"f{i}" for i in range(10)])  # ~32 MB
    folder = ArtifactFolder(location.path() / "big", location)
    write_value(folder, frame, "big")
    head = boto3.client("s3", endpoint_url=s3_server).head_object(
        Bucket="large", Key="runs/cvn/big/frame.parquet"
    )
    assert "-" in head["ETag"], f"expected a multipart upload, got ETag {head['ETag']}"
    pd.testing.assert_frame_equal(read_value(folder), frame)


def test_a_missing_value_raises_file_not_found_on_both(
    s3_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    s3 = _s3_env(monkeypatch, s3_server, "missing")
    for location in (ArtifactLocation(str(tmp_path)), s3):
        with pytest.raises(FileNotFoundError):
            read_value(ArtifactFolder(location.path() / "never" / "written", location))


def test_report_files_publish_content_addressed_on_both_and_link_only_where_served(
    s3_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    s3 = _s3_env(monkeypatch, s3_server, "reports")
    local = ArtifactLocation(str(tmp_path))
    assert publisher(local, {}).base_url == LOCAL_REPORTS_URL  # what `cvn ui` serves by default
    assert publisher(s3, {}).base_url is None  # S3 with nothing serving it: the figures stay inline
    assert publisher(s3, {}).publish("demo", b"png", ".png") is None
    served = {REPORTS_URL_ENV: "https://reports.internal/cvn/"}
    for location in (local, s3):
        files = publisher(location, served)
        url = files.publish("demo", b"\x89PNG one", ".png")
        assert (
            url is not None and url.startswith("https://reports.internal/cvn/demo/") and url.endswith(".png")
        )
        assert files.publish("demo", b"\x89PNG one", ".png") == url  # the same content, the same link
        assert files.publish("demo", b"\x89PNG two", ".png") != url
        name = url.removeprefix("https://reports.internal/cvn/")
        assert (reports_root(location) / name).read_bytes() == b"\x89PNG one"


def test_values_without_a_format_are_refused_not_pickled(tmp_path: Path) -> None:
    location = ArtifactLocation(str(tmp_path))
    with pytest.raises(UnstorableValue, match="no format for a set.*never pickled"):
        write_value(ArtifactFolder(location.path() / "x", location), {1, 2}, "demo/thing")


def test_skops_refuses_types_outside_scikit_learn() -> None:
    import skops.io

    from cvn_assets.artifacts.location import ArtifactLocation as NotSklearn

    data = skops.io.dumps(NotSklearn("x"))
    with pytest.raises(UntrustedModelFile, match="ArtifactLocation"):
        load_skops(data, "planted.skops")


def _check_stored_partition(location: ArtifactLocation, sweep: str, crypto: str, fold_id: str) -> None:
    """Each stored model reloads from its own files and reproduces the probabilities stored beside it."""
    keys = Sweep.of(parse_config(small_raw_config(name=sweep))).keys

    def folder(key: dg.AssetKey) -> ArtifactFolder:
        return ArtifactFolder(location.path().joinpath(*key.path, crypto, fold_id), location)

    dataset = read_value(folder(keys.fold_dataset))
    X_val, _ = dataset.xy("validation")
    X_test, _ = dataset.xy("test")
    for name in MODELS:
        stored = folder(keys.model(name))
        manifest = loads(stored.read_bytes(MANIFEST))
        assert manifest["model_file"]["name"] in {"model.ubj", "model.txt", "model.cbm", "model.skops"}
        assert manifest["model_file"]["library_version"] not in ("", "unknown")
        artifact = read_value(stored)
        assert isinstance(artifact, TrainedArtifact) and artifact.version.data_hash == dataset.data_hash
        assert np.array_equal(artifact.predict_proba(X_val)[:, 1], artifact.validation_proba)
        assert np.array_equal(artifact.predict_proba(X_test)[:, 1], artifact.test_proba)
        preds = read_value(folder(keys.predictions(name)))
        assert isinstance(preds, VariantPredictions) and np.array_equal(preds.test, artifact.test_proba)


def test_the_same_sweep_gives_the_same_rows_on_local_files_and_on_s3(
    s3_server: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    small_hyperparams: dict[str, str],
) -> None:
    harness = {"meta_labeling": {"enabled": True}}
    local_db, s3_db = f"sqlite:///{tmp_path}/local.db", f"sqlite:///{tmp_path}/s3.db"
    defs, config = _sweep(tmp_path, "same", local_db, harness=harness)
    with dg.instance_for_test() as instance:
        assert materialize_sweep(defs, config, instance).ok
        fold_id = next(iter(instance.get_dynamic_partitions(Sweep.of(config).keys.folds_partitions.name)))
    local = ArtifactLocation(str(tmp_path / "same" / "artifacts"))
    _check_stored_partition(local, "same", "SYNA", fold_id)

    location = _s3_env(monkeypatch, s3_server, "sweeps")
    defs, config = _sweep(tmp_path / "on_s3", "same", s3_db, harness=harness)
    with dg.instance_for_test() as instance:
        assert materialize_sweep(defs, config, instance).ok
    _check_stored_partition(location, "same", "SYNA", fold_id)
    keys = {
        o["Key"]
        for o in boto3.client("s3", endpoint_url=s3_server).list_objects_v2(Bucket="sweeps")["Contents"]
    }
    assert f"runs/cvn/same/model/xgboost_model/SYNA/{fold_id}/model.ubj" in keys
    assert f"runs/cvn/same/model/xgboost_model/SYNA/{fold_id}/meta_model.skops" in keys
    assert not (tmp_path / "on_s3").exists(), "the run on S3 wrote local artifacts"

    for table in ("finetune_results", "finetune_baselines"):
        assert _rows(local_db, table) == _rows(s3_db, table), table
    assert _rows(local_db, "finetune_results"), "the sweep wrote no rows"


def test_loading_a_partition_never_written_names_it(
    tmp_path: Path, small_hyperparams: dict[str, str]
) -> None:
    defs, config = _sweep(tmp_path, "gap", f"sqlite:///{tmp_path}/gap.db")
    sweep = Sweep.of(config)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(sweep.keys.folds_partitions.name, ["f00_2021-05-21"])
        result = defs.resolve_job_def(sweep.keys.sweep_job).execute_in_process(
            partition_key=partition_key("SYNA", "f00_2021-05-21"),
            instance=instance,
            asset_selection=[sweep.keys.model("xgboost")],
            raise_on_error=False,
        )
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = failure.step_failure_data.error.message
    assert "gap/fold_dataset partition SYNA|f00_2021-05-21 has not been materialized yet" in message
    assert "materialize it first" in message
