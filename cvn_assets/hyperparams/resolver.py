"""Resolve hyperparameter values and HPO ranges from configuration an operator can see and edit.

The process environment wins, then the `ftf_config` table of the results database. A missing key fails
loudly, naming the key and how to set it; a fallback is only ever used when the caller passes one, and
then a `hpo_fallback_applied` warning event says so.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from cvn_assets.core.errors import CvnError
from cvn_assets.harness.events import emit
from cvn_assets.hyperparams.keys import default_key, parse_key, range_keys
from cvn_assets.hyperparams.types import SCALES, param_type
from cvn_assets.store.hp_config import get_value, list_values

ENVIRONMENT, TABLE, FALLBACK = "environment", "ftf_config", "fallback"  # where a value came from


class HyperparameterError(CvnError):
    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        super().__init__(f"hyperparameter key {key}: {problem}")


def how_to_set(key: str) -> str:
    return (
        f"set it with `cvn hp set {key} <value>` (or export {key}=<value>), "
        "or write the committed defaults with `cvn hp seed --apply`"
    )


def parse_value(key: str, raw: str, kind: type) -> Any:
    try:
        if kind is int:
            return int(raw)
        if kind is float:
            return float(raw)
        return str(raw)
    except ValueError:
        raise HyperparameterError(key, f"'{raw}' is not a valid {kind.__name__}") from None


class Resolver:
    def __init__(self, engine: sa.Engine | None, environ: Mapping[str, str] | None = None) -> None:
        self.engine = engine
        self.environ = os.environ if environ is None else environ

    def lookup(self, key: str) -> tuple[str | None, str | None]:
        """(raw value, where it came from), or (None, None) when the key is set nowhere."""
        if key in self.environ:
            return self.environ[key], ENVIRONMENT
        if self.engine is None:
            return None, None
        with self.engine.connect() as conn:
            value = get_value(conn, key)
        return (value, TABLE) if value is not None else (None, None)

    def raw(self, key: str) -> str | None:
        return self.lookup(key)[0]

    def keys(self, prefix: str) -> set[str]:
        """Every key set under `prefix`, in the environment or the table."""
        found = {k for k in self.environ if k.startswith(prefix)}
        if self.engine is not None:
            with self.engine.connect() as conn:
                found |= {row.key for row in list_values(conn, prefix)}
        return found

    def resolve(self, model: str, timeframe: str, param: str, fallback: Any = None) -> Any:
        key = default_key(model, timeframe, param)
        kind = param_type(param)
        raw = self.raw(key)
        if raw is not None:
            return parse_value(key, raw, kind)
        if fallback is None:
            raise HyperparameterError(key, f"is not set; {how_to_set(key)}")
        emit("hpo_fallback_applied", key=key, value=str(fallback), model_type=model, timeframe=timeframe)
        return fallback

    def resolve_hpo_range(self, model: str, timeframe: str, param: str) -> tuple[Any, Any, str]:
        kind = param_type(param)
        keys = range_keys(model, timeframe, param)
        if kind is str:
            raise HyperparameterError(keys[0], f"'{param}' is a string parameter and has no numeric range")
        raws = [self.raw(k) for k in keys]
        missing = [k for k, r in zip(keys, raws, strict=True) if r is None]
        if missing:
            raise HyperparameterError(
                missing[0], f"is not set (an HPO range needs all of {list(keys)}); {how_to_set(missing[0])}"
            )
        low, high = (parse_value(k, r, kind) for k, r in zip(keys[:2], raws[:2], strict=True))
        scale = str(raws[2]).strip().lower()
        if scale not in SCALES:
            raise HyperparameterError(keys[2], f"scale '{raws[2]}' is not one of {SCALES}")
        if low > high:
            raise HyperparameterError(keys[0], f"range min {low} is above max {high} ({keys[1]})")
        if scale == "log" and low <= 0:
            raise HyperparameterError(keys[0], f"a log-scale range needs min > 0, got {low}")
        return low, high, scale


def validate_assignment(key: str, value: str) -> None:
    """What `cvn hp set` checks before writing: a known key shape, a declared type, a parseable value."""
    try:
        parsed = parse_key(key)
        kind = param_type(parsed.param)
    except KeyError as exc:
        raise HyperparameterError(key, str(exc.args[0])) from None
    if parsed.part == "RANGE_SCALE":
        if value.strip().lower() not in SCALES:
            raise HyperparameterError(key, f"scale '{value}' is not one of {SCALES}")
    else:
        parse_value(key, value, kind)


def resolve(
    model: str, timeframe: str, param: str, fallback: Any = None, *, engine: sa.Engine | None = None
) -> Any:
    return Resolver(engine).resolve(model, timeframe, param, fallback)


def resolve_hpo_range(
    model: str, timeframe: str, param: str, *, engine: sa.Engine | None = None
) -> tuple[Any, Any, str]:
    return Resolver(engine).resolve_hpo_range(model, timeframe, param)
