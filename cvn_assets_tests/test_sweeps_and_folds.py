"""The code location reads configuration only, serves every sweep of a directory under its own prefix,
and grows each sweep's folds with the data: a fold appears once its labels are known and never changes."""

from __future__ import annotations

import time
from pathlib import Path

import dagster as dg
import pytest
import yaml

from cvn_assets.core.config import load_sweeps, parse_config
from cvn_assets.core.errors import ConfigError
from cvn_assets.core.folds import current_fold_id
from cvn_assets.core.sweep_plan import fold_of, plan_sweep
from cvn_assets.definitions import build_definitions
from cvn_assets.defs.folds import fold_update
from cvn_assets.defs.keys import partition_key
from cvn_assets.defs.sweep import Sweep
from cvn_assets_tests.conftest import small_raw_config
from cvn_assets_tests.fixtures import clean_bars
from cvn_assets_tests.in_process import load_bars, run_partition, sweep_defs

pytestmark = pytest.mark.usefixtures("small_hyperparams")


def _write(directory: Path, name: str, raw: dict) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_definitions_load_without_reaching_any_data(tmp_path: Path) -> None:
    # A local path that does not exist and an S3 endpoint nobody listens on: loading must not notice.
    raw = small_raw_config(
        universe={
            "GONE": {"kind": "table", "path": str(tmp_path / "nowhere" / "bars.csv")},
            "SILENT": {"kind": "binance", "path": "s3://no-bucket/klines/"},
        },
        data={"s3_endpoint_url": "http://127.0.0.1:9"},
    )
    started = time.perf_counter()
    defs = build_definitions([parse_config(raw)], artifacts_dir=tmp_path / "a")
    keys = Sweep.of(parse_config(raw)).keys
    assert defs.resolve_job_def(keys.sweep_job) is not None
    assert time.perf_counter() - started < 30  # no data read, no network timeout waited out
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def(keys.ohlcv_job).execute_in_process(
            partition_key="GONE", instance=instance, raise_on_error=False
        )
        assert not result.success
        failure = next(e for e in result.all_events if e.is_step_failure)
        message = failure.step_failure_data.error.message
        assert "ohlcv[GONE]" in message and "nowhere" in message


def test_every_sweep_of_the_directory_under_its_own_prefix(tmp_path: Path) -> None:
    sweeps = tmp_path / "sweeps"
    _write(sweeps, "a", small_raw_config(name="alpha"))
    _write(
        sweeps, "b", small_raw_config(name="beta", folds={"train": "60d", "validation": "15d", "test": "15d"})
    )
    loaded = load_sweeps(sweeps, extra=[])
    assert [s.name for s in loaded] == ["alpha", "beta"]
    defs = build_definitions([s.config for s in loaded], artifacts_dir=tmp_path / "a")
    keys = {k.to_user_string() for k in defs.resolve_all_asset_keys()}
    assert "alpha/economics/economics_10bps" in keys and "beta/economics/economics_10bps" in keys
    assert {j.name for j in defs.resolve_all_job_defs()} >= {"alpha_sweep", "beta_sweep", "alpha_ohlcv"}

    db_url = f"sqlite:///{tmp_path / 'r.db'}"
    with dg.instance_for_test() as instance:
        plans = {}
        for sweep in loaded:
            d = sweep_defs(sweep.config, db_url, tmp_path / sweep.name)
            plans[sweep.name] = load_bars(d, sweep.config, instance, "SYNA")
            assert run_partition(d, sweep.config, instance, "SYNA", "f00").success
        # Two fold plans, two partition sets: fold f000 is a different window in each sweep.
        alpha, beta = (instance.get_dynamic_partitions(f"{n}_folds") for n in ("alpha", "beta"))
        assert alpha == plans["alpha"].fold_ids and beta == plans["beta"].fold_ids
        assert alpha[0] != beta[0] and not set(alpha) & set(beta)
        for name in ("alpha", "beta"):
            materialized = instance.get_materialized_partitions(dg.AssetKey([name, "fold_dataset"]))
            assert materialized == {f"SYNA|{plans[name].fold_ids[0]}"}

    _write(sweeps, "c", small_raw_config(name="alpha"))
    with pytest.raises(ConfigError, match="also defined by"):
        load_sweeps(sweeps, extra=[])


def test_a_fold_id_reads_as_its_window_and_rebuilds_the_fold() -> None:
    config = parse_config(small_raw_config())
    fold = fold_of(config, "f01_2021-05-12")
    assert (fold.fold_id, fold.index, str(fold.test_start.date()), str(fold.test_end.date())) == (
        "f01_2021-05-12",
        1,
        "2021-05-12",
        "2021-06-01",
    )
    # The long form from before the short one rebuilds the same fold, its end checked too.
    assert fold_of(config, "f001_2021-05-12_2021-06-01") == fold
    wrong_ids = ("f001_2021-05-12_2021-06-09", "f1", "f01_not-a-date", "f01")
    for wrong in (*wrong_ids, "x01_2021-05-12", "f001_2021-05-12_2021-06-01_x"):
        with pytest.raises(ConfigError):
            fold_of(config, wrong)


def test_a_fold_id_is_short_enough_for_the_ui_and_old_ids_read_as_short() -> None:
    assert current_fold_id("f003_2019-09-24_2019-12-23") == "f03_2019-09-24"
    assert current_fold_id("f012_2019-09-24T06:00_2019-12-23T06:00") == "f12_2019-09-24T06:00"
    assert current_fold_id("f03_2019-09-24") == "f03_2019-09-24"
    assert current_fold_id("f000") == "f000"  # not a fold id of either form: left as it is
    config = parse_config(small_raw_config())
    assert all(len(f.fold_id) == 14 for f in plan_sweep(config).folds)


def _bars_config(path: Path) -> dict:
    return small_raw_config(
        universe={"BARS": {"kind": "table", "path": str(path)}, "SYNA": {"kind": "synthetic"}},
        data={"synthetic": {"seed": 3, "start": "2021-01-01T00:00:00", "n_bars": 24 * 400}},
        folds={"train": "90d", "validation": "20d", "test": "20d"},
    )


def test_appending_bars_adds_folds_and_never_changes_one(tmp_path: Path) -> None:
    path = tmp_path / "bars.csv"
    bars = clean_bars(n=24 * 400, start="2021-01-01", seed=5)
    # Start with data whose last fold's labels run just past its test window: that fold must not exist yet.
    bars.iloc[: 24 * 151 + 6].to_csv(path, index=False)  # to 2021-06-01 05:00
    config = parse_config(_bars_config(path))
    sweep = Sweep.of(config)
    db_url = f"sqlite:///{tmp_path / 'r.db'}"
    defs = sweep_defs(config, db_url, tmp_path)
    sensor = defs.resolve_sensor_def(sweep.keys.fold_sensor)
    with dg.instance_for_test() as instance:
        for crypto in ("BARS", "SYNA"):
            defs.resolve_job_def(sweep.keys.ohlcv_job).execute_in_process(
                partition_key=crypto, instance=instance
            )
        first = sensor(dg.build_sensor_context(instance=instance, definitions=defs))
        assert isinstance(first, dg.SensorResult)
        (added,) = first.dynamic_partitions_requests
        assert list(added.partition_keys) == ["f00_2021-04-22"]  # f001 ends 06-01 + 12h of labels
        assert {r.partition_key for r in first.run_requests} == {
            partition_key(c, "f00_2021-04-22") for c in ("BARS", "SYNA")
        }
        instance.add_dynamic_partitions(sweep.keys.folds_partitions.name, list(added.partition_keys))
        assert run_partition(defs, config, instance, "BARS", "f00").success
        before = _data_hash(instance, sweep, "BARS|f00_2021-04-22")

        # Nothing new: the next tick requests nothing.
        assert isinstance(sensor(dg.build_sensor_context(instance=instance, definitions=defs)), dg.SkipReason)

        # More bars: exactly the folds they complete appear, with their partitions requested.
        bars.iloc[: 24 * 200].to_csv(path, index=False)
        defs.resolve_job_def(sweep.keys.ohlcv_job).execute_in_process(partition_key="BARS", instance=instance)
        grown = sensor(dg.build_sensor_context(instance=instance, definitions=defs))
        assert isinstance(grown, dg.SensorResult)
        new = list(grown.dynamic_partitions_requests[0].partition_keys)
        assert new == [f.fold_id for f in fold_update(instance, sweep).plan.folds[1:]]
        assert {r.partition_key for r in grown.run_requests} == {
            partition_key(c, f) for c in ("BARS", "SYNA") for f in new
        }
        instance.add_dynamic_partitions(sweep.keys.folds_partitions.name, new)

        # The earlier fold, re-materialized on the longer data, has the same rows.
        assert run_partition(defs, config, instance, "BARS", "f00").success
        assert _data_hash(instance, sweep, "BARS|f00_2021-04-22") == before


def _data_hash(instance: dg.DagsterInstance, sweep: Sweep, partition: str) -> str:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=sweep.keys.fold_dataset, asset_partitions=[partition]), limit=1
    ).records
    return records[0].asset_materialization.metadata["data_hash"].value


def test_a_partition_whose_ohlcv_is_missing_names_what_to_materialize(tmp_path: Path) -> None:
    config = parse_config(small_raw_config())
    sweep = Sweep.of(config)
    defs = sweep_defs(config, f"sqlite:///{tmp_path / 'r.db'}", tmp_path)
    with dg.instance_for_test() as instance:
        fold_id = "f00_2021-04-22"
        instance.add_dynamic_partitions(sweep.keys.folds_partitions.name, [fold_id])
        result = defs.resolve_job_def(sweep.keys.sweep_job).execute_in_process(
            partition_key=partition_key("SYNA", fold_id), instance=instance, raise_on_error=False
        )
        assert not result.success
        failure = next(e for e in result.all_events if e.is_step_failure)
        error = failure.step_failure_data.error
        while error.cause is not None:
            error = error.cause
        assert (
            "tiny/ohlcv partition SYNA has not been materialized yet: materialize it first" in error.message
        )
        assert "FileNotFoundError" not in error.message


def test_the_fold_sensor_replaces_a_long_form_key_from_before_with_the_short_one(tmp_path: Path) -> None:
    config = parse_config(small_raw_config())
    sweep = Sweep.of(config)
    defs = sweep_defs(config, f"sqlite:///{tmp_path / 'r.db'}", tmp_path)
    sensor = defs.resolve_sensor_def(sweep.keys.fold_sensor)
    name = sweep.keys.folds_partitions.name
    with dg.instance_for_test() as instance:
        for crypto in config.cryptos:
            defs.resolve_job_def(sweep.keys.ohlcv_job).execute_in_process(
                partition_key=crypto, instance=instance
            )
        short = [f.fold_id for f in fold_update(instance, sweep).plan.folds]
        long_form = "f000_2021-04-22_2021-05-12"
        assert current_fold_id(long_form) == short[0]
        instance.add_dynamic_partitions(name, [long_form])
        result = sensor(dg.build_sensor_context(instance=instance, definitions=defs))
        assert isinstance(result, dg.SensorResult)
        added, deleted = result.dynamic_partitions_requests
        assert list(added.partition_keys) == short and list(deleted.partition_keys) == [long_form]
        assert {r.partition_key for r in result.run_requests} == {
            partition_key(c, f) for c in config.cryptos for f in short
        }
        # The long-form key still names its fold while it exists (a run of it in flight).
        assert sweep.fold(long_form) == sweep.fold(short[0])
