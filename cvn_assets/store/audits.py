"""Invariants of the results store, as queries returning the violations (empty list = healthy).

The Dagster asset checks report these; tests call them directly against SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import sqlalchemy as sa

from cvn_assets.core.baselines import MATCHED_BASELINE
from cvn_assets.core.folds import current_fold_id
from cvn_assets.core.variants import variant_label
from cvn_assets.store.schema import (
    COST_BASES,
    COST_BASIS_BACKTESTED,
    COST_BASIS_REALIZED,
    MATCHED_PREFIX,
    SPLIT_SUFFIXES,
    finetune_baselines,
    finetune_results,
)

# Values that mean "somebody did not have the real value" in the system this replaces.
PLACEHOLDERS = ("unknown", "{}", "", "null", "none", "[]")
JOIN_KEY_COLUMNS = ("model_hyperparams", "feature_hash", "data_hash", "code_version")


def _in_scope(
    table: sa.Table, run_id: str, crypto: str | None, fold_id: str | None
) -> sa.ColumnElement[bool]:
    """The sweep's rows, or one crypto x fold partition of them."""
    clauses = [table.c.run_id == run_id]
    if crypto is not None:
        clauses.append(table.c.crypto == crypto)
    if fold_id is not None:
        clauses.append(table.c.fold_id == current_fold_id(fold_id))
    return sa.and_(*clauses)


def _is_placeholder(column: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
    return sa.or_(column.is_(None), sa.func.lower(sa.func.trim(column)).in_(PLACEHOLDERS))


def missing_baselines(
    conn: sa.Connection,
    run_id: str,
    cost_levels: Iterable[int],
    baseline_types: Iterable[str],
    crypto: str | None = None,
    fold_id: str | None = None,
) -> list[dict[str, Any]]:
    """Every crypto x fold with results needs every baseline type at every cost level, on the same test
    window and the same data hash as its result rows."""
    r, b = finetune_results.c, finetune_baselines.c
    partitions = conn.execute(
        sa.select(r.strategy, r.crypto, r.fold_id, r.test_start, r.test_end, r.data_hash)
        .where(_in_scope(finetune_results, run_id, crypto, fold_id))
        .distinct()
    ).all()
    present = {
        (row.strategy, row.crypto, row.fold_id, row.cost_bps, row.baseline_type): (
            row.test_start,
            row.test_end,
            row.data_hash,
        )
        for row in conn.execute(
            sa.select(
                b.strategy,
                b.crypto,
                b.fold_id,
                b.cost_bps,
                b.baseline_type,
                b.test_start,
                b.test_end,
                b.data_hash,
            ).where(_in_scope(finetune_baselines, run_id, crypto, fold_id))
        )
    }
    problems: list[dict[str, Any]] = []
    for p in partitions:
        for cost in cost_levels:
            for kind in baseline_types:
                got = present.get((p.strategy, p.crypto, p.fold_id, cost, kind))
                where = {"crypto": p.crypto, "fold_id": p.fold_id, "cost_bps": cost, "baseline_type": kind}
                if got is None:
                    problems.append({**where, "problem": "missing"})
                elif got != (p.test_start, p.test_end, p.data_hash):
                    problems.append(
                        {**where, "problem": "different test window or data hash than the results"}
                    )
    return problems


def missing_matched_baselines(
    conn: sa.Connection, run_id: str, crypto: str | None = None, fold_id: str | None = None
) -> list[dict[str, Any]]:
    """Every result row needs its own `random_matched` baseline on both splits (written with the row;
    NULL on rows written before migration 0005 until their partition is re-run), trading exactly as often
    as the variant."""
    r = finetune_results.c
    pairs = [(r[f"n_trades{s}"], r[f"{MATCHED_PREFIX}n_trades{s}"]) for s in SPLIT_SUFFIXES]
    rows = conn.execute(
        sa.select(
            r.variant, r.feature_set, r.crypto, r.fold_id, r.cost_bps, *(c for pair in pairs for c in pair)
        ).where(
            _in_scope(finetune_results, run_id, crypto, fold_id),
            sa.or_(*(sa.or_(matched.is_(None), matched != own) for own, matched in pairs)),
        )
    ).all()
    problems = []
    for v, fs, c, f, cost, *counts in rows:
        own_and_matched = list(zip(counts[::2], counts[1::2], strict=True))
        if any(matched is None for _, matched in own_and_matched):
            problem = "missing"
        else:
            problem = "; ".join(
                f"{matched:g} trades on{suffix}, its variant {own}"
                for (own, matched), suffix in zip(own_and_matched, SPLIT_SUFFIXES, strict=True)
                if matched != own
            )
        problems.append({"crypto": c, "fold_id": f, "cost_bps": cost, "baseline_type": MATCHED_BASELINE,
                         "variant": variant_label(v, fs), "problem": problem})  # fmt: skip
    return problems


def placeholder_join_keys(
    conn: sa.Connection, run_id: str, crypto: str | None = None, fold_id: str | None = None
) -> list[dict[str, Any]]:
    """Result rows whose join keys back to their config are NULL or a placeholder."""
    r = finetune_results.c
    problems: list[dict[str, Any]] = []
    for column in JOIN_KEY_COLUMNS:
        rows = conn.execute(
            sa.select(r.variant, r.feature_set, r.crypto, r.fold_id, r.cost_bps, r[column]).where(
                _in_scope(finetune_results, run_id, crypto, fold_id), _is_placeholder(r[column])
            )
        ).all()
        problems += [
            {"variant": variant_label(v, fs), "crypto": c, "fold_id": f, "cost_bps": cost, "column": column,
             "value": value}
            for v, fs, c, f, cost, value in rows
        ]  # fmt: skip
    return problems


def unlabelled_cost_basis(
    conn: sa.Connection, run_id: str, crypto: str | None = None, fold_id: str | None = None
) -> list[dict[str, Any]]:
    """Economic rows (results and baselines) without a known cost basis: exactly 'backtested_assumed'
    (realized_cost_bps NULL) or 'realized_fills' (with its realized_cost_bps). A row claiming realized
    fills without the realized figure certifies an assumption; one with the figure but labelled assumed
    contradicts itself."""
    problems: list[dict[str, Any]] = []
    for table in (finetune_results, finetune_baselines):
        t = table.c
        rows = conn.execute(
            sa.select(t.crypto, t.fold_id, t.cost_bps, t.cost_basis, t.realized_cost_bps).where(
                _in_scope(table, run_id, crypto, fold_id),
                sa.or_(
                    t.cost_basis.is_(None),
                    t.cost_basis.not_in(COST_BASES),
                    sa.and_(t.cost_basis == COST_BASIS_REALIZED, t.realized_cost_bps.is_(None)),
                    sa.and_(t.cost_basis == COST_BASIS_BACKTESTED, t.realized_cost_bps.is_not(None)),
                ),
            )
        ).all()
        problems += [
            {"table": table.name, "crypto": c, "fold_id": f, "cost_bps": cost, "cost_basis": basis,
             "realized_cost_bps": realized}
            for c, f, cost, basis, realized in rows
        ]  # fmt: skip
    return problems


def over_trading(
    conn: sa.Connection,
    run_id: str,
    ratio: float,
    min_trades: int,
    crypto: str | None = None,
    fold_id: str | None = None,
) -> list[dict[str, Any]]:
    """Variants whose OOS trade count in a crypto x fold x cost is more than `ratio` times the median of
    their sibling variants' (the signature of the old LightGBM threshold bug) and more than `min_trades`
    (so that one trade beside siblings that never traded is not called over-trading). A variant's siblings
    are the other variants on its feature set: the models given the same inputs (a variant alone on its
    feature set has none, and is not compared).

    When most siblings never trade (a median of 0 gives no scale), the reference is the median of the
    siblings that do trade; a variant trading alone is compared with `min_trades` only."""
    r = finetune_results.c
    rows = conn.execute(
        sa.select(r.crypto, r.fold_id, r.cost_bps, r.feature_set, r.variant, r.n_trades_test).where(
            _in_scope(finetune_results, run_id, crypto, fold_id)
        )
    ).all()
    groups: dict[tuple[str, str, int, str], dict[str, int]] = {}
    for crypto, fold_id, cost, feature_set, variant, n_trades in rows:
        label = variant_label(variant, feature_set)
        groups.setdefault((crypto, fold_id, cost, feature_set), {})[label] = n_trades or 0
    problems: list[dict[str, Any]] = []
    for (crypto, fold_id, cost, _), trades in groups.items():
        for variant, n in trades.items():
            siblings = [t for v, t in trades.items() if v != variant]
            if not siblings:
                continue
            median = float(np.median(siblings))
            trading = [t for t in siblings if t > 0]
            if median == 0 and trading:
                median = float(np.median(trading))
            if n > ratio * median and n > min_trades:
                problems.append(
                    {
                        "crypto": crypto,
                        "fold_id": fold_id,
                        "cost_bps": cost,
                        "variant": variant,
                        "n_trades_test": n,
                        "siblings_median": median,
                    }  # fmt: skip
                )
    return problems
