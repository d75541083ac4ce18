"""Assembles the code location's Definitions: one asset graph per sweep config, from configuration only.

`dagster dev` / `workspace.yaml` load the module-level `defs`: every sweep config in CVN_SWEEPS_DIR (the
packaged demo sweep when unset) plus any file in CVN_SWEEP_FILES. Each sweep's assets, checks, jobs and
sensor live under its own name. No bar file or S3 object is opened here: folds are added at run time
(`defs/folds.py`) as the data covers them.
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from pathlib import Path

import dagster as dg

from cvn_assets import steps
from cvn_assets.core.config import InvalidSweepFile, SweepConfig, scan_sweeps
from cvn_assets.core.errors import CvnError
from cvn_assets.defs.alerts import build_alerts_sensor
from cvn_assets.defs.automation import build_automation_sensor, with_automation
from cvn_assets.defs.checks import build_checks, results_store_spec
from cvn_assets.defs.data_assets import build_data_assets
from cvn_assets.defs.diagnostic_assets import build_diagnostic_assets
from cvn_assets.defs.economics_assets import build_economics_assets
from cvn_assets.defs.folds import build_fold_sensor
from cvn_assets.defs.hyperparam_assets import build_hyperparameter_assets
from cvn_assets.defs.invalid_sweeps import invalid_sweep_definitions
from cvn_assets.defs.io_manager import ArtifactStore
from cvn_assets.defs.jobs import build_jobs
from cvn_assets.defs.model_assets import build_model_assets
from cvn_assets.defs.perf import build_perf_asset
from cvn_assets.defs.report_assets import build_report_asset
from cvn_assets.defs.resources import ReportFiles, ResultsStore, results_store_from_env
from cvn_assets.defs.sweep import Sweep
from cvn_assets.defs.tracking import tracking_from_env
from cvn_assets.store.engine import cvn_home

log = logging.getLogger(__name__)


def sweep_definitions(sweep: Sweep) -> dg.Definitions:
    """One sweep's graph: assets, checks, jobs, the new-folds sensor, the scheduled refresh, the sweep's
    timings (`sweep_perf`) and its proxy-vs-economy report, all under the sweep's name."""
    hp_asset, *hp_checks = build_hyperparameter_assets(sweep)
    automated = with_automation(
        sweep,
        [
            *build_data_assets(sweep),
            hp_asset,
            *build_model_assets(sweep),
            *build_economics_assets(sweep),
            results_store_spec(sweep),
        ],
    )
    # Every asset names its sweep: the run coordinator tags a run of the implicit asset job (a Materialize
    # from an asset page, an asset backfill) from these, as the sweep's own jobs tag theirs.
    return dg.Definitions(
        assets=list(
            dg.map_asset_specs(
                lambda spec: spec.merge_attributes(tags=sweep.run_tags()),
                [
                    *automated,
                    *build_diagnostic_assets(sweep),
                    build_perf_asset(sweep),
                    build_report_asset(sweep),
                ],
            )
        ),
        asset_checks=[*hp_checks, *build_checks(sweep)],
        jobs=build_jobs(sweep),
        sensors=[build_fold_sensor(sweep), build_automation_sensor(sweep)],
    )


class SweepDefinitionError(CvnError):
    """Dagster rejects a sweep's definitions; the message names the sweep."""


def checked_sweep_definitions(sweep: Sweep, resources: dict[str, object]) -> dg.Definitions:
    """The sweep's graph, resolved on its own as the code location would resolve it: whatever our factories
    or Dagster reject fails here as a CvnError naming the sweep (and the key, where a key is at fault)."""
    try:
        steps.model_names(sweep.config)  # the config keys first: they name what to fix
        steps.ensemble_names(sweep.config)
        steps.feature_set_names(sweep.config)
        steps.diagnostic_names(sweep.config)
        part = sweep_definitions(sweep)
        dg.Definitions.merge(part, dg.Definitions(resources=resources)).get_repository_def()
    except dg.DagsterError as exc:
        first = " ".join(str(exc).split())
        raise SweepDefinitionError(f"sweep {sweep.name}: Dagster rejects its definitions: {first}") from None
    return part


def validate_sweep(config: SweepConfig) -> None:
    """Everything loading the sweep in the code location checks, without serving it (`cvn plan`, `cvn
    sweep`): registered models, ensembles, cron and every bound; raises CvnError naming the key."""
    checked_sweep_definitions(Sweep.of(config), _resources(Path(tempfile.gettempdir()), None))


def _resources(artifacts: Path, results_store: ResultsStore | None) -> dict[str, object]:
    return {
        "io_manager": ArtifactStore(base_dir=str(artifacts)),
        "report_files": ReportFiles(base_dir=str(artifacts)),
        "results_store": results_store or results_store_from_env(),
        "mlflow": tracking_from_env(),
    }


def build_definitions(
    configs: list[SweepConfig],
    *,
    artifacts_dir: Path | None = None,
    results_store: ResultsStore | None = None,
    invalid: list[InvalidSweepFile] | None = None,
    sources: dict[str, Path] | None = None,
) -> dg.Definitions:
    """Every sweep's graph, and an entry per sweep file that cannot be served (`invalid`, and any config
    whose definitions fail, named by its file in `sources`): one bad file never takes the other sweeps down."""
    resources = _resources(artifacts_dir or cvn_home() / "artifacts", results_store)
    invalid = list(invalid or [])
    sweeps, parts = [], []
    for config in configs:
        sweep = Sweep.of(config)
        try:
            parts.append(checked_sweep_definitions(sweep, resources))
        except Exception as exc:  # one sweep's failure, even a bug's, must not take the others down
            path = (sources or {}).get(sweep.name, Path(f"<sweep {sweep.name}>"))
            if isinstance(exc, CvnError):
                why = " ".join(str(exc).split())
            else:
                log.exception("building the definitions of sweep %s failed", sweep.name)
                why = f"building its definitions failed ({type(exc).__name__}: {exc}); a bug: see the code server's log"
            invalid.append(InvalidSweepFile(path, f"{path}: {why}", sweep.name))
            continue
        sweeps.append(sweep)
    return dg.Definitions.merge(
        *parts,
        *(invalid_sweep_definitions(entry) for entry in invalid),
        dg.Definitions(
            sensors=[build_alerts_sensor(sweeps)],
            resources=resources,
            # One process per run, every step in it: the model libraries are imported once per run, not
            # once per step (the default multiprocess executor starts an interpreter for each step).
            executor=dg.in_process_executor,
        ),
    )


# Partitioned asset checks (a check result per crypto x fold) are a preview feature of Dagster 1.13; the
# checks here use them on purpose, so the warning would only be noise in every process that loads them.
warnings.filterwarnings(
    "ignore", message=".*partitions_def on an AssetCheckSpec.*", category=dg.PreviewWarning
)
# Likewise the scheduled refresh's own batching condition, which needs the code server (a beta parameter).
warnings.filterwarnings("ignore", message=".*use_user_code_server.*", category=dg.BetaWarning)


@dg.definitions
def defs() -> dg.Definitions:
    sweep_files, invalid = scan_sweeps()
    return build_definitions(
        [s.config for s in sweep_files], invalid=invalid, sources={s.name: s.path for s in sweep_files}
    )
