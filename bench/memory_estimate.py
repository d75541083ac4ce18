"""Working-set estimate against measured peak memory, per crypto x fold run.

In one run of this script:
  * the interpreter: the peak RSS of a fresh Python that imports what a run worker imports, beside the
    estimate's INTERPRETER_BYTES constant (measured the same way once);
  * every partition of the demo sweep (the bundled BTC sample and its synthetic companions, hourly bars,
    the committed hyperparameters; its runs compute both its feature sets, base and btc_overlay), the
    first and last fold of one synthetic crypto of the demo on base alone, and the first and last fold of
    the synthetic crypto of a BTC + SYNA universe at minute bars for each size of --minute-bars, once on
    base and once on btc_overlay, which loads BTC's bars beside SYNA's (100 trees per boosting model
    there: a model's memory is its matrix, not its trees, and 1,000 trees on a million rows take an hour
    on 2 cores);
  * each partition run exactly as a run pod runs it (the sweep job, every step in one process, in-process
    executor) in a fresh interpreter of its own, so peaks are never shared; its peak RSS (VmHWM) against
    the estimate `defs/sizing.py` makes for it from the instance's records, before it runs.
Prints one line per partition with the estimate's parts and the ratio estimate / measured, then the
worst |ratio - 1| (target <= 0.25). The estimate's constants were calibrated on the demo (the fixed
parts: its data is a few MB) and on one size, 300,000 minute bars (the bytes per frame value); every other
size checks them.

    python bench/memory_estimate.py [--minute-bars 150000,300000,600000] [--quick]

`--quick`: one partition of a tiny hourly sweep and one of 20,000 minute bars, small models, the two runs
at once: the same code in well under a minute (its figures mean nothing).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from btc_sample import QUICK_CONFIG, QUICK_HELP, quick_environ  # beside this script

REPO = Path(__file__).resolve().parents[1]
TARGET = 0.25
CALIBRATION_BARS = 300_000
MINUTE_TREES = 100
INTERPRETER = """
import cvn_assets.definitions, dagster, pandas, sklearn, xgboost, lightgbm, catboost, optuna
from cvn_assets.core.peak_memory import process_peak
print(process_peak())
"""
# One partition's run in a fresh interpreter: the sweep job over one crypto x fold, as a run pod runs it.
RUN_PARTITION = """
import json, sys, warnings
warnings.simplefilter("ignore")
import dagster as dg
from pathlib import Path
from cvn_assets.core.config import load_config
from cvn_assets.core.peak_memory import process_peak
from cvn_assets.definitions import build_definitions
from cvn_assets.defs.keys import partition_key
from cvn_assets.defs.resources import ResultsStore
from cvn_assets.defs.sweep import Sweep
config_path, root, crypto, fold_id = sys.argv[1:5]
cfg = load_config(config_path)
defs = build_definitions(
    [cfg], artifacts_dir=Path(root) / "artifacts", results_store=ResultsStore(database_url=f"sqlite:///{root}/results.db")
)
with dg.DagsterInstance.get() as instance:
    result = defs.resolve_job_def(Sweep.of(cfg).keys.sweep_job).execute_in_process(
        partition_key=partition_key(crypto, fold_id), instance=instance, raise_on_error=False,
        run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}},
    )
print(json.dumps({"ok": result.success, "peak": process_peak()}))  # steps reset the peak: the whole run
"""


@dataclass(frozen=True)
class Case:
    label: str  # how the table names the sweep
    config: dict[str, Any]
    partitions: str  # "all": every crypto x fold; "ends": first and last fold of the first non-BTC crypto
    calibration: bool = False


def minute_config(n_bars: int, quick: bool, feature_set: str = "base") -> dict[str, Any]:
    """A synthetic BTC + SYNA universe at minute bars with the demo's models, on one feature set; windows
    scaled to minutes."""
    days = n_bars // 1440
    val = max(1, days // 15)
    train = days - 5 * val - 1
    models = ["xgboost"] if quick else ["xgboost", "lightgbm", "catboost", "logreg"]
    return {
        "name": f"minute{n_bars // 1000}k" + ("" if feature_set == "base" else f"_{feature_set}"),
        "timeframe": "1m",
        "universe": {"BTCUSD": {"kind": "synthetic"}, "SYNA": {"kind": "synthetic"}},
        "feature_sets": [feature_set],
        "data": {"synthetic": {"seed": 11, "start": "2022-01-01T00:00:00", "n_bars": n_bars}},
        "features": {"windows": [15, 60, 240]},
        "labels": {"horizon_bars": 60, "take_profit_atr": 2.0, "stop_loss_atr": 1.0, "atr_window": 60},
        "folds": {
            "train": f"{train}d",
            "validation": f"{val}d",
            "test": f"{val}d",
            "max_folds": 1 if quick else 3,
        },
        "models": {m: {} for m in models},
        "costs_bps": [10] if quick else [0, 10, 25],
        "baselines": {"random_seeds": 8 if quick else 100, "random_entry_prob": 0.05},
    }


def cases(quick: bool, minute_bars: list[int]) -> list[Case]:
    if quick:
        return [
            Case("quick", dict(QUICK_CONFIG), "ends"),
            Case("minute20k", minute_config(20_000, True), "ends"),
            Case("min20k_btc", minute_config(20_000, True, "btc_overlay"), "ends"),
        ]
    demo = yaml.safe_load((REPO / "cvn_assets/sweeps/demo.yaml").read_text())
    minute = [
        Case(f"min{n // 1000}k" + ("" if fs == "base" else "_btc"), minute_config(n, False, fs), "ends",
             n == CALIBRATION_BARS and fs == "base")
        for n in minute_bars
        for fs in ("base", "btc_overlay")
    ]  # fmt: skip
    demo_base = {**demo, "name": "demo_base", "feature_sets": ["base"]}
    return [Case("demo", demo, "all", calibration=True), Case("demo_base", demo_base, "ends"), *minute]


def hyperparameter_environ(cfg: Any, quick: bool) -> dict[str, str]:
    """Every key the sweep's models resolve, as an operator sets them (the environment wins): the committed
    values, with the quick mode's small models, or fewer trees at minute bars."""
    from cvn_assets.hyperparams.keys import default_key
    from cvn_assets.hyperparams.seeding import load_values, seed_values

    env = {s.key: s.value for s in seed_values(sorted(load_values()), [cfg.timeframe])}
    if quick:
        env |= quick_environ(cfg.timeframe)
    elif cfg.timeframe == "1m":
        trees = {"xgboost": "n_estimators", "lightgbm": "n_estimators", "catboost": "iterations"}
        env |= {default_key(m, cfg.timeframe, p): str(MINUTE_TREES) for m, p in trees.items()}
    return env


def measure(config_path: Path, root: Path, partition: tuple[str, str], env: dict[str, str]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", RUN_PARTITION, str(config_path), str(root), *partition],
        env=env,
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["no output"])[-1]
        raise SystemExit(f"the run of {partition} failed: {last}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--minute-bars", default="150000,300000,600000", help="sizes of the minute-bar universe"
    )
    parser.add_argument("--quick", action="store_true", help=QUICK_HELP)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="cvn-memory-"))
    interpreter = subprocess.Popen([sys.executable, "-c", INTERPRETER], stdout=subprocess.PIPE, text=True)

    import dagster as dg

    from cvn_assets.core.config import parse_config
    from cvn_assets.core.working_set import GIB, INTERPRETER_BYTES, MIB
    from cvn_assets.definitions import build_definitions
    from cvn_assets.defs.folds import add_new_folds
    from cvn_assets.defs.resources import ResultsStore
    from cvn_assets.defs.sizing import partition_working_set
    from cvn_assets.defs.sweep import Sweep
    from cvn_assets.instance_storage import instance_yaml

    home = root / "home"
    (home / "dagster").mkdir(parents=True)
    (home / "dagster" / "dagster.yaml").write_text(instance_yaml(REPO / "dagster.yaml", home / "dagster"))
    os.environ.update(CVN_HOME=str(home), DAGSTER_HOME=str(home / "dagster"))
    os.environ.pop("CVN_DATABASE_URL", None)

    # Outside the measurements, in this process: each sweep's bars loaded and its folds added, as the
    # `ohlcv` runs and the new-folds sensor do; then each partition's estimate from the instance's records.
    planned: list[tuple[Case, Path, dict[str, str], tuple[str, str], Any]] = []
    minute_sizes = [int(n) for n in args.minute_bars.split(",") if n]
    with dg.DagsterInstance.get() as instance:
        for case in cases(args.quick, minute_sizes):
            cfg = parse_config(case.config)
            env = {**os.environ, **hyperparameter_environ(cfg, args.quick)}
            path = root / f"{cfg.name}.yaml"
            path.write_text(yaml.safe_dump(case.config))
            store = ResultsStore(database_url=f"sqlite:///{root}/results.db")
            defs = build_definitions([cfg], artifacts_dir=root / "artifacts", results_store=store)
            sweep = Sweep.of(cfg)
            for crypto in cfg.cryptos:
                defs.resolve_job_def(sweep.keys.ohlcv_job).execute_in_process(
                    partition_key=crypto, instance=instance
                )
            plan = add_new_folds(instance, sweep).plan
            folds = (
                plan.fold_ids if case.partitions == "all" else sorted({plan.fold_ids[0], plan.fold_ids[-1]})
            )
            others = [c for c in plan.cryptos if c != "BTCUSD"]  # the overlay adds nothing to BTC itself
            cryptos = plan.cryptos if case.partitions == "all" else others[:1]
            for crypto in cryptos:
                for fold_id in folds:
                    estimate = partition_working_set(instance, sweep, f"{crypto}|{fold_id}")
                    planned.append((case, path, env, (crypto, fold_id), estimate))

    def run(item: tuple[Case, Path, dict[str, str], tuple[str, str], Any]) -> dict[str, Any]:
        return measure(item[1], root, item[3], item[2])

    # Quick: the two runs at once (peaks are per process); full: one at a time, as the figures need.
    with ThreadPoolExecutor(max_workers=2 if args.quick else 1) as pool:
        measured = list(pool.map(run, planned))
    interpreter_peak = int(interpreter.communicate()[0].strip().splitlines()[-1])

    print(f"interpreter: INTERPRETER_BYTES {INTERPRETER_BYTES / MIB:,.0f} MiB, measured now "
          f"{interpreter_peak / MIB:,.0f} MiB (ratio {INTERPRETER_BYTES / interpreter_peak:.3f})")  # fmt: skip
    head = f"{'sweep':11s} {'partition':42s} {'bars':>9s} {'span':>9s} {'estimate':>9s} {'measured':>9s} {'ratio':>6s}"
    print(f"{head}   estimate's parts (MiB)")
    worst = 0.0
    for (case, _, _, (crypto, fold_id), estimate), result in zip(planned, measured, strict=True):
        if not result["ok"]:
            raise SystemExit(f"{case.label} {crypto}|{fold_id}: the run failed")
        ratio = estimate.total / result["peak"]
        worst = max(worst, abs(ratio - 1))
        parts = " ".join(f"{k} {v / MIB:,.0f}" for k, v in estimate.parts().items() if k != "total")
        mark = "  (calibration)" if case.calibration else ""
        print(f"{case.label:11s} {crypto + '|' + fold_id:42s} {estimate.shape.bars_loaded:9,d} "
              f"{estimate.shape.span_rows:9,d} {estimate.total / GIB:8.3f}G {result['peak'] / GIB:8.3f}G "
              f"{ratio:6.3f}   {parts}{mark}")  # fmt: skip
    print(f"worst |estimate / measured - 1| : {worst:6.3f}   (target <= {TARGET})")


if __name__ == "__main__":
    main()
