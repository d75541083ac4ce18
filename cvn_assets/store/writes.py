"""Writing one partition's rows: one transaction, an upsert on the table's unique key, and removal of
rows of that partition that the new write no longer has, then the rows' cost basis set from the realized
fills stored (store/fills.py: label_cost_basis). Writing the same partition again leaves the same rows.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from cvn_assets.store.engine import dialect_insert
from cvn_assets.store.fills import label_cost_basis, lock_fills
from cvn_assets.store.schema import BASELINE_KEY, RESULT_KEY, finetune_baselines, finetune_results

Row = Mapping[str, Any]


def replace_partition(
    engine: sa.Engine, table: sa.Table, key: Sequence[str], scope: Mapping[str, Any], rows: Sequence[Row]
) -> int:
    """Make the rows of `scope` (e.g. run_id, strategy, crypto, fold_id, cost_bps) exactly `rows`."""
    members = [k for k in key if k not in scope]  # the key columns that vary inside the scope
    for row in rows:
        wrong = {k: row[k] for k in scope if row[k] != scope[k]}
        if wrong:
            named = "/".join(str(row[m]) for m in members)
            raise ValueError(f"row {named!r} does not belong to partition {dict(scope)}: {wrong}")
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Serialize writers of the same partition; the lock ends with the transaction.
            table_id = zlib.crc32(table.name.encode()) % 2**31
            scope_id = zlib.crc32(repr(sorted(scope.items())).encode()) % 2**31
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(table_id, scope_id)))
        lock_fills(conn, exclusive=False)  # no fills import commits halfway through this write
        in_scope = sa.and_(*(table.c[k] == v for k, v in scope.items()))
        kept = [tuple(row[m] for m in members) for row in rows]
        stale = sa.tuple_(*(table.c[m] for m in members)).not_in(kept) if kept else sa.true()
        conn.execute(sa.delete(table).where(in_scope, stale))
        if rows:
            stmt = dialect_insert(conn, table).values(list(rows))
            updates = {c: stmt.excluded[c] for c in rows[0] if c not in key}
            conn.execute(stmt.on_conflict_do_update(index_elements=list(key), set_=updates))
            # The rows arrive at the assumed cost basis; realized fills that cover their window relabel
            # them here, by the same rule as `cvn fills import`, so a re-run keeps its label.
            label_cost_basis(conn, table, in_scope)
    return len(rows)


def write_results(engine: sa.Engine, scope: Mapping[str, Any], rows: Sequence[Row]) -> int:
    return replace_partition(engine, finetune_results, RESULT_KEY, scope, rows)


def write_baselines(engine: sa.Engine, scope: Mapping[str, Any], rows: Sequence[Row]) -> int:
    return replace_partition(engine, finetune_baselines, BASELINE_KEY, scope, rows)
