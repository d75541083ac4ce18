"""The hyperparameters one model trains with on one timeframe: every default and, for a search, every HPO
range, resolved from configuration (the environment, then `ftf_config`), with where each value came from.

The keys a model needs are those the committed values file lists for it plus any key an operator has set
under its prefix (`cvn hp set CVN_HPO_XGB_1H_GAMMA 0.5` adds a parameter without a code change).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cvn_assets.core.config import SweepConfig
from cvn_assets.core.hashing import fingerprint
from cvn_assets.harness.contracts import Range  # noqa: E402 - (min, max, linear|log)
from cvn_assets.harness.events import Event, emit
from cvn_assets.harness.registry import META_LABEL, registered_models
from cvn_assets.hyperparams.keys import default_key, parse_key, range_keys
from cvn_assets.hyperparams.resolver import FALLBACK, HyperparameterError, Resolver, how_to_set, parse_value
from cvn_assets.hyperparams.seeding import VALUES_FILE, committed_values
from cvn_assets.hyperparams.types import param_type


@dataclass(frozen=True)
class ModelHyperparams:
    model: str
    timeframe: str
    search: bool
    values: dict[str, Any]  # every default: what a fixed run trains with, and a search's unsearched params
    ranges: dict[str, Range]  # the search space (empty unless searching)
    sources: dict[str, str]  # key -> environment | ftf_config | fallback
    missing: tuple[str, ...] = ()  # required keys set nowhere (and not filled by a fallback)
    events: tuple[Event, ...] = field(default=())  # the hpo_fallback_applied warnings

    @property
    def fallbacks(self) -> list[str]:
        return [key for key, source in self.sources.items() if source == FALLBACK]

    @property
    def n_required(self) -> int:
        return len(self.sources) + len(self.missing)

    @property
    def n_present(self) -> int:
        return len(self.sources) - len(self.fallbacks)

    def require_complete(self) -> None:
        if self.missing:
            key = self.missing[0]
            raise HyperparameterError(
                key, f"is not set ({len(self.missing)} of {self.model}'s keys are missing); {how_to_set(key)}"
            )

    @property
    def fingerprint(self) -> str:
        return fingerprint({"values": self.values, "ranges": {p: list(r) for p, r in self.ranges.items()}})


def resolve_model(
    resolver: Resolver,
    model: str,
    timeframe: str,
    *,
    search: bool,
    allow_fallback: bool,
    values_file: Path = VALUES_FILE,
) -> ModelHyperparams:
    """Resolve every key `model` (a model or an ensemble) needs on `timeframe`. Missing keys are listed, not
    raised (the coverage check reports them); an unparseable value or a half-set range raises naming the
    key, and so does a model with no hyperparameter at all (an ensemble may have none: a plain average)."""
    defaults, ranges = committed_values(model, timeframe, values_file)
    default_params, range_params = list(defaults), list(ranges) if search else []
    prefix = default_key(model, timeframe, "")
    for key in sorted(resolver.keys(prefix)):
        parsed = parse_key(key)
        names = default_params if parsed.part is None else range_params if search else None
        if names is not None and parsed.param not in names:
            names.append(parsed.param)
    if not default_params and not range_params and model in registered_models():
        raise HyperparameterError(
            f"{prefix}<PARAM>",
            f"no hyperparameters are configured for model '{model}' on {timeframe}: add it to {values_file.name} "
            f"and run `cvn hp seed --apply`, or set its keys with `cvn hp set`",
        )

    values: dict[str, Any] = {}
    chosen: dict[str, Range] = {}
    sources: dict[str, str] = {}
    missing: list[str] = []
    events: list[Event] = []
    for param in default_params:
        key = default_key(model, timeframe, param)
        raw, source = resolver.lookup(key)
        if raw is not None:
            values[param], sources[key] = parse_value(key, raw, param_type(param)), str(source)
        elif allow_fallback and param in defaults:
            values[param] = parse_value(key, str(defaults[param]), param_type(param))
            events.append(_fallback_event(key, values[param], model, timeframe))
            sources[key] = FALLBACK
        else:
            missing.append(key)
    for param in range_params:
        keys = range_keys(model, timeframe, param)
        found = [resolver.lookup(k) for k in keys]
        if all(raw is None for raw, _ in found) and allow_fallback and param in ranges:
            kind = param_type(param)
            low, high, scale = ranges[param]
            chosen[param] = (
                parse_value(keys[0], str(low), kind),
                parse_value(keys[1], str(high), kind),
                scale,
            )
            events += [
                _fallback_event(k, v, model, timeframe) for k, v in zip(keys, chosen[param], strict=True)
            ]
            sources |= dict.fromkeys(keys, FALLBACK)
        elif all(raw is None for raw, _ in found):
            missing += keys
        else:  # complete, or raises naming the missing or bad key
            chosen[param] = resolver.resolve_hpo_range(model, timeframe, param)
            sources |= {k: str(source) for k, (_, source) in zip(keys, found, strict=True)}
    return ModelHyperparams(model, timeframe, search, values, chosen, sources, tuple(missing), tuple(events))


def _fallback_event(key: str, value: Any, model: str, timeframe: str) -> Event:
    return emit("hpo_fallback_applied", key=key, value=str(value), model_type=model, timeframe=timeframe)


@dataclass(frozen=True)
class Coverage:
    """The share of required keys set (in the environment or ftf_config) for a sweep's models."""

    timeframe: str
    n_required: int
    not_set: tuple[str, ...]  # missing, or filled by a fallback: either way not configured

    @property
    def percent(self) -> float:
        return 100.0 * (self.n_required - len(self.not_set)) / self.n_required if self.n_required else 100.0

    @property
    def complete(self) -> bool:
        return not self.not_set

    def describe(self, models: list[str]) -> str:
        line = (
            f"{self.percent:.1f}% of {self.n_required} required keys set for models {models} "
            f"on {self.timeframe}"
        )
        if self.complete:
            return line
        shown = ", ".join(self.not_set[:5])
        more = f" and {len(self.not_set) - 5} more" if len(self.not_set) > 5 else ""
        return (
            f"{line}; {len(self.not_set)} missing: {shown}{more}. Fix: `cvn hp seed --apply` writes the "
            "committed values, or `cvn hp set KEY VALUE` sets one (`cvn hp audit` lists them all)"
        )


def resolve_sweep(
    resolver: Resolver, config: SweepConfig, ensembles: list[str], *, allow_fallback: bool | None = None
) -> dict[str, ModelHyperparams]:
    """The hyperparameters of every configured model (in its HPO mode), of the sweep's `ensembles` and of
    meta-labeling when enabled (neither searched) on the sweep's timeframe, with fallbacks as the config
    allows unless `allow_fallback` says otherwise (an audit never applies one)."""
    fallback = config.hpo.allow_fallback if allow_fallback is None else allow_fallback
    fixed = [*ensembles, *([META_LABEL] if config.harness.meta_labeling.enabled else [])]
    searched = {m: config.hpo_mode(m) == "search" for m in config.models} | dict.fromkeys(fixed, False)
    return {
        name: resolve_model(resolver, name, config.timeframe, search=search, allow_fallback=fallback)
        for name, search in searched.items()
    }


def coverage(resolved: dict[str, ModelHyperparams]) -> Coverage:
    timeframes = {hp.timeframe for hp in resolved.values()}
    return Coverage(
        ", ".join(sorted(timeframes)),
        sum(hp.n_required for hp in resolved.values()),
        tuple(k for hp in resolved.values() for k in (*hp.missing, *hp.fallbacks)),
    )


def fallback_rate_level(fallbacks: int, trainings: int, warn: float, error: float) -> tuple[float, str]:
    """(hpo_fallback_applied per training_started, "ok" | "warn" | "error"): WARN above `warn`, ERROR
    above `error`."""
    rate = fallbacks / trainings if trainings else 0.0
    return rate, "error" if rate > error else "warn" if rate > warn else "ok"
