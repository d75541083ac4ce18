"""Scheduled backfills as data grows: the automation conditions of a sweep, evaluated tick after tick
against a real Dagster instance (SQLite and PostgreSQL storage). A cron tick reloads the bars; then every
missing or stale crypto x fold partition is requested, a bounded batch per evaluation, oldest folds
first; when all is fresh nothing is; new bars add folds without re-running the old ones; a code change
re-runs what it touches."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import pytest

from cvn_assets.core.config import parse_config
from cvn_assets.core.errors import ConfigError
from cvn_assets.definitions import build_definitions, validate_sweep
from cvn_assets.defs.automation import EVALUATION_INTERVAL_S
from cvn_assets.defs.checks import AUDITS
from cvn_assets.defs.folds import add_new_folds
from cvn_assets.defs.resources import ResultsStore
from cvn_assets.defs.sweep import Sweep
from cvn_assets_tests.conftest import small_raw_config
from cvn_assets_tests.fixtures import clean_bars
from cvn_assets_tests.in_process import run_partition
from cvn_assets_tests.test_versions import _edited

pytestmark = pytest.mark.usefixtures("small_hyperparams")

MONDAY_6 = dt.datetime(2026, 11, 23, 6, 0, tzinfo=dt.UTC)  # the default cron: Mondays 06:00 UTC
SUNDAY = MONDAY_6 - dt.timedelta(days=1)


class Ticks:
    """The sweep's automation evaluated as the sensor does, carrying its cursor from tick to tick."""

    def __init__(self, defs: dg.Definitions, instance: dg.DagsterInstance) -> None:
        self.defs, self.instance, self.cursor = defs, instance, None

    def at(self, when: dt.datetime) -> dict[str, set[str]]:
        result = dg.evaluate_automation_conditions(
            defs=self.defs, instance=self.instance, evaluation_time=when, cursor=self.cursor
        )
        self.cursor = result.cursor
        requested: dict[str, set[str]] = {}
        for entry in result.results:
            subset = entry.true_subset
            if not subset.is_partitioned:  # sweep_perf: requested or not
                keys = {"(unpartitioned)"} if subset.size else set()
            else:
                keys = subset.expensively_compute_partition_keys()
            if keys:
                name = entry.key.to_user_string()
                requested[name] = {str(k) for k in keys}
        return requested


def _partitions(requested: dict[str, set[str]], asset: str) -> set[str]:
    return requested.get(asset, set())


def test_scheduled_refresh_requests_missing_and_stale_partitions_in_batches(
    tmp_path: Path, dagster_instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "bars.csv"
    bars = clean_bars(n=24 * 400, start="2021-01-01", seed=5)
    bars.iloc[: 24 * 155].to_csv(path, index=False)  # to 2021-06-05: two folds
    raw = small_raw_config(
        universe={"BARS": {"kind": "table", "path": str(path)}, "SYNA": {"kind": "synthetic"}},
        data={"synthetic": {"seed": 3, "start": "2021-01-01T00:00:00", "n_bars": 24 * 400}},
        folds={"train": "90d", "validation": "20d", "test": "20d"},
        operations={"max_partitions_per_tick": 3},
    )
    config = parse_config(raw)
    instance = dagster_instance
    sweep, keys = Sweep.of(config), Sweep.of(config).keys

    def definitions() -> dg.Definitions:
        store = ResultsStore(database_url=f"sqlite:///{tmp_path / 'r.db'}")
        return build_definitions([config], artifacts_dir=tmp_path / "artifacts", results_store=store)

    defs = definitions()
    ohlcv, features = keys.ohlcv.to_user_string(), keys.features("base").to_user_string()
    economics = keys.economics(config.costs_bps[0]).to_user_string()
    perf, refreshed = keys.perf.to_user_string(), {"(unpartitioned)"}  # sweep_perf: on every cron tick
    report = keys.report.to_user_string()  # once every partition exists, and again when one changes
    # What closes a sweep comes with the report: sweep_perf and the sweep-wide checks.
    closing = {
        report: refreshed,
        perf: refreshed,
        **{f"{keys.results_store.to_user_string()}:{name}": refreshed for name in AUDITS},
        f"{keys.hyperparameters.to_user_string()}:{keys.fallback_rate_check.name}": refreshed,
    }

    def reload_bars() -> None:
        for crypto in config.cryptos:
            result = defs.resolve_job_def(keys.ohlcv_job).execute_in_process(
                partition_key=crypto, instance=instance
            )
            assert result.success

    reload_bars()
    folds = add_new_folds(instance, sweep).new_fold_ids  # what the new-folds sensor adds
    assert len(folds) == 2
    ticks = Ticks(defs, instance)
    after = MONDAY_6 + dt.timedelta(seconds=EVALUATION_INTERVAL_S)

    # Before the first cron tick: nothing, though every crypto x fold partition is missing.
    assert ticks.at(SUNDAY) == {}

    # The cron tick reloads the bars and requests the missing partitions, 3 per evaluation, oldest fold
    # first, every asset and check of each.
    first = ticks.at(after)
    assert first.pop(ohlcv) == {"BARS", "SYNA"} and first.pop(perf) == refreshed
    f0, f1 = folds
    assert _partitions(first, features) == {f"BARS|{f0}", f"SYNA|{f0}", f"BARS|{f1}"}
    assert all(partitions == first[features] for partitions in first.values())
    assert f"{economics}:no_over_trading" in first
    assert f"{keys.hyperparameters.to_user_string()}:hyperparameters_complete" in first
    reload_bars()
    second = ticks.at(after + dt.timedelta(seconds=30))
    assert _partitions(second, features) == {f"SYNA|{f1}"}
    assert all(partitions == {f"SYNA|{f1}"} for partitions in second.values())
    assert ticks.at(after + dt.timedelta(seconds=60)) == {}

    for crypto in config.cryptos:
        for fold in folds:
            assert run_partition(defs, config, instance, crypto, fold).success

    # A week later, all fresh: the bars are reloaded and no partition is requested; the report, waiting
    # for every partition until now, is requested once.
    next_week = after + dt.timedelta(days=7)
    assert ticks.at(next_week) == {ohlcv: {"BARS", "SYNA"}, **closing}
    reload_bars()
    assert ticks.at(next_week + dt.timedelta(seconds=30)) == {}

    # New bars: their fold appears (the new-folds sensor adds it and runs it at once; here it does not
    # run), the old folds are not re-run, and the next cron tick requests exactly the new partitions.
    bars.iloc[: 24 * 180].to_csv(path, index=False)  # to 2021-06-30: one more fold
    week_3 = next_week + dt.timedelta(days=7)
    assert ticks.at(week_3) == {ohlcv: {"BARS", "SYNA"}, perf: refreshed}
    reload_bars()
    (new_fold,) = add_new_folds(instance, sweep).new_fold_ids
    assert ticks.at(week_3 + dt.timedelta(seconds=30)) == {}
    week_4 = week_3 + dt.timedelta(days=7)
    grown = ticks.at(week_4)
    assert grown.pop(ohlcv) == {"BARS", "SYNA"} and grown.pop(perf) == refreshed
    reload_bars()
    assert _partitions(grown, features) == {f"BARS|{new_fold}", f"SYNA|{new_fold}"}
    assert all(partitions == grown[features] for partitions in grown.values())
    for crypto in config.cryptos:
        assert run_partition(defs, config, instance, crypto, new_fold).success
    # The new fold's rows are in: the report refreshes (it waited while they were missing).
    assert ticks.at(week_4 + dt.timedelta(seconds=30)) == closing
    assert ticks.at(week_4 + dt.timedelta(seconds=60)) == {}

    # The feature code changes: features and everything after them, in every partition, in batches.
    _edited(monkeypatch, tmp_path, "cvn_assets.core.features")
    ticks.defs = definitions()
    week_5 = week_4 + dt.timedelta(days=7)
    changed = ticks.at(week_5)
    assert (
        changed.pop(ohlcv) == {"BARS", "SYNA"} and changed.pop(perf) == refreshed
    )  # its code version is unchanged: reloaded on schedule
    reload_bars()
    assert _partitions(changed, features) == {f"BARS|{f0}", f"SYNA|{f0}", f"BARS|{f1}"}
    assert _partitions(changed, economics) == changed[features]
    assert keys.hyperparameters.to_user_string() not in changed  # its code did not change
    rest = ticks.at(week_5 + dt.timedelta(seconds=30))
    assert _partitions(rest, features) == {f"SYNA|{f1}", f"BARS|{new_fold}", f"SYNA|{new_fold}"}


def test_a_cron_that_does_not_parse_names_the_sweep(tmp_path: Path) -> None:
    config = parse_config(small_raw_config(operations={"cron": "61 6 * * 1"}))
    with pytest.raises(
        ConfigError, match=r"sweep tiny: config key 'operations.cron': '61 6 \* \* 1' is not a cron"
    ):
        validate_sweep(config)
    # Served beside the others, the sweep is one invalid entry carrying that line, not a failed load.
    defs = build_definitions([config], artifacts_dir=tmp_path)
    keys = {k.to_user_string() for k in defs.resolve_all_asset_keys()}
    assert keys == {"tiny/sweep_config"}
    spec = defs.get_assets_def(dg.AssetKey(["tiny", "sweep_config"])).specs_by_key[
        dg.AssetKey(["tiny", "sweep_config"])
    ]
    assert "config key 'operations.cron'" in (spec.description or "")


def test_the_schedule_is_not_part_of_the_run_id() -> None:
    base = parse_config(small_raw_config())
    weekly = parse_config(small_raw_config(operations={"cron": "0 3 * * 0", "max_partitions_per_tick": 5}))
    assert base.run_id == weekly.run_id
