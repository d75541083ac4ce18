"""The demo sweep launched from the UI against the same sweep through `cvn sweep`, in one run, each on a
fresh instance and a fresh results database.

  * UI: a real webserver and daemon; the backfills the UI's buttons launch, sent to the webserver's
    GraphQL API: ohlcv for every crypto, then (once the new-folds sensor has added the folds) every
    crypto x fold; wall time until the last partition's run has finished.
  * CLI: `cvn sweep`, which launches the same backfills through the instance and lets the daemon run them.

Prints both wall times and their ratio (target: UI / CLI <= 1.0), and where they differ: the wait before
the first run is created (a backfill launched from the UI waits for the daemon's backfill loop, which runs
every 30 s; `cvn sweep` without a running daemon starts one, whose first loop is immediate) and the span
from the first run created to the last run finished, which is the runs themselves.

    python bench/ui_vs_cli.py [--config PATH] [--quick]

`--quick`: one synthetic crypto, one fold, one small model, one cost. The UI side still waits for the
daemon's backfill loop (30 s), so it takes about a minute or two rather than seconds.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the tests' service helpers: the same webserver and daemon the tests start

from btc_sample import QUICK_HELP, sweep_file  # noqa: E402  (beside this script)


def fresh_home(root: Path, name: str, sweeps: Path) -> dict[str, str]:
    from cvn_assets.instance_storage import instance_yaml

    home = root / name
    (home / "dagster").mkdir(parents=True)
    (home / "dagster" / "dagster.yaml").write_text(instance_yaml(REPO / "dagster.yaml", home / "dagster"))
    return {
        **os.environ,
        "CVN_HOME": str(home),
        "DAGSTER_HOME": str(home / "dagster"),
        "CVN_SWEEPS_DIR": str(sweeps),
    }


def seed_hyperparameters(env: dict[str, str]) -> None:
    """The committed hyperparameters in the home's results database, as `cvn demo` seeds them (not timed)."""
    from cvn_assets.hyperparams.seeding import apply_seed, load_values, plan_seed, seed_values
    from cvn_assets.store.engine import get_engine, upgrade

    url = f"sqlite:///{Path(env['CVN_HOME']) / 'results.db'}"
    upgrade(url)
    with get_engine(url).connect() as conn:
        apply_seed(get_engine(url), plan_seed(conn, seed_values(sorted(load_values())), force=False))


def ui_side(env: dict[str, str], config_name: str, cryptos: list[str]) -> tuple[float, float]:
    """Wall seconds until the last partition's run has finished, and the epoch time of the launch."""
    import dagster as dg

    from cvn_assets.launch import LAUNCH_BACKFILL, LOCATION, REPOSITORY
    from cvn_assets_tests.services import dagster_services, graphql

    def backfill(url: str, job: str, partitions: list[str]) -> None:
        selector = {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY}
        params = {"selector": {"partitionSetName": f"{job}_partition_set", "repositorySelector": selector},
                  "partitionNames": partitions}  # fmt: skip
        result = graphql(url, LAUNCH_BACKFILL, {"params": params})["data"]["launchPartitionBackfill"]
        assert result["__typename"] == "LaunchBackfillSuccess", result

    dagster_home = Path(env["DAGSTER_HOME"])
    with dagster_services(dagster_home, env) as url:
        started, launched = time.perf_counter(), time.time()
        backfill(url, f"{config_name}_ohlcv", cryptos)
        with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
            while True:  # the sensor adds the folds once the bars are recorded, and requests the partitions
                runs = instance.get_runs(dg.RunsFilter(job_name=f"{config_name}_sweep"))
                folds = instance.get_dynamic_partitions(f"{config_name}_folds")
                expected = len(folds) * len(cryptos)
                finished = [r for r in runs if r.is_finished]
                if folds and len(finished) == expected:
                    return time.perf_counter() - started, launched
                time.sleep(1)


def cli_side(env: dict[str, str], config: Path) -> float:
    started = time.perf_counter()
    subprocess.run([str(Path(sys.executable).with_name("cvn")), "sweep", "--config", str(config)], env=env,
                   check=True, capture_output=True)  # fmt: skip
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", default=str(REPO / "cvn_assets/sweeps/demo.yaml"))
    parser.add_argument("--quick", action="store_true", help=QUICK_HELP)
    args = parser.parse_args()

    from cvn_assets.core.config import load_config

    root = Path(tempfile.mkdtemp(prefix="cvn-ui-vs-cli-"))
    sweeps = root / "sweeps"
    sweeps.mkdir()
    config_path = sweep_file(sweeps, args.quick, Path(args.config))
    config = load_config(config_path)
    os.environ.pop("CVN_SWEEP_FILES", None)  # both sides serve exactly this sweeps directory
    envs = {side: fresh_home(root, side, sweeps) for side in ("ui", "cli")}
    for env in envs.values():
        seed_hyperparameters(env)

    ui, ui_launched = ui_side(envs["ui"], config.name, config.cryptos)
    cli_launched = time.time()
    cli = cli_side(envs["cli"], config_path)
    ui_wait, ui_runs = run_span(envs["ui"], ui_launched)
    cli_wait, cli_runs = run_span(envs["cli"], cli_launched)
    print(f"sweep {config.name}: {len(config.cryptos)} cryptos, models {list(config.models)}")
    print(f"UI (GraphQL backfill + sensor) : {ui:8.1f} s")
    print(f"CLI (cvn sweep)                : {cli:8.1f} s")
    print(f"ratio UI / CLI                 : {ui / cli:8.3f}    (target <= 1.0)")
    print(f"launch to first run created    : UI {ui_wait:6.1f} s, CLI {cli_wait:6.1f} s")
    print(f"first run created to last done : UI {ui_runs:6.1f} s, CLI {cli_runs:6.1f} s, ratio "
          f"{ui_runs / cli_runs:.3f}")  # fmt: skip


def run_span(env: dict[str, str], launched: float) -> tuple[float, float]:
    """Seconds from launch to the first run's creation, and from there to the last run's end."""
    import dagster as dg

    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        records = instance.get_run_records()
        first = min(r.create_timestamp.timestamp() for r in records)
        last = max(r.end_time or 0.0 for r in records)
    return first - launched, last - first


if __name__ == "__main__":
    main()
