"""The `cvn` command: run a sweep, show its plan, summary, report and timings, migrate the results
database, import realized fills, and edit, seed and audit the hyperparameter keys."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import sqlalchemy as sa

from cvn_assets.artifacts.location import location_from_env
from cvn_assets.artifacts.published import REPORTS_PREFIX
from cvn_assets.core.config import (
    DEFAULT_CONFIG_PATH,
    EXTRA_SWEEPS_ENV,
    SWEEPS_DIR_ENV,
    SweepConfig,
    SweepFile,
    load_config,
    remember_sweep_file,
    scan_sweeps,
)
from cvn_assets.core.errors import ConfigError, CvnError
from cvn_assets.core.sweep_plan import SweepPlan, plan_sweep
from cvn_assets.core.timeframes import parse_duration
from cvn_assets.core.timings import DEFAULT_WINDOW as DEFAULT_PERF_WINDOW
from cvn_assets.harness.registry import hyperparameter_owners
from cvn_assets.hyperparams.resolver import Resolver
from cvn_assets.hyperparams.seeding import SeedAction, apply_seed, load_values, plan_seed, seed_values
from cvn_assets.store.engine import cvn_home, database_url, get_engine, redact, store_unavailable, upgrade
from cvn_assets.store.reports import summary, sweep_rows

if TYPE_CHECKING:
    from dagster import DagsterInstance

    from cvn_assets.defs.sweep import Sweep

REPO_DAGSTER_YAML = Path(__file__).resolve().parents[1] / "dagster.yaml"


def _validated_config(config_path: str | Path | None) -> SweepConfig:
    """The config file, checked for everything the code location checks when it loads the sweep (registered
    models, ensembles and feature sets, cron, every bound), so nothing is launched that cannot load."""
    from cvn_assets.definitions import validate_sweep

    path = Path(config_path) if config_path else DEFAULT_CONFIG_PATH
    config = load_config(path)
    try:
        validate_sweep(config)
    except ConfigError as exc:
        raise ConfigError(exc.key, exc.problem, str(path)) from None
    except CvnError as exc:
        raise CvnError(f"{path}: {exc}") from None
    return config


def _plan(config_path: str | None) -> SweepPlan:
    return plan_sweep(_validated_config(config_path))


def shipped_instance_yaml(dagster_home: Path) -> str | None:
    """The repository's dagster.yaml as this home's copy (its storage under the home), if shipped."""
    from cvn_assets.instance_storage import instance_yaml

    return instance_yaml(REPO_DAGSTER_YAML, dagster_home) if REPO_DAGSTER_YAML.exists() else None


def _prepare_home(home: str | None) -> Path:
    """Point CVN_HOME and DAGSTER_HOME at local state (the embedded default) unless already set; the home
    is created if it does not exist yet."""
    if home:
        os.environ["CVN_HOME"] = str(Path(home).resolve())
    root = cvn_home()
    root.mkdir(parents=True, exist_ok=True)
    embedded = root / "dagster"
    dagster_home = Path(os.environ.setdefault("DAGSTER_HOME", str(embedded)))
    dagster_home.mkdir(parents=True, exist_ok=True)
    instance_yaml = dagster_home / "dagster.yaml"
    shipped = shipped_instance_yaml(dagster_home)
    if not instance_yaml.exists() and shipped is not None:
        instance_yaml.write_text(shipped)
    elif dagster_home == embedded and shipped is not None and instance_yaml.read_text() != shipped:
        # An older copy lacks what later releases added (run monitoring, the per-partition run limit).
        print(f"note: {instance_yaml} differs from the shipped {REPO_DAGSTER_YAML.name}; copy it over to get "
              "the current instance settings", file=sys.stderr)  # fmt: skip
    return root


def print_summary(cfg: SweepConfig) -> None:
    url = database_url()
    upgrade(url)
    table = summary(get_engine(url), cfg.run_id)
    if table.empty:
        print(f"no rows for run_id {cfg.run_id} in {redact(url)}")
        return
    with pd.option_context(
        "display.width", 200, "display.max_columns", 20, "display.float_format", "{:.4f}".format
    ):
        for cost, part in table.groupby("cost_bps"):
            print(f"\n== cost {cost} bps: variants vs baselines (mean over crypto x fold, test split) ==")
            print(part.drop(columns="cost_bps").to_string(index=False))


def _served_sweeps() -> list[SweepFile]:
    """What the code location serves; each sweep file it cannot serve is named on stderr, in one line."""
    served, invalid = scan_sweeps()
    for entry in invalid:
        print(f"note: not served (the other sweeps are): {entry.error}", file=sys.stderr)
    return served


def _served_sweep(config_path: str | None) -> Sweep:
    """The sweep of a config file, validated. A file outside the sweeps directory is served too: through
    CVN_SWEEP_FILES by this command's daemon and runs, and from then on in this home (the UI's code location
    and `cvn report`, `summary` and `perf` find it)."""
    from cvn_assets.defs.sweep import Sweep

    path = Path(config_path).resolve() if config_path else DEFAULT_CONFIG_PATH
    config = _validated_config(path)
    served = {s.name: s.path.resolve() for s in _served_sweeps()}
    if served.get(config.name) != path:
        if config.name in served:
            raise ConfigError(
                "name",
                f"sweep '{config.name}' is already served from {served[config.name]}; rename one",
                str(path),
            )
        extra = [p for p in os.environ.get(EXTRA_SWEEPS_ENV, "").split(os.pathsep) if p]
        os.environ[EXTRA_SWEEPS_ENV] = os.pathsep.join([*extra, str(path)])
        remember_sweep_file(path)
    return Sweep.of(config)


def _ensure_hyperparameters(args: argparse.Namespace, cfg: SweepConfig) -> None:
    """Before anything launches: on the embedded default, write the committed hyperparameter values that are
    not set yet (never overwriting one), as `cvn hp seed --apply` does; against a configured results
    database (CVN_DATABASE_URL), stop naming the command that fixes a missing key instead of writing there."""
    from cvn_assets import steps

    engine = _hp_engine(args)
    if not os.environ.get("CVN_DATABASE_URL"):
        written = apply_seed(engine, _seed_actions(engine, force=False))
        print(f"hyperparameters: {written} missing keys seeded into ftf_config from the values file")
        return
    if cfg.hpo.allow_fallback:
        return
    cover, description = steps.hyperparameter_coverage(cfg, Resolver(engine))
    if not cover.complete:
        raise CvnError(f"nothing was launched: {description}")


def cmd_sweep(args: argparse.Namespace) -> int:
    import dagster as dg

    from cvn_assets.launch import launch_sweep

    root = _prepare_home(args.home)
    sweep = _served_sweep(args.config)
    cfg = sweep.config
    _ensure_hyperparameters(args, cfg)
    started = time.perf_counter()
    print(
        f"sweep {cfg.run_id}: {len(cfg.cryptos)} cryptos, models {list(cfg.models)}, costs {cfg.costs_bps} bps; "
        f"backfills through the Dagster instance at {os.environ['DAGSTER_HOME']}"
    )
    with dg.DagsterInstance.get() as instance:
        outcome = launch_sweep(instance, sweep, root, on_progress=lambda line: print(line, flush=True))
        elapsed = time.perf_counter() - started
        try:
            print_summary(cfg)
            print_report(cfg, instance, root / "reports", tables=False)
        except sa.exc.OperationalError as exc:  # the runs' own failures below say which partitions it cost
            print(f"\nno summary: {store_unavailable(database_url(), exc)}")
    n_failed_checks = sum(map(len, outcome.failed_checks.values()))
    n_warned = sum(map(len, outcome.warned_checks.values()))
    print(
        f"\n{outcome.succeeded} runs succeeded, {len(outcome.runs) - outcome.succeeded} failed in {elapsed:.1f} s; "
        f"asset checks: {outcome.checks_passed} passed, {n_failed_checks} failed, {n_warned} warnings"
    )
    for name, error in outcome.failures.items():
        print(f"  FAILED {name}: {error}")
    for name, checks in outcome.failed_checks.items():
        for check in checks:
            print(f"  CHECK FAILED {name}: {check}")
    for name, checks in outcome.warned_checks.items():
        for check in checks:
            print(f"  CHECK WARNING {name}: {check}")
    for crypto, why in outcome.left_out.items():
        verdict = (
            "skipped (operations.skip_cryptos_without_folds)" if not outcome.left_out_fails else "FAILED"
        )
        print(f"  LEFT OUT {crypto}, {verdict}: no fold of the plan fits its data; {why}")
    print(
        f"\nresults database : {redact(database_url())}  (tables finetune_results, finetune_baselines; "
        f"run_id {cfg.run_id})"
    )
    searched = [m for m in cfg.models if cfg.hpo_mode(m) == "search"]
    if searched:
        print(
            f"optuna studies   : same database, one per searched model x crypto x fold, named "
            f"{cfg.run_id}/<model>/<crypto>/<fold>/... ({', '.join(searched)}; optuna_trial_id joins rows to them)"
        )
    print("hyperparameters  : ftf_config in the same database (`cvn hp list`, `cvn hp audit`)")
    location = location_from_env(root / "artifacts")
    print(
        f"artifacts        : {location.describe()}  (one folder per asset partition: parquet, native "
        "model files, JSON)"
    )
    print(
        f"dagster instance : {os.environ['DAGSTER_HOME']}  (browse: make ui, or cvn ui --home {cvn_home()})"
    )
    return 0 if outcome.ok else 1


def cmd_plan(args: argparse.Namespace) -> int:
    plan = _plan(args.config)
    print(f"run_id {plan.run_id}; cryptos {plan.config.cryptos}; {len(plan.folds)} folds the data covers")
    for f in plan.folds:
        print(
            f"  {f.fold_id}: train {f.train_start} .. {f.train_end}  val {f.val_start} .. {f.val_end}  "
            f"test {f.test_start} .. {f.test_end}"
        )
    for crypto, error in plan.rejected.items():
        print(f"  REJECTED {crypto}: {error}")
    if plan.no_fit is not None:
        raise plan.no_fit
    return 1 if plan.rejected or not plan.folds else 0


def cmd_summary(args: argparse.Namespace) -> int:
    _prepare_home(args.home)
    if not args.config and not args.sweep:
        args.config = str(DEFAULT_CONFIG_PATH)
    for config in _chosen_sweeps(args).values():
        print_summary(config)
    return 0


def _window(text: str) -> pd.Timedelta:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def cmd_perf(args: argparse.Namespace) -> int:
    """Where each served sweep's time went: per asset and per model, from the Dagster event log."""
    import dagster as dg

    from cvn_assets.defs.perf import sweep_perf
    from cvn_assets.defs.sweep import Sweep

    _prepare_home(args.home)
    with dg.DagsterInstance.get() as instance:
        for name, config in _chosen_sweeps(args).items():
            perf = sweep_perf(instance, Sweep.of(config), args.since.to_pytimedelta())
            runs = perf.runs
            print(f"\n== sweep {name}: {runs.runs} finished runs since {perf.since:%Y-%m-%d %H:%M} UTC ==")
            if not runs.runs:
                continue
            print(
                f"run time p50 {runs.p50_s:.1f} s, p95 {runs.p95_s:.1f} s, max {runs.max_s:.1f} s; "
                f"{runs.outside_steps_share:.0%} of it outside the steps (Dagster's own: process start, "
                "event writes)"
            )
            if runs.start_p50_s is not None:
                print(f"run start (RUN_STARTING to the first step): p50 {runs.start_p50_s:.2f} s, "
                      f"max {max(runs.start_s):.2f} s over {len(runs.start_s)} runs")  # fmt: skip
            with pd.option_context("display.width", 200, "display.float_format", "{:.2f}".format):
                print(perf.assets.to_string(index=False))
                if not perf.models.empty:
                    print("\nper model, all its steps in a run:")
                    print(perf.models.drop(columns="asset").to_string(index=False))
                if not perf.diagnostics.empty:
                    print("\nper diagnostic, each verdict's own time (model: the one it audits):")
                    print(perf.diagnostics.rename(columns={"asset": "diagnostic"}).to_string(index=False))
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    """Re-audit cells of a served sweep: each cell's run reuses its captured fold where current."""
    import dagster as dg

    from cvn_assets.defs.sweep import Sweep
    from cvn_assets.diagnostics.verdicts import PASSING, audit_state, describe_state
    from cvn_assets.reaudit import launch_audit
    from cvn_assets.store.verdicts import read_verdicts

    root = _prepare_home(args.home)
    sweep = Sweep.of(next(iter(_chosen_sweeps(args).values()))) if args.sweep else _served_sweep(args.config)
    cfg = sweep.config
    started = time.perf_counter()
    mode = "light (the reproducibility anchor skipped)" if args.light else "full"
    print(
        f"audit of sweep {cfg.run_id}, {mode}, through the Dagster instance at {os.environ['DAGSTER_HOME']}"
    )
    with dg.DagsterInstance.get() as instance:
        outcome = launch_audit(instance, sweep, root, args.partition or (), light=args.light,
                               on_progress=lambda line: print(line, flush=True))  # fmt: skip
    cells = set(outcome.recomputed)
    with get_engine(database_url()).connect() as conn:
        verdicts = [v for v in read_verdicts(conn, cfg.run_id) if f"{v['crypto']}|{v['fold_id']}" in cells]
    by_cell: dict[str, list[dict]] = {}
    for verdict in verdicts:
        by_cell.setdefault(f"{verdict['crypto']} {verdict['fold_id']}", []).append(verdict)
    bad = 0
    for cell, found in by_cell.items():
        state = audit_state(found)
        print(f"\n== {cell}: audit {describe_state(state)} ==")
        for v in found:
            subject = (
                v["variant"] + (f"@{v['feature_set']}" if v["feature_set"] not in (None, "base") else "")
                if v["variant"]
                else "cell"
            )
            print(f"  {v['status']:<21} {v['diagnostic']:<24} {subject:<22} {v['summary']}")
            bad += v["status"] not in PASSING and v["status"] not in ("WARN", "SKIPPED")
    for cell, assets in outcome.recomputed.items():
        if assets:
            print(
                f"  recomputed in {cell} (missing or stale): {', '.join(a.split('/', 1)[1] for a in assets)}"
            )
    for name, error in outcome.failures.items():
        print(f"  FAILED {name}: {error}")
    print(f"\n{len(by_cell)} cells audited in {time.perf_counter() - started:.1f} s; verdicts in "
          f"diagnostic_verdicts ({redact(database_url())})")  # fmt: skip
    return 0 if not bad and not outcome.failures else 1


def _chosen_sweeps(args: argparse.Namespace) -> dict[str, SweepConfig]:
    """The sweep of `--config FILE`, else the served sweep `--sweep` names, else every served sweep. Served:
    the sweeps directory, and every file `cvn sweep --config FILE` ran in this home."""
    if getattr(args, "config", None):
        config = load_config(args.config)
        return {config.name: config}
    served = {s.name: s.config for s in _served_sweeps()}
    name = getattr(args, "sweep", None)
    if name and name not in served:
        raise CvnError(
            f"--sweep {name}: no such sweep is served in {cvn_home()}; served: {', '.join(sorted(served))}. "
            "Pass --config FILE, or --home DIR where it was run"
        )
    return {n: served[n] for n in ([name] if name else sorted(served))}


def cmd_report(args: argparse.Namespace) -> int:
    """The proxy-vs-economy report of served sweeps: its tables printed, its page written as HTML."""
    import dagster as dg

    root = _prepare_home(args.home)
    out_dir = Path(args.out) if args.out else root / "reports"
    with dg.DagsterInstance.get() as instance:
        for config in _chosen_sweeps(args).values():
            print_report(config, instance, out_dir, tables=True)
    return 0


def print_report(config: SweepConfig, instance: DagsterInstance, out_dir: Path, *, tables: bool) -> None:
    """The sweep's verdict per cost (and its tables), and the page written under `out_dir`."""
    from cvn_assets.core.proxy_economy import ALL_VARIANTS
    from cvn_assets.definitions import build_definitions
    from cvn_assets.defs.report_assets import last_cell
    from cvn_assets.defs.sweep import Sweep
    from cvn_assets.diagnostics.verdicts import audit_overview
    from cvn_assets.report.page import build_page, render_html
    from cvn_assets.store.verdicts import read_verdicts

    url = database_url()
    upgrade(url)
    results, baselines = sweep_rows(get_engine(url), config.run_id)
    print(f"\n== sweep {config.name} ({config.run_id}): proxy vs economy ==")
    if results.empty:
        print(f"no result rows for run_id {config.run_id} in {redact(url)}")
        return
    cell = last_cell(instance, build_definitions([config]), Sweep.of(config))
    with get_engine(url).connect() as conn:
        audits = audit_overview(read_verdicts(conn, config.run_id), config.name)
    page = build_page(config.name, config.run_id, results, baselines, cell, seed=config.seed, audits=audits)
    print("\n".join(page.verdicts + page.notes + page.audits))
    if tables:
        shown = page.report.tables()
        pooled = shown["correlations"]["variant"] == ALL_VARIANTS  # per variant: on the page
        shown["correlations"] = shown["correlations"][pooled]
        with pd.option_context("display.width", 250, "display.max_columns", 30, "display.max_rows", 500,
                               "display.float_format", "{:.4g}".format):  # fmt: skip
            for title, frame in shown.items():
                print(f"\n-- {title.replace('_', ' ')} --")
                print(frame.to_string(index=False))
            if not page.audit_table.empty:
                print("\n-- diagnostics (verdicts by status) --")
                print(page.audit_table.to_string(index=False))
    out_dir.mkdir(parents=True, exist_ok=True)
    page_path = out_dir / f"{config.name}_proxy_economy.html"
    page_path.write_text(render_html(page))
    print(f"report page (tables, per-variant correlations, plots): {page_path}")


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    _prepare_home(args.home)
    url = database_url()
    upgrade(url)
    print(f"results database at head: {redact(url)}")
    return 0


def _results_engine(args: argparse.Namespace) -> sa.Engine:
    """The results database, migrated to head: CVN_DATABASE_URL, else the local SQLite under --home."""
    _prepare_home(args.home)
    url = database_url()
    upgrade(url)
    return get_engine(url)


def _hp_engine(args: argparse.Namespace) -> sa.Engine:
    return _results_engine(args)


def cmd_hp_set(args: argparse.Namespace) -> int:
    from cvn_assets.hyperparams.resolver import validate_assignment
    from cvn_assets.store.hp_config import set_value

    validate_assignment(args.key, args.value)
    changed = set_value(_hp_engine(args), args.key, args.value, args.by)
    print(f"{args.key} = {args.value}" + ("" if changed else "  (unchanged)"))
    return 0


def cmd_hp_get(args: argparse.Namespace) -> int:
    from cvn_assets.store.hp_config import get_value, history

    if args.key in os.environ:
        print(f"{args.key} = {os.environ[args.key]}  (from the environment, which wins over the table)")
    with _hp_engine(args).connect() as conn:
        value = get_value(conn, args.key)
        if value is None and args.key not in os.environ:
            print(f"{args.key} is not set", file=sys.stderr)
            return 1
        if value is not None:
            print(f"{args.key} = {value}  (ftf_config)")
        for old, new, who, when in history(conn, args.key):
            print(f"  {when:%Y-%m-%d %H:%M:%S}  {who}: {old if old is not None else '<unset>'} -> {new}")
    return 0


def cmd_hp_list(args: argparse.Namespace) -> int:
    from cvn_assets.store.hp_config import list_values

    with _hp_engine(args).connect() as conn:
        rows = list_values(conn, args.prefix)
    for key, value, who, when in rows:
        print(f"{key} = {value}    ({who}, {when:%Y-%m-%d %H:%M})")
    print(f"{len(rows)} keys", file=sys.stderr)
    return 0


def _seed_actions(engine: sa.Engine, force: bool) -> list[SeedAction]:
    """What seeding would do for every registered model the values file covers, on every timeframe."""
    values = load_values()
    models = [m for m in hyperparameter_owners() if m in values]
    for model in sorted(set(hyperparameter_owners()) - set(models)):
        print(f"warning: no values for registered '{model}' in the values file; its keys are not seeded",
              file=sys.stderr)  # fmt: skip
    with engine.connect() as conn:
        return plan_seed(conn, seed_values(models), force=force)


def cmd_hp_seed(args: argparse.Namespace) -> int:
    engine = _hp_engine(args)
    actions = _seed_actions(engine, args.force)
    counts: dict[str, int] = {}
    for a in actions:
        counts[a.action] = counts.get(a.action, 0) + 1
        flag = "  [TODO_PER_TF]" if a.seed.replicated else ""
        if a.action == "conflict":
            print(f"warning: skip     {a.seed.key}: ftf_config has {a.existing}, the values file {a.seed.value} "
                  "(--force overwrites)", file=sys.stderr)  # fmt: skip
        elif a.action != "same":
            print(f"{a.action:9s} {a.seed.key} = {a.seed.value}{flag}")
    if args.apply:
        written = apply_seed(engine, actions)
        print(f"applied: {written} keys written", end="")
    else:
        print("dry run: nothing written (--apply writes)", end="")
    print(f"; {', '.join(f'{n} {k}' for k, n in sorted(counts.items()))}; "
          f"{sum(a.seed.replicated for a in actions)} values replicated across timeframes [TODO_PER_TF]")  # fmt: skip
    return 0


def cmd_hp_audit(args: argparse.Namespace) -> int:
    """The same coverage the `hyperparameters_complete` asset check reports before training."""
    from cvn_assets import steps

    cover, description = steps.hyperparameter_coverage(load_config(args.config), Resolver(_hp_engine(args)))
    print(description)
    for key in cover.not_set:
        print(f"  missing {key}")
    return 0 if cover.complete else 1


def cmd_fills_import(args: argparse.Namespace) -> int:
    """Load realized fills, print the realized round trip per crypto and month, relabel the rows covered."""
    from cvn_assets.core.fills import read_fills_file
    from cvn_assets.store.fills import import_fills

    parsed = read_fills_file(args.file)  # the whole file is validated before the database is touched
    engine = _results_engine(args)
    done = import_fills(engine, parsed)
    repeated = f" ({parsed.repeated} repeating an earlier row exactly, read once)" if parsed.repeated else ""
    print(f"{done.source}: {done.rows_read} rows, {done.fills} fills{repeated}: {done.new} new, "
          f"{done.already_stored} already stored, in {redact(database_url())}")  # fmt: skip
    print("\nrealized round trip per crypto and calendar month (UTC): fees only, the notional-weighted mean "
          "per side x 2")  # fmt: skip
    table = pd.DataFrame(
        [(m.crypto, m.month, m.n_fills, m.notional_quote, m.fee_quote, m.per_side_bps, m.round_trip_bps)
         for m in done.monthly],
        columns=["crypto", "month", "fills", "notional_quote", "fee_quote", "per_side_bps", "round_trip_bps"],
    )  # fmt: skip
    with pd.option_context("display.width", 200, "display.float_format", "{:,.4f}".format):
        print(table.to_string(index=False))
    r, b = "finetune_results", "finetune_baselines"
    print(
        f"\ncost basis: {done.relabelled[r]} result rows and {done.relabelled[b]} baseline rows relabelled; "
        f"{done.realized[r]} result rows and {done.realized[b]} baseline rows (all runs) are now "
        "'realized_fills', with realized_cost_bps beside their assumed cost; their economics are unchanged "
        "(computed at the assumed cost)"
    )
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    """The Dagster UI (webserver and daemon) over this home's instance, stopped cleanly by Ctrl-C."""
    from cvn_assets.ui import run_ui

    root = _prepare_home(args.home)
    os.environ["CVN_HOME"] = str(root)  # the UI runs from the instance's folder: no path may be relative
    for name in (SWEEPS_DIR_ENV, EXTRA_SWEEPS_ENV):
        if os.environ.get(name):
            os.environ[name] = os.pathsep.join(
                str(Path(p).resolve()) for p in os.environ[name].split(os.pathsep)
            )
    location = location_from_env(root / "artifacts")
    # Artifacts on S3: the bucket's reports/ prefix is served by whatever CVN_REPORTS_URL names.
    reports = None if location.is_s3 else Path(location.root) / REPORTS_PREFIX
    return run_ui(Path(os.environ["DAGSTER_HOME"]), args.host, args.port, reports)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cvn", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, handler, help_text: str) -> argparse.ArgumentParser:  # noqa: ANN001
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--config", help="sweep config YAML (default: the packaged demo config)")
        p.add_argument("--home", help="local state directory (default: $CVN_HOME or ./.cvn_home)")
        p.set_defaults(handler=handler)
        return p

    add("sweep", cmd_sweep, "materialize every partition of a sweep and print variants vs baselines")
    add("demo", cmd_sweep, "the default sweep on the embedded default (same as `sweep` without --config)")
    add("plan", cmd_plan, "print the fold plan derived from the data")
    summary = add("summary", cmd_summary, "print variants vs baselines per cost for a sweep already run")
    summary.add_argument("--sweep", help="a served sweep, by name (instead of --config)")
    perf = sub.add_parser(
        "perf", help="where the time goes: p50/p95/max per asset and model, from the event log"
    )
    perf.add_argument("--sweep", help="one served sweep (default: every one)")
    perf.add_argument("--config", help="the sweep of this config file")
    perf.add_argument("--since", type=_window, default=DEFAULT_PERF_WINDOW, help=f"how far back, e.g. 7d, 12h "
                      f"(default: {DEFAULT_PERF_WINDOW}, the sweep_perf asset's)")  # fmt: skip
    perf.add_argument("--home")
    perf.set_defaults(handler=cmd_perf)
    audit = add(
        "audit", cmd_audit, "re-audit cells with every diagnostic, reusing the captured fold where current"
    )
    audit.add_argument("--sweep", help="a served sweep, by name (instead of --config)")
    audit.add_argument(
        "--partition",
        action="append",
        metavar="KEY",
        help="a crypto x fold key (SYNA|f00_2021-04-22, or SYNA|f00); repeat it; default: every cell",
    )
    audit.add_argument(
        "--light",
        action="store_true",
        help="skip the reproducibility anchor (its verdicts say SKIPPED: the audit is downgraded)",
    )
    ui = sub.add_parser("ui", help="the Dagster UI and daemon over this home's instance (Ctrl-C stops both)")
    ui.add_argument("--home")
    ui.add_argument("--host", default="127.0.0.1")
    ui.add_argument("--port", type=int, default=3000)
    ui.set_defaults(handler=cmd_ui)
    report = sub.add_parser(
        "report", help="the proxy-vs-economy report: does the validation metric predict OOS money?"
    )
    report.add_argument("--sweep", help="one served sweep (default: every one)")
    report.add_argument("--config", help="the sweep of this config file")
    report.add_argument("--out", help="directory for the HTML page (default: $CVN_HOME/reports)")
    report.add_argument("--home")
    report.set_defaults(handler=cmd_report)
    db = sub.add_parser("db", help="results database")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    up = db_sub.add_parser(
        "upgrade", help="run alembic migrations to head (CVN_DATABASE_URL or the local SQLite)"
    )
    up.add_argument("--home")
    up.set_defaults(handler=cmd_db_upgrade)

    fills = sub.add_parser("fills", help="realized fills in the results database")
    fills_sub = fills.add_subparsers(dest="fills_command", required=True)
    fills_import = fills_sub.add_parser(
        "import",
        help="load a fills CSV (timestamp,symbol,side,price,quantity,fee,fee_currency), print the realized "
        "round trip per crypto and month, and label the result rows the fills cover 'realized_fills'",
    )
    fills_import.add_argument("file", help="the fills CSV (plain or .gz)")
    fills_import.add_argument(
        "--home", help="local state directory, whose SQLite is used unless CVN_DATABASE_URL is set"
    )
    fills_import.set_defaults(handler=cmd_fills_import)

    hp = sub.add_parser("hp", help="hyperparameter values and ranges in the ftf_config table")
    hp_sub = hp.add_subparsers(dest="hp_command", required=True)
    hp_set = hp_sub.add_parser("set", help="set a CVN_HPO_* key (validated; every change is kept in history)")
    hp_set.add_argument("key")
    hp_set.add_argument("value")
    hp_set.add_argument("--by", default=os.environ.get("USER", "cvn"), help="who makes the change")
    hp_set.set_defaults(handler=cmd_hp_set)
    hp_get = hp_sub.add_parser("get", help="show a key's value and its history")
    hp_get.add_argument("key")
    hp_get.set_defaults(handler=cmd_hp_get)
    hp_list = hp_sub.add_parser("list", help="list keys (optionally under a prefix such as CVN_HPO_XGB_1H)")
    hp_list.add_argument("prefix", nargs="?", default="")
    hp_list.set_defaults(handler=cmd_hp_list)
    hp_seed = hp_sub.add_parser(
        "seed", help="write the committed defaults and ranges (values.yaml) into ftf_config"
    )
    mode = hp_seed.add_mutually_exclusive_group(required=True)
    mode.add_argument("--dry-run", action="store_true", help="show what would change")
    mode.add_argument("--apply", action="store_true", help="write it")
    hp_seed.add_argument("--force", action="store_true", help="overwrite keys whose value differs")
    hp_seed.set_defaults(handler=cmd_hp_seed)
    hp_audit = hp_sub.add_parser(
        "audit", help="share of required keys present for a sweep's models and timeframe"
    )
    hp_audit.add_argument("--config", help="sweep config (default: the packaged demo config)")
    hp_audit.set_defaults(handler=cmd_hp_audit)
    for p in (hp_set, hp_get, hp_list, hp_seed, hp_audit):
        p.add_argument("--home")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except CvnError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except sa.exc.OperationalError as exc:  # the results database is down or refuses us: say so in one line
        print(f"error: {store_unavailable(database_url(), exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
