"""`trial_invariance`: every HPO trial of a model's cell fit on the same X/y, and that X/y is the captured
fold's.

Each trial records the canonical hash of the train and validation X/y it read (`FoldDataset.xy_hash`), and
so does the final fit (its `training_started` event). All of them must equal the hash of the captured fold
dataset's view for the model's feature set: otherwise trials were compared on different data (a sampler
that resampled rows, a feature step that changed between trials), and the winner means nothing: FAIL. A
fixed-parameter model has no trials: NOT_APPLICABLE, once its final fit is checked the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cvn_assets.core.datasets import FoldDataset
from cvn_assets.diagnostics.registry import TRIAL_DYNAMICS, TrialRecord, register_diagnostic
from cvn_assets.diagnostics.verdicts import FAIL, INCONCLUSIVE_TOOLING, NOT_APPLICABLE, PASS, Finding
from cvn_assets.harness.contracts import TrainedArtifact

FINISHED = ("COMPLETE", "PRUNED")


def _final_fit_hash(artifact: TrainedArtifact) -> str | None:
    started = next((e for e in artifact.events if e.name == "training_started"), None)
    return started.fields.get("xy_hash") if started else None


@register_diagnostic("trial_invariance", consumes=TRIAL_DYNAMICS, code_version="1")
def trial_invariance(
    dataset: FoldDataset, artifact: TrainedArtifact, trials: Sequence[TrialRecord], params: Mapping[str, Any]
) -> Finding:
    """The canonical hash of X/y is identical in every HPO trial of the cell, in the final fit, and in the
    captured fold dataset."""
    captured = dataset.for_feature_set(artifact.version.feature_set).xy_hash()
    final = _final_fit_hash(artifact)
    finished = [t for t in trials if t.state in FINISHED]
    hashes = {t.xy_hash for t in finished}
    figures: dict[str, Any] = {
        "n_trials": len(finished),
        "n_pruned": sum(t.state == "PRUNED" for t in finished),
        "distinct_xy_hashes": len(hashes - {None}),
        "rounds_reported": sum(len(t.curve) for t in finished),
    }
    if final is None or None in hashes:
        missing = "the final fit" if final is None else f"{sum(t.xy_hash is None for t in finished)} trials"
        return Finding(INCONCLUSIVE_TOOLING, f"{missing} recorded no X/y hash (trained before it was "
                       "recorded): re-materialize the model to audit it", figures)  # fmt: skip
    if final != captured:
        return Finding(
            FAIL, f"the final fit's X/y ({final}) is not the captured fold's ({captured})", figures
        )
    if artifact.search is None:
        return Finding(NOT_APPLICABLE, "fixed parameters, no HPO trials; the final fit's X/y is the "
                       "captured fold's", figures)  # fmt: skip
    if not finished:
        return Finding(INCONCLUSIVE_TOOLING, f"study {artifact.search.study_name} holds no finished trial",
                       figures)  # fmt: skip
    odd = [t for t in finished if t.xy_hash != captured]
    if odd:
        table = tuple({"trial": t.number, "state": t.state, "xy_hash": t.xy_hash} for t in odd[:20])
        return Finding(FAIL, f"{len(odd)} of {len(finished)} trials fit on another X/y than the captured "
                       f"fold's (first: trial {odd[0].number})", figures, table)  # fmt: skip
    return Finding(PASS, f"all {len(finished)} trials and the final fit saw the captured X/y ({captured})",
                   figures)  # fmt: skip
