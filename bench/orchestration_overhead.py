"""Orchestration overhead of the default demo sweep: Dagster against an orchestrator with no overhead.

In one run of this script, each side with its own fresh results database:
  * Dagster: the sweep launched exactly as `cvn demo` launches it: backfills through the instance, run
    by Dagster's daemon at the embedded default's concurrency (2 runs at once), on a fresh SQLite
    instance, then the report.
  * plain: the `cvn_assets.steps` functions of the same cells called serially in a loop, with the same
    store writes and audits, and the same report page.
  * the bound: the serial loop again with the threads one Dagster run gets (`runtime.threads: auto` splits
    the cores across the concurrent runs), divided by the number of concurrent runs: the wall time of an
    orchestrator with no overhead at all that keeps every core busy.
Prints the wall times, the ratio Dagster / bound (target <= 1.3), the ratio Dagster / serial loop (the
figure this bench used to print), each run's start (RUN_STARTING to its first step, median and max), the
share of run time outside the steps, the overhead per step, and the instance's SQL reads and writes per
step (counted inside each run worker: `cvn_assets/instance_queries.py`).
The sweep is served from a sweeps directory of its own (CVN_SWEEPS_DIR), so any `--config` runs.

    python bench/orchestration_overhead.py [--config PATH] [--quick] [--cold]

`--quick`: one synthetic crypto, one fold, one small model, one cost: the same path in well under a minute.
`--cold`: the runs started the way Dagster's default launcher starts them (a fresh interpreter per run,
spawned by the code server; `warm_start: false`), for the figures before warm run workers.
`--plain-sqlite`: Dagster's own SQLite storage, a new connection per transaction, for the figures before
the embedded default kept its connections (`cvn_assets/instance_storage.py`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import yaml
from btc_sample import QUICK_HELP, sweep_file  # beside this script

REPO = Path(__file__).resolve().parents[1]


class Stored:
    """What the steps do beyond the pure `steps` functions, for the loop: every value written through the
    artifact store's formats (`cvn_assets/artifacts`) and read back where the asset graph reads it, and
    each model and ensemble logged to MLflow the way the assets log them. `root=None`: nothing stored."""

    def __init__(self, root: Path | None, sweep: object = None) -> None:
        self.root, self.sweep = root, sweep
        self.held: dict[tuple[str, str], object] = {}  # root=None: the values themselves, nothing stored
        self.variants: dict[str, list[str]] = {}
        self.model_runs: dict[tuple[str, str, str], str] = {}
        if root is not None:
            from cvn_assets.artifacts.location import location_from_env
            from cvn_assets.defs.tracking import tracking_from_env

            self.location = location_from_env(root, {})
            self.tracking = tracking_from_env()

    def _folder(self, key: str, cell: str):  # noqa: ANN202 - an ArtifactFolder
        from upath import UPath

        from cvn_assets.artifacts.location import ArtifactFolder

        path = UPath(self.root) / key / cell
        path.mkdir(parents=True, exist_ok=True)
        return ArtifactFolder(path, self.location)

    def put(self, key: str, cell: str, value):  # noqa: ANN001, ANN201 - any stored value
        if self.root is None:
            self.held[key, cell] = value
            return value
        from cvn_assets.artifacts.formats import write_value

        write_value(self._folder(key, cell), value, f"{key} {cell}")
        if key.startswith(("predictions_", "ensemble_")):
            self.variants.setdefault(cell, []).append(key)
        return value

    def get(self, key: str, cell: str):  # noqa: ANN201 - any stored value
        if self.root is None:
            return self.held[key, cell]
        from cvn_assets.artifacts.formats import read_value

        return read_value(self._folder(key, cell))

    def variant_keys(self, cell: str) -> list[str]:
        return self.variants.get(cell, [])

    def track(self, crypto: str, fold_id: str, artifact=None, ensemble=None, base=()) -> None:  # noqa: ANN001
        if self.root is None or not self.tracking.enabled:
            return
        from cvn_assets.defs.tracking_records import Origin, ensemble_record, model_record

        origin = Origin(self.sweep.name, self.sweep.config.run_id, crypto, fold_id, "bench", "bench",
                        f"{crypto}|{fold_id}", None)  # fmt: skip
        if artifact is not None:
            tracked = self.tracking.log_run(model_record(origin, self.sweep, artifact))
            self.model_runs[crypto, fold_id, artifact.model_name] = tracked.run_id if tracked else ""
        else:
            runs = {m: self.model_runs.get((crypto, fold_id, m), "") for m in base}
            self.tracking.log_run(ensemble_record(origin, self.sweep, ensemble, list(base), runs))


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
    parser.add_argument("--side-loop", nargs=3, help=argparse.SUPPRESS)  # URL THREADS CELLS: one loop, timed
    parser.add_argument(
        "--cold", action="store_true", help="start each run in a fresh interpreter (Dagster's default)"
    )
    parser.add_argument(
        "--plain-sqlite",
        action="store_true",
        help="Dagster's own SQLite storage (a new connection per transaction) instead of the embedded "
        "default's (cvn_assets/instance_storage.py), for the figures before it",
    )
    args = parser.parse_args()

    import dagster as dg

    from cvn_assets import steps
    from cvn_assets.core.baselines import BASELINE_TYPES
    from cvn_assets.core.config import load_config
    from cvn_assets.core.sweep_plan import plan_sweep
    from cvn_assets.defs.perf import sweep_perf
    from cvn_assets.defs.sweep import Sweep, concurrent_runs, model_threads
    from cvn_assets.hyperparams.resolver import Resolver
    from cvn_assets.hyperparams.seeding import apply_seed, load_values, plan_seed, seed_values
    from cvn_assets.instance_queries import QUERY_LOG_ENV
    from cvn_assets.instance_storage import instance_yaml as home_instance_yaml
    from cvn_assets.launch import launch_sweep
    from cvn_assets.report.page import build_page, render_html
    from cvn_assets.store.audits import missing_baselines, placeholder_join_keys, unlabelled_cost_basis
    from cvn_assets.store.engine import get_engine, upgrade
    from cvn_assets.store.reports import sweep_rows
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
    instance_yaml = yaml.safe_load(home_instance_yaml(REPO / "dagster.yaml", dagster_home))
    if args.cold:
        instance_yaml["run_launcher"]["config"] = {"warm_start": False}
    if args.dagster_postgres:
        instance_yaml["storage"] = {"postgres": {"postgres_url": args.dagster_postgres}}
    elif args.plain_sqlite:
        del instance_yaml["storage"]  # Dagster's own SQLite storage, a new connection per transaction
    (dagster_home / "dagster.yaml").write_text(yaml.safe_dump(instance_yaml))
    query_log = root / "instance_queries.jsonl"
    os.environ.update(CVN_HOME=str(home), DAGSTER_HOME=str(dagster_home), CVN_SWEEPS_DIR=str(sweeps))
    os.environ[QUERY_LOG_ENV] = str(query_log)
    os.environ.pop("CVN_SWEEP_FILES", None)
    dagster_url = f"sqlite:///{home / 'results.db'}"

    # Outside the timings: migrations and the committed hyperparameters in every database.
    for url in (plain_url, bound_url, dagster_url):
        upgrade(url)
        with get_engine(url).connect() as conn:
            apply_seed(get_engine(url), plan_seed(conn, seed_values(sorted(load_values())), force=False))

    def plain_sweep(
        url: str, cells: list[tuple[str, str]], threads: int | None = None, store: Stored | None = None
    ) -> None:
        """Every cell's steps, serially, then the report page: what the Dagster runs compute. With `store`,
        each step's value also goes through the artifact store's formats and back, as many times as the
        asset graph reads it, and each model and ensemble is logged to MLflow, as the steps do."""
        engine = get_engine(url)
        keep = store or Stored(None)
        bars = {
            crypto: keep.put("ohlcv", crypto, steps.ohlcv(cfg, crypto))
            for crypto in sorted({c for c, _ in cells})
        }
        variants: list = []
        dataset = None
        for crypto, fold_id in cells:
            cell = f"{crypto}/{fold_id}"
            fold = plan.fold(fold_id)
            sets = steps.feature_set_names(cfg)
            for name in sets:
                others = {c: bars[c] for c in steps.required_cryptos(cfg, name, crypto)}
                keep.put(
                    f"features_{name}", cell, steps.features(cfg, name, crypto, fold, bars[crypto], others)
                )
            frames = [keep.get(f"features_{name}", cell) for name in sets]
            dataset = keep.put(
                "fold_dataset", cell, steps.fold_dataset(cfg, crypto, fold, bars[crypto], frames)
            )
            hps = keep.put("hyperparameters", cell, steps.hyperparameters(cfg, Resolver(engine, environ={})))
            variants = []
            for feature_set in steps.feature_set_names(cfg):
                models = {}
                for m in cfg.feature_set_models(feature_set):
                    on_set = keep.get("fold_dataset", cell).for_feature_set(feature_set)
                    artifact = steps.train_model(cfg, m, on_set, keep.get("hyperparameters", cell)[m], url,
                                                 threads=threads)  # fmt: skip
                    keep.track(crypto, fold_id, artifact=artifact)
                    keep.put(f"model_{m}_{feature_set}", cell, artifact)
                    on_set = keep.get("fold_dataset", cell).for_feature_set(feature_set)
                    preds = steps.predictions(keep.get(f"model_{m}_{feature_set}", cell), on_set)
                    models[m] = keep.put(f"predictions_{m}_{feature_set}", cell, preds)
                variants += list(models.values())
                for e in steps.feature_set_ensembles(cfg, feature_set):
                    on_set = keep.get("fold_dataset", cell).for_feature_set(feature_set)
                    base = {m: keep.get(f"predictions_{m}_{feature_set}", cell) for m in models}
                    preds = steps.ensemble(cfg, e, on_set, base, hps[e], threads=threads)
                    keep.track(crypto, fold_id, ensemble=preds, base=list(models))
                    variants.append(keep.put(f"ensemble_{e}_{feature_set}", cell, preds))
            if store is not None:  # the economics and baselines steps read the dataset and every variant
                dataset = keep.get("fold_dataset", cell)
                variants = [keep.get(key, cell) for key in keep.variant_keys(cell)]
            for cost in cfg.costs_bps:
                scope = steps.partition_scope(cfg, crypto, fold_id, cost)
                write_baselines(engine, scope, steps.baseline_rows(cfg, dataset, cost))
                write_results(engine, scope, steps.result_rows(cfg, dataset, variants, cost))
            with engine.connect() as conn:
                missing_baselines(conn, cfg.run_id, cfg.costs_bps, BASELINE_TYPES, crypto, fold_id)
                placeholder_join_keys(conn, cfg.run_id, crypto, fold_id)
                unlabelled_cost_basis(conn, cfg.run_id, crypto, fold_id)
        if dataset is not None:
            results, baselines = sweep_rows(engine, cfg.run_id)
            cell = steps.report_cell(cfg, dataset, variants)
            render_html(build_page(cfg.name, cfg.run_id, results, baselines, cell, seed=cfg.seed))

    if args.side_loop:  # a child of the side-by-side pass: its share of the cells, its wall time on stdout
        url, threads, share = args.side_loop
        upgrade(url)
        with get_engine(url).connect() as conn:
            apply_seed(get_engine(url), plan_seed(conn, seed_values(sorted(load_values())), force=False))
        started = time.perf_counter()
        plain_sweep(url, [(c, f) for c, f in json.loads(share)], threads=int(threads))
        print(f"SIDE LOOP{time.perf_counter() - started}")
        return

    with dg.DagsterInstance.get() as instance:
        runs_at_once, run_threads = concurrent_runs(instance), model_threads(cfg, instance)
        started = time.perf_counter()
        outcome = launch_sweep(instance, Sweep.of(cfg), home, on_progress=lambda line: None)
        orchestrated = time.perf_counter() - started
        if not outcome.ok:
            raise SystemExit(f"the Dagster sweep failed: {outcome.failures} {outcome.failed_checks}")
        perf = sweep_perf(instance, Sweep.of(cfg), window=timedelta(hours=1))
        cells = sorted(tuple(p.split("|")) for p in outcome.runs if "|" in p)
        n_steps = perf.runs.steps

    started = time.perf_counter()
    plain_sweep(plain_url, cells)
    plain = time.perf_counter() - started
    started = time.perf_counter()
    plain_sweep(bound_url, cells, threads=run_threads)
    bound = (time.perf_counter() - started) / runs_at_once
    # The bound again, the steps' own IO included: a fresh results database and store, MLflow beside them.
    stored_home = root / "stored"
    os.environ["CVN_HOME"] = str(stored_home)
    stored_url = f"sqlite:///{root / 'stored.db'}"
    upgrade(stored_url)
    with get_engine(stored_url).connect() as conn:
        apply_seed(get_engine(stored_url), plan_seed(conn, seed_values(sorted(load_values())), force=False))
    started = time.perf_counter()
    plain_sweep(
        stored_url, cells, threads=run_threads, store=Stored(stored_home / "artifacts", Sweep.of(cfg))
    )
    stored_bound = (time.perf_counter() - started) / runs_at_once
    # What the cores give the loops side by side (the cells dealt out, each loop its own process and
    # database): the bound assumes a perfect split; this is what any orchestrator running cells at once gets.
    side_by_side = []
    for i in range(runs_at_once):
        url = f"sqlite:///{root / f'side_{i}.db'}"
        for_child = [a for a in sys.argv[1:]] + [
            "--side-loop",
            url,
            str(run_threads),
            json.dumps(cells[i::runs_at_once]),
        ]
        side_by_side.append(
            subprocess.Popen([sys.executable, __file__, *for_child], stdout=subprocess.PIPE, text=True)
        )
    concurrent = max(float(worker.communicate()[0].split("SIDE LOOP")[-1]) for worker in side_by_side)

    counted = [json.loads(line) for line in query_log.read_text().splitlines()] if query_log.exists() else []
    reads = sum(c.get("reads", 0) for c in counted)
    writes = sum(c.get("writes", 0) for c in counted)
    storage = (
        "PostgreSQL" if args.dagster_postgres else "Dagster's plain SQLite" if args.plain_sqlite else "SQLite"
    )
    starts = perf.runs.start_s
    print(f"sweep {cfg.run_id}: {len({c for c, _ in cells})} cryptos, {len(cells)} cells, models {list(cfg.models)}, "
          f"costs {cfg.costs_bps}; {perf.runs.runs} Dagster runs, {n_steps} steps, Dagster storage on {storage}, "
          f"runs started {'cold (a fresh interpreter each)' if args.cold else 'warm (forked, preloaded)'}")  # fmt: skip
    print(
        f"plain serial loop of the same steps : {plain:8.2f} s   ({steps.default_threads(cfg)} thread(s) per model)"
    )
    print(f"Dagster, as `cvn demo` launches it  : {orchestrated:8.2f} s   ({runs_at_once} runs at once, "
          f"{run_threads} thread(s) per model)")  # fmt: skip
    print(f"bound: no overhead, every core busy : {bound:8.2f} s   (the loop at {run_threads} thread(s) / "
          f"{runs_at_once})")  # fmt: skip
    print(f"bound with the steps' own IO        : {stored_bound:8.2f} s   (also every value written and read "
          "back through the artifact store, every model and ensemble logged to MLflow)")  # fmt: skip
    print(f"the loop, {runs_at_once} at once, cells dealt out : {concurrent:8.2f} s   (what the cores give runs side by "
          "side, with no orchestrator: the bound's perfect split, measured)")  # fmt: skip
    print(f"run start, RUN_STARTING to 1st step : {statistics.median(starts) if starts else float('nan'):8.2f} s   "
          f"median over {len(starts)} runs (max {max(starts, default=float('nan')):.2f} s; target <= 1.5)")  # fmt: skip
    print(
        f"share of run time outside the steps : {perf.runs.outside_steps_share or 0.0:8.3f}     (target <= 0.10)"
    )
    print(f"overhead per step ({n_steps} steps)      : {(orchestrated - bound) / max(n_steps, 1):8.3f} s   "
          "(Dagster's wall time above the bound)")  # fmt: skip
    print(f"instance SQL per step, in the runs  : {reads / max(n_steps, 1):8.1f} reads, {writes / max(n_steps, 1):.1f} writes"
          f"   ({len(counted)} runs counted: {reads} reads, {writes} writes)")  # fmt: skip
    print(
        f"ratio Dagster / serial loop         : {orchestrated / plain:8.3f}     (the figure before; the bound is below)"
    )
    print(f"ratio bound / serial loop           : {bound / plain:8.3f}     (the best this machine allows)")
    print(
        f"ratio Dagster / bound with its IO   : {orchestrated / stored_bound:8.3f}     (Dagster's own share)"
    )
    print(
        f"ratio Dagster / loops side by side  : {orchestrated / concurrent:8.3f}     (the same cores, no orchestrator)"
    )
    print(f"ratio Dagster / bound               : {orchestrated / bound:8.3f}     (target <= 1.3)")


if __name__ == "__main__":
    main()
