"""baselines_<cost>bps and economics_<cost>bps for every configured cost level, for one sweep.

Each is one multi-asset whose outputs are the per-cost asset keys, so the UI shows status per
(crypto, fold, cost) while a partition's costs share one step. Economics depends on the baselines of the
same cost, so result rows never exist without their baselines. Each write is one transaction per partition.
"""

from collections.abc import Iterator
from typing import Any

import dagster as dg

from cvn_assets import steps
from cvn_assets.core.datasets import FoldDataset
from cvn_assets.core.peak_memory import reset_peak
from cvn_assets.core.variants import variant_label
from cvn_assets.defs.keys import crypto_and_fold
from cvn_assets.defs.metadata import readable_values, rows_table, step_peak_memory
from cvn_assets.defs.model_assets import input_name, variant_keys
from cvn_assets.defs.resources import ResultsStore
from cvn_assets.defs.sweep import Sweep
from cvn_assets.harness.predictions import VariantPredictions
from cvn_assets.report.partition_view import (
    BASELINE_COLUMNS,
    BASELINE_DESCRIPTIONS,
    BPS,
    DESCRIPTIONS,
    VIEW_COLUMNS,
    baselines_view,
    variants_view,
)
from cvn_assets.store.reports import partition_baselines
from cvn_assets.store.writes import write_baselines, write_results

# Plotted across partitions in the UI, per variant: `<variant>/<figure>`.
KEY_FIGURES = ("auc_buy_test", "sortino_test", "expectancy_test", "n_trades_test")
IN_UNITS = {"expectancy_test": ("expectancy_bps", BPS)}  # figure -> (plotted name, scale): money in bps
RESULTS_KIND = "sqlalchemy"  # the results database


def _key_figures(rows: list[dict[str, Any]], name_column: str, figures: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for row in rows:
        for figure in figures:
            value = row.get(figure)
            if value is not None and value == value:  # NULL and NaN have no point to plot
                name, scale = IN_UNITS.get(figure, (figure, 1))
                out[f"{row[name_column]}/{name}"] = readable_values(value * scale)
    return out


def _label(row: dict[str, Any]) -> str:
    return variant_label(row["variant"], row["feature_set"])


def build_economics_assets(sweep: Sweep) -> list[dg.AssetsDefinition]:
    cfg, keys = sweep.config, sweep.keys
    partitions = keys.crypto_fold_partitions
    baseline_costs = {keys.baselines(cost): cost for cost in cfg.costs_bps}
    economics_costs = {keys.economics(cost): cost for cost in cfg.costs_bps}
    variants = variant_keys(sweep)

    @dg.multi_asset(
        name=f"{sweep.name}_baselines",
        specs=[
            dg.AssetSpec(
                key,
                # After the hyperparameters: when their blocking check fails, no model trains and no
                # baseline is written either, so a blocked partition writes no rows at all.
                deps=[keys.fold_dataset, keys.hyperparameters],
                group_name=keys.group("economics"),
                code_version=sweep.code_versions.baselines,
                kinds={"pandas", RESULTS_KIND},
                description=f"Naive baselines (buy_and_hold, random, naive) at {cost} bps on the fold's "
                "windows, written to finetune_baselines.",
            )
            for key, cost in baseline_costs.items()
        ],
        partitions_def=partitions,
        can_subset=True,
        ins={"dataset": dg.AssetIn(keys.fold_dataset)},
    )
    def baselines(
        context: dg.AssetExecutionContext, results_store: ResultsStore, dataset: FoldDataset
    ) -> Iterator[dg.MaterializeResult]:
        crypto, fold_id = crypto_and_fold(context)
        engine = results_store.engine()
        for key in sorted(context.selected_asset_keys):
            cost = baseline_costs[key]
            rows = steps.baseline_rows(cfg, dataset, cost, context.run_id)
            write_baselines(engine, steps.partition_scope(cfg, crypto, fold_id, cost), rows)
            yield dg.MaterializeResult(
                asset_key=key,
                metadata={
                    "rows_written": len(rows),
                    "cost": f"{cost} bps",
                    "data_hash": dataset.data_hash,
                    "test_window": f"{dataset.fold.test_start} to {dataset.fold.test_end}",
                    "baselines": rows_table(baselines_view(rows), BASELINE_COLUMNS, BASELINE_DESCRIPTIONS),
                    **_key_figures(rows, "baseline_type", ("sortino_test", "expectancy_test")),
                    **step_peak_memory(reset=False),
                },
            )
        reset_peak()

    @dg.multi_asset(
        name=f"{sweep.name}_economics",
        specs=[
            dg.AssetSpec(
                key,
                deps=[keys.fold_dataset, keys.baselines(cost), *variants.values()],
                group_name=keys.group("economics"),
                code_version=sweep.code_versions.economics,
                kinds={"pandas", RESULTS_KIND},
                description=f"Validation and OOS metrics of every variant at {cost} bps, written to "
                "finetune_results; its `variants` table puts each variant's validation metrics, OOS "
                "economics and the same cell's baselines side by side.",
            )
            for key, cost in economics_costs.items()
        ],
        partitions_def=partitions,
        can_subset=True,
        ins={"dataset": dg.AssetIn(keys.fold_dataset)}
        | {input_name(v): dg.AssetIn(key) for v, key in variants.items()},
    )
    def economics(
        context: dg.AssetExecutionContext,
        results_store: ResultsStore,
        dataset: FoldDataset,
        **predictions: VariantPredictions,
    ) -> Iterator[dg.MaterializeResult]:
        crypto, fold_id = crypto_and_fold(context)
        engine = results_store.engine()
        scored = [predictions[input_name(v)] for v in variants]
        for key in sorted(context.selected_asset_keys):
            cost = economics_costs[key]
            rows = steps.result_rows(cfg, dataset, scored, cost, context.run_id)
            write_results(engine, steps.partition_scope(cfg, crypto, fold_id, cost), rows)
            with engine.connect() as conn:  # written by this run's baselines step, the same cell and cost
                beside = partition_baselines(conn, cfg.run_id, crypto, fold_id, cost)
            yield dg.MaterializeResult(
                asset_key=key,
                metadata={
                    "rows_written": len(rows),
                    "run_id": cfg.run_id,
                    "cost": f"{cost} bps",
                    "data_hash": dataset.data_hash,
                    "variants": rows_table(variants_view(rows, beside), VIEW_COLUMNS, DESCRIPTIONS),
                    **_key_figures([row | {"label": _label(row)} for row in rows], "label", KEY_FIGURES),
                    **step_peak_memory(reset=False),
                },
            )
        reset_peak()

    return [baselines, economics]
