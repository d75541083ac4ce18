"""Auditing one cell: each diagnostic on the captured inputs it declared, into a `Verdict`.

What the audit reads comes through a `CellCapture` (the Dagster shell loads it from the artifact store and
the results database; tests hand in values). An input that is not there makes the verdict
INCONCLUSIVE_TOOLING, naming what to materialize, never a pass; a light audit leaves the anchor SKIPPED.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cvn_assets.core.datasets import FoldDataset
from cvn_assets.core.errors import CvnError
from cvn_assets.diagnostics.registry import DiagnosticSpec, TrialRecord
from cvn_assets.diagnostics.verdicts import (
    FAIL,
    INCONCLUSIVE_TOOLING,
    MATCHED,
    MISMATCH,
    PASS,
    SKIPPED,
    Finding,
    Verdict,
)
from cvn_assets.harness.contracts import TrainedArtifact

FULL, LIGHT = "full", "light"


class CaptureMissing(CvnError):
    """A captured input an audit needs is not stored; the message names it and what to materialize."""


Retrain = Callable[[Mapping[str, Any]], TrainedArtifact]


@dataclass
class CellCapture:
    """Loaders of what one cell's audit may read, each called at most once (a missing input raises
    CaptureMissing). `model` arguments are (model, feature_set)."""

    load_dataset: Callable[[], FoldDataset]
    load_artifact: Callable[[str, str], TrainedArtifact]
    load_trials: Callable[[TrainedArtifact], Sequence[TrialRecord]]
    load_stored_rows: Callable[[str, str], Sequence[Mapping[str, Any]]]
    make_retrain: Callable[[str, str, FoldDataset], Retrain]
    _cache: dict[Any, Any] = field(default_factory=dict)

    def _once(self, key: Any, load: Callable[[], Any]) -> Any:
        if key not in self._cache:
            try:
                self._cache[key] = load()
            except CaptureMissing as exc:
                self._cache[key] = exc
        found = self._cache[key]
        if isinstance(found, CaptureMissing):
            raise found
        return found

    def dataset(self) -> FoldDataset:
        return self._once("dataset", self.load_dataset)

    def data_hash(self) -> str | None:
        """The captured fold dataset's content hash; None when it is not stored."""
        try:
            return self.dataset().data_hash
        except CaptureMissing:
            return None

    def artifact(self, model: tuple[str, str]) -> TrainedArtifact:
        return self._once(("artifact", model), lambda: self.load_artifact(*model))

    def inputs(self, spec: DiagnosticSpec, model: tuple[str, str] | None) -> dict[str, Any]:
        """The inputs `spec` declared, and only those."""
        dataset = self.dataset()
        found: dict[str, Any] = {}
        for name in spec.inputs:
            if name == "dataset":
                found[name] = dataset.for_feature_set(model[1]) if model else dataset
            elif name == "params":
                continue
            elif model is None:
                raise ValueError(
                    f"diagnostic '{spec.name}' reads {name}, which a cell has not (only a model)"
                )
            elif name == "artifact":
                found[name] = self.artifact(model)
            elif name == "trials":
                found[name] = self._once(
                    ("trials", model), lambda m=model: self.load_trials(self.artifact(m))
                )
            elif name == "stored_rows":
                found[name] = self._once(("rows", model), lambda: self.load_stored_rows(*model))
            elif name == "retrain":
                found[name] = self.make_retrain(model[0], model[1], dataset.for_feature_set(model[1]))
        return found


def audit_one(
    spec: DiagnosticSpec,
    params: Mapping[str, Any],
    capture: CellCapture,
    crypto: str,
    fold_id: str,
    model: tuple[str, str] | None,
    mode: str,
) -> Verdict:
    """One diagnostic's verdict on the cell (or on `model`, (name, feature_set), of it)."""
    started = time.perf_counter()
    subject = {"diagnostic": spec.name, "consumes": spec.consumes, "crypto": crypto, "fold_id": fold_id,
               "feature_set": model[1] if model else None, "variant": model[0] if model else None,
               "audit_mode": mode}  # fmt: skip
    anchor = {"crossref_status": SKIPPED, "anchor_available": False} if spec.anchor else {}
    if spec.anchor and mode == LIGHT:
        return Verdict(**subject, status=SKIPPED, **anchor, elapsed_s=0.0, data_hash=capture.data_hash(),
                       summary="skipped by a light audit (cvn/audit=light); run the full audit to retrain and compare")  # fmt: skip
    try:
        finding = spec.run({**capture.inputs(spec, model), "params": params})
    except CaptureMissing as exc:
        finding = Finding(INCONCLUSIVE_TOOLING, str(exc))
    if spec.anchor:
        ran = finding.status in (PASS, FAIL)
        crossref = {PASS: MATCHED, FAIL: MISMATCH}.get(finding.status, INCONCLUSIVE_TOOLING)
        anchor = {"crossref_status": crossref, "anchor_available": ran}
    return Verdict(
        **subject,
        status=finding.status,
        summary=finding.summary,
        figures=dict(finding.figures),
        table=tuple(finding.table),
        **anchor,
        data_hash=capture.data_hash(),
        elapsed_s=time.perf_counter() - started,
    )


def json_safe(value: Any) -> Any:
    """Figures for JSON: NaN and infinities become None, numpy scalars Python numbers."""
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value
