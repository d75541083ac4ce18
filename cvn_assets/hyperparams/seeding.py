"""Seeding ftf_config from the committed values file, and auditing which required keys are present."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml

from cvn_assets.core.timeframes import TIMEFRAME_SECONDS
from cvn_assets.hyperparams.keys import default_key, range_keys
from cvn_assets.hyperparams.resolver import HyperparameterError, validate_assignment
from cvn_assets.hyperparams.types import SCALES, param_type
from cvn_assets.store.hp_config import get_value, set_value

VALUES_FILE = Path(__file__).with_name("values.yaml")
SEEDED_BY = "cvn hp seed"


@dataclass(frozen=True)
class SeedValue:
    key: str
    value: str
    replicated: bool  # the same value for every timeframe: a per-timeframe value is still to be chosen


@dataclass(frozen=True)
class SeedAction:
    seed: SeedValue
    action: str  # add | same | conflict | overwrite
    existing: str | None


def load_values(path: Path = VALUES_FILE) -> dict[str, dict[str, Any]]:
    values = yaml.safe_load(path.read_text()) or {}
    for model, spec in values.items():
        unknown = set(spec) - {"defaults", "ranges", "per_timeframe"}
        if unknown:
            raise ValueError(f"{path}: {model}: unknown section(s) {sorted(unknown)}")
        for param in [*spec.get("defaults", {}), *spec.get("ranges", {})]:
            param_type(param)  # every parameter must have a declared type
        for param, bounds in spec.get("ranges", {}).items():
            if len(bounds) != 3 or bounds[2] not in SCALES:
                raise ValueError(
                    f"{path}: {model}.ranges.{param}: expected [min, max, linear|log], got {bounds}"
                )
    return values


def committed_values(
    model: str, timeframe: str, path: Path = VALUES_FILE
) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """The values file's (defaults, ranges) for one model on one timeframe; empty when it has none."""
    spec = load_values(path).get(model, {})
    own = spec.get("per_timeframe", {}).get(timeframe, {})
    return {**spec.get("defaults", {}), **own}, dict(spec.get("ranges", {}))


def seed_values(
    models: list[str], timeframes: list[str] | None = None, path: Path = VALUES_FILE
) -> list[SeedValue]:
    """Every default and range key for the given models and timeframes (all timeframes by default)."""
    values = load_values(path)
    timeframes = timeframes or list(TIMEFRAME_SECONDS)
    out: list[SeedValue] = []
    for model in models:
        spec = values.get(model)
        if spec is None:
            raise HyperparameterError(
                f"<{model}>", f"{path} has no values for the registered model '{model}'"
            )
        overrides = spec.get("per_timeframe", {})
        for tf in timeframes:
            for param, value in spec.get("defaults", {}).items():
                own = overrides.get(tf, {})
                out.append(
                    SeedValue(default_key(model, tf, param), str(own.get(param, value)), param not in own)
                )
            for param, bounds in spec.get("ranges", {}).items():
                for key, part in zip(range_keys(model, tf, param), bounds, strict=True):
                    out.append(SeedValue(key, str(part), True))
    for seed in out:
        validate_assignment(seed.key, seed.value)
    return out


def plan_seed(conn: sa.Connection, seeds: list[SeedValue], force: bool) -> list[SeedAction]:
    actions = []
    for seed in seeds:
        existing = get_value(conn, seed.key)
        if existing is None:
            action = "add"
        elif existing == seed.value:
            action = "same"
        else:
            action = "overwrite" if force else "conflict"
        actions.append(SeedAction(seed, action, existing))
    return actions


def apply_seed(engine: sa.Engine, actions: list[SeedAction]) -> int:
    written = 0
    for a in actions:
        if a.action in ("add", "overwrite"):
            written += set_value(engine, a.seed.key, a.seed.value, SEEDED_BY)
    return written
