"""Audits through Dagster on a real instance (runs in process): a re-audit reuses the captured fold and
trained models, recomputes exactly what changed, leaves the anchor SKIPPED in a light audit (WARN, the
audit downgraded everywhere it shows), turns an absent capture into INCONCLUSIVE_TOOLING, and `cvn perf`'s
figures per diagnostic. Launching through the daemon (`cvn audit`) is in test_cli; two concurrent audits of
one cell through the webserver on PostgreSQL are in test_run_queue."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from cvn_assets.core.config import SweepConfig, parse_config
from cvn_assets.defs.code_versions import CodeVersions
from cvn_assets.defs.keys import partition_key
from cvn_assets.defs.perf import sweep_perf
from cvn_assets.defs.sweep import Sweep
from cvn_assets.store.engine import upgrade
from cvn_assets.store.verdicts import read_verdicts
from cvn_assets_tests.conftest import small_raw_config
from cvn_assets_tests.in_process import load_bars, sweep_defs

pytestmark = pytest.mark.usefixtures("small_hyperparams")


def _config() -> SweepConfig:
    raw = small_raw_config(
        universe={"SYNA": {"kind": "synthetic"}},
        models={"xgboost": {}, "logreg": {"hpo": "search"}},
        hpo={"n_trials": 3, "sampler_startup_trials": 2},
        costs_bps=[10],
    )
    raw["folds"]["max_folds"] = 1
    return parse_config(raw)


def _run(defs: dg.Definitions, job: str, partition: dg.MultiPartitionKey, instance: dg.DagsterInstance,
         assets: list[dg.AssetKey] | None = None) -> dg.ExecuteInProcessResult:  # fmt: skip
    job_def = defs.resolve_job_def(job)
    if assets is not None:
        job_def = job_def.get_subset(asset_selection=set(assets))
    result = job_def.execute_in_process(partition_key=partition, instance=instance, raise_on_error=False)
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    return result


def _reused(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    return {
        e.asset_key.path[-1]: bool(e.materialization.metadata.get("reused"))
        for e in result.get_asset_materialization_events()
        if e.asset_key.path[1] in ("features", "fold_dataset", "model")
    }


def _checks(result: dg.ExecuteInProcessResult) -> dict[str, tuple[bool, dg.AssetCheckSeverity, str]]:
    return {
        e.asset_key.path[-1]: (e.passed, e.severity, e.description or "")
        for e in result.get_asset_check_evaluations()
        if e.asset_key.path[1] == "diagnostics"
    }


def _verdicts(db_url: str, run_id: str) -> dict[tuple[str, str | None], dict]:
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            return {(v["diagnostic"], v["variant"]): v for v in read_verdicts(conn, run_id)}
    finally:
        engine.dispose()


def test_a_re_audit_reuses_the_capture_and_recomputes_exactly_what_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config()
    sweep = Sweep.of(config)
    keys = sweep.keys
    db_url = f"sqlite:///{tmp_path / 'results.db'}"
    upgrade(db_url)
    defs = sweep_defs(config, db_url, tmp_path)
    with dg.instance_for_test() as instance:
        plan = load_bars(defs, config, instance, "SYNA")
        cell = partition_key("SYNA", plan.fold_ids[0])
        _run(defs, keys.sweep_job, cell, instance)

        # A light audit reuses the whole capture: nothing is trained again.
        light = _run(defs, keys.light_diagnostics_job, cell, instance)
        assert _reused(light) == {"base_features": True, "fold_dataset": True, "xgboost_model": True,
                                  "logreg_model": True}  # fmt: skip
        models = [e for e in light.get_asset_materialization_events() if e.asset_key.path[1] == "model"]
        assert models and not any("event/training_started" in e.materialization.metadata for e in models)
        checks = _checks(light)
        passed, severity, why = checks["reproducibility_anchor_xgboost"]
        assert (
            not passed and severity == dg.AssetCheckSeverity.WARN and "SKIPPED" in why and "downgraded" in why
        )
        assert checks["leakage"][0] and checks["trial_invariance_logreg"][0]
        anchor = light.get_asset_materialization_events()
        meta = next(e for e in anchor if e.asset_key == keys.diagnostic("reproducibility_anchor", "xgboost"))
        assert meta.materialization.metadata["audit"].value.startswith("downgraded")
        stored = _verdicts(db_url, config.run_id)
        assert stored["reproducibility_anchor", "xgboost"]["crossref_status"] == "SKIPPED"
        assert stored["reproducibility_anchor", "xgboost"]["anchor_available"] is False
        xy_light = {k: (v["status"], v["summary"]) for k, v in stored.items() if v["consumes"] == "xy_only"}

        # The full audit retrains with the stored winners and matches the stored rows; the xy_only verdicts
        # are those of the light audit.
        full = _run(defs, keys.diagnostics_job, cell, instance)
        assert all(_reused(full).values())
        stored = _verdicts(db_url, config.run_id)
        for model in ("xgboost", "logreg"):
            anchor_row = stored["reproducibility_anchor", model]
            assert (anchor_row["status"], anchor_row["crossref_status"], anchor_row["anchor_available"]) == (
                "PASS", "MATCHED", True)  # fmt: skip
        assert {
            k: (v["status"], v["summary"]) for k, v in stored.items() if v["consumes"] == "xy_only"
        } == xy_light
        assert stored["trial_invariance", "logreg"]["status"] == "PASS"

        # xgboost's code changed: only its model is computed again; the fold and logreg are reused.
        changed = CodeVersions.model

        def edited(self: CodeVersions, name: str, feature_set: str = "base") -> str:
            return changed(self, name, feature_set) + ("-edited" if name == "xgboost" else "")

        monkeypatch.setattr(CodeVersions, "model", edited)
        edited_defs = sweep_defs(config, db_url, tmp_path)
        again = _run(edited_defs, keys.light_diagnostics_job, cell, instance)
        assert _reused(again) == {"base_features": True, "fold_dataset": True, "xgboost_model": False,
                                  "logreg_model": True}  # fmt: skip
        monkeypatch.undo()

        # The captured fold dataset is gone: a diagnostic run alone says INCONCLUSIVE_TOOLING, never PASS.
        folder = tmp_path / "artifacts" / config.name / "fold_dataset" / "SYNA" / plan.fold_ids[0]
        shutil.rmtree(folder)
        alone = _run(defs, keys.light_diagnostics_job, cell, instance, assets=[keys.diagnostic("leakage")])
        passed, severity, why = _checks(alone)["leakage"]
        assert not passed and severity == dg.AssetCheckSeverity.ERROR and "INCONCLUSIVE_TOOLING" in why
        assert "no captured tiny/fold_dataset" in why
        assert _verdicts(db_url, config.run_id)["leakage", None]["data_hash"] is None

        # What each diagnostic costs, per cell, from the event log (`cvn perf`).
        perf = sweep_perf(instance, sweep, timedelta(hours=1))
        assert set(perf.diagnostics["asset"]) == {
            f"diagnostic {n}"
            for n in (
                "adversarial_validation",
                "drift",
                "leakage",
                "trial_invariance",
                "reproducibility_anchor",
            )
        }
        assert (perf.diagnostics["p95_s"] >= perf.diagnostics["p50_s"]).all()
