"""The results-store checks, per crypto x fold partition and per cost asset.

They run in the run that writes the partition's rows (the sweep job selects them with the economics
assets), however it was launched. Each result names its partition and cost, says what it checks, and lists
the violating rows as a table. The same audits over the whole sweep are checks of `<sweep>/results_store`
(the sweep's rows in the results database): they run with the report (its job, and every refresh the
automation requests), and the `<sweep>_audit` job re-runs them on demand. `FINDINGS` are about the variants
rather than the store: they WARN, per partition only.

A check's description is on its definition, once; each evaluation says in one line what it found, with the
time it was evaluated in its metadata (Dagster's "timestamp" of a check execution is when its run was
created, which can be earlier than the materialization it checks).
"""

from collections.abc import Callable, Iterator
from typing import Any

import dagster as dg
import sqlalchemy as sa

from cvn_assets.core.baselines import BASELINE_TYPES
from cvn_assets.core.config import SweepConfig
from cvn_assets.core.proxy_economy import DEGENERATE_COLUMNS, degenerate_rows
from cvn_assets.defs.automation import run_with_asset, run_with_report
from cvn_assets.defs.keys import crypto_and_fold
from cvn_assets.defs.metadata import evaluated_now, rows_table
from cvn_assets.defs.resources import ResultsStore
from cvn_assets.defs.sweep import Sweep
from cvn_assets.store.audits import (
    missing_baselines,
    missing_matched_baselines,
    over_trading,
    placeholder_join_keys,
    unlabelled_cost_basis,
)
from cvn_assets.store.reports import results_frame

# (connection, config, crypto, fold_id) -> violations, each a dict naming its row and cost_bps; crypto and
# fold None: the whole sweep.
Audit = Callable[[sa.Connection, SweepConfig, str | None, str | None], list[dict[str, Any]]]

AUDITS: dict[str, tuple[str, Audit]] = {
    "baselines_complete": (
        "Every baseline type (buy_and_hold, random, naive) exists at this cost, on the same test window "
        "and data hash as the partition's result rows, and every result row carries its random_matched "
        "baseline, trading exactly as often as the variant.",
        lambda conn, cfg, crypto, fold: (
            missing_baselines(conn, cfg.run_id, cfg.costs_bps, BASELINE_TYPES, crypto, fold)
            + missing_matched_baselines(conn, cfg.run_id, crypto, fold)
        ),
    ),
    "join_keys_present": (
        "model_hyperparams, feature_hash, data_hash and code_version are never NULL or a placeholder "
        "('unknown', '{}', '').",
        lambda conn, cfg, crypto, fold: placeholder_join_keys(conn, cfg.run_id, crypto, fold),
    ),
    "cost_basis_labelled": (
        "Every economic row (results and baselines) carries a known cost basis: 'backtested_assumed', or "
        "'realized_fills' with its realized_cost_bps.",
        lambda conn, cfg, crypto, fold: unlabelled_cost_basis(conn, cfg.run_id, crypto, fold),
    ),
    "no_over_trading": (
        "No variant's OOS trade count is more than checks.over_trading_ratio (3x by default) times the "
        "median of its sibling variants' on the same feature set (of those that trade, when most never do), "
        "once above "
        "checks.over_trading_min_trades.",
        lambda conn, cfg, crypto, fold: over_trading(
            conn,
            cfg.run_id,
            cfg.checks.over_trading_ratio,
            cfg.checks.over_trading_min_trades,
            crypto,
            fold,
        ),
    ),
}


# Findings about a partition's variants, not invariants of the store: a WARN per partition (the report's
# leaderboard marks a variant degenerate in every cell of the sweep).
FINDINGS: dict[str, tuple[str, Audit]] = {
    "no_degenerate_variant": (
        "No variant predicts a constant: an OOS AUC of exactly 0.5 (every score tied) with no OOS trade is "
        "a finding, not a result.",
        lambda conn, cfg, crypto, fold: degenerate_rows(
            results_frame(conn, cfg.run_id, DEGENERATE_COLUMNS, crypto, fold)
        ),
    ),
}
PARTITION_CHECKS = {**AUDITS, **FINDINGS}


def _violation_columns(problems: list[dict[str, Any]]) -> list[str]:
    columns: list[str] = []
    for problem in problems:
        columns += [c for c in problem if c not in columns]
    return columns


def _violations(problems: list[dict[str, Any]]) -> dict[str, Any]:
    return {"violating_rows": rows_table(problems[:50], _violation_columns(problems))} if problems else {}


def results_store_spec(sweep: Sweep) -> dg.AssetSpec:
    """The sweep's rows in the results database: written by the economics and baselines assets."""
    keys = sweep.keys
    return dg.AssetSpec(
        keys.results_store,
        deps=[k for c in sweep.config.costs_bps for k in (keys.baselines(c), keys.economics(c))],
        group_name=keys.group("economics"),
        kinds={"sqlalchemy"},
        description=f"finetune_results and finetune_baselines rows of sweep {sweep.name} (run_id "
        f"{sweep.config.run_id}); its checks audit the whole sweep (job {keys.audit_job}).",
    )


def build_sweep_audit(sweep: Sweep) -> dg.AssetChecksDefinition:
    cfg, keys = sweep.config, sweep.keys
    specs = [
        dg.AssetCheckSpec(
            name=name,
            asset=keys.results_store,
            description=f"Across the sweep, after each report: {description}",
            additional_deps=[keys.report],
            automation_condition=run_with_report(sweep),
        )
        for name, (description, _) in AUDITS.items()
    ]

    @dg.multi_asset_check(specs=specs, can_subset=True, name=f"{sweep.name}_results_audit")
    def results_audit(
        context: dg.AssetCheckExecutionContext, results_store: ResultsStore
    ) -> Iterator[dg.AssetCheckResult]:
        with results_store.engine().connect() as conn:
            for key in sorted(context.selected_asset_check_keys, key=str):
                problems = AUDITS[key.name][1](conn, cfg, None, None)
                yield dg.AssetCheckResult(
                    asset_key=key.asset_key,
                    check_name=key.name,
                    passed=not problems,
                    severity=dg.AssetCheckSeverity.ERROR,
                    description=f"{len(problems)} violating rows across sweep {sweep.name}"
                    if problems
                    else f"no violation across sweep {sweep.name}",
                    metadata={
                        "run_id": cfg.run_id,
                        "violations": len(problems),
                        **evaluated_now(),
                        **_violations(problems),
                    },
                )

    return results_audit


def build_checks(sweep: Sweep) -> list[dg.AssetChecksDefinition]:
    cfg, keys = sweep.config, sweep.keys
    partitions = keys.crypto_fold_partitions
    cost_of = {keys.economics(c): c for c in cfg.costs_bps}
    specs = [
        dg.AssetCheckSpec(
            name=name,
            asset=keys.economics(cost),
            description=f"{description} (cost {cost} bps)",
            partitions_def=partitions,
            automation_condition=run_with_asset(),
        )
        for cost in cfg.costs_bps
        for name, (description, _) in PARTITION_CHECKS.items()
    ]

    @dg.multi_asset_check(specs=specs, can_subset=True, name=f"{sweep.name}_results_checks")
    def results_store_checks(
        context: dg.AssetCheckExecutionContext, results_store: ResultsStore
    ) -> Iterator[dg.AssetCheckResult]:
        crypto, fold_id = crypto_and_fold(context)
        selected = sorted(context.selected_asset_check_keys, key=str)
        with results_store.engine().connect() as conn:
            findings = {
                name: audit(conn, cfg, crypto, fold_id)
                for name, (_, audit) in PARTITION_CHECKS.items()
                if any(k.name == name for k in selected)
            }
        for key in selected:
            cost = cost_of[key.asset_key]
            problems = [p for p in findings[key.name] if p.get("cost_bps") == cost]
            verdict = f"{len(problems)} violating rows" if problems else "no violation"
            if key.name in FINDINGS and problems:
                verdict += f" ({', '.join(sorted({str(p['variant']) for p in problems}))})"
            yield dg.AssetCheckResult(
                asset_key=key.asset_key,
                check_name=key.name,
                passed=not problems,
                severity=dg.AssetCheckSeverity.WARN if key.name in FINDINGS else dg.AssetCheckSeverity.ERROR,
                description=f"{crypto} {fold_id} at {cost} bps: {verdict}",
                metadata={
                    "sweep": sweep.name,
                    "run_id": cfg.run_id,
                    "crypto": crypto,
                    "fold": fold_id,
                    "cost": f"{cost} bps",  # text: a constant is not worth a plot
                    "violations": len(problems),
                    **evaluated_now(),
                    **_violations(problems),
                },
            )

    return [results_store_checks, build_sweep_audit(sweep)]
