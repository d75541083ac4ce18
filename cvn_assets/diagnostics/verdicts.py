"""What a diagnostic finds (`Finding`), what is stored for it (`Verdict`), and what a cell's audit amounts to.

A verdict's `status`:
    PASS                  nothing found
    WARN                  a finding to read (train and test rows tell apart, drift): the check WARNs
    FAIL                  an invariant is broken (a leak, trials on different data, a retrain that does not
                          reproduce the stored row): the check fails at ERROR
    NOT_APPLICABLE        nothing to audit here (trial invariance of a fixed-parameter model): passes
    SKIPPED               an expensive diagnostic a light audit did not run (the reproducibility anchor)
    INCONCLUSIVE_TOOLING  what it reads is not there (no captured fold dataset, no stored row): never a pass

A cell's audit is COMPLETE only when every verdict was computed and every anchor ran; a skipped anchor
makes it DOWNGRADED, and any INCONCLUSIVE_TOOLING verdict makes it INCONCLUSIVE.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

PASS, WARN, FAIL = "PASS", "WARN", "FAIL"
NOT_APPLICABLE, SKIPPED, INCONCLUSIVE_TOOLING = "NOT_APPLICABLE", "SKIPPED", "INCONCLUSIVE_TOOLING"
STATUSES = (PASS, WARN, FAIL, NOT_APPLICABLE, SKIPPED, INCONCLUSIVE_TOOLING)
PASSING = (PASS, NOT_APPLICABLE)

# The anchor's cross-reference with the stored result row.
MATCHED, MISMATCH = "MATCHED", "MISMATCH"

# A cell's audit as a whole.
COMPLETE, DOWNGRADED, INCONCLUSIVE = "complete", "downgraded", "inconclusive"


@dataclass(frozen=True)
class Finding:
    """What a diagnostic function returns: its status, one line saying what it found, the figures behind
    it (numbers the UI can plot) and, where useful, a table of what gave it away."""

    status: str
    summary: str
    figures: Mapping[str, Any] = field(default_factory=dict)
    table: tuple[Mapping[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if self.status not in (PASS, WARN, FAIL, NOT_APPLICABLE, INCONCLUSIVE_TOOLING):
            raise ValueError(
                f"a diagnostic finds one of {STATUSES[:4]} or {INCONCLUSIVE_TOOLING}, not "
                f"{self.status!r} (SKIPPED is the audit's to set)"
            )


@dataclass(frozen=True)
class Verdict:
    """One diagnostic's verdict on one cell (and model): what the results database stores."""

    diagnostic: str
    consumes: str
    crypto: str
    fold_id: str
    feature_set: str | None  # None, with variant: a verdict on the whole cell
    variant: str | None
    status: str
    summary: str
    figures: Mapping[str, Any] = field(default_factory=dict)
    table: tuple[Mapping[str, Any], ...] = ()
    crossref_status: str | None = None  # the anchor's: MATCHED, MISMATCH, SKIPPED or INCONCLUSIVE_TOOLING
    anchor_available: bool | None = None  # the anchor's: whether it retrained and compared
    audit_mode: str = "full"  # "light": the expensive diagnostics were skipped
    data_hash: str | None = None
    elapsed_s: float | None = None

    @property
    def subject(self) -> str:
        """`SYNA f00` or `SYNA f00 xgboost@btc_overlay`."""
        who = f" {self.variant}" + (f"@{self.feature_set}" if self.feature_set not in (None, "base") else "")
        return f"{self.crypto} {self.fold_id}" + (who if self.variant else "")

    @property
    def line(self) -> str:
        return f"{self.diagnostic} {self.subject}: {self.status}: {self.summary}"


def audit_state(verdicts: Iterable[Verdict | Mapping[str, Any]]) -> str:
    """complete, downgraded (an anchor skipped or unavailable) or inconclusive (something not there)."""
    state = COMPLETE
    for verdict in verdicts:
        get = verdict.get if isinstance(verdict, Mapping) else lambda name, v=verdict: getattr(v, name)
        if get("status") == INCONCLUSIVE_TOOLING:
            return INCONCLUSIVE
        if get("status") == SKIPPED or get("anchor_available") is False:
            state = DOWNGRADED
    return state


def describe_state(state: str) -> str:
    return {
        COMPLETE: "complete",
        DOWNGRADED: "downgraded: the reproducibility anchor was skipped (a light audit), not a complete audit",
        INCONCLUSIVE: "inconclusive: a captured input was missing (INCONCLUSIVE_TOOLING), not a pass",
    }[state]


def audit_overview(rows: Sequence[Mapping[str, Any]], sweep: str) -> tuple[list[str], list[dict[str, Any]]]:
    """What the report says of a sweep's audits: one line (how many cells are complete, downgraded or
    inconclusive, and any FAIL), and one row per diagnostic counting its verdicts by status."""
    if not rows:
        return [f"Diagnostics: no cell of {sweep} has been audited yet (`cvn audit --sweep {sweep}`, or "
                f"the {sweep}_diagnostics job in the UI)."], []  # fmt: skip
    cells: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for row in rows:
        cells.setdefault((row["crypto"], row["fold_id"]), []).append(row)
    states = {cell: audit_state(found) for cell, found in cells.items()}
    count = {s: sum(v == s for v in states.values()) for s in (COMPLETE, DOWNGRADED, INCONCLUSIVE)}
    failed = sorted(
        {f"{r['diagnostic']} ({r['crypto']} {r['fold_id']})" for r in rows if r["status"] == FAIL}
    )
    line = (
        f"Diagnostics: {len(cells)} cells audited, {count[COMPLETE]} complete, {count[DOWNGRADED]} downgraded "
        f"(the reproducibility anchor skipped by a light audit: not a complete audit), {count[INCONCLUSIVE]} "
        "inconclusive (a captured input missing)"
    )
    line += f"; FAIL: {', '.join(failed[:8])}{' ...' if len(failed) > 8 else ''}." if failed else "; no FAIL."
    table = []
    for name in sorted({r["diagnostic"] for r in rows}):
        mine = [r for r in rows if r["diagnostic"] == name]
        table.append(
            {"diagnostic": name, "consumes": mine[0]["consumes"], "verdicts": len(mine),
             **{status.lower(): sum(r["status"] == status for r in mine) for status in STATUSES}}
        )  # fmt: skip
    return [line], table
