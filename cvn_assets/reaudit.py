"""`cvn audit`: re-audit cells of a sweep the way the UI launches a run, through the webserver's GraphQL
schema on the Dagster instance (the run queue, single flight per partition and run monitoring apply).

For each cell, Dagster's staleness (`staleStatusByPartition`, what the UI shows) says which captured
assets (feature sets, fold dataset, hyperparameters, models) are missing or stale: the cell's run selects
those with the diagnostics, so a current capture is not touched and a changed one is computed again,
exactly what changed. One run per cell, launched directly (a backfill would wait for the backfill daemon's
next 30 s loop); the runs carry `cvn/audit` (full or light), and the verdicts are read back from the
results database.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
from dagster_graphql.cli import execute_query

from cvn_assets.core.errors import CvnError
from cvn_assets.defs.capture import AUDIT_TAG, FULL, LIGHT
from cvn_assets.defs.diagnostic_assets import VERDICT_CHECK, capture_keys, subjects
from cvn_assets.defs.keys import split_partition_key
from cvn_assets.defs.sweep import Sweep
from cvn_assets.launch import (
    LAUNCH_RUN,
    LOCATION,
    REPOSITORY,
    LaunchError,
    Progress,
    SweepLauncher,
    SweepOutcome,
    running_daemon,
)

STALE_STATUS = """
query StaleStatus($keys: [AssetKeyInput!], $partitions: [String!]) {
  assetNodes(assetKeys: $keys) { assetKey { path } staleStatusByPartition(partitions: $partitions) }
}
"""
FRESH = "FRESH"


@dataclass
class AuditOutcome(SweepOutcome):
    recomputed: dict[str, list[str]] = field(default_factory=dict)  # partition -> capture assets it selected


def audit_partitions(instance: dg.DagsterInstance, sweep: Sweep, wanted: Sequence[str] = ()) -> list[str]:
    """The crypto x fold keys to audit: every partition of the sweep, or those `wanted` names (a key, or
    crypto|fold label such as SYNA|f00); an unknown one fails naming it and what exists."""
    folds = instance.get_dynamic_partitions(sweep.keys.folds_partitions.name)
    every = [f"{crypto}|{fold}" for crypto in sweep.config.cryptos for fold in folds]
    if not wanted:
        return every
    chosen = []
    for key in wanted:
        crypto, _, fold = key.partition("|")
        match = [
            p
            for p in every
            if p == key or (p.startswith(f"{crypto}|") and p.split("|")[1].split("_")[0] == fold)
        ]
        if not match:
            shown = ", ".join(every[:4]) + (" ..." if len(every) > 4 else "") if every else "none yet"
            raise CvnError(
                f"--partition {key}: sweep {sweep.name} has no such crypto x fold partition; it has "
                f"{shown} (a fold exists once `cvn sweep` or the new-folds sensor added it)"
            )
        chosen += [m for m in match if m not in chosen]
    return chosen


def stale_capture(
    launcher: SweepLauncher, sweep: Sweep, partitions: list[str]
) -> dict[str, list[dg.AssetKey]]:
    """partition -> the captured assets Dagster calls missing or stale there."""
    keys = capture_keys(sweep)
    result = execute_query(
        launcher.workspace, STALE_STATUS, {"keys": [{"path": k.path} for k in keys], "partitions": partitions}
    )
    nodes = (result.get("data") or {}).get("assetNodes")
    if nodes is None:
        raise LaunchError(
            f"could not read the staleness of sweep {sweep.name}'s capture: {result.get('errors')}"
        )
    stale: dict[str, list[dg.AssetKey]] = {p: [] for p in partitions}
    for node in nodes:
        key = dg.AssetKey(node["assetKey"]["path"])
        for partition, status in zip(partitions, node["staleStatusByPartition"], strict=True):
            if status != FRESH:
                stale[partition].append(key)
    return {p: [k for k in keys if k in found] for p, found in stale.items()}  # in the graph's order


def launch_cell(launcher: SweepLauncher, job: str, partition: str, assets: list[dg.AssetKey],
                checks: list[dg.AssetCheckKey], mode: str) -> str:  # fmt: skip
    """One audit run of one cell, as the UI's Materialize launches a partition's run."""
    crypto, fold = split_partition_key(partition)
    tags = {**launcher.sweep.run_tags(), AUDIT_TAG: mode, "dagster/partition": partition,
            "dagster/partition/crypto": crypto, "dagster/partition/fold": fold}  # fmt: skip
    params = {
        "selector": {
            "repositoryLocationName": LOCATION,
            "repositoryName": REPOSITORY,
            "jobName": job,
            "assetSelection": [{"path": k.path} for k in assets],
            "assetCheckSelection": [{"assetKey": {"path": c.asset_key.path}, "name": c.name} for c in checks],
        },
        "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in tags.items()]},
    }
    launched = launcher._mutate(LAUNCH_RUN, {"executionParams": params}, "launchRun", "LaunchRunSuccess",
                                f"an audit of {partition}")  # fmt: skip
    return launched["run"]["runId"]


def launch_audit(
    instance: dg.DagsterInstance,
    sweep: Sweep,
    home: Path,
    partitions: Sequence[str] = (),
    *,
    light: bool = False,
    on_progress: Progress = print,
) -> AuditOutcome:
    """Audit `partitions` (default: every one), each in one run that captures what is missing or stale."""
    keys = sweep.keys
    diagnostics = list(subjects(sweep))
    if not diagnostics:
        raise CvnError(f"sweep {sweep.name} runs no diagnostic (diagnostics.run is empty)")
    mode = LIGHT if light else FULL
    job = keys.light_diagnostics_job if light else keys.diagnostics_job
    outcome = AuditOutcome()
    cells = audit_partitions(instance, sweep, partitions)
    if not cells:
        raise CvnError(f"sweep {sweep.name} has no crypto x fold partition yet: run `cvn sweep` first")
    with running_daemon(instance, home) as daemon:
        launcher = SweepLauncher(instance, sweep, on_progress, daemon)
        try:
            stale = stale_capture(launcher, sweep, cells)
            runs = []
            for cell in cells:
                outcome.recomputed[cell] = [k.to_user_string() for k in stale[cell]]
                checks = [dg.AssetCheckKey(k, VERDICT_CHECK) for k in diagnostics]
                if keys.hyperparameters in stale[cell]:
                    checks.append(keys.coverage_check)
                runs.append(launch_cell(launcher, job, cell, [*stale[cell], *diagnostics], checks, mode))
            recomputing = sum(bool(v) for v in outcome.recomputed.values())
            on_progress(f"  {len(cells)} cells, {mode} audit; {recomputing} recompute part of their capture "
                        f"(missing or stale), {len(cells) - recomputing} reuse it whole")  # fmt: skip
            launcher.outcome(launcher.wait(None, "audit", len(runs), also=runs), outcome)
        finally:
            launcher.close()
    return outcome
