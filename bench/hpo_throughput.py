"""HPO throughput on the real BTC sample: trials per minute with and without the pruner, and the share of
search time spent outside the model library.

For each model, on the bundled BTC/USD hourly sample's largest fold, with the committed values file's
defaults and ranges (resolved through a freshly seeded results database, as a sweep would) and the default
config's HPO settings:
  * pruned:   `harness.hpo.search` with the median pruner;
  * unpruned: the same search with `pruner: none`.
The two searches of a model run the same study (same name, same seed) in two SQLite results databases, so
they draw the same trials until pruning changes the sampler's history; Optuna's tables are created before
timing, as in a running sweep. Printed per model: trials/min of each, their ratio, and for each the share of wall time
outside the library's fit and predict (target < 5%). Threads: `runtime.threads`, with `auto` every core (as
the steps run outside Dagster).

    python bench/hpo_throughput.py [--models xgboost lightgbm] [--trials 12] [--quick]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from btc_sample import QUICK_HELP  # beside this script


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", nargs="+", default=["xgboost", "lightgbm", "catboost"])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--quick", action="store_true", help=QUICK_HELP)
    args = parser.parse_args()
    trials = 3 if args.quick else args.trials

    from btc_sample import bench_fold, quick_environ

    from cvn_assets import steps
    from cvn_assets.harness.hpo import search, storage_for
    from cvn_assets.hyperparams.model_params import resolve_model
    from cvn_assets.hyperparams.resolver import Resolver
    from cvn_assets.hyperparams.seeding import apply_seed, plan_seed, seed_values
    from cvn_assets.store.engine import get_engine, upgrade

    plan, dataset = bench_fold(args.quick)
    cfg = plan.config
    threads = steps.default_threads(cfg)  # `auto` resolved as the product's steps resolve it
    fold_id = dataset.fold.fold_id
    root = Path(tempfile.mkdtemp())
    urls = {pruner: f"sqlite:///{root / pruner}.db" for pruner in ("median", "none")}
    for url in urls.values():
        upgrade(url)
        engine = get_engine(url)
        with engine.connect() as conn:
            apply_seed(engine, plan_seed(conn, seed_values(args.models, [cfg.timeframe]), force=False))
        storage_for(url)  # Optuna's tables, created once per database as in a running sweep
    # Quick mode: small models and ranges, set as an operator may set them (the environment wins).
    resolver = Resolver(
        get_engine(urls["median"]), environ=quick_environ(cfg.timeframe) if args.quick else {}
    )
    print(
        f"{dataset.crypto} {fold_id}: {len(dataset.train)} train / {len(dataset.validation)} validation rows; "
        f"{trials} trials per search; {threads} thread(s){'; quick mode' if args.quick else ''}"
    )
    header = (
        f"{'model':10s} {'pruned/min':>10s} {'unpruned/min':>12s} {'ratio':>6s} "
        f"{'n_pruned':>8s} {'outside lib (pruned)':>21s} {'outside lib (unpruned)':>23s}"
    )
    print(header)
    for model in args.models:
        hp = resolve_model(resolver, model, cfg.timeframe, search=True, allow_fallback=False)
        runs = {}
        for pruner in ("median", "none"):
            settings = cfg.hpo.model_copy(update={"pruner": pruner, "n_trials": trials, "timeout_s": None})
            _, summary = search(
                model, dataset, hp, settings, storage_url=urls[pruner], name=f"bench/{model}",
                seed=cfg.seed, threads=threads, class_balance=cfg.harness.class_balance,
            )  # fmt: skip
            runs[pruner] = summary
        rate = {p: 60 * trials / s.search_time_sec for p, s in runs.items()}
        outside = {p: 1 - s.library_time_sec / s.search_time_sec for p, s in runs.items()}
        print(
            f"{model:10s} {rate['median']:10.1f} {rate['none']:12.1f} {rate['median'] / rate['none']:6.2f} "
            f"{runs['median'].n_pruned:8d} {outside['median']:20.1%} {outside['none']:22.1%}"
        )
    print("target: share of search time outside the library < 5%")


if __name__ == "__main__":
    main()
