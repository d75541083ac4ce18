"""The diagnostics registry: each diagnostic is one file, registered with what it consumes.

`@register_diagnostic("name", consumes=XY_ONLY, params={...}, code_version="1")` on a pure function whose
parameters name the inputs it reads:

    dataset       the captured fold dataset (features, labels, rows of every split)        every kind
    params        its resolved parameters (a sweep overrides them: `diagnostics.<name>`)   every kind
    artifact      the model's stored trained artifact                                       trial_dynamics
    trials        the model's HPO trials (`TrialRecord`, from the study in the results DB)  trial_dynamics
    stored_rows   the model's stored result rows of the cell (one per cost)                  unknown
    retrain       retrains the model on the captured fold with given parameters              unknown

`consumes` says which of those it may read: `xy_only` (the fold's features and labels), `trial_dynamics`
(also the HPO trials and the trained model), or `unknown` (treated as needing everything). A diagnostic
that asks for a model's input (`artifact`, `trials`, `stored_rows`, `retrain`) audits each model of the
cell; the others audit the cell once. `anchor=True` marks the reproducibility anchor: expensive, skipped
by a light audit (its verdict then says so: SKIPPED, never a pass).

The guard: a diagnostic that asks for an input its kind does not provide, or for anything that is no
input, is recorded with its problem when it registers, and every sweep that would run it fails when the
definitions load (`declaration_problem`), naming the diagnostic and the input, not at run time. Only the
inputs a diagnostic names are handed to it.

Diagnostics are found like models and feature sets: the in-tree `diagnostics/audits/` folder, then the
`cvn_assets.plugins` entry points.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cvn_assets.core.errors import ConfigError, CvnError
from cvn_assets.diagnostics.verdicts import Finding
from cvn_assets.harness.hpo import TrialRecord
from cvn_assets.harness.registry import check_plugin_name, discover_entry_points, import_folder, qualname

XY_ONLY, TRIAL_DYNAMICS, UNKNOWN = "xy_only", "trial_dynamics", "unknown"
CONSUMER_KINDS = (XY_ONLY, TRIAL_DYNAMICS, UNKNOWN)
CELL_INPUTS = ("dataset", "params")
MODEL_INPUTS = ("artifact", "trials", "stored_rows", "retrain")  # one model's: per-model diagnostics only
PROVIDES: dict[str, tuple[str, ...]] = {
    XY_ONLY: CELL_INPUTS,
    TRIAL_DYNAMICS: (*CELL_INPUTS, "artifact", "trials"),
    UNKNOWN: (*CELL_INPUTS, *MODEL_INPUTS),
}

Diagnose = Callable[..., Finding]
__all__ = ["TRIAL_DYNAMICS", "UNKNOWN", "XY_ONLY", "TrialRecord", "register_diagnostic"]


class DiagnosticDeclarationError(CvnError):
    """A diagnostic asks for an input it did not declare; the message names the diagnostic and the input."""


@dataclass(frozen=True)
class DiagnosticSpec:
    name: str
    diagnose: Diagnose
    consumes: str
    inputs: tuple[str, ...]  # the parameters of `diagnose`: what it reads
    params: Mapping[str, Any]
    code_version: str
    anchor: bool
    description: str
    problem: str | None  # why its declaration is refused (the guard); None: it may run

    @property
    def per_model(self) -> bool:
        return any(name in MODEL_INPUTS for name in self.inputs)

    def resolve_params(self, overrides: Mapping[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(overrides) - set(self.params))
        if unknown:
            raise ConfigError(
                f"diagnostics.{self.name}.{unknown[0]}",
                f"diagnostic '{self.name}' has no parameter '{unknown[0]}'; its parameters: {sorted(self.params)}",
            )
        return {**self.params, **overrides}

    def run(self, available: Mapping[str, Any]) -> Finding:
        """Call it with exactly the inputs it declared (nothing else is handed over)."""
        if self.problem:
            raise DiagnosticDeclarationError(self.problem)
        return self.diagnose(**{name: available[name] for name in self.inputs})


def declaration_problem(name: str, diagnose: Diagnose, consumes: str) -> str | None:
    """Why a diagnostic's declaration is refused, or None."""
    if consumes not in CONSUMER_KINDS:
        return f"diagnostic '{name}' declares consumes={consumes!r}; use one of {list(CONSUMER_KINDS)}"
    allowed = PROVIDES[consumes]
    for parameter in inspect.signature(diagnose).parameters.values():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            return (
                f"diagnostic '{name}' takes {'*' if parameter.kind == parameter.VAR_POSITIONAL else '**'}"
                f"{parameter.name}: it must name each input it reads (a {consumes} diagnostic may read "
                f"{list(allowed)})"
            )
        if parameter.name not in PROVIDES[UNKNOWN]:
            return (
                f"diagnostic '{name}' asks for input '{parameter.name}', which no diagnostic is given; the "
                f"inputs are {list(PROVIDES[UNKNOWN])}"
            )
        if parameter.name not in allowed:
            wider = next(kind for kind in CONSUMER_KINDS if parameter.name in PROVIDES[kind])
            return (
                f"diagnostic '{name}' is declared {consumes} but asks for input '{parameter.name}', which a "
                f"{consumes} diagnostic is not given (it may read {list(allowed)}); declare "
                f"consumes='{wider}' if it needs it"
            )
    return None


_DIAGNOSTICS: dict[str, DiagnosticSpec] = {}
_discovered = False


def register_diagnostic(
    name: str,
    *,
    consumes: str,
    params: Mapping[str, Any] | None = None,
    code_version: str,
    anchor: bool = False,
) -> Callable[[Diagnose], Diagnose]:
    check_plugin_name("diagnostic", name)

    def decorate(diagnose: Diagnose) -> Diagnose:
        existing = _DIAGNOSTICS.get(name)
        if existing is not None and qualname(existing.diagnose) != qualname(diagnose):
            raise ValueError(f"diagnostic '{name}' is registered twice")
        inputs = tuple(inspect.signature(diagnose).parameters)
        description = " ".join((inspect.getdoc(diagnose) or name).split("\n\n")[0].split())
        _DIAGNOSTICS[name] = DiagnosticSpec(
            name, diagnose, consumes, inputs, dict(params or {}), code_version, anchor, description,
            declaration_problem(name, diagnose, consumes),
        )  # fmt: skip
        return diagnose

    return decorate


def unregister_diagnostic(name: str) -> None:
    """For tests that register a diagnostic of their own."""
    _DIAGNOSTICS.pop(name, None)


def discover(force: bool = False) -> None:
    """Import the in-tree diagnostics, then every plugin (once per process unless forced)."""
    global _discovered
    if _discovered and not force:
        return
    from cvn_assets.diagnostics import audits

    import_folder(audits, "diagnostic")
    discover_entry_points(force)
    _discovered = True


def registered_diagnostics() -> list[str]:
    discover()
    return sorted(_DIAGNOSTICS)


def get_diagnostic(name: str) -> DiagnosticSpec:
    discover()
    if name not in _DIAGNOSTICS:
        raise KeyError(f"no diagnostic registered as '{name}'; registered: {sorted(_DIAGNOSTICS)}")
    return _DIAGNOSTICS[name]
