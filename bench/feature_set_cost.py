"""What a second feature set costs: the demo sweep with its feature sets (base, and btc_overlay for the
models the demo gives it) against the same demo with base alone, in one run, each through `cvn sweep` on
a fresh instance and a fresh results database, one after the other on the same cores.

Prints both wall times, the variants and result rows each wrote, and the ratio (target: <= 1.5).

    python bench/feature_set_cost.py [--config PATH] [--quick]

`--quick`: BTC and one synthetic crypto, one fold, one small model on both feature sets, the two sides at
once: the same code path in about a minute (its figures mean nothing).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml
from btc_sample import QUICK_CONFIG, QUICK_HELP, quick_environ  # beside this script

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from ui_vs_cli import fresh_home, seed_hyperparameters  # noqa: E402  (beside this script)

TARGET = 1.5
QUICK = QUICK_CONFIG | {
    "universe": {"BTCUSD": {"kind": "synthetic"}, "SYNA": {"kind": "synthetic"}},
    "feature_sets": ["base", "btc_overlay"],
}


def sweep(root: Path, side: str, raw: dict[str, Any]) -> tuple[float, int, int]:
    """Wall seconds of `cvn sweep` on `raw` in a fresh home, and the variants and result rows written."""
    import sqlalchemy as sa

    from cvn_assets import steps
    from cvn_assets.core.config import parse_config
    from cvn_assets.store.engine import get_engine
    from cvn_assets.store.schema import finetune_results

    sweeps = root / f"{side}_sweeps"
    sweeps.mkdir()
    path = sweeps / f"{raw['name']}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    env = fresh_home(root, side, sweeps)
    seed_hyperparameters(env)
    started = time.perf_counter()
    done = subprocess.run([str(Path(sys.executable).with_name("cvn")), "sweep", "--config", str(path)],
                          env=env, capture_output=True, text=True)  # fmt: skip
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"cvn sweep ({side}) failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    with get_engine(f"sqlite:///{Path(env['CVN_HOME']) / 'results.db'}").connect() as conn:
        rows = conn.execute(sa.select(sa.func.count()).select_from(finetune_results)).scalar_one()
    return elapsed, len(steps.variants(parse_config(raw))), int(rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", default=str(REPO / "cvn_assets/sweeps/demo.yaml"))
    parser.add_argument("--quick", action="store_true", help=QUICK_HELP)
    args = parser.parse_args()
    if args.quick:
        os.environ.update(quick_environ())
    raw = QUICK if args.quick else yaml.safe_load(Path(args.config).read_text())
    sets = list(raw.get("feature_sets") or ["base"])
    if len(sets) < 2:
        raise SystemExit(f"{args.config}: the sweep has one feature set ({sets}); nothing to compare")
    os.environ.pop("CVN_SWEEP_FILES", None)
    root = Path(tempfile.mkdtemp(prefix="cvn-feature-set-cost-"))
    alone_raw = {**raw, "feature_sets": ["base"]}
    if args.quick:  # the figures mean nothing: both sides at once, to keep the test suite short
        with ThreadPoolExecutor(max_workers=2) as pool:
            both_run, alone_run = (
                pool.submit(sweep, root, "both", raw),
                pool.submit(sweep, root, "base", alone_raw),
            )
            both, alone = both_run.result(), alone_run.result()
    else:  # one after the other on the same cores
        both, alone = sweep(root, "both", raw), sweep(root, "base", alone_raw)
    names = ", ".join(sets)
    print(f"sweep {raw['name']}: {len(raw['universe'])} cryptos, models {list(raw['models'])}")
    print(f"feature sets {names:<24}: {both[0]:8.1f} s, {both[1]} variants, {both[2]} result rows")
    print(f"{'base alone':<37}: {alone[0]:8.1f} s, {alone[1]} variants, {alone[2]} result rows")
    print(f"ratio feature sets / base alone      : {both[0] / alone[0]:8.3f}    (target <= {TARGET})")


if __name__ == "__main__":
    main()
