"""diagnostics/<name>[crypto x fold] for every cell diagnostic, diagnostics/<name>_<model>[crypto x fold] for
every per-model one: one multi-asset per sweep, so a cell's audit loads its captured fold once.

Each diagnostic asset is the verdict on its cell (or model): its status, summary and figures as metadata,
a `verdict` check (WARN for a finding or a skipped anchor, ERROR for a broken invariant or an
inconclusive audit), and a row in the results database's `diagnostic_verdicts`. What it reads is the
stored capture (the fold dataset, the trained models, their HPO studies and result rows), loaded through
the artifact store rather than as Dagster inputs: an absent capture is a verdict (INCONCLUSIVE_TOOLING),
not a step that cannot start. Its lineage to the capture (deps) gives the UI's staleness.

The audit jobs (`<sweep>_diagnostics`, `<sweep>_diagnostics_light`) select the capture with the
diagnostics: in an audit run a current capture is reused, not recomputed (`defs/capture.py`).
"""

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dagster as dg
import sqlalchemy as sa

from cvn_assets import steps
from cvn_assets.core.config import BASE_FEATURE_SET
from cvn_assets.core.datasets import FoldDataset
from cvn_assets.core.folds import current_fold_id
from cvn_assets.defs.capture import AUDIT_TAG, FULL, audit_mode
from cvn_assets.defs.io_manager import ArtifactIOManager, MissingUpstreamError
from cvn_assets.defs.keys import crypto_and_fold
from cvn_assets.defs.metadata import evaluated_now, readable_values, rows_table
from cvn_assets.defs.resources import ResultsStore
from cvn_assets.defs.sweep import Sweep, model_threads
from cvn_assets.diagnostics.audit import CaptureMissing, CellCapture, audit_one, json_safe
from cvn_assets.diagnostics.registry import get_diagnostic
from cvn_assets.diagnostics.verdicts import (
    PASSING,
    SKIPPED,
    WARN,
    Verdict,
    audit_state,
    describe_state,
)
from cvn_assets.harness.contracts import TrainedArtifact
from cvn_assets.harness.hpo import TrialRecord, stored_trials
from cvn_assets.harness.registry import META_LABEL
from cvn_assets.store.schema import finetune_results
from cvn_assets.store.verdicts import write_verdicts
from cvn_assets.version import code_version

SEVERITY = {WARN: dg.AssetCheckSeverity.WARN, SKIPPED: dg.AssetCheckSeverity.WARN}  # else ERROR
VERDICT_CHECK = "verdict"
ELAPSED = "elapsed_s"  # a verdict's own time, in its materialization's metadata (`cvn perf` reads it)


@dataclass(frozen=True)
class Subject:
    """One diagnostic asset: a diagnostic on the cell, or on one model (name, feature set) of it."""

    diagnostic: str
    model: tuple[str, str] | None


def subjects(sweep: Sweep) -> dict[dg.AssetKey, Subject]:
    """Every diagnostic asset of the sweep, by key: cell diagnostics once, per-model ones per trained model."""
    keys, out = sweep.keys, {}
    models = [(v.name, v.feature_set) for v in steps.variants(sweep.config) if not v.is_ensemble]
    for name in steps.diagnostic_names(sweep.config):
        if get_diagnostic(name).per_model:
            out |= {keys.diagnostic(name, m, fs): Subject(name, (m, fs)) for m, fs in models}
        else:
            out[keys.diagnostic(name)] = Subject(name, None)
    return out


def capture_keys(sweep: Sweep) -> list[dg.AssetKey]:
    """What an audit captures of a cell: every feature set, the fold dataset, the hyperparameters, every
    trained model (not predictions, ensembles or economics: no diagnostic reads them)."""
    keys, cfg = sweep.keys, sweep.config
    models = [keys.model(v.name, v.feature_set) for v in steps.variants(cfg) if not v.is_ensemble]
    return [*(keys.features(n) for n in steps.feature_set_names(cfg)), keys.fold_dataset, keys.hyperparameters,
            *models]  # fmt: skip


def _label(model: tuple[str, str] | None) -> str:
    if model is None:
        return "the cell"
    return model[0] if model[1] == BASE_FEATURE_SET else f"{model[0]} on feature set {model[1]}"


def _spec(sweep: Sweep, key: dg.AssetKey, subject: Subject) -> dg.AssetSpec:
    keys, cfg = sweep.keys, sweep.config
    spec = get_diagnostic(subject.diagnostic)
    deps = [keys.fold_dataset]
    if subject.model is not None:
        deps.append(keys.model(*subject.model))
    if "stored_rows" in spec.inputs:
        deps += [keys.economics(c) for c in cfg.costs_bps]
    return dg.AssetSpec(
        key,
        deps=deps,
        group_name=keys.group("diagnostics"),
        code_version=sweep.code_versions.diagnostic(subject.diagnostic, *(subject.model or ())),
        kinds={"python"},
        tags={"cvn/diagnostic": subject.diagnostic, "cvn/consumes": spec.consumes},
        description=f"{spec.description} On {_label(subject.model)}; consumes {spec.consumes}"
        + (" (the reproducibility anchor: skipped by a light audit)" if spec.anchor else "")
        + ". Its verdict is stored in diagnostic_verdicts.",
    )


def _check_spec(sweep: Sweep, key: dg.AssetKey, subject: Subject) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        VERDICT_CHECK,
        asset=key,
        partitions_def=sweep.keys.crypto_fold_partitions,
        description=f"{subject.diagnostic}'s verdict: passes on PASS and NOT_APPLICABLE; WARN on a finding or "
        "a skipped anchor (a downgraded audit); ERROR on FAIL or INCONCLUSIVE_TOOLING (a capture missing).",
    )


def _stored_rows(
    engine: sa.Engine, run_id: str, crypto: str, fold_id: str, model: str, fs: str
) -> list[dict]:
    r = finetune_results.c
    query = sa.select(finetune_results).where(
        r.run_id == run_id, r.crypto == crypto, r.fold_id == current_fold_id(fold_id), r.variant == model,
        r.feature_set == fs,
    ).order_by(r.cost_bps)  # fmt: skip
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def cell_capture(
    sweep: Sweep,
    context: dg.AssetExecutionContext,
    io_manager: ArtifactIOManager,
    results_store: ResultsStore,
) -> CellCapture:
    """The cell's stored capture, loaded on demand; anything not stored raises CaptureMissing naming it."""
    cfg, keys = sweep.config, sweep.keys
    crypto, fold_id = crypto_and_fold(context)
    partition = context.partition_key
    cell = f"{crypto} {fold_id}"

    def load(key: dg.AssetKey) -> Any:
        try:
            return io_manager.load_partition(key, partition)
        except MissingUpstreamError:
            raise CaptureMissing(
                f"no captured {key.to_user_string()} for {cell}: run the audit job "
                f"{keys.diagnostics_job} on this partition (it captures what is missing)"
            ) from None

    def trials(artifact: TrainedArtifact) -> Sequence[TrialRecord]:
        if artifact.search is None:
            return []
        found = stored_trials(results_store.database_url, artifact.search.study_name)
        if found is None:
            raise CaptureMissing(f"HPO study {artifact.search.study_name} is not in the results database")
        return found

    def rows(model: str, fs: str) -> list[dict]:
        return _stored_rows(results_store.engine(), cfg.run_id, crypto, fold_id, model, fs)

    def retrain(model: str, fs: str, dataset: FoldDataset):  # noqa: ANN202 - a closure
        meta = load(keys.hyperparameters).get(META_LABEL) if cfg.harness.meta_labeling.enabled else None
        threads = model_threads(cfg, context.instance)
        return lambda params: steps.retrain_model(cfg, model, dataset, params, meta, threads)

    return CellCapture(
        load_dataset=lambda: load(keys.fold_dataset),
        load_artifact=lambda model, fs: load(keys.model(model, fs)),
        load_trials=trials,
        load_stored_rows=rows,
        make_retrain=retrain,
    )


def verdict_row(verdict: Verdict, run_id: str, strategy: str, dagster_run_id: str) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "strategy": strategy,
        "diagnostic": verdict.diagnostic,
        "consumes": verdict.consumes,
        "crypto": verdict.crypto,
        "fold_id": current_fold_id(verdict.fold_id),
        "feature_set": verdict.feature_set,
        "variant": verdict.variant,
        "status": verdict.status,
        "summary": verdict.summary,
        "figures": json.dumps(json_safe(verdict.figures), sort_keys=True) if verdict.figures else None,
        "crossref_status": verdict.crossref_status,
        "anchor_available": verdict.anchor_available,
        "audit_mode": verdict.audit_mode,
        "data_hash": verdict.data_hash,
        "elapsed_s": verdict.elapsed_s,
        "code_version": code_version(),
        "dagster_run_id": dagster_run_id,
        "created_at": datetime.now(UTC),
    }


def verdict_metadata(verdict: Verdict, state: str) -> dict[str, Any]:
    numbers = {
        f"figure/{k}": readable_values(v)
        for k, v in json_safe(verdict.figures).items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }
    return {
        "status": verdict.status,
        "verdict": verdict.summary,
        "consumes": verdict.consumes,
        "audit": describe_state(state),
        "audit_mode": verdict.audit_mode,
        **({"crossref_status": verdict.crossref_status} if verdict.crossref_status else {}),
        **({"anchor_available": verdict.anchor_available} if verdict.anchor_available is not None else {}),
        "data_hash": verdict.data_hash or "absent",
        ELAPSED: readable_values(verdict.elapsed_s or 0.0),
        **numbers,
        **(
            {"findings": rows_table([json_safe(r) for r in verdict.table], list(verdict.table[0]))}
            if verdict.table
            else {}
        ),
    }


def _check_result(key: dg.AssetKey, verdict: Verdict, state: str) -> dg.AssetCheckResult:
    why = verdict.line
    if state != "complete":
        why += f" [audit {describe_state(state)}]"
    return dg.AssetCheckResult(
        asset_key=key,
        check_name=VERDICT_CHECK,
        passed=verdict.status in PASSING,
        severity=SEVERITY.get(verdict.status, dg.AssetCheckSeverity.ERROR),
        description=why,
        metadata={"status": verdict.status, "audit_mode": verdict.audit_mode, **evaluated_now()},
    )


def build_diagnostic_assets(sweep: Sweep) -> list[dg.AssetsDefinition]:
    cfg, keys = sweep.config, sweep.keys
    by_key = subjects(sweep)
    if not by_key:
        return []

    @dg.multi_asset(
        name=f"{sweep.name}_diagnose",
        specs=[_spec(sweep, key, subject) for key, subject in by_key.items()],
        check_specs=[_check_spec(sweep, key, subject) for key, subject in by_key.items()],
        partitions_def=keys.crypto_fold_partitions,
        can_subset=True,
    )
    def diagnostics(
        context: dg.AssetExecutionContext,
        results_store: ResultsStore,
        io_manager: dg.ResourceParam[ArtifactIOManager],
    ) -> Iterator[dg.MaterializeResult]:
        crypto, fold_id = crypto_and_fold(context)
        mode = audit_mode(context.run) or FULL
        capture = cell_capture(sweep, context, io_manager, results_store)
        selected = [k for k in by_key if k in context.selected_asset_keys]
        verdicts = {
            key: audit_one(
                get_diagnostic(by_key[key].diagnostic),
                steps.diagnostic_params(cfg, by_key[key].diagnostic),
                capture,
                crypto,
                fold_id,
                by_key[key].model,
                mode,
            )
            for key in selected
        }
        for verdict in verdicts.values():
            log = context.log.warning if verdict.status not in PASSING else context.log.info
            log(verdict.line)
        scope = {"run_id": cfg.run_id, "strategy": cfg.strategy, "crypto": crypto,
                 "fold_id": current_fold_id(fold_id)}  # fmt: skip
        # Replaces exactly what this audit re-ran: a per-model diagnostic's verdict on a model not selected
        # stays as it was.
        rows = [verdict_row(v, cfg.run_id, cfg.strategy, context.run_id) for v in verdicts.values()]
        write_verdicts(results_store.engine(), scope, rows)
        state = audit_state(verdicts.values())
        for key, verdict in verdicts.items():
            yield dg.MaterializeResult(
                asset_key=key,
                metadata=verdict_metadata(verdict, state),
                check_results=[_check_result(key, verdict, state)],
                data_version=dg.DataVersion(f"{verdict.status}:{verdict.data_hash or 'absent'}"),
            )

    return [diagnostics]


def audit_tags(mode: str) -> dict[str, str]:
    return {AUDIT_TAG: mode}
