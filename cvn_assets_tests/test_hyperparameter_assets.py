"""Hyperparameters in the graph: a search sweep's rows join to their Optuna trials, an incomplete
configuration blocks training, and fallbacks are visible to the fallback-rate check."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa

from cvn_assets.core.config import parse_config
from cvn_assets.core.sweep_plan import SweepPlan, plan_sweep
from cvn_assets.defs.sweep import Sweep
from cvn_assets.hyperparams.model_params import fallback_rate_level
from cvn_assets.store.engine import get_engine
from cvn_assets_tests.conftest import small_raw_config
from cvn_assets_tests.in_process import load_bars, materialize_sweep, run_partition, sweep_defs

pytestmark = pytest.mark.usefixtures("small_hyperparams")
KEYS = Sweep.of(parse_config(small_raw_config())).keys
SEARCH = {"mode": "search", "n_trials": 8, "sampler_startup_trials": 3, "pruner_startup_trials": 2,
          "pruner_warmup_rounds": 5, "report_every_rounds": 5}  # fmt: skip


def _plan(**overrides: Any) -> SweepPlan:
    return plan_sweep(parse_config(small_raw_config(**overrides)))


_defs = sweep_defs


def _results(db_url: str) -> pd.DataFrame:
    with get_engine(db_url).connect() as conn:
        return pd.read_sql(sa.text("select * from finetune_results order by fold_id, cost_bps"), conn)


def _partition(
    defs: dg.Definitions, plan: SweepPlan, instance: dg.DagsterInstance, fold: str
) -> dg.ExecuteInProcessResult:
    load_bars(defs, plan.config, instance, "SYNA")
    return run_partition(defs, plan.config, instance, "SYNA", fold)


def _check(result: dg.ExecuteInProcessResult, key: dg.AssetCheckKey) -> dg.AssetCheckEvaluation:
    return next(e for e in result.get_asset_check_evaluations() if e.asset_check_key == key)


def test_a_search_sweep_records_each_folds_winner_and_its_trial(db_url: str, tmp_path: Path) -> None:
    plan = _plan(hpo=SEARCH)
    with dg.instance_for_test() as instance:
        report = materialize_sweep(_defs(plan, db_url, tmp_path), plan.config, instance, cryptos=["SYNA"])
        assert report.ok and not report.failed_checks, (report.failed, report.failed_checks)
        first = _results(db_url)
        per_fold = first[first.cost_bps == 0].set_index("fold_id")
        assert len(per_fold) == len(plan.folds) == 2
        assert per_fold.model_hyperparams.notna().all() and per_fold.model_hyperparams.is_unique
        assert per_fold.optuna_trial_id.notna().all() and per_fold.optuna_trial_id.is_unique

        # Each row joins to its trial in the same database: the study of that model, crypto and fold, whose
        # parameters are the ones the row records.
        with get_engine(db_url).connect() as conn:
            for fold_id, row in per_fold.iterrows():
                study = conn.execute(
                    sa.text("select s.study_name from trials t join studies s on s.study_id = t.study_id "
                            "where t.trial_id = :id"),
                    {"id": int(row.optuna_trial_id)},
                ).scalar_one()  # fmt: skip
                windows_id = plan.fold(fold_id).windows_id  # the fold by its whole window, whatever its key
                assert study.startswith(f"{plan.run_id}/xgboost/SYNA/{windows_id}/")
                searched = dict(conn.execute(
                    sa.text("select param_name, param_value from trial_params where trial_id = :id"),
                    {"id": int(row.optuna_trial_id)},
                ).all())  # fmt: skip
                recorded = json.loads(row.model_hyperparams)
                assert set(searched) == {"n_estimators", "max_depth", "learning_rate", "subsample",
                                         "colsample_bytree", "min_child_weight", "reg_lambda"}  # fmt: skip
                assert all(recorded[p] == pytest.approx(v) for p, v in searched.items())
                # The same trial by its study and number: what stays the same between fresh runs.
                number = conn.execute(
                    sa.text("select number from trials where trial_id = :id"),
                    {"id": int(row.optuna_trial_id)},
                ).scalar_one()
                assert (row.optuna_study, row.optuna_trial_number) == (study, number)

        # Re-running resumes the finished studies (no new trial) and rewrites the same rows.
        with get_engine(db_url).connect() as conn:
            n_trials = conn.execute(sa.text("select count(*) from trials")).scalar_one()
        assert materialize_sweep(_defs(plan, db_url, tmp_path), plan.config, instance, cryptos=["SYNA"]).ok
        with get_engine(db_url).connect() as conn:
            assert conn.execute(sa.text("select count(*) from trials")).scalar_one() == n_trials
        volatile = ["id", "created_at", "dagster_run_id"]
        pd.testing.assert_frame_equal(_results(db_url).drop(columns=volatile), first.drop(columns=volatile))


def test_a_missing_key_blocks_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CVN_HPO_XGB_1H_MAX_DEPTH")
    db_url = f"sqlite:///{tmp_path / 'r.db'}"
    with dg.instance_for_test() as instance:
        plan = _plan()
        defs = _defs(plan, db_url, tmp_path)
        result = _partition(defs, plan, instance, "f00")
        assert not result.success
        coverage = _check(result, KEYS.coverage_check)
        assert not coverage.passed and coverage.severity == dg.AssetCheckSeverity.ERROR
        assert coverage.metadata["not_set"].value == ["CVN_HPO_XGB_1H_MAX_DEPTH"]
        assert instance.get_latest_materialization_event(KEYS.hyperparameters) is not None
        assert instance.get_latest_materialization_event(KEYS.model("xgboost")) is None  # blocked
        # The check says which keys are missing and what fixes them.
        assert (
            "CVN_HPO_XGB_1H_MAX_DEPTH" in coverage.description
            and "cvn hp seed --apply" in coverage.description
        )
        assert "cvn hp set KEY VALUE" in coverage.description
    # A partition whose models cannot train writes no rows at all: no results and no baselines.
    assert _results(db_url).empty
    with get_engine(db_url).connect() as conn:
        assert conn.execute(sa.text("select count(*) from finetune_baselines")).scalar() == 0


def test_allowed_fallbacks_train_visibly_and_trip_the_fallback_rate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CVN_HPO_XGB_1H_MAX_DEPTH")
    db_url = f"sqlite:///{tmp_path / 'r.db'}"
    plan = _plan(hpo={"allow_fallback": True})
    with dg.instance_for_test() as instance:
        defs = _defs(plan, db_url, tmp_path)
        result = _partition(defs, plan, instance, "f00")
        assert result.success
        coverage = _check(result, KEYS.coverage_check)
        assert not coverage.passed and coverage.severity == dg.AssetCheckSeverity.WARN  # warns, trains
        hp = instance.get_latest_materialization_event(KEYS.hyperparameters).asset_materialization
        assert hp.metadata["hp/xgboost"].value["sources"]["CVN_HPO_XGB_1H_MAX_DEPTH"] == "fallback"
        logged = [e.message for e in instance.all_logs(result.run_id) if "hpo_fallback_applied" in e.message]
        assert logged and "CVN_HPO_XGB_1H_MAX_DEPTH" in logged[0]
        model = instance.get_latest_materialization_event(KEYS.model("xgboost")).asset_materialization
        assert model.metadata["hpo_fallbacks"].value == 1
        assert json.loads(_results(db_url).model_hyperparams[0])["max_depth"] == 5  # the values file's

        audit = defs.resolve_job_def(KEYS.audit_job).execute_in_process(
            instance=instance,
            raise_on_error=False,
        )
        rate = _check(audit, KEYS.fallback_rate_check)
        assert not rate.passed and rate.severity == dg.AssetCheckSeverity.ERROR
        assert rate.metadata["fallback_rate"].value == 1.0


@pytest.mark.parametrize(
    ("fallbacks", "trainings", "level"),
    [(0, 0, "ok"), (1, 100, "ok"), (2, 100, "warn"), (5, 100, "warn"), (6, 100, "error"), (1, 1, "error")],
)
def test_fallback_rate_thresholds(fallbacks: int, trainings: int, level: str) -> None:
    assert fallback_rate_level(fallbacks, trainings, warn=0.01, error=0.05)[1] == level


def test_meta_labeling_in_the_graph_reads_its_resolved_hyperparameters(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'r.db'}"
    plan = _plan(harness={"meta_labeling": {"enabled": True}})
    with dg.instance_for_test() as instance:
        defs = _defs(plan, db_url, tmp_path)
        assert _partition(defs, plan, instance, "f00").success
        hp = instance.get_latest_materialization_event(KEYS.hyperparameters).asset_materialization
        assert hp.metadata["hp/meta_label"].value["values"] == {"C": 1.0}
