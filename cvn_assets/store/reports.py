"""Read-side summaries of a sweep: variants against baselines, per cost level."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import sqlalchemy as sa

from cvn_assets.core.folds import current_fold_id
from cvn_assets.core.variants import variant_label
from cvn_assets.store.schema import finetune_baselines, finetune_results

SUMMARY_METRICS = [
    "sortino_test",
    "expectancy_test",
    "win_rate_test",
    "n_trades_test",
    "total_return_test",
    "max_drawdown_test",
]


def summary(engine: sa.Engine, run_id: str) -> pd.DataFrame:
    """Mean test-split economics over crypto x fold, one row per (cost, variant or baseline)."""
    r, b = finetune_results.c, finetune_baselines.c
    with engine.connect() as conn:
        results = pd.read_sql(
            sa.select(
                r.cost_bps, r.variant, r.feature_set, r.auc_buy_test, *(r[m] for m in SUMMARY_METRICS)
            ).where(r.run_id == run_id),
            conn,
        )
        results.insert(1, "name", labelled(results)["variant"])
        results = results.drop(columns=["variant", "feature_set"])
        baselines = pd.read_sql(
            sa.select(b.cost_bps, b.baseline_type.label("name"), *(b[m] for m in SUMMARY_METRICS)).where(
                b.run_id == run_id
            ),
            conn,
        )
    results["kind"], baselines["kind"] = "model", "baseline"
    both = pd.concat([results, baselines], ignore_index=True)
    if both.empty:
        return both
    grouped = both.groupby(["cost_bps", "kind", "name"], sort=True)
    table = grouped[["auc_buy_test", *SUMMARY_METRICS]].mean(numeric_only=True)
    table.insert(0, "partitions", grouped.size())
    return table.reset_index().sort_values(["cost_bps", "kind", "name"], ascending=[True, False, True])


def sweep_rows(engine: sa.Engine, run_id: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every result row and every baseline row of a sweep, as the report reads them."""
    with engine.connect() as conn:
        results = labelled(
            pd.read_sql(sa.select(finetune_results).where(finetune_results.c.run_id == run_id), conn)
        )
        baselines = pd.read_sql(
            sa.select(finetune_baselines).where(finetune_baselines.c.run_id == run_id), conn
        )
    return results, baselines


def results_frame(
    conn: sa.Connection,
    run_id: str,
    columns: Sequence[str],
    crypto: str | None = None,
    fold_id: str | None = None,
) -> pd.DataFrame:
    """`columns` of a sweep's result rows, or of one crypto x fold partition's."""
    r = finetune_results.c
    wanted = [*columns, *(["feature_set"] if "variant" in columns and "feature_set" not in columns else [])]
    query = sa.select(*(r[c] for c in wanted)).where(r.run_id == run_id)
    if crypto is not None:
        query = query.where(r.crypto == crypto)
    if fold_id is not None:
        query = query.where(r.fold_id == current_fold_id(fold_id))
    frame = pd.read_sql(query.order_by(r.cost_bps, r.crypto, r.fold_id, r.feature_set, r.variant), conn)
    return labelled(frame)[list(columns)] if "variant" in columns else frame


def labelled(results: pd.DataFrame) -> pd.DataFrame:
    """Result rows with `variant` as reports name it: the model or ensemble, `@` its feature set when that
    is not base. Every (feature set, model) pair is a variant of its own in the report's statistics."""
    if results.empty or "feature_set" not in results.columns:
        return results
    out = results.copy()
    out["variant"] = [variant_label(v, fs) for v, fs in zip(out["variant"], out["feature_set"], strict=True)]
    return out


def partition_baselines(
    conn: sa.Connection, run_id: str, crypto: str, fold_id: str, cost_bps: int
) -> list[dict[str, Any]]:
    """The baseline rows of one crypto x fold partition at one cost (baseline_type and test economics)."""
    b = finetune_baselines.c
    query = sa.select(b.baseline_type, *(b[m] for m in SUMMARY_METRICS)).where(
        b.run_id == run_id,
        b.crypto == crypto,
        b.fold_id == current_fold_id(fold_id),
        b.cost_bps == cost_bps,
    )
    return [dict(row._mapping) for row in conn.execute(query.order_by(b.baseline_type))]
