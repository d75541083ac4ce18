"""The code location on a real Dagster instance: the graph materializes, writes keyed rows, is idempotent
and deterministic, refuses rejected data, and its checks fail on a bad state."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa
import yaml

from cvn_assets.artifacts.published import LOCAL_REPORTS_URL
from cvn_assets.core.baselines import BASELINE_TYPES
from cvn_assets.core.config import parse_config
from cvn_assets.core.hashing import canonical_json
from cvn_assets.core.proxy_economy import SELECTION_METRICS
from cvn_assets.core.sweep_plan import SweepPlan, plan_sweep
from cvn_assets.defs.checks import AUDITS, FINDINGS
from cvn_assets.defs.keys import partition_key
from cvn_assets.defs.report_assets import UI_FIGURE_WIDTH
from cvn_assets.defs.sweep import Sweep
from cvn_assets.hyperparams.model_params import resolve_model
from cvn_assets.hyperparams.resolver import Resolver
from cvn_assets.store.engine import get_engine
from cvn_assets.store.schema import finetune_baselines, finetune_results
from cvn_assets_tests.conftest import SMALL_HYPERPARAMS, small_raw_config
from cvn_assets_tests.fixtures import clean_bars
from cvn_assets_tests.in_process import SweepReport, materialize_sweep, sweep_defs

# Sweeps here train small models; their hyperparameters come from the environment (conftest).
pytestmark = pytest.mark.usefixtures("small_hyperparams")

REPO = Path(__file__).resolve().parents[1]
HP_CHECKS = 1  # hyperparameters_complete, in every partition run
VOLATILE = {"id", "created_at", "dagster_run_id"}


_defs = sweep_defs


def _keys(plan: SweepPlan):  # noqa: ANN202
    return Sweep.of(plan.config).keys


def _sweep(
    plan: SweepPlan, db_url: str, tmp_path: Path, instance: dg.DagsterInstance, **kw: object
) -> SweepReport:
    return materialize_sweep(_defs(plan, db_url, tmp_path), plan.config, instance, **kw)


def _table(db_url: str, table: sa.Table) -> pd.DataFrame:
    with get_engine(db_url).connect() as conn:
        frame = pd.read_sql(sa.select(table), conn)
    key = ["variant" if "variant" in frame else "baseline_type", "crypto", "fold_id", "cost_bps"]
    return frame.sort_values(key).reset_index(drop=True)


def test_full_sweep_writes_keyed_rows_and_checks_pass(
    small_plan: SweepPlan, db_url: str, tmp_path: Path
) -> None:
    with dg.instance_for_test() as instance:
        report = _sweep(small_plan, db_url, tmp_path, instance)
        assert report.ok and not report.failed_checks, (report.failed, report.failed_checks)
        n_parts = len(small_plan.config.cryptos) * len(small_plan.folds)
        costs = small_plan.config.costs_bps
        # Every check in every partition run: hyperparameters', and the results checks and findings per cost.
        assert report.checks_passed == n_parts * (HP_CHECKS + len(costs) * (len(AUDITS) + len(FINDINGS)))

        results, baselines = _table(db_url, finetune_results), _table(db_url, finetune_baselines)
        assert len(results) == n_parts * len(costs)
        assert len(baselines) == n_parts * len(costs) * len(BASELINE_TYPES)
        params = resolve_model(Resolver(None), "xgboost", "1h", search=False, allow_fallback=False).values
        assert params["n_estimators"] == SMALL_HYPERPARAMS["xgboost"]["n_estimators"]
        assert set(results.model_hyperparams) == {canonical_json(params)}
        assert json.loads(results.model_hyperparams[0]) == params
        assert results.optuna_trial_id.isna().all()  # fixed-parameter mode: no search, no trial
        assert results.run_id.unique().tolist() == [small_plan.run_id]
        assert (
            results.cost_basis.eq("backtested_assumed").all()
            and baselines.cost_basis.eq("backtested_assumed").all()
        )
        assert results.dagster_run_id.notna().all() and results.code_version.str.startswith("0.1.0+").all()
        # Each economic row says what its cost is made of: the fee level and the slippage per side.
        slippage = small_plan.config.backtest.slippage_bps
        for table in (results, baselines):
            assert table.fee_bps.eq(table.cost_bps).all() and table.slippage_bps.eq(slippage).all()

        # data_hash on the rows is the fold_dataset asset's own hash, and baselines share it.
        for (crypto, fold_id), rows in results.groupby(["crypto", "fold_id"]):
            records = instance.fetch_materializations(
                dg.AssetRecordsFilter(
                    asset_key=_keys(small_plan).fold_dataset, asset_partitions=[f"{crypto}|{fold_id}"]
                ),
                limit=1,
            ).records
            data_hash = records[0].asset_materialization.metadata["data_hash"].value
            assert set(rows.data_hash) == {data_hash}
            assert set(
                baselines[(baselines.crypto == crypto) & (baselines.fold_id == fold_id)].data_hash
            ) == {data_hash}
            fold = small_plan.fold(fold_id)
            assert pd.Timestamp(rows.test_start.iloc[0]).tz_localize(None) == fold.test_start.tz_localize(
                None
            )

        # Every variant row carries its own random baseline, trading exactly as often as the variant.
        for split in ("val", "test"):
            assert results[f"random_matched_n_trades_{split}"].eq(results[f"n_trades_{split}"]).all()
        _the_report_covers_every_partition(small_plan, db_url, tmp_path, instance, results)


def _the_report_covers_every_partition(
    plan: SweepPlan, db_url: str, tmp_path: Path, instance: dg.DagsterInstance, results: pd.DataFrame
) -> None:
    """The report job (what the UI's Materialize and the automation run) reads every partition's rows and
    the last partition's predictions, and shows its verdict, tables and plots as metadata."""
    keys = _keys(plan)
    run = _defs(plan, db_url, tmp_path).resolve_job_def(keys.report_job).execute_in_process(instance=instance)
    assert run.success
    metadata = instance.get_latest_materialization_event(keys.report).asset_materialization.metadata
    costs = plan.config.costs_bps
    for cost in costs:  # each cost's verdict in full: short markdown, which the UI shows inline
        verdict = metadata[f"verdict at {cost} bps"].value
        assert verdict.startswith(f"At {cost} bps there is") and len(verdict) < 1000
    # Each plot links to its published PNG, short enough for the UI to show it inline; the page is linked.
    plots = [k for k in metadata if k.startswith("plot: ")]
    assert len(plots) == 3
    published = tmp_path / "artifacts" / "reports" / plan.config.name
    for key in plots:  # [![caption](narrow.png)](full.png)
        markdown = metadata[key].value
        assert len(markdown) < 1000 and markdown.startswith(f"[![{key.removeprefix('plot: ')}](")
        small, full = re.findall(r"\((http[^)]+)\)", markdown)
        for url in (small, full):
            assert url.startswith(f"{LOCAL_REPORTS_URL}/{plan.config.name}/") and url.endswith(".png")
        widths = [_png_width((published / u.rsplit("/", 1)[1]).read_bytes()) for u in (small, full)]
        assert widths[0] <= UI_FIGURE_WIDTH <= widths[1]
    page = metadata["report page"].value
    assert (
        page.endswith(".html") and "<h1>Proxy vs economy" in (published / page.rsplit("/", 1)[1]).read_text()
    )
    crypto, fold_id = max(plan.config.cryptos), plan.folds[-1].fold_id  # the last crypto x fold partition
    assert f"plot: Equity curves: {crypto} {fold_id}, OOS at" in " ".join(plots)
    tables = {k: v.value for k, v in metadata.items() if isinstance(v, dg.TableMetadataValue)}
    for name, table in tables.items():  # narrow, described, and numbers at four significant digits
        assert len(table.schema.columns) <= 6, name
        assert all(c.description for c in table.schema.columns), name
        floats = [v for r in table.records for v in r.data.values() if isinstance(v, float) and v]
        assert all(float(f"{v:.4g}") == v for v in floats if abs(v) < 1000), name
    board = metadata["leaderboard (mean OOS sortino)"].value
    names = {r.data["name"] for r in board.records}
    assert names == {"xgboost", *BASELINE_TYPES, "random_matched"}
    assert [c.name for c in board.schema.columns] == ["name", "f1_buy_val", *(f"{c} bps" for c in costs)]
    overfitting = metadata["overfitting"].value.records
    assert [r.data["cost_bps"] for r in overfitting] == sorted(costs)
    assert all(r.data["picked"] == "xgboost" for r in overfitting)
    pooled = metadata["correlations (pooled)"].value.records  # per variant: the HTML page
    assert len(pooled) == len(costs) * len(SELECTION_METRICS)
    assert all(0 < r.data["n"] <= (results.cost_bps == r.data["cost_bps"]).sum() for r in pooled)


def test_rematerializing_a_partition_replaces_its_rows(small_plan: SweepPlan, tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'r.db'}"
    with dg.instance_for_test() as instance:
        first = None
        for _ in range(3):
            report = _sweep(small_plan, db_url, tmp_path, instance, cryptos=["SYNA"], folds=["f01"])
            assert report.ok
            rows = _table(db_url, finetune_results)
            assert len(rows) == len(small_plan.config.costs_bps)
            stable = rows.drop(columns=list(VOLATILE))
            if first is None:
                first = stable
            pd.testing.assert_frame_equal(stable, first)
        assert len(_table(db_url, finetune_baselines)) == len(small_plan.config.costs_bps) * len(
            BASELINE_TYPES
        )


def test_same_config_and_data_give_the_same_rows(small_plan: SweepPlan, tmp_path: Path) -> None:
    tables = []
    for name in ("a", "b"):
        db_url = f"sqlite:///{tmp_path / name}.db"
        with dg.instance_for_test() as instance:
            assert _sweep(
                plan_sweep(small_plan.config), db_url, tmp_path / name, instance, cryptos=["SYNB"]
            ).ok
        tables.append(
            [_table(db_url, t).drop(columns=list(VOLATILE)) for t in (finetune_results, finetune_baselines)]
        )
    for a, b in zip(*tables, strict=True):
        pd.testing.assert_frame_equal(a, b)


def test_rejected_data_materializes_nothing_downstream(tmp_path: Path) -> None:
    bad = clean_bars(n=24 * 170, start="2021-01-01")
    bad.loc[6, "high"] = bad.loc[6, "low"] / 2  # high below open/close on data row 7
    path = tmp_path / "bad_bars.csv"
    bad.to_csv(path, index=False)
    raw = small_raw_config(
        universe={"SYNA": {"kind": "synthetic"}, "BADX": {"kind": "table", "path": str(path)}}
    )
    plan = plan_sweep(parse_config(raw))
    assert "BADX" in plan.rejected and "row 7" in plan.rejected["BADX"]
    db_url = f"sqlite:///{tmp_path / 'r.db'}"
    with dg.instance_for_test() as instance:
        report = _sweep(plan, db_url, tmp_path, instance)
        assert list(report.failed) == ["ohlcv[BADX]"]
        assert "bad_bars.csv" in report.failed["ohlcv[BADX]"] and "row 7" in report.failed["ohlcv[BADX]"]
        assert "high is below max(open, close)" in report.failed["ohlcv[BADX]"]
        materialized = instance.get_materialized_partitions(_keys(plan).features("base"))
        assert materialized and not any(p.startswith("BADX") for p in materialized)
        # Even a run that targets the rejected crypto directly cannot build on it.
        job = _defs(plan, db_url, tmp_path).resolve_job_def(_keys(plan).sweep_job)
        result = job.execute_in_process(
            partition_key=partition_key("BADX", plan.fold_ids[0]),
            instance=instance,
            raise_on_error=False,
        )
        assert not result.success
    assert set(_table(db_url, finetune_results).crypto) == {"SYNA"}
    assert set(_table(db_url, finetune_baselines).crypto) == {"SYNA"}


def _run_audit(plan: SweepPlan, db_url: str, tmp_path: Path, instance: dg.DagsterInstance) -> dict[str, bool]:
    result = (
        _defs(plan, db_url, tmp_path)
        .resolve_job_def(_keys(plan).audit_job)
        .execute_in_process(instance=instance, raise_on_error=False)
    )
    return {e.asset_check_key.to_user_string(): e.passed for e in result.get_asset_check_evaluations()}


def test_checks_pass_on_a_good_state_and_fail_on_a_bad_one(
    small_plan: SweepPlan, db_url: str, tmp_path: Path
) -> None:
    with dg.instance_for_test() as instance:
        assert _sweep(small_plan, db_url, tmp_path, instance, cryptos=["SYNA"], folds=["f00"]).ok
        verdicts = _run_audit(small_plan, db_url, tmp_path, instance)
        assert len(verdicts) == len(AUDITS) + 1  # and the fallback rate
        assert all(verdicts.values())

        engine = get_engine(db_url)
        with engine.begin() as conn:
            conn.execute(
                sa.delete(finetune_baselines).where(
                    finetune_baselines.c.baseline_type == "random", finetune_baselines.c.cost_bps == 10
                )
            )
            conn.execute(
                sa.update(finetune_results)
                .where(finetune_results.c.cost_bps == 0)
                .values(model_hyperparams="{}")
            )
            conn.execute(
                sa.update(finetune_results)
                .where(finetune_results.c.cost_bps == 10)
                .values(cost_basis="unknown")
            )
        verdicts = _run_audit(small_plan, db_url, tmp_path, instance)
        failed = sorted(k for k, ok in verdicts.items() if not ok)
        assert failed == [
            "tiny/results_store:baselines_complete",
            "tiny/results_store:cost_basis_labelled",
            "tiny/results_store:join_keys_present",
        ]
        evaluation = instance.event_log_storage.get_latest_asset_check_execution_by_key(
            [dg.AssetCheckKey(_keys(small_plan).results_store, "baselines_complete")]
        )
        assert evaluation


def test_graph_shape(small_plan: SweepPlan, tmp_path: Path) -> None:
    defs = _defs(small_plan, f"sqlite:///{tmp_path / 'r.db'}", tmp_path)
    keys = {k.to_user_string() for k in defs.resolve_all_asset_keys()}
    assert keys == {
        "tiny/ohlcv", "tiny/features/base_features", "tiny/fold_dataset", "tiny/hyperparameters", "tiny/model/xgboost_model",
        "tiny/predictions/xgboost_predictions", "tiny/baselines/baselines_0bps", "tiny/baselines/baselines_10bps",
        "tiny/economics/economics_0bps", "tiny/economics/economics_10bps", "tiny/results_store",
        "tiny/sweep_perf", "tiny/proxy_economy_report", "tiny/diagnostics/adversarial_validation",
        "tiny/diagnostics/drift", "tiny/diagnostics/leakage", "tiny/diagnostics/reproducibility_anchor_xgboost",
        "tiny/diagnostics/trial_invariance_xgboost",
    }  # fmt: skip
    # No two nodes of the graph read the same.
    assert len({k.split("/")[-1] for k in keys}) == len(keys)
    economics = _keys(small_plan).economics(10)
    spec = defs.resolve_assets_def(economics).specs_by_key[economics]
    assert _keys(small_plan).baselines(10) in {d.asset_key for d in spec.deps}
    partitions = defs.resolve_assets_def(_keys(small_plan).features("base")).partitions_def
    assert isinstance(partitions, dg.MultiPartitionsDefinition)
    assert [d.name for d in partitions.partitions_defs] == ["crypto", "fold"]
    assert isinstance(partitions.partitions_defs[1].partitions_def, dg.DynamicPartitionsDefinition)


def test_code_location_loads_through_workspace_yaml(tmp_path: Path) -> None:
    sweeps = tmp_path / "sweeps"
    sweeps.mkdir()
    (sweeps / "tiny.yaml").write_text(yaml.safe_dump(small_raw_config()))
    env = {
        **os.environ,
        "CVN_SWEEPS_DIR": str(sweeps),
        "CVN_HOME": str(tmp_path / "home"),
        "DAGSTER_HOME": str(tmp_path),
    }
    dagster = Path(sys.executable).with_name("dagster")
    result = subprocess.run(
        [str(dagster), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "cvn_assets" in result.stdout + result.stderr


def _png_width(png: bytes) -> int:
    assert png.startswith(b"\x89PNG")
    return int.from_bytes(png[16:20], "big")  # the IHDR chunk's width
