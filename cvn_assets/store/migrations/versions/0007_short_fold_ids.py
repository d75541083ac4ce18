"""fold_id in its short form, the fold's position and its test window's start (f03_2019-09-24), which the UI
shows whole; rows written with the long form (f003_2019-09-24_2019-12-23) are rewritten. The store also
reads a long-form id given to it as the short one (core/folds.py: current_fold_id). The conversion is
spelled out here rather than imported: a migration must keep meaning what it meant.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TABLES = ("finetune_results", "finetune_baselines")


def _short(fold_id: str) -> str | None:
    """f003_2019-09-24_2019-12-23 -> f03_2019-09-24; None for an id that is not of the long form."""
    parts = fold_id.split("_")
    if len(parts) != 3 or not parts[0].startswith("f") or not parts[0][1:].isdigit():
        return None
    return f"f{int(parts[0][1:]):02d}_{parts[1]}"


def _long(fold_id: str, test_end: pd.Timestamp) -> str | None:
    """f03_2019-09-24 and its test window's end -> f003_2019-09-24_2019-12-23 (time of day on both when
    either window edge is not at midnight); None for an id that is not of the short form."""
    parts = fold_id.split("_")
    if len(parts) != 2 or not parts[0].startswith("f") or not parts[0][1:].isdigit():
        return None
    start, end = pd.Timestamp(parts[1]), pd.Timestamp(test_end).tz_localize(None)
    fmt = "%Y-%m-%d" if start == start.normalize() and end == end.normalize() else "%Y-%m-%dT%H:%M"
    return f"f{int(parts[0][1:]):03d}_{start:{fmt}}_{end:{fmt}}"


def _table(name: str) -> sa.TableClause:
    return sa.table(name, sa.column("fold_id", sa.String), sa.column("test_end", sa.DateTime(timezone=True)))


def upgrade() -> None:
    conn = op.get_bind()
    for name in TABLES:
        table = _table(name)
        for old in conn.execute(sa.select(table.c.fold_id).distinct()).scalars().all():
            new = _short(old)
            if new is not None:
                conn.execute(sa.update(table).where(table.c.fold_id == old).values(fold_id=new))


def downgrade() -> None:
    conn = op.get_bind()
    for name in TABLES:
        table = _table(name)
        # One fold id is one test window: every row of it has the same test_end.
        ends = sa.select(table.c.fold_id, sa.func.max(table.c.test_end)).group_by(table.c.fold_id)
        for short, test_end in conn.execute(ends).all():
            long = _long(short, pd.Timestamp(test_end))
            if long is not None:
                conn.execute(sa.update(table).where(table.c.fold_id == short).values(fold_id=long))
