"""Structured training events: the same names with the same fields and types for every model.

`emit` refuses an event whose fields differ from its schema, so no model can log less (or differently)
than another. Each event goes to the `cvn_assets.events` logger as one JSON record and is returned so
that callers can attach it to the artifact (and from there to Dagster materialization metadata).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from types import NoneType
from typing import Any

log = logging.getLogger("cvn_assets.events")

Num = (int, float)
OptInt = (int, NoneType)
OptNum = (int, float, NoneType)

_DATASET = {"n_train": int, "n_val": int, "n_test": int, "n_features": int, "class_balance": Num}
_VAL_METRICS = {f"val_{m}": OptNum for m in ("f1_buy", "auc_buy", "brier", "ece", "logloss")}

EVENT_SCHEMAS: dict[str, dict[str, Any]] = {
    # The CUSUM event filter's fit on the fold (None when the sweep does not use it).
    "training_started": {
        "model_type": str,
        "seed": int,
        **_DATASET,
        "event_filter": (str, NoneType),
        "event_filter_sigma": OptNum,
        "event_filter_threshold": OptNum,
        "xy_hash": str,  # FoldDataset.xy_hash of what it fits on: every HPO trial records the same
    },
    "class_balance_applied": {
        "model_type": str,
        "method": str,
        "base_rate": Num,
        "pos_weight": Num,
        "neg_weight": Num,
    },
    "theta_picked": {
        "model_type": str,
        "threshold": Num,
        "source": str,
        "val_signal_rate": Num,
        "base_rate": Num,
    },
    "theta_rejected": {
        "model_type": str,
        "threshold": Num,
        "val_signal_rate": Num,
        "base_rate": Num,
        "max_trade_ratio": Num,
        "n_rejected": int,
    },
    "training_complete": {
        "model_type": str,
        "n_estimators_final": OptInt,
        "best_iteration": OptInt,
        "training_time_sec": Num,
        **_DATASET,
        "threshold": Num,
        "calibration": str,
        "meta_labeling": bool,
        **_VAL_METRICS,
    },
    "plugin_skipped": {"plugin": str, "kind": str, "error": str},
    "hpo_fallback_applied": {"key": str, "value": str, "model_type": str, "timeframe": str},
}
WARNING_EVENTS = {"theta_rejected", "plugin_skipped", "hpo_fallback_applied"}
TRAINING_EVENTS = ("training_started", "class_balance_applied", "theta_picked", "training_complete")


@dataclass(frozen=True)
class Event:
    name: str
    fields: dict[str, Any]

    def as_record(self) -> dict[str, Any]:
        return {"event": self.name, **self.fields}


def emit(name: str, **fields: Any) -> Event:
    schema = EVENT_SCHEMAS[name]
    if set(fields) != set(schema):
        missing, extra = sorted(set(schema) - set(fields)), sorted(set(fields) - set(schema))
        raise TypeError(
            f"event {name}: fields differ from its schema (missing {missing}, unexpected {extra})"
        )
    for key, kind in schema.items():
        value = fields[key]
        allowed = kind if isinstance(kind, tuple) else (kind,)
        # bool is an int to isinstance; a flag where a count belongs is still the wrong type.
        if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
            raise TypeError(f"event {name}: field {key}={value!r} is not of type {kind}")
    event = Event(name, dict(fields))
    log.log(
        logging.WARNING if name in WARNING_EVENTS else logging.INFO,
        json.dumps(event.as_record(), default=str),
    )
    return event
