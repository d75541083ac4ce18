"""Orchestration overhead of the default demo sweep.

In one run of this script, partition by partition and interleaved (so that this noisy 2-core machine's
drift falls on both sides alike):
  * plain: the `cvn_assets.steps` functions of the partition called in a loop, with the same store writes,
  * Dagster: the same partition's run on a real SQLite-backed instance, exactly as `cvn demo` launches it,
each side with its own fresh results database. Prints both totals (the Dagster total is the demo sweep
end to end: every ohlcv run, every crypto x fold run and the closing checks run) and their ratio.
Targets: the demo under 300 s; the ratio under 1.15.

    python bench/orchestration_overhead.py [--config PATH]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", help="sweep config (default: the packaged demo config)")
    parser.add_argument(
        "--dagster-postgres",
        metavar="URL",
        help="put Dagster's own storage on this PostgreSQL (postgresql://user@host:port/db), as in production; "
        "default: SQLite, as `cvn demo` does",
    )
    args = parser.parse_args()

    import dagster as dg

    from cvn_assets import steps
    from cvn_assets.config import load_config
    from cvn_assets.core.baselines import BASELINE_TYPES
    from cvn_assets.core.sweep_plan import plan_sweep
    from cvn_assets.definitions import build_definitions
    from cvn_assets.defs.resources import ResultsStore
    from cvn_assets.hyperparams.resolver import Resolver
    from cvn_assets.hyperparams.seeding import apply_seed, load_values, plan_seed, seed_values
    from cvn_assets.runner import SweepRunner
    from cvn_assets.store.audits import missing_baselines, placeholder_join_keys, unlabelled_cost_basis
    from cvn_assets.store.engine import get_engine, upgrade
    from cvn_assets.store.writes import write_baselines, write_results

    plan = plan_sweep(load_config(args.config))
    cfg = plan.config
    root = Path(tempfile.mkdtemp(prefix="cvn-bench-"))
    plain_url, dagster_url = f"sqlite:///{root / 'plain.db'}", f"sqlite:///{root / 'dagster.db'}"
    dagster_home = root / "dagster"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text(
        (Path(__file__).resolve().parents[1] / "dagster.yaml").read_text()
    )
    defs = build_definitions(
        plan, artifacts_dir=root / "artifacts", results_store=ResultsStore(database_url=dagster_url)
    )

    # Warm-up outside the timings: imports, the model libraries, migrations and the committed
    # hyperparameters in both databases, Optuna's tables.
    for url in (plain_url, dagster_url):
        upgrade(url)
        with get_engine(url).connect() as conn:
            apply_seed(get_engine(url), plan_seed(conn, seed_values(sorted(load_values())), force=False))
    engine = get_engine(plain_url)
    warm = steps.fold_dataset(
        plan,
        plan.fold_ids[0],
        steps.features(plan, cfg.cryptos[0], plan.fold_ids[0], steps.ohlcv(plan, cfg.cryptos[0])),
    )
    warm_hp = steps.hyperparameters(plan, Resolver(engine, environ={}))
    for model in cfg.models:
        steps.train_model(plan, model, warm, warm_hp[model], f"sqlite:///{root / 'warm.db'}")

    plain = orchestrated = 0.0
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        runner = SweepRunner(defs, instance)

        def timed(fn, *a):  # noqa: ANN001, ANN202
            started = time.perf_counter()
            out = fn(*a)
            return out, time.perf_counter() - started

        bars: dict = {}
        for crypto in cfg.cryptos:
            bars[crypto], t = timed(steps.ohlcv, plan, crypto)
            plain += t
            _, t = timed(runner.ohlcv, crypto)
            orchestrated += t

        def plain_partition(crypto: str, fold_id: str) -> None:
            dataset = steps.fold_dataset(plan, fold_id, steps.features(plan, crypto, fold_id, bars[crypto]))
            hps = steps.hyperparameters(plan, Resolver(engine, environ={}))
            models = {
                m: steps.predictions(steps.train_model(plan, m, dataset, hps[m], plain_url), dataset)
                for m in cfg.models
            }
            variants = list(models.values()) + [
                steps.ensemble(plan, e, dataset, models, hps[e]) for e in steps.ensemble_names(plan)
            ]
            for cost in cfg.costs_bps:
                scope = steps.partition_scope(plan, crypto, fold_id, cost)
                write_baselines(engine, scope, steps.baseline_rows(plan, dataset, cost))
                write_results(engine, scope, steps.result_rows(plan, dataset, variants, cost))

        for crypto in cfg.cryptos:
            for fold_id in plan.fold_ids:
                _, t = timed(plain_partition, crypto, fold_id)
                plain += t
                _, t = timed(runner.partition, crypto, fold_id)
                orchestrated += t

        def plain_audit() -> None:
            with engine.connect() as conn:
                missing_baselines(conn, plan.run_id, cfg.costs_bps, BASELINE_TYPES)
                placeholder_join_keys(conn, plan.run_id)
                unlabelled_cost_basis(conn, plan.run_id)

        _, t = timed(plain_audit)
        plain += t
        _, t = timed(runner.audit)
        orchestrated += t

    report = runner.report
    if not report.ok or report.failed_checks:
        raise SystemExit(f"the Dagster sweep failed: {report.failed} {report.failed_checks}")
    n_runs = len(report.succeeded)
    storage = "PostgreSQL" if args.dagster_postgres else "SQLite"
    print(f"sweep {plan.run_id}: {len(cfg.cryptos)} cryptos x {len(plan.folds)} folds, models {list(cfg.models)}, "
          f"costs {cfg.costs_bps}; {n_runs} Dagster runs, Dagster storage on {storage}")  # fmt: skip
    print(f"plain loop of the same steps : {plain:8.2f} s")
    print(f"Dagster (the demo sweep)      : {orchestrated:8.2f} s   (target < 300 s)")
    print(f"overhead per Dagster run      : {(orchestrated - plain) / n_runs:8.2f} s")
    print(f"orchestration overhead ratio  : {orchestrated / plain:8.3f}     (target < 1.15)")


if __name__ == "__main__":
    main()
