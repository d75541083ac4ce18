"""Harness overhead per model: `train_one` against the model library called directly.

On the real BTC sample's largest fold and the committed values file's defaults, for each model:
  * direct: the library's own fit (with the same balanced sample weights), then predict_proba on the
    validation and test splits, as a user would without the harness;
  * harness: `train_one` (events, class balancing, the same fit, calibration, threshold, metrics).
The two are interleaved `--repeats` times and the medians compared, so machine noise falls on both.
Target: harness / direct < 1.05. Threads: `runtime.threads`, with `auto` every core (as the steps run
outside Dagster).

    python bench/harness_overhead.py [--repeats 3] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for the shared reference calls

from btc_sample import QUICK_HELP  # beside this script


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help=QUICK_HELP)
    args = parser.parse_args()
    repeats = 1 if args.quick else args.repeats

    from btc_sample import bench_fold, quick_params

    from cvn_assets import steps
    from cvn_assets.harness.nodes.class_balance import balance_classes
    from cvn_assets.harness.train import train_one
    from cvn_assets.hyperparams.seeding import committed_values
    from cvn_assets_tests.reference_calls import direct_fit

    plan, dataset = bench_fold(args.quick)
    cfg = plan.config
    threads = steps.default_threads(cfg)  # `auto` resolved as the product's steps resolve it
    fold_id = dataset.fold.fold_id
    X, y = dataset.xy("train")
    X_val, _ = dataset.xy("validation")
    X_test, _ = dataset.xy("test")
    weights = balance_classes(y.to_numpy(), cfg.harness.class_balance).weights
    committed = {m: committed_values(m, cfg.timeframe)[0] for m in steps.model_names(cfg)}
    if args.quick:
        committed = {m: quick_params(m, values) for m, values in committed.items()}

    def direct(name: str) -> None:
        model = direct_fit(name, committed[name], cfg.seed, threads, X, y, weights)
        model.predict_proba(X_val)
        model.predict_proba(X_test)

    def harness(name: str) -> None:
        train_one(name, dataset, committed[name], harness=cfg.harness, threshold=cfg.backtest.entry_threshold,
                  seed=cfg.seed, threads=threads, code_version="bench")  # fmt: skip

    print(
        f"{dataset.crypto} {fold_id}: {len(X)} train / {len(X_val)} val / {len(X_test)} test rows, "
        f"{X.shape[1]} features; {threads} thread(s) per model{'; quick mode' if args.quick else ''}"
    )
    print(f"{'model':10s} {'direct s':>9s} {'harness s':>10s} {'ratio':>7s}   (target < 1.05)")
    for name in steps.model_names(cfg):
        direct(name)  # warm-up: library imports and first-call costs
        times: dict[str, list[float]] = {"direct": [], "harness": []}
        for _ in range(repeats):
            for label, fn in (("direct", direct), ("harness", harness)):
                started = time.perf_counter()
                fn(name)
                times[label].append(time.perf_counter() - started)
        d, h = statistics.median(times["direct"]), statistics.median(times["harness"])
        print(f"{name:10s} {d:9.3f} {h:10.3f} {h / d:7.3f}")


if __name__ == "__main__":
    main()
