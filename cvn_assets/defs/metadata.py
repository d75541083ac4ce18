"""Domain rows as Dagster table metadata: a column schema with descriptions, integers as integers, floats
to four significant digits, NULL as empty."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import dagster as dg

from cvn_assets.core.peak_memory import read_peak, reset_peak

Cell = str | int | float | bool | None
SIGNIFICANT_DIGITS = 4  # what a metric means to a reader; the stored rows keep full precision


def readable(value: float) -> float:
    """`value` to four significant digits, keeping every digit left of the point (a price of 43251.5
    reads 43252, not 4.325e4)."""
    if value == 0 or not math.isfinite(value):
        return value
    digits = SIGNIFICANT_DIGITS - 1 - math.floor(math.log10(abs(value)))
    return float(round(value, max(digits, 0)))


def readable_values(value: Any) -> Any:
    """`value` with every float in it (nested in dicts and lists too) at four significant digits, for a
    single metadata value or a JSON one; NaN and infinities become NULL."""
    if isinstance(value, float):
        return readable(value) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: readable_values(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [readable_values(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return readable_values(value.item())
    return value


def _cell(value: Any) -> Cell:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None  # NULL and NaN show as empty cells, never as 'nan'
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return readable(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return _cell(value.item())
    return str(value)


def _column_type(values: list[Cell]) -> str:
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return "bool"
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return "int"
    if present and all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return "float"
    return "string"


def rows_table(
    rows: Sequence[dict[str, Any]], columns: Sequence[str], descriptions: Mapping[str, str] | None = None
) -> dg.TableMetadataValue:
    """`rows` as a table of `columns` (in that order), typed from the values, each column described
    (with its unit) where `descriptions` names it."""
    cells = [{c: _cell(row.get(c)) for c in columns} for row in rows]
    described = descriptions or {}
    schema = dg.TableSchema(
        columns=[
            dg.TableColumn(c, _column_type([r[c] for r in cells]), description=described.get(c))
            for c in columns
        ]
    )
    return dg.MetadataValue.table(records=[dg.TableRecord(r) for r in cells], schema=schema)


EVALUATED_AT = "evaluated_at"


def evaluated_now() -> dict[str, dg.TimestampMetadataValue]:
    """When a check was evaluated, which the UI shows as a time: Dagster's own timestamp of a check
    execution is when its run was created."""
    return {EVALUATED_AT: dg.MetadataValue.timestamp(time.time())}


PEAK_MEMORY = "peak_memory_mib"


def step_peak_memory(reset: bool = True) -> dict[str, float]:
    """The run process's peak resident memory during this step so far, in MiB: what a pod's memory limit
    must hold (the working-set estimate is checked against it). With `reset`, the next step of the run
    measures from here. Where the kernel refuses the reset, the peak since the process started."""
    peak = read_peak()
    if reset:
        reset_peak()
    return {PEAK_MEMORY: round(peak / 2**20, 1)}
