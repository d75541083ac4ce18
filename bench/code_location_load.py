"""Code-location load time for a universe of 2 and of 50 cryptos.

Loading the definitions reads configuration only, so the time must not grow with the data: this loads the
same sweep with 2 and with 50 cryptos (each a table source of real-sized bar files on local disk, as
users keep them), each in a fresh interpreter whose library imports are done before the clock starts, and
prints the median of 3 loads per side and their ratio (target <= 1.2).

    python bench/code_location_load.py [--quick]

`--quick`: one load per side, universes of 2 and 5: the same code in seconds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

LOAD = """
import time, warnings
warnings.simplefilter("ignore")
import dagster, pandas, xgboost, lightgbm, catboost, sklearn, optuna  # library imports: not timed
import cvn_assets.harness.registry as registry
registry.discover()
started = time.perf_counter()
from cvn_assets.definitions import defs
loaded = defs()
loaded.resolve_all_asset_keys()
print(time.perf_counter() - started)
"""


def sweep_dir(root: Path, n: int, bars: Path) -> Path:
    directory = root / f"universe_{n}"
    directory.mkdir()
    raw = yaml.safe_load((Path(__file__).resolve().parents[1] / "cvn_assets/sweeps/demo.yaml").read_text())
    raw["universe"] = {f"C{i:03d}": {"kind": "table", "path": str(bars)} for i in range(n)}
    (directory / "demo.yaml").write_text(yaml.safe_dump(raw))
    return directory


def load_seconds(directory: Path) -> float:
    env = {**os.environ, "CVN_SWEEPS_DIR": str(directory)}
    out = subprocess.run([sys.executable, "-c", LOAD], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["no output"])[-1]
        raise SystemExit(f"loading the code location failed ({directory.name}): {last}")
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny inputs that run in seconds (the figures mean nothing)"
    )
    args = parser.parse_args()
    few, many, loads = (2, 5, 1) if args.quick else (2, 50, 3)
    root = Path(tempfile.mkdtemp(prefix="cvn-load-"))
    bars = root / "bars.csv.gz"
    from cvn_assets.core.loaders import BUNDLED_PREFIX, collect_files

    bars.write_bytes(collect_files(f"{BUNDLED_PREFIX}btcusd_1h.csv.gz", (".csv.gz",))[0].data)
    small, large = sweep_dir(root, few, bars), sweep_dir(root, many, bars)
    times: dict[int, list[float]] = {few: [], many: []}
    for _ in range(loads):  # interleaved, so the machine's drift falls on both sides
        times[few].append(load_seconds(small))
        times[many].append(load_seconds(large))
    t_few, t_many = statistics.median(times[few]), statistics.median(times[many])
    for n, t in ((few, t_few), (many, t_many)):
        print(f"load, universe of {n:<3d}: {t:6.3f} s  (runs: {', '.join(f'{x:.3f}' for x in times[n])})")
    print(f"ratio {many} / {few}         : {t_many / t_few:6.3f}    (target <= 1.2)")


if __name__ == "__main__":
    main()
