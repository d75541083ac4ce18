"""Writing and reading diagnostics' verdicts (`diagnostic_verdicts`).

A cell's audit writes the verdicts of the diagnostics it ran in one transaction, replacing what those
diagnostics said of the cell before; the verdicts of diagnostics it did not run stay.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from cvn_assets.store.schema import VERDICT_SCOPE, diagnostic_verdicts

Row = Mapping[str, Any]
COLUMNS = [c.name for c in diagnostic_verdicts.columns if c.name != "id"]


def write_verdicts(engine: sa.Engine, scope: Mapping[str, Any], rows: Sequence[Row]) -> int:
    """Store `rows` as the cell's verdicts (`scope`: run_id, strategy, crypto, fold_id), each replacing what
    the same diagnostic said of the same subject (the cell, or a model on a feature set) before."""
    if set(scope) != set(VERDICT_SCOPE):
        raise ValueError(f"a verdict's scope is {VERDICT_SCOPE}, not {sorted(scope)}")
    for row in rows:
        if any(row[k] != v for k, v in scope.items()):
            raise ValueError(
                f"verdict {row['diagnostic']} of {row['crypto']} {row['fold_id']} is outside {dict(scope)}"
            )
    table = diagnostic_verdicts
    subject = sa.tuple_(table.c.diagnostic, sa.func.coalesce(table.c.feature_set, ""),
                        sa.func.coalesce(table.c.variant, ""))  # fmt: skip
    replaced = [(r["diagnostic"], r["feature_set"] or "", r["variant"] or "") for r in rows]
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":  # one writer per cell at a time; released with the transaction
            key = zlib.crc32(repr(sorted(scope.items())).encode()) % 2**31
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(zlib.crc32(b"verdicts") % 2**31, key)))
        if rows:
            in_scope = [table.c[k] == v for k, v in scope.items()]
            conn.execute(sa.delete(table).where(*in_scope, subject.in_(replaced)))
            conn.execute(sa.insert(table), [dict(row) for row in rows])
    return len(rows)


def read_verdicts(
    conn: sa.Connection, run_id: str, crypto: str | None = None, fold_id: str | None = None
) -> list[dict[str, Any]]:
    """The sweep's verdicts (or one cell's), ordered by cell, diagnostic and variant."""
    table = diagnostic_verdicts
    where = [table.c.run_id == run_id]
    if crypto is not None:
        where.append(table.c.crypto == crypto)
    if fold_id is not None:
        where.append(table.c.fold_id == fold_id)
    query = (
        sa.select(*(table.c[c] for c in COLUMNS))
        .where(*where)
        .order_by(table.c.crypto, table.c.fold_id, table.c.diagnostic, table.c.feature_set, table.c.variant)
    )
    return [dict(row._mapping) for row in conn.execute(query)]
