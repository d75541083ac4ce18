"""Realized fills in the results database, and the one rule that sets an economic row's cost basis.

- `import_fills` loads a validated fills file (`core/fills.py`: the format, the crypto naming, the
  arithmetic) in one transaction: new fills are inserted, fills already stored stay as they are (the
  table is unique on the fill, so importing a file again changes nothing), and a fill stored with
  another fee is refused with nothing written. Then every results and baselines row of every run is
  relabelled.
- `label_cost_basis` is that relabelling, and the only code that sets `realized_fills`: the import runs it
  over all rows, every partition write (`writes.replace_partition`) over the partition's rows in its own
  transaction, so a re-run keeps its label. A row whose test window the fills cover gets cost_basis
  'realized_fills' and its realized round trip in realized_cost_bps; any other row 'backtested_assumed'
  and NULL. It changes those two columns only: a row's economics stay those computed at the assumed cost
  (fee_bps + slippage_bps per side). A row with a cost basis that is neither is left for the
  `cost_basis_labelled` audit to report.
- The monthly realized costs are a query (`monthly_totals`), not a table: every fill stores its UTC
  month, notional and fee in the quote as imported, so the query is one GROUP BY on both dialects and
  cannot disagree with the fills it sums, as a table of figures derived at import could.
- On PostgreSQL an import holds an exclusive advisory lock for its transaction and every partition write
  a shared one, so a write never labels from half-imported fills and an import never misses the rows of a
  write still committing. SQLite has one writer at a time anyway.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from cvn_assets.core.errors import DataValidationError
from cvn_assets.core.fills import FILL_KEY, FillsFile, MonthlyCost, crypto_of, window_round_trip_bps
from cvn_assets.store.engine import dialect_insert
from cvn_assets.store.schema import (
    COST_BASES,
    COST_BASIS_BACKTESTED,
    COST_BASIS_REALIZED,
    finetune_baselines,
    finetune_results,
    realized_fills,
)

ECONOMIC_TABLES = (finetune_results, finetune_baselines)
_FILLS_LOCK = zlib.crc32(realized_fills.name.encode()) % 2**31
_CHUNK = 500  # ids per UPDATE, well inside SQLite's limit on bound parameters


def lock_fills(conn: sa.Connection, *, exclusive: bool) -> None:
    """PostgreSQL: the fills lock until the transaction ends (exclusive: an import; shared: a write)."""
    if conn.dialect.name == "postgresql":
        lock = sa.func.pg_advisory_xact_lock if exclusive else sa.func.pg_advisory_xact_lock_shared
        conn.execute(sa.select(lock(_FILLS_LOCK, 0)))


def monthly_totals(
    conn: sa.Connection, cryptos: Iterable[str] | None = None
) -> dict[str, dict[str, MonthlyCost]]:
    """The stored fills summed per crypto and calendar month: {crypto: {YYYY-MM: MonthlyCost}}."""
    f = realized_fills.c
    query = (
        sa.select(f.crypto, f.month, sa.func.count(), sa.func.sum(f.notional_quote), sa.func.sum(f.fee_quote))
        .group_by(f.crypto, f.month)
        .order_by(f.crypto, f.month)
    )
    if cryptos is not None:
        query = query.where(f.crypto.in_(sorted(set(cryptos))))
    totals: dict[str, dict[str, MonthlyCost]] = {}
    for crypto, month, n, notional, fee in conn.execute(query):
        totals.setdefault(crypto, {})[month] = MonthlyCost(crypto, month, n, float(notional), float(fee))
    return totals


def label_cost_basis(
    conn: sa.Connection, table: sa.Table, where: sa.ColumnElement[bool] | None = None
) -> int:
    """Set cost_basis and realized_cost_bps of `table`'s rows (those `where` selects, else all) from the
    stored fills; return how many rows changed. Rows are updated by id, only where a value changes."""
    t = table.c
    rows = conn.execute(
        sa.select(t.id, t.crypto, t.test_start, t.test_end, t.cost_basis, t.realized_cost_bps).where(
            t.cost_basis.in_(COST_BASES), *([where] if where is not None else [])
        )
    ).all()
    if not rows:
        return 0
    months = monthly_totals(conn, {crypto_of(row.crypto) for row in rows})
    costs: dict[tuple[str, datetime, datetime], float | None] = {}
    changes: dict[tuple[str, float | None], list[int]] = {}
    for row in rows:
        window = (row.crypto, row.test_start, row.test_end)
        if window not in costs:
            costs[window] = window_round_trip_bps(months.get(crypto_of(row.crypto), {}), *window[1:])
        cost = costs[window]
        basis = COST_BASIS_BACKTESTED if cost is None else COST_BASIS_REALIZED
        if (row.cost_basis, row.realized_cost_bps) != (basis, cost):
            changes.setdefault((basis, cost), []).append(row.id)
    for (basis, cost), ids in changes.items():
        for chunk in range(0, len(ids), _CHUNK):
            conn.execute(
                sa.update(table)
                .where(t.id.in_(ids[chunk : chunk + _CHUNK]))
                .values(cost_basis=basis, realized_cost_bps=cost)
            )
    return sum(map(len, changes.values()))


@dataclass(frozen=True)
class FillsImport:
    """What `import_fills` did."""

    source: str
    rows_read: int
    fills: int  # distinct fills in the file
    new: int  # of them, inserted now
    relabelled: dict[str, int]  # table -> rows whose cost_basis or realized_cost_bps changed (all runs)
    realized: dict[str, int]  # table -> rows labelled realized_fills after the import (all runs)
    monthly: list[MonthlyCost]  # every stored month of the cryptos in the file

    @property
    def already_stored(self) -> int:
        return self.fills - self.new


def _utc(moment: datetime) -> datetime:
    """A stored timestamp as UTC (SQLite gives back the stored UTC time without a zone)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _refuse_changed_fills(conn: sa.Connection, parsed: FillsFile) -> None:
    """A fill already stored with another fee is an error: a stored fill is never changed silently."""
    fills, f = parsed.fills, realized_fills.c
    stored = conn.execute(
        sa.select(*(f[k] for k in FILL_KEY), f.fee, f.fee_currency, f.source, f.source_row).where(
            f.crypto.in_(sorted(set(fills["crypto"]))),
            f.filled_at >= fills["filled_at"].min().to_pydatetime(),
            f.filled_at <= fills["filled_at"].max().to_pydatetime(),
        )
    ).all()
    known = {(_utc(s.filled_at), *s[1 : len(FILL_KEY)]): s for s in stored}
    for fill in fills.itertuples(index=False):
        s = known.get(
            (fill.filled_at.to_pydatetime(), fill.base, fill.quote, fill.side, fill.price, fill.quantity)
        )
        if s is not None and (s.fee, s.fee_currency) != (fill.fee, fill.fee_currency):
            raise DataValidationError(
                parsed.source,
                f"this fill is already stored with fee {s.fee:g} {s.fee_currency} (imported from "
                f"{s.source} row {s.source_row}), not {fill.fee:g} {fill.fee_currency}; a stored fill is "
                "never changed: correct this row, or delete the stored fill from realized_fills first",
                int(fill.source_row),
                "fee" if s.fee != fill.fee else "fee_currency",
            )


def _count(conn: sa.Connection, table: sa.Table, *where: sa.ColumnElement[bool]) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(table).where(*where)).scalar_one())


def import_fills(engine: sa.Engine, parsed: FillsFile) -> FillsImport:
    """Store a validated file's fills and relabel every economic row, in one transaction."""
    now = datetime.now(UTC)
    columns = [c.name for c in realized_fills.columns if c.name not in ("id", "imported_at")]
    records = [
        {**{c: getattr(fill, c) for c in columns}, "filled_at": fill.filled_at.to_pydatetime(),
         "source_row": int(fill.source_row), "imported_at": now}
        for fill in parsed.fills.itertuples(index=False)
    ]  # fmt: skip
    with engine.begin() as conn:
        lock_fills(conn, exclusive=True)
        _refuse_changed_fills(conn, parsed)
        before = _count(conn, realized_fills)
        insert = dialect_insert(conn, realized_fills).on_conflict_do_nothing(index_elements=list(FILL_KEY))
        conn.execute(insert, records)
        new = _count(conn, realized_fills) - before
        relabelled = {table.name: label_cost_basis(conn, table) for table in ECONOMIC_TABLES}
        realized = {
            table.name: _count(conn, table, table.c.cost_basis == COST_BASIS_REALIZED)
            for table in ECONOMIC_TABLES
        }
        months = monthly_totals(conn, set(parsed.fills["crypto"]))
    monthly = [m for crypto in sorted(months) for m in months[crypto].values()]
    return FillsImport(parsed.source, parsed.rows_read, len(parsed.fills), new, relabelled, realized, monthly)
