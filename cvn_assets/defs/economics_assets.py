"""baselines/<cost> and economics/<cost> for every configured cost level.

Each is one multi-asset whose outputs are the per-cost asset keys, so the UI shows status per
(crypto, fold, cost) while a partition's costs share one step. Economics depends on the baselines of the
same cost, so result rows never exist without their baselines. Each write is one transaction per partition.
"""

from collections.abc import Iterator

import dagster as dg

from cvn_assets import steps
from cvn_assets.core.backtest import ECONOMIC_METRICS
from cvn_assets.core.datasets import FoldDataset
from cvn_assets.core.sweep_plan import SweepPlan
from cvn_assets.defs.keys import (
    FOLD_DATASET,
    baselines_key,
    crypto_and_fold,
    crypto_fold_partitions,
    economics_key,
)
from cvn_assets.defs.metadata import rows_table
from cvn_assets.defs.model_assets import variant_keys
from cvn_assets.defs.resources import ResultsStore
from cvn_assets.harness.predictions import VariantPredictions
from cvn_assets.store.writes import write_baselines, write_results
from cvn_assets.version import code_version

_TABLE_COLUMNS = [f"{m}_test" for m in ECONOMIC_METRICS]


def build_economics_assets(plan: SweepPlan) -> list[dg.AssetsDefinition]:
    partitions = crypto_fold_partitions(plan)
    baseline_costs = {baselines_key(cost): cost for cost in plan.config.costs_bps}
    economics_costs = {economics_key(cost): cost for cost in plan.config.costs_bps}
    variants = variant_keys(plan)

    @dg.multi_asset(
        name="baselines",
        specs=[
            dg.AssetSpec(
                key,
                deps=[FOLD_DATASET],
                group_name="economics",
                code_version=code_version(),
                description=f"Naive baselines (buy_and_hold, random, naive) at {cost} bps on the fold's windows.",
            )
            for key, cost in baseline_costs.items()
        ],
        partitions_def=partitions,
        can_subset=True,
        ins={"dataset": dg.AssetIn(FOLD_DATASET)},
    )
    def baselines(
        context: dg.AssetExecutionContext, results_store: ResultsStore, dataset: FoldDataset
    ) -> Iterator[dg.MaterializeResult]:
        crypto, fold_id = crypto_and_fold(context)
        engine = results_store.engine()
        for key in sorted(context.selected_asset_keys):
            cost = baseline_costs[key]
            rows = steps.baseline_rows(plan, dataset, cost, context.run_id)
            write_baselines(engine, steps.partition_scope(plan, crypto, fold_id, cost), rows)
            yield dg.MaterializeResult(
                asset_key=key,
                metadata={
                    "rows_written": len(rows),
                    "data_hash": dataset.data_hash,
                    "test_window": f"{dataset.fold.test_start} to {dataset.fold.test_end}",
                    "baselines": rows_table(rows, "baseline_type", _TABLE_COLUMNS),
                },
            )

    @dg.multi_asset(
        name="economics",
        specs=[
            dg.AssetSpec(
                key,
                deps=[FOLD_DATASET, baselines_key(cost), *variants.values()],
                group_name="economics",
                code_version=code_version(),
                description=f"Validation and OOS metrics of every variant at {cost} bps, written to finetune_results.",
            )
            for key, cost in economics_costs.items()
        ],
        partitions_def=partitions,
        can_subset=True,
        ins={"dataset": dg.AssetIn(FOLD_DATASET)}
        | {f"pred__{v}": dg.AssetIn(key) for v, key in variants.items()},
    )
    def economics(
        context: dg.AssetExecutionContext,
        results_store: ResultsStore,
        dataset: FoldDataset,
        **predictions: VariantPredictions,
    ) -> Iterator[dg.MaterializeResult]:
        crypto, fold_id = crypto_and_fold(context)
        engine = results_store.engine()
        scored = [predictions[f"pred__{v}"] for v in variants]
        for key in sorted(context.selected_asset_keys):
            cost = economics_costs[key]
            rows = steps.result_rows(plan, dataset, scored, cost, context.run_id)
            write_results(engine, steps.partition_scope(plan, crypto, fold_id, cost), rows)
            yield dg.MaterializeResult(
                asset_key=key,
                metadata={
                    "rows_written": len(rows),
                    "run_id": plan.run_id,
                    "data_hash": dataset.data_hash,
                    "variants": rows_table(rows, "variant", ["auc_buy_test", *_TABLE_COLUMNS]),
                },
            )

    return [baselines, economics]
