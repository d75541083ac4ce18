"""The diagnostics on numbers: the registry's guard, each in-tree diagnostic on cases built to pass and to
fail (a planted leak, a planted drift, a trial on other data, a stored row that does not reproduce), the
light audit's downgrade, and the verdicts' store. The Dagster path (reuse of the captured fold, cvn audit)
is in test_audit_runs.py."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from cvn_assets import steps
from cvn_assets.core.config import SweepConfig, parse_config
from cvn_assets.core.datasets import FoldDataset
from cvn_assets.core.sweep_plan import plan_sweep
from cvn_assets.definitions import build_definitions, validate_sweep
from cvn_assets.diagnostics.audit import FULL, LIGHT, CaptureMissing, CellCapture, audit_one
from cvn_assets.diagnostics.audits.drift import psi
from cvn_assets.diagnostics.registry import (
    XY_ONLY,
    DiagnosticDeclarationError,
    TrialRecord,
    get_diagnostic,
    register_diagnostic,
    registered_diagnostics,
    unregister_diagnostic,
)
from cvn_assets.diagnostics.verdicts import (
    COMPLETE,
    DOWNGRADED,
    INCONCLUSIVE,
    PASS,
    Finding,
    audit_overview,
    audit_state,
)
from cvn_assets.harness.contracts import TrainedArtifact
from cvn_assets.store.verdicts import read_verdicts, write_verdicts
from cvn_assets_tests.conftest import small_raw_config


@pytest.fixture(scope="module")
def config() -> SweepConfig:
    return parse_config(small_raw_config(models={"xgboost": {}}))


@pytest.fixture(scope="module")
def dataset(config: SweepConfig) -> FoldDataset:
    plan = plan_sweep(config)
    return steps.cell_dataset(config, "SYNA", plan.folds[0], steps.ohlcv(config, "SYNA"))


@pytest.fixture(scope="module")
def artifact(config: SweepConfig, dataset: FoldDataset) -> TrainedArtifact:
    params = {"n_estimators": 15, "max_depth": 3, "learning_rate": 0.1, "subsample": 0.8,
              "colsample_bytree": 0.8, "min_child_weight": 5.0, "reg_lambda": 1.0}  # fmt: skip
    return steps.retrain_model(config, "xgboost", dataset.for_feature_set("base"), params, threads=1)


def _run(name: str, **inputs: Any) -> Finding:
    return get_diagnostic(name).run({**inputs, "params": get_diagnostic(name).params})


def test_the_in_tree_diagnostics_declare_what_they_consume() -> None:
    declared = {name: get_diagnostic(name) for name in registered_diagnostics()}
    assert {n: (s.consumes, s.per_model, s.anchor) for n, s in declared.items()} == {
        "adversarial_validation": ("xy_only", False, False),
        "drift": ("xy_only", False, False),
        "leakage": ("xy_only", False, False),
        "trial_invariance": ("trial_dynamics", True, False),
        "reproducibility_anchor": ("unknown", True, True),
    }
    assert all(spec.problem is None for spec in declared.values())


@pytest.mark.parametrize(
    ("signature", "consumes", "names"),
    [
        (
            "dataset, trials, params",
            XY_ONLY,
            ["declared xy_only but asks for input 'trials'", "trial_dynamics"],
        ),
        ("dataset, result_rows, params", "unknown", ["asks for input 'result_rows', which no diagnostic"]),
        ("dataset, **inputs", XY_ONLY, ["takes **inputs: it must name each input"]),
    ],
)
def test_a_diagnostic_asking_for_an_undeclared_input_fails_when_the_definitions_load(
    signature: str, consumes: str, names: list[str], config: SweepConfig
) -> None:
    namespace: dict[str, Any] = {}
    exec(f"def sneaky({signature}):\n    return None", namespace)  # noqa: S102 - a signature under test
    register_diagnostic("sneaky", consumes=consumes, code_version="1")(namespace["sneaky"])
    try:
        with pytest.raises(DiagnosticDeclarationError) as refused:
            validate_sweep(config)
        assert "diagnostic 'sneaky'" in str(refused.value) and all(n in str(refused.value) for n in names)
        # The code location still loads: the sweep that would run it is listed as not served, naming why.
        defs = build_definitions([config], artifacts_dir=Path("/nonexistent"))
        jobs = {j.name for j in defs.get_repository_def().get_all_jobs()}
        assert f"{config.name}_sweep" not in jobs
        # A sweep that leaves it out is served.
        kept = parse_config(small_raw_config(models={"xgboost": {}}, diagnostics={"run": ["leakage"]}))
        validate_sweep(kept)
    finally:
        unregister_diagnostic("sneaky")


def test_only_the_declared_inputs_reach_a_diagnostic(dataset: FoldDataset) -> None:
    seen: dict[str, Any] = {}

    def spy(dataset: FoldDataset, params: dict) -> Finding:
        seen.update(dataset=dataset, params=params)
        return Finding(PASS, "ok")

    register_diagnostic("spy", consumes=XY_ONLY, params={"k": 1}, code_version="1")(spy)
    try:
        capture = _capture(dataset, artifact=None)
        verdict = audit_one(get_diagnostic("spy"), {"k": 2}, capture, "SYNA", "f00", None, FULL)
        assert verdict.status == PASS and set(seen) == {"dataset", "params"} and seen["params"] == {"k": 2}
    finally:
        unregister_diagnostic("spy")


def test_leakage_passes_the_fold_as_built_and_catches_a_test_row_inside_the_purge(
    dataset: FoldDataset, config: SweepConfig
) -> None:
    clean = _run("leakage", dataset=dataset)
    assert clean.status == PASS and clean.figures["leaking_rows"] == 0
    # A row from the purge gap between validation and test planted into the test split.
    bars = steps.ohlcv(config, "SYNA")
    gap = bars.index[(bars.index >= dataset.fold.val_end) & (bars.index < dataset.fold.test_start)]
    planted_at = gap[0]  # the bar after validation ends: inside the purge, where its labels still run
    row = dataset.test.iloc[[0]].copy()
    row.index = pd.DatetimeIndex([planted_at], name=dataset.test.index.name)
    row["label_end"] = planted_at + (dataset.test["label_end"].iloc[0] - dataset.test.index[0])
    leaky = replace(dataset, test=pd.concat([row, dataset.test]))
    found = _run("leakage", dataset=leaky)
    assert found.status == "FAIL"
    rows = {(r["split"], r["row"]) for r in found.table}
    assert ("test", str(planted_at)) in rows  # outside its window
    assert any(r["split"] == "validation" and "overlaps test" in r["problem"] for r in found.table)
    # A train label that runs into validation (no purge) is caught too.
    late = dataset.train.copy()
    late.iloc[-1, late.columns.get_loc("label_end")] = dataset.validation.index[3]
    assert _run("leakage", dataset=replace(dataset, train=late)).status == "FAIL"


def test_psi_by_hand_and_drift_on_a_planted_shift(dataset: FoldDataset) -> None:
    rng = np.random.default_rng(0)
    same = rng.normal(size=5000)
    assert psi(same, same, 10) == pytest.approx(0.0)
    expected = np.arange(100, dtype=float)  # ten bins of ten values
    actual = np.r_[np.full(50, 5.0), np.full(50, 95.0)]  # half in the first bin, half in the last
    e, a = np.full(10, 0.1), np.r_[0.5, np.full(8, 1e-4), 0.5]
    assert psi(expected, actual, 10) == pytest.approx(float(np.sum((a - e) * np.log(a / e))))
    assert _run("drift", dataset=dataset).figures["max_psi"] >= 0
    shifted = dataset.test.copy()
    name = dataset.feature_names[0]
    shifted[name] = shifted[name] + 10 * dataset.train[name].std()
    found = _run("drift", dataset=replace(dataset, test=shifted))
    assert (
        found.status == "WARN"
        and found.table[0]["feature"] == name
        and found.figures["features_shifted"] >= 1
    )


def test_adversarial_validation_names_the_feature_that_gives_the_test_rows_away(dataset: FoldDataset) -> None:
    rows = pd.concat([dataset.train, dataset.test])
    shuffled = rows.sample(frac=1.0, random_state=0)
    alike = replace(
        dataset, train=shuffled.iloc[: len(dataset.train)], test=shuffled.iloc[len(dataset.train) :]
    )
    found = _run("adversarial_validation", dataset=alike)
    assert found.status == PASS and abs(found.figures["adversarial_auc"] - 0.5) < 0.1
    marked = alike.test.copy()
    name = dataset.feature_names[-1]
    marked[name] = marked[name] + 100.0
    found = _run("adversarial_validation", dataset=replace(alike, test=marked))
    assert found.status == "WARN" and found.figures["adversarial_auc"] > 0.99
    assert found.table[0]["feature"] == name


def _trials(hashes: list[str | None]) -> list[TrialRecord]:
    return [TrialRecord(i, "COMPLETE", 0.6, {"max_depth": 3}, h, {0: 0.7}) for i, h in enumerate(hashes)]


def test_trial_invariance_on_trials_of_the_captured_fold_and_of_another(
    dataset: FoldDataset, artifact: TrainedArtifact
) -> None:
    captured = dataset.for_feature_set("base").xy_hash()
    fixed = _run("trial_invariance", dataset=dataset, artifact=artifact, trials=[])
    assert fixed.status == "NOT_APPLICABLE"
    from cvn_assets.harness.contracts import SearchSummary

    searched = replace(artifact, search=SearchSummary("study", 1, 0, 0.6, 3, 0, 1.0, 1.0))
    assert (
        _run("trial_invariance", dataset=dataset, artifact=searched, trials=_trials([captured] * 3)).status
        == PASS
    )
    odd = _run(
        "trial_invariance", dataset=dataset, artifact=searched, trials=_trials([captured, "0" * 16, captured])
    )
    assert odd.status == "FAIL" and odd.table[0]["trial"] == 1
    unknown = _run("trial_invariance", dataset=dataset, artifact=searched, trials=_trials([captured, None]))
    assert unknown.status == "INCONCLUSIVE_TOOLING"
    # The final fit on other rows than the captured fold's.
    other = replace(dataset, train=dataset.train.iloc[1:])
    assert _run("trial_invariance", dataset=other, artifact=artifact, trials=[]).status == "FAIL"


def _stored_row(artifact: TrainedArtifact, **changed: float) -> dict[str, Any]:
    row: dict[str, Any] = {"model_hyperparams": json.dumps(artifact.hyperparams),
                           "threshold_buy_val": artifact.threshold}  # fmt: skip
    for split, metrics in (("val", artifact.val_metrics), ("test", artifact.test_metrics)):
        row |= {f"{k}_{split}": v for k, v in metrics.as_dict().items()}
    return row | changed


def _capture(dataset: FoldDataset, artifact: TrainedArtifact | None, rows: list | None = None,
             config: SweepConfig | None = None) -> CellCapture:  # fmt: skip
    def retrain(model: str, fs: str, data: FoldDataset):  # noqa: ANN202
        assert config is not None
        return lambda params: steps.retrain_model(config, model, data, params, threads=1)

    def missing(*_: Any) -> Any:
        raise CaptureMissing("no captured model")

    return CellCapture(
        load_dataset=lambda: dataset,
        load_artifact=(lambda m, fs: artifact) if artifact else missing,
        load_trials=lambda a: [],
        load_stored_rows=lambda m, fs: rows or [],
        make_retrain=retrain,
    )


def test_the_anchor_reproduces_the_stored_row_and_a_light_audit_skips_it_visibly(
    dataset: FoldDataset, artifact: TrainedArtifact, config: SweepConfig
) -> None:
    anchor = get_diagnostic("reproducibility_anchor")
    model = ("xgboost", "base")

    def verdict(rows: list, mode: str = FULL):  # noqa: ANN202
        return audit_one(
            anchor, anchor.params, _capture(dataset, artifact, rows, config), "SYNA", "f00", model, mode
        )

    matched = verdict([_stored_row(artifact)])
    assert (matched.status, matched.crossref_status, matched.anchor_available) == (PASS, "MATCHED", True)
    moved = verdict([_stored_row(artifact, auc_buy_test=artifact.test_metrics.auc_buy + 0.01)])
    assert (moved.status, moved.crossref_status) == ("FAIL", "MISMATCH") and "auc_buy_test" in moved.summary
    nothing = verdict([])
    assert (nothing.status, nothing.crossref_status, nothing.anchor_available) == (
        "INCONCLUSIVE_TOOLING", "INCONCLUSIVE_TOOLING", False)  # fmt: skip
    skipped = verdict([_stored_row(artifact)], LIGHT)
    assert (skipped.status, skipped.crossref_status, skipped.anchor_available) == (
        "SKIPPED",
        "SKIPPED",
        False,
    )
    assert audit_state([matched]) == COMPLETE and audit_state([matched, skipped]) == DOWNGRADED
    assert audit_state([skipped, nothing]) == INCONCLUSIVE


def test_xy_only_verdicts_are_the_same_with_the_anchor_skipped_or_not(dataset: FoldDataset) -> None:
    capture = _capture(dataset, artifact=None)
    for name in ("adversarial_validation", "drift", "leakage"):
        spec = get_diagnostic(name)
        full, light = (
            audit_one(spec, spec.params, capture, "SYNA", "f00", None, mode) for mode in (FULL, LIGHT)
        )
        assert (full.status, full.summary, full.figures) == (light.status, light.summary, light.figures), name


def test_an_absent_capture_is_inconclusive_never_a_pass(dataset: FoldDataset) -> None:
    def gone() -> FoldDataset:
        raise CaptureMissing("no captured tiny/fold_dataset for SYNA f00")

    capture = replace(_capture(dataset, artifact=None), load_dataset=gone)
    for name in registered_diagnostics():
        spec = get_diagnostic(name)
        model = ("xgboost", "base") if spec.per_model else None
        verdict = audit_one(spec, spec.params, capture, "SYNA", "f00", model, FULL)
        assert verdict.status == "INCONCLUSIVE_TOOLING" and verdict.data_hash is None, name
        assert "no captured" in verdict.summary


def _verdict_row(diagnostic: str, status: str, variant: str | None = None, **more: Any) -> dict[str, Any]:
    return {"run_id": "r1", "strategy": "s", "diagnostic": diagnostic, "consumes": "xy_only", "crypto": "SYNA",
            "fold_id": "f00", "feature_set": "base" if variant else None, "variant": variant, "status": status,
            "summary": f"{diagnostic} says {status}", "figures": None, "crossref_status": None,
            "anchor_available": None, "audit_mode": "full", "data_hash": "abc", "elapsed_s": 0.1,
            "code_version": "v", "dagster_run_id": "run", "created_at": datetime.now(UTC)} | more  # fmt: skip


def test_a_re_audit_replaces_what_each_diagnostic_said_and_a_downgrade_can_be_found_later(
    engine: sa.Engine,
) -> None:
    scope = {"run_id": "r1", "strategy": "s", "crypto": "SYNA", "fold_id": "f00"}
    write_verdicts(engine, scope, [_verdict_row("leakage", "PASS"), _verdict_row("trial_invariance", "PASS", "xgboost"),
                                   _verdict_row("trial_invariance", "PASS", "logreg")])  # fmt: skip
    light = _verdict_row("reproducibility_anchor", "SKIPPED", "xgboost", crossref_status="SKIPPED",
                         anchor_available=False, audit_mode="light")  # fmt: skip
    write_verdicts(engine, scope, [_verdict_row("leakage", "FAIL"), light])
    write_verdicts(engine, scope, [_verdict_row("trial_invariance", "WARN", "xgboost")])
    with engine.connect() as conn:
        rows = read_verdicts(conn, "r1")
        downgraded = conn.execute(
            sa.text("SELECT crypto, fold_id FROM diagnostic_verdicts WHERE anchor_available = :no"),
            {"no": False},
        ).all()
    assert [(r["diagnostic"], r["variant"], r["status"]) for r in rows] == [
        ("leakage", None, "FAIL"),
        ("reproducibility_anchor", "xgboost", "SKIPPED"),
        ("trial_invariance", "logreg", "PASS"),
        ("trial_invariance", "xgboost", "WARN"),
    ]
    assert downgraded == [("SYNA", "f00")]
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:  # one verdict per subject, NULL or not
        conn.execute(sa.insert(sa.table("diagnostic_verdicts", *(sa.column(c) for c in rows[0]))),
                     [{k: v for k, v in _verdict_row("leakage", "PASS").items()}])  # fmt: skip
    lines, table = audit_overview(rows, "tiny")
    assert "1 cells audited, 0 complete, 1 downgraded" in lines[0] and "FAIL: leakage (SYNA f00)" in lines[0]
    assert {r["diagnostic"]: r["skipped"] for r in table}["reproducibility_anchor"] == 1


def test_the_tags_read_for_reuse_are_dagsters_own() -> None:
    from dagster._core.definitions.data_version import CODE_VERSION_TAG, DATA_VERSION_TAG

    from cvn_assets.defs import capture

    assert (capture.CODE_VERSION_TAG, capture.DATA_VERSION_TAG) == (CODE_VERSION_TAG, DATA_VERSION_TAG), (
        "Dagster renamed the tags a materialization's code and data versions are stored under: update "
        "cvn_assets/defs/capture.py"
    )
