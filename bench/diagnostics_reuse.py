"""What reusing the captured fold buys a re-audit: one cell of the demo sweep audited cold (from its bars:
the ohlcv it needs, both feature sets, the fold dataset, the hyperparameters, every model trained with its
HPO search, then the diagnostics) against a warm re-audit with the capture present (the diagnostics alone,
as `cvn audit` selects them when nothing is stale), both light (the reproducibility anchor skipped), in one
run on the same cores, through Dagster on a real instance in a fresh home.

Prints both times and their ratio (target: warm <= cold / 50), and beside them the warm re-audit through
the audit job (the UI's path: every captured step runs and finds its value current), a warm full audit
(the anchor retrains every model), and Dagster's floor: a run of the same shape (the cell's diagnostic
assets and checks, one step) that does no work, which no warm re-audit can beat. A cell's cold audit grows
with its bars and its searches while the floor does not: `--minute-bars N` measures a cell of N minute
bars (a synthetic BTC + SYNA universe with the demo's models, as bench/memory_estimate.py builds it) too.

Runs execute in this process (`execute_in_process`): what they measure is the audit's own work and
Dagster's per-step cost, not the run process's start, which every run pays alike (bench/
orchestration_overhead.py measures that).

    python bench/diagnostics_reuse.py [--crypto SYNA] [--minute-bars 300000] [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from btc_sample import QUICK_CONFIG, QUICK_HELP  # beside this script

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from memory_estimate import hyperparameter_environ, minute_config  # noqa: E402  (beside this script)
from ui_vs_cli import fresh_home, seed_hyperparameters  # noqa: E402  (beside this script)

TARGET = 50.0
QUICK = QUICK_CONFIG | {"models": {"xgboost": {}}}


def timed(job: Any, partition: Any, instance: Any, assets: list | None = None) -> float:
    if assets is not None:
        job = job.get_subset(asset_selection=set(assets))
    started = time.perf_counter()
    result = job.execute_in_process(partition_key=partition, instance=instance, raise_on_error=False)
    elapsed = time.perf_counter() - started
    if not result.success:
        failed = [e.message for e in result.all_events if e.is_failure]
        raise SystemExit(f"{job.name} failed: {failed[:3]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--crypto", default="SYNA", help="the demo cell's crypto (its first fold is audited)")
    parser.add_argument("--minute-bars", type=int, default=300_000, help="also a cell of this many minute "
                        "bars (0: the demo cell alone)")  # fmt: skip
    parser.add_argument("--quick", action="store_true", help=QUICK_HELP)
    args = parser.parse_args()
    demo = yaml.safe_load((REPO / "cvn_assets" / "sweeps" / "demo.yaml").read_text())
    cells = [(QUICK, "SYNA")] if args.quick else [(demo, args.crypto)]
    if args.minute_bars and not args.quick:
        cells.append((minute_config(args.minute_bars, quick=False), "SYNA"))
    ratios = [measured(raw, crypto, args.quick) for raw, crypto in cells]
    # The smallest cell's ratio is the headline: a cell's cold audit grows with its bars, the floor does not.
    print(f"ratio cold / warm                : {min(ratios):8.1f}  (target >= {TARGET:.0f})")


def measured(raw: dict[str, Any], crypto: str, quick: bool) -> float:
    """Cold and warm audits of one cell in a fresh home; the cold / warm ratio."""
    from cvn_assets.core.config import parse_config

    saved = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="cvn-diagnostics-bench-") as tmp:
        root = Path(tmp)
        sweeps = root / "sweeps"
        sweeps.mkdir()
        (sweeps / f"{raw['name']}.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
        env = fresh_home(root, "home", sweeps) | hyperparameter_environ(parse_config(raw), quick)
        os.environ.update(env)
        try:
            seed_hyperparameters(env)
            return run(raw, crypto)
        finally:
            os.environ.clear()
            os.environ.update(saved)


def floor(instance: Any, sweep: Any, diagnostics: list, cell: Any) -> float:
    """A run of the diagnostics' shape doing no work: the same assets, checks and partition, one step."""
    import dagster as dg

    specs = [dg.AssetSpec(key) for key in diagnostics]
    checks = [dg.AssetCheckSpec("verdict", asset=k, partitions_def=sweep.keys.crypto_fold_partitions)
              for k in diagnostics]  # fmt: skip

    @dg.multi_asset(specs=specs, check_specs=checks, partitions_def=sweep.keys.crypto_fold_partitions,
                    name=f"{sweep.name}_floor")  # fmt: skip
    def nothing():  # noqa: ANN202
        for key in diagnostics:
            yield dg.MaterializeResult(asset_key=key, metadata={"status": "PASS"},
                                       check_results=[dg.AssetCheckResult(asset_key=key, check_name="verdict", passed=True)])  # fmt: skip

    job = dg.Definitions(
        assets=[nothing], jobs=[dg.define_asset_job("floor", partitions_def=nothing.partitions_def)]
    )
    return timed(job.resolve_job_def("floor"), cell, instance)


def run(raw: dict[str, Any], crypto: str) -> float:
    import dagster as dg

    from cvn_assets import steps
    from cvn_assets.core.config import parse_config
    from cvn_assets.definitions import build_definitions
    from cvn_assets.defs.diagnostic_assets import subjects
    from cvn_assets.defs.folds import add_new_folds
    from cvn_assets.defs.keys import partition_key
    from cvn_assets.defs.sweep import Sweep

    config = parse_config(raw)
    sweep = Sweep.of(config)
    keys = sweep.keys
    defs = build_definitions([config])
    needed = sorted(
        {
            crypto,
            *(
                c
                for fs in steps.feature_set_names(config)
                for c in steps.required_cryptos(config, fs, crypto)
            ),
        }
    )
    with dg.DagsterInstance.get() as instance:
        ohlcv = defs.resolve_job_def(keys.ohlcv_job)
        cold_s = sum(timed(ohlcv, c, instance) for c in needed)
        # Folds are planned from every crypto's bars: the others load too, outside the timing (they are
        # not this cell's).
        for other in config.cryptos:
            if other not in needed:
                timed(ohlcv, other, instance)
        fold = add_new_folds(instance, sweep).plan.fold_ids[0]
        cell = partition_key(crypto, fold)
        light = defs.resolve_job_def(keys.light_diagnostics_job)
        cold_s += timed(light, cell, instance)
        # The cell's result rows, for the full audit's anchor to compare with (not timed; the capture it
        # trains again is identical, so it stays current).
        timed(defs.resolve_job_def(keys.sweep_job), cell, instance)
        diagnostics = list(subjects(sweep))
        # The best of three: the first pays this process's imports of the diagnostics' libraries.
        warm_s = min(timed(light, cell, instance, assets=diagnostics) for _ in range(3))
        job_s = timed(light, cell, instance)
        full_s = timed(defs.resolve_job_def(keys.diagnostics_job), cell, instance, assets=diagnostics)
        spent = per_diagnostic(instance, diagnostics)
        floor_s = floor(instance, sweep, diagnostics, cell)
    ratio = cold_s / warm_s
    print(f"cell                             : {crypto}|{fold} of sweep {config.name} ({len(diagnostics)} "
          f"diagnostic assets)")  # fmt: skip
    print(f"cold light audit, from bars      : {cold_s:8.2f} s")
    print(f"warm light re-audit (cvn audit)  : {warm_s:8.2f} s")
    print(f"warm light re-audit (audit job)  : {job_s:8.2f} s  (every captured step reused)")
    print(f"warm full audit (anchor retrains): {full_s:8.2f} s")
    print(
        f"Dagster's floor, a run doing none: {floor_s:8.2f} s  (the best cold / warm here: "
        f"{cold_s / floor_s:.0f})"
    )
    print(
        "each diagnostic's own time in the last (full) audit: "
        + ", ".join(f"{k} {v:.2f} s" for k, v in spent.items())
    )
    print(f"cold / warm                      : {ratio:8.1f}")
    return ratio


def per_diagnostic(instance: Any, diagnostics: list) -> dict[str, float]:
    """Each diagnostic's seconds in its latest materialization (summed over the models it audits)."""
    from cvn_assets.defs.diagnostic_assets import ELAPSED

    spent: dict[str, float] = {}
    for key in diagnostics:
        record = instance.get_latest_materialization_event(key)
        entry = record.asset_materialization.metadata.get(ELAPSED) if record else None
        name = key.path[-1].split("_on_")[0]
        for model in ("_xgboost", "_lightgbm", "_catboost", "_logreg"):
            name = name.removesuffix(model)
        spent[name] = spent.get(name, 0.0) + (float(entry.value) if entry else 0.0)
    return spent


if __name__ == "__main__":
    main()
