"""Our frozen dataclasses as JSON and back, exactly: floats through their shortest repr, timestamps as ISO
strings, tuples restored from the type hints. No class is named in the JSON: the reader says which it wants.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from functools import cache
from typing import Any

import numpy as np
import pandas as pd


def to_json_value(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json_value(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (tuple, list)):
        return [to_json_value(v) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError(f"JSON keys must be strings, got {sorted(map(repr, value))[:3]}")
        return {k: to_json_value(v) for k, v in value.items()}
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    raise TypeError(f"{type(value).__name__} has no JSON form in the artifact store")


def dumps(value: Any) -> bytes:
    return json.dumps(to_json_value(value), indent=1, sort_keys=False).encode()


def loads(data: bytes) -> Any:
    return json.loads(data)


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def from_json_value(tp: Any, data: Any) -> Any:
    """`data` (as `to_json_value` wrote it) as a value of type `tp`."""
    if tp is Any or data is None:
        return data
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        return from_json_value(options[0], data) if len(options) == 1 else data
    if dataclasses.is_dataclass(tp):
        hints = _hints(tp)
        return tp(
            **{
                f.name: from_json_value(hints[f.name], data[f.name])
                for f in dataclasses.fields(tp)
                if f.name in data
            }
        )
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(from_json_value(args[0], v) for v in data)
        return tuple(from_json_value(a, v) for a, v in zip(args, data, strict=True)) if args else tuple(data)
    if origin is list:
        return [from_json_value(args[0] if args else Any, v) for v in data]
    if origin is dict:
        value_type = args[1] if args else Any
        return {k: from_json_value(value_type, v) for k, v in data.items()}
    if tp is pd.Timestamp:
        return pd.Timestamp(data)
    if tp is float and isinstance(data, int):
        return float(data)
    return data
