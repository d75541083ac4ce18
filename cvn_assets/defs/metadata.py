"""Small helpers turning domain values into Dagster metadata."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dagster as dg
import pandas as pd


def rows_table(
    rows: Sequence[dict[str, Any]], index: str, columns: Sequence[str]
) -> dg.MarkdownMetadataValue:
    frame = pd.DataFrame(rows).set_index(index)[list(columns)]
    return dg.MetadataValue.md(frame.to_markdown(floatfmt=".4f"))
