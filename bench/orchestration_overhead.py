"""Orchestration overhead of the default demo sweep.

Times, in one process and one run of this script:
  1. the sweep through Dagster (a fresh SQLite Dagster instance and results DB, as `cvn demo` runs it), and
  2. the same `cvn_assets.steps` functions, with the same store writes and audits, called in a plain loop,
and prints the wall times and their ratio (target: < 1.15; the whole demo: < 5 minutes).

    python bench/orchestration_overhead.py [--config PATH]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

DAGSTER_YAML = Path(
    os.environ.get("BENCH_DAGSTER_YAML", Path(__file__).resolve().parents[1] / "dagster.yaml")
)


def plain_loop(plan) -> None:  # noqa: ANN001
    from cvn_assets import steps
    from cvn_assets.core.baselines import BASELINE_TYPES
    from cvn_assets.store.audits import missing_baselines, placeholder_join_keys, unlabelled_cost_basis
    from cvn_assets.store.engine import database_url, get_engine, upgrade
    from cvn_assets.store.writes import write_baselines, write_results

    url = database_url()
    upgrade(url)
    engine = get_engine(url)
    cfg = plan.config
    for crypto in cfg.cryptos:
        bars = steps.ohlcv(plan, crypto)
        for fold_id in plan.fold_ids:
            dataset = steps.fold_dataset(plan, fold_id, steps.features(plan, crypto, fold_id, bars))
            variants = [steps.predictions(steps.train_model(plan, m, dataset), dataset) for m in cfg.models]
            for cost in cfg.costs_bps:
                scope = steps.partition_scope(plan, crypto, fold_id, cost)
                write_baselines(engine, scope, steps.baseline_rows(plan, dataset, cost))
                write_results(engine, scope, steps.result_rows(plan, dataset, variants, cost))
            with engine.connect() as conn:  # the checks run once per crypto x fold run in Dagster too
                missing_baselines(conn, plan.run_id, cfg.costs_bps, BASELINE_TYPES)
                placeholder_join_keys(conn, plan.run_id)
                unlabelled_cost_basis(conn, plan.run_id)


def dagster_sweep(plan) -> None:  # noqa: ANN001
    import dagster as dg

    from cvn_assets.definitions import build_definitions
    from cvn_assets.runner import materialize_sweep

    with dg.DagsterInstance.get() as instance:
        report = materialize_sweep(build_definitions(plan), plan, instance)
    if not report.ok or report.failed_checks:
        sys.exit(f"the Dagster sweep failed: {report.failed} {report.failed_checks}")


def timed_in_fresh_home(fn, plan, label: str) -> float:  # noqa: ANN001
    with tempfile.TemporaryDirectory(prefix=f"cvn-bench-{label}-") as home:
        os.environ["CVN_HOME"] = home
        os.environ["DAGSTER_HOME"] = str(Path(home) / "dagster")
        Path(os.environ["DAGSTER_HOME"]).mkdir()
        (Path(os.environ["DAGSTER_HOME"]) / "dagster.yaml").write_text(DAGSTER_YAML.read_text())
        started = time.perf_counter()
        fn(plan)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", help="sweep config (default: the packaged demo config)")
    args = parser.parse_args()
    os.environ.pop("CVN_DATABASE_URL", None)  # both sides on the embedded default

    from cvn_assets.config import load_config
    from cvn_assets.core.sweep_plan import plan_sweep

    plan = plan_sweep(load_config(args.config))
    n_partitions = len(plan.config.cryptos) * len(plan.folds)
    # Warm both paths once (imports, the XGBoost library, alembic) so neither pays first-use costs.
    timed_in_fresh_home(plain_loop, plan_sweep(load_config(args.config)), "warm")
    plain = timed_in_fresh_home(plain_loop, plan, "plain")
    orchestrated = timed_in_fresh_home(dagster_sweep, plan, "dagster")
    print(
        f"sweep {plan.run_id}: {n_partitions} crypto x fold partitions, models {list(plan.config.models)}, "
        f"costs {plan.config.costs_bps}"
    )
    print(f"plain loop of the same steps : {plain:8.2f} s")
    print(f"Dagster (demo sweep)          : {orchestrated:8.2f} s   (target < 300 s)")
    print(f"orchestration overhead ratio  : {orchestrated / plain:8.3f}     (target < 1.15)")


if __name__ == "__main__":
    main()
