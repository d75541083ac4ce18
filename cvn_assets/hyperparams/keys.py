"""Hyperparameter keys: `CVN_HPO_<MODEL>_<TF>_<PARAM>` for a default, plus `_RANGE_MIN`, `_RANGE_MAX`
and `_RANGE_SCALE` (linear or log) for its HPO range. MODEL is the model's registered short code
(XGB, LGB, CB, LR, STACK_LR, ...), TF the timeframe upper-cased (1M ... 1D), PARAM the parameter upper-cased."""

from __future__ import annotations

import re
from dataclasses import dataclass

from cvn_assets.core.timeframes import TIMEFRAME_SECONDS
from cvn_assets.harness.registry import hyperparameter_owners, model_code
from cvn_assets.hyperparams.types import canonical_param

PREFIX = "CVN_HPO"
RANGE_PARTS = ("RANGE_MIN", "RANGE_MAX", "RANGE_SCALE")
TIMEFRAME_CODES = {tf: tf.upper() for tf in TIMEFRAME_SECONDS}


def default_key(model: str, timeframe: str, param: str) -> str:
    return f"{PREFIX}_{model_code(model)}_{TIMEFRAME_CODES[timeframe]}_{param.upper()}"


def range_keys(model: str, timeframe: str, param: str) -> tuple[str, str, str]:
    base = default_key(model, timeframe, param)
    return tuple(f"{base}_{part}" for part in RANGE_PARTS)  # type: ignore[return-value]


@dataclass(frozen=True)
class ParsedKey:
    model: str
    timeframe: str
    param: str  # lower case, as the libraries spell it
    part: str | None  # None for the default, else one of RANGE_PARTS


def parse_key(key: str) -> ParsedKey:
    """Split a key into its parts; raise naming the key when it is not one."""
    codes = {model_code(m): m for m in hyperparameter_owners()}
    tfs = {code: tf for tf, code in TIMEFRAME_CODES.items()}
    pattern = re.compile(
        rf"^{PREFIX}_(?P<model>{'|'.join(map(re.escape, sorted(codes, key=len, reverse=True)))})"
        rf"_(?P<tf>{'|'.join(map(re.escape, tfs))})_(?P<rest>[A-Z0-9_]+)$"
    )
    match = pattern.match(key)
    if not match:
        raise KeyError(
            f"'{key}' is not a hyperparameter key: expected {PREFIX}_<MODEL>_<TF>_<PARAM>[_RANGE_MIN|_RANGE_MAX|"
            f"_RANGE_SCALE] with MODEL in {sorted(codes)} and TF in {sorted(tfs)}"
        )
    rest, part = match["rest"], None
    for suffix in RANGE_PARTS:
        if rest.endswith(f"_{suffix}"):
            rest, part = rest[: -len(suffix) - 1], suffix
    return ParsedKey(codes[match["model"]], tfs[match["tf"]], canonical_param(rest), part)
