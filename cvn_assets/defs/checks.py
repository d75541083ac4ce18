"""Asset checks over the results store: one multi-check step audits the sweep and reports per cost asset."""

from collections.abc import Callable, Iterator
from typing import Any

import dagster as dg
import sqlalchemy as sa

from cvn_assets.core.baselines import BASELINE_TYPES
from cvn_assets.core.sweep_plan import SweepPlan
from cvn_assets.defs.keys import economics_key
from cvn_assets.defs.resources import ResultsStore
from cvn_assets.store.audits import (
    missing_baselines,
    over_trading,
    placeholder_join_keys,
    unlabelled_cost_basis,
)

Audit = Callable[[sa.Connection, SweepPlan], list[dict[str, Any]]]

# name -> (description, audit). Each audit covers the whole sweep; its findings are split by cost level.
AUDITS: dict[str, tuple[str, Audit]] = {
    "baselines_complete": (
        "Every crypto x fold with results has every baseline type at every cost level, on the same test "
        "window and data hash.",
        lambda conn, plan: missing_baselines(conn, plan.run_id, plan.config.costs_bps, BASELINE_TYPES),
    ),
    "join_keys_present": (
        "model_hyperparams, feature_hash, data_hash and code_version are never NULL or a placeholder.",
        lambda conn, plan: placeholder_join_keys(conn, plan.run_id),
    ),
    "cost_basis_labelled": (
        "Every economic row (results and baselines) carries a known cost basis.",
        lambda conn, plan: unlabelled_cost_basis(conn, plan.run_id),
    ),
    "no_over_trading": (
        "No variant's OOS trade count in a crypto x fold is more than checks.over_trading_ratio (3x by default) "
        "times the median of its sibling variants' (once above checks.over_trading_min_trades).",
        lambda conn, plan: over_trading(
            conn,
            plan.run_id,
            plan.config.checks.over_trading_ratio,
            plan.config.checks.over_trading_min_trades,
        ),
    ),
}


def build_checks(plan: SweepPlan) -> list[dg.AssetChecksDefinition]:
    specs = [
        dg.AssetCheckSpec(name=name, asset=economics_key(cost), description=description)
        for cost in plan.config.costs_bps
        for name, (description, _) in AUDITS.items()
    ]
    cost_of = {economics_key(c): c for c in plan.config.costs_bps}

    @dg.multi_asset_check(specs=specs, can_subset=True, name="results_store_checks")
    def results_store_checks(
        context: dg.AssetCheckExecutionContext, results_store: ResultsStore
    ) -> Iterator[dg.AssetCheckResult]:
        selected = context.selected_asset_check_keys
        with results_store.engine().connect() as conn:
            findings = {name: audit(conn, plan) for name, (_, audit) in AUDITS.items()}
        for key in sorted(selected, key=str):
            cost = cost_of[key.asset_key]
            problems = [p for p in findings[key.name] if p.get("cost_bps") == cost]
            yield dg.AssetCheckResult(
                asset_key=key.asset_key,
                check_name=key.name,
                passed=not problems,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={
                    "run_id": plan.run_id,
                    "violations": len(problems),
                    "first_violations": dg.MetadataValue.json(problems[:20]),
                },
            )

    return [results_store_checks]
