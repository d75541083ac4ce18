"""Orchestration overhead of the default demo sweep.

In one run of this script, each side with its own fresh results database:
  * plain: the `cvn_assets.steps` functions of every partition called serially in a loop, with the same
    store writes and audits,
  * Dagster: the same sweep launched exactly as `cvn demo` launches it: backfills through the instance,
    run by Dagster's daemon at the embedded default's concurrency (2 runs at once), on a fresh SQLite
    instance.
  * the bound: the serial loop again with the threads one Dagster run gets (`runtime.threads: auto` splits
    the cores across the concurrent runs), divided by the number of concurrent runs. That is the wall time
    of an orchestrator with no overhead at all that keeps every core busy; on a 2-core machine where the
    model libraries scale 1.4x from 1 to 2 threads it is about 0.7 x the loop.
Prints the wall times, their ratios (target: Dagster <= 0.7 x the serial loop) and the overhead per step.
The sweep is served from a sweeps directory of its own (CVN_SWEEPS_DIR), so any `--config` runs.

    python bench/orchestration_overhead.py [--config PATH] [--quick]

`--quick`: one synthetic crypto, one fold, one small model, one cost: the same path in well under a minute.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from btc_sample import QUICK_HELP, sweep_file  # beside this script

REPO = Path(__file__).resolve().parents[1]


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
    parser.add_argument("--quick", action="store_true", help=QUICK_HELP)
    args = parser.parse_args()

    import dagster as dg

    from cvn_assets import steps
    from cvn_assets.core.baselines import BASELINE_TYPES
    from cvn_assets.core.config import load_config
    from cvn_assets.core.sweep_plan import plan_sweep
    from cvn_assets.defs.sweep import Sweep, concurrent_runs, model_threads
    from cvn_assets.hyperparams.resolver import Resolver
    from cvn_assets.hyperparams.seeding import apply_seed, load_values, plan_seed, seed_values
    from cvn_assets.launch import launch_sweep
    from cvn_assets.store.audits import missing_baselines, placeholder_join_keys, unlabelled_cost_basis
    from cvn_assets.store.engine import get_engine, upgrade
    from cvn_assets.store.writes import write_baselines, write_results

    root = Path(tempfile.mkdtemp(prefix="cvn-bench-"))
    sweeps = root / "sweeps"  # the daemon's code location serves exactly this sweep
    sweeps.mkdir()
    source = Path(args.config) if args.config else REPO / "cvn_assets/sweeps/demo.yaml"
    config_path = sweep_file(sweeps, args.quick, source)
    plan = plan_sweep(load_config(config_path))
    cfg = plan.config
    plain_url = f"sqlite:///{root / 'plain.db'}"
    bound_url = f"sqlite:///{root / 'bound.db'}"  # its own: a second pass would resume the HPO studies
    home = root / "home"
    dagster_home = home / "dagster"
    dagster_home.mkdir(parents=True)
    yaml_text = (REPO / "dagster.yaml").read_text()
    if args.dagster_postgres:
        yaml_text += f"storage:\n  postgres:\n    postgres_url: {args.dagster_postgres}\n"
    (dagster_home / "dagster.yaml").write_text(yaml_text)
    os.environ.update(CVN_HOME=str(home), DAGSTER_HOME=str(dagster_home), CVN_SWEEPS_DIR=str(sweeps))
    os.environ.pop("CVN_SWEEP_FILES", None)
    dagster_url = f"sqlite:///{home / 'results.db'}"

    # Outside the timings: migrations and the committed hyperparameters in both databases.
    for url in (plain_url, bound_url, dagster_url):
        upgrade(url)
        with get_engine(url).connect() as conn:
            apply_seed(get_engine(url), plan_seed(conn, seed_values(sorted(load_values())), force=False))

    def plain_sweep(url: str, threads: int | None = None) -> int:
        engine, n_steps = get_engine(url), 0
        for crypto in plan.cryptos:
            bars = steps.ohlcv(cfg, crypto)
            for fold in plan.folds:
                dataset = steps.cell_dataset(cfg, crypto, fold, bars)
                hps = steps.hyperparameters(cfg, Resolver(engine, environ={}))
                models = {
                    m: steps.predictions(
                        steps.train_model(cfg, m, dataset, hps[m], url, threads=threads), dataset
                    )
                    for m in cfg.models
                }
                variants = list(models.values()) + [
                    steps.ensemble(cfg, e, dataset, models, hps[e], threads=threads)
                    for e in steps.ensemble_names(cfg)
                ]
                for cost in cfg.costs_bps:
                    scope = steps.partition_scope(cfg, crypto, fold.fold_id, cost)
                    write_baselines(engine, scope, steps.baseline_rows(cfg, dataset, cost))
                    write_results(engine, scope, steps.result_rows(cfg, dataset, variants, cost))
                with engine.connect() as conn:
                    missing_baselines(conn, cfg.run_id, cfg.costs_bps, BASELINE_TYPES, crypto, fold.fold_id)
                    placeholder_join_keys(conn, cfg.run_id, crypto, fold.fold_id)
                    unlabelled_cost_basis(conn, cfg.run_id, crypto, fold.fold_id)
                n_steps += 4 + 2 * len(cfg.models) + len(variants) - len(models) + 2
        return n_steps + len(plan.cryptos)

    started = time.perf_counter()
    n_steps = plain_sweep(plain_url)
    plain = time.perf_counter() - started

    with dg.DagsterInstance.get() as instance:
        runs_at_once, run_threads = concurrent_runs(instance), model_threads(cfg, instance)
        started = time.perf_counter()
        outcome = launch_sweep(instance, Sweep.of(cfg), home, on_progress=lambda line: None)
        orchestrated = time.perf_counter() - started

    started = time.perf_counter()
    plain_sweep(bound_url, threads=run_threads)
    bound = (time.perf_counter() - started) / runs_at_once
    if not outcome.ok:
        raise SystemExit(f"the Dagster sweep failed: {outcome.failures} {outcome.failed_checks}")

    storage = "PostgreSQL" if args.dagster_postgres else "SQLite"
    print(f"sweep {cfg.run_id}: {len(plan.cryptos)} cryptos x {len(plan.folds)} folds, models {list(cfg.models)}, "
          f"costs {cfg.costs_bps}; {len(outcome.runs)} Dagster runs, Dagster storage on {storage}")  # fmt: skip
    print(
        f"plain serial loop of the same steps : {plain:8.2f} s   ({steps.default_threads(cfg)} thread(s) per model)"
    )
    print(f"Dagster, as `cvn demo` launches it  : {orchestrated:8.2f} s   ({runs_at_once} runs at once, "
          f"{run_threads} thread(s) per model)")  # fmt: skip
    print(f"bound: no overhead, every core busy : {bound:8.2f} s   (the loop at {run_threads} thread(s) / "
          f"{runs_at_once})")  # fmt: skip
    print(f"ratio Dagster / serial loop         : {orchestrated / plain:8.3f}     (target <= 0.7)")
    print(f"ratio bound / serial loop           : {bound / plain:8.3f}     (the best this machine allows)")
    print(f"overhead per step (~{n_steps} steps)     : {(orchestrated - bound) / n_steps:8.3f} s   "
          "(Dagster's wall time above the bound)")  # fmt: skip


if __name__ == "__main__":
    main()
