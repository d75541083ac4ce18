"""Kubernetes resources for a run, chosen from its working-set estimate (`core/working_set.py`).

A run's memory is never set by hand: the estimate of its partition picks the smallest resource profile
whose memory limit holds the estimate plus headroom, and the run (and, with the `k8s_job_executor`, each
step) carries that profile as its `dagster-k8s/config` tag. A partition whose estimate does not fit the
largest profile is refused before it starts, naming the estimate and the profile to add.

Profiles are configuration: `CVN_K8S_PROFILES` holds JSON (in the environment of the daemon and the
webserver, which launch runs), e.g.

    {"headroom": 0.25,
     "profiles": [{"name": "STANDARD", "requests": {"cpu": "1", "memory": "8Gi"}, "limits": {"memory": "8Gi"}},
                  {"name": "HEAVY", "requests": {"cpu": "2", "memory": "24Gi"}, "limits": {"memory": "24Gi"}}]}

The estimate's inputs come from the sweep config and what the instance recorded: the fold's windows
from its key (the key and the config rebuild the fold), the crypto's bars from its latest `ohlcv`
materialization (first and last bar). No bar is read here.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd

from cvn_assets import steps
from cvn_assets.core.config import scan_sweeps
from cvn_assets.core.errors import ConfigError, CvnError
from cvn_assets.core.working_set import (
    GIB,
    WorkingSet,
    bars_shape,
    estimate_working_set,
    fold_shape,
    span_bars,
)
from cvn_assets.defs.data_assets import FIRST_BAR, LAST_BAR
from cvn_assets.defs.keys import split_partition_key
from cvn_assets.defs.sweep import Sweep, sweep_of_run

PROFILES_ENV = "CVN_K8S_PROFILES"
# dagster-k8s's USER_DEFINED_K8S_CONFIG_KEY, spelled here so the embedded default never imports the
# Kubernetes client (a test holds the two equal).
K8S_CONFIG_TAG = "dagster-k8s/config"
PARTITION_TAG = "dagster/partition"
# Set beside the resources by the launcher: informational, and the mark that the resources were chosen
# here (a run re-executed with them is sized again), not by a person.
PROFILE_TAG = "cvn/k8s_profile"
WORKING_SET_TAG = "cvn/working_set_gib"
# On the runs of a job whose steps run in pods of their own (`defs/executors.py`: `executor_tags`): the
# run pod then gets the smallest profile, and each step pod the partition's, from these two tags.
EXECUTOR_TAG = "cvn/executor"
STEP_PODS = "k8s_job"
STEP_K8S_CONFIG_TAG = "cvn/step_k8s_config"
STEP_PROFILE_TAG = "cvn/k8s_step_profile"
DEFAULT_HEADROOM = 0.25  # the estimate's target accuracy: a run 25% above it still fits
# Series an ohlcv run loads: its crypto's (a crypto x fold run loads what its feature sets require too).
ASSETS_LOADED = 1

_QUANTITY = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(Ki|Mi|Gi|Ti|Pi|k|K|M|G|T|P)?\s*$")
_UNITS = {
    None: 1,
    **{s: 1024**i for i, s in enumerate(("Ki", "Mi", "Gi", "Ti", "Pi"), 1)},
    **{s: 1000**i for i, s in enumerate(("k", "M", "G", "T", "P"), 1)},
    "K": 1000,
}


class SizingError(CvnError):
    """A run cannot be sized (its partition does not fit any profile, or the profiles are invalid)."""


def memory_bytes(quantity: str) -> int:
    """A Kubernetes memory quantity ("8Gi", "512Mi", "8G", "1000000") in bytes."""
    match = _QUANTITY.match(str(quantity))
    if not match:
        raise ValueError(f"'{quantity}' is not a Kubernetes memory quantity like 8Gi or 512Mi")
    return int(float(match.group(1)) * _UNITS[match.group(2)])


@dataclass(frozen=True)
class ResourceProfile:
    """Requests and limits of one pod size; `limits.memory` is what the estimate must fit under."""

    name: str
    requests: Mapping[str, str]
    limits: Mapping[str, str]

    @property
    def memory_limit(self) -> int:
        return memory_bytes(self.limits["memory"])

    def k8s_config(self) -> dict[str, Any]:
        """The `dagster-k8s/config` value that gives a pod this profile's resources."""
        resources = {"requests": dict(self.requests), "limits": dict(self.limits)}
        return {"container_config": {"resources": resources}}


STANDARD = ResourceProfile("STANDARD", {"cpu": "1", "memory": "8Gi"}, {"memory": "8Gi"})
HEAVY = ResourceProfile("HEAVY", {"cpu": "2", "memory": "24Gi"}, {"memory": "24Gi"})


@dataclass(frozen=True)
class Profiles:
    """The profiles, smallest memory limit first, and the headroom the estimate gets."""

    profiles: tuple[ResourceProfile, ...] = (STANDARD, HEAVY)
    headroom: float = DEFAULT_HEADROOM

    def __post_init__(self) -> None:
        ordered = tuple(sorted(self.profiles, key=lambda p: p.memory_limit))
        object.__setattr__(self, "profiles", ordered)

    def choose(self, working_set: WorkingSet, what: str) -> ResourceProfile:
        """The smallest profile whose memory limit holds the estimate with headroom; `what` names the
        partition in the refusal."""
        needed = working_set.total * (1 + self.headroom)
        for profile in self.profiles:
            if profile.memory_limit >= needed:
                return profile
        largest = self.profiles[-1]
        raise SizingError(
            f"{what}: estimated working set {working_set.total_gib:.1f} GiB, "
            f"{needed / GIB:.1f} GiB with {self.headroom:.0%} headroom, exceeds the largest profile "
            f"{largest.name} ({largest.limits['memory']}); add a profile with a memory limit of at least "
            f"{_whole_gib(needed)}Gi to {PROFILES_ENV}"
        )


def _whole_gib(n_bytes: float) -> int:
    return int(-(-n_bytes // GIB))  # rounded up


def _profile(entry: Any, index: int) -> ResourceProfile:
    where = f"{PROFILES_ENV} profiles[{index}]"
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        raise SizingError(f"{where}: expected an object with a name, requests and limits")
    requests, limits = entry.get("requests", {}), entry.get("limits", {})
    if not isinstance(requests, dict) or not isinstance(limits, dict) or "memory" not in limits:
        raise SizingError(f"{where} ({entry['name']}): needs limits.memory (and may set requests)")
    for kind, values in (("requests", requests), ("limits", limits)):
        if "memory" in values:
            try:
                memory_bytes(values["memory"])
            except ValueError as exc:
                raise SizingError(f"{where} ({entry['name']}): {kind}.memory: {exc}") from None
    return ResourceProfile(
        entry["name"], {k: str(v) for k, v in requests.items()}, {k: str(v) for k, v in limits.items()}
    )


def profiles_from_env(environ: Mapping[str, str] | None = None) -> Profiles:
    """The profiles of `CVN_K8S_PROFILES` (JSON, see the module's docstring); STANDARD and HEAVY when
    unset. A malformed value fails naming the variable and the entry."""
    raw = (os.environ if environ is None else environ).get(PROFILES_ENV, "").strip()
    if not raw:
        return Profiles()
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise SizingError(f"{PROFILES_ENV} is not valid JSON: {exc}") from None
    if not isinstance(value, dict) or not isinstance(value.get("profiles"), list) or not value["profiles"]:
        raise SizingError(
            f'{PROFILES_ENV}: expected {{"profiles": [...], "headroom": 0.25}} with one profile or more'
        )
    headroom = value.get("headroom", DEFAULT_HEADROOM)
    if isinstance(headroom, bool) or not isinstance(headroom, int | float) or headroom < 0:
        raise SizingError(f"{PROFILES_ENV}: headroom must be a number >= 0, got {headroom!r}")
    return Profiles(tuple(_profile(p, i) for i, p in enumerate(value["profiles"])), float(headroom))


@dataclass(frozen=True)
class RunSizing:
    """A run's estimate, the profile its partition needs, and the profile of the run's own pod: the same,
    unless its steps run in pods of their own (then the run pod only orchestrates: the smallest)."""

    what: str  # "sweep demo partition BTCUSD|f03_2019-09-24": how errors and logs name the run
    working_set: WorkingSet
    profile: ResourceProfile  # what the partition's work needs: the run pod's, or each step pod's
    run_profile: ResourceProfile
    steps_in_pods: bool = False

    @property
    def k8s_config(self) -> dict[str, Any]:
        """The `dagster-k8s/config` of the pods that do the partition's work."""
        return self.profile.k8s_config()

    def tags(self) -> dict[str, str]:
        """The tags the launcher adds to the run."""
        tags = {
            K8S_CONFIG_TAG: json.dumps(self.run_profile.k8s_config(), sort_keys=True),
            PROFILE_TAG: self.run_profile.name,
            WORKING_SET_TAG: f"{self.working_set.total_gib:.2f}",
        }
        if self.steps_in_pods:
            tags |= {
                STEP_K8S_CONFIG_TAG: json.dumps(self.k8s_config, sort_keys=True),
                STEP_PROFILE_TAG: self.profile.name,
            }
        return tags


def recorded_bars(instance: dg.DagsterInstance, sweep: Sweep, crypto: str) -> int | None:
    """The bars of the crypto's latest `ohlcv` materialization (from its first and last bar), None when
    it has none yet. What the features step of its folds will load."""
    where = dg.AssetRecordsFilter(asset_key=sweep.keys.ohlcv, asset_partitions=[crypto])
    records = instance.fetch_materializations(where, limit=1).records
    if not records or records[0].asset_materialization is None:
        return None
    meta = records[0].asset_materialization.metadata
    if FIRST_BAR not in meta or LAST_BAR not in meta:
        return None
    first, last = (pd.Timestamp(str(meta[key].value)) for key in (FIRST_BAR, LAST_BAR))
    return span_bars(first, last, sweep.config.timeframe)


def partition_working_set(instance: dg.DagsterInstance, sweep: Sweep, partition: str | None) -> WorkingSet:
    """The estimate of a run of the sweep over `partition`: a crypto x fold key, a crypto (the `ohlcv`
    job), or None (a sweep-wide run: report, audit). A fold key this sweep's plan cannot have produced
    raises ConfigError naming it."""
    cfg = sweep.config
    if partition is None:
        return estimate_working_set(bars_shape(cfg))
    if "|" not in str(partition):
        return estimate_working_set(bars_shape(cfg, recorded_bars(instance, sweep, partition), ASSETS_LOADED))
    crypto, fold_id = split_partition_key(partition)
    layout = steps.feature_layout(cfg, crypto)  # the series its feature sets load, and their columns
    shape = fold_shape(cfg, sweep.fold(fold_id), recorded_bars(instance, sweep, crypto), layout)
    return estimate_working_set(shape)


def size_partition(
    instance: dg.DagsterInstance,
    sweep: Sweep,
    partition: str | None,
    profiles: Profiles,
    steps_in_pods: bool = False,
) -> RunSizing:
    """The estimate and profiles of one partition's run; SizingError when it fits no profile."""
    what = f"sweep {sweep.name} partition {partition}" if partition else f"sweep {sweep.name}"
    try:
        working_set = partition_working_set(instance, sweep, partition)
    except ConfigError as exc:
        raise SizingError(f"{what}: {exc}") from None
    profile = profiles.choose(working_set, what)
    run_profile = profiles.profiles[0] if steps_in_pods else profile
    return RunSizing(what, working_set, profile, run_profile, steps_in_pods)


def served_sweeps(directory: Path | None = None) -> dict[str, Sweep]:
    """The sweeps the code location serves (the same files: CVN_SWEEPS_DIR and CVN_SWEEP_FILES), read
    from configuration only, for a process outside the code location (the daemon's launcher)."""
    sweep_files, _ = scan_sweeps(directory)
    return {s.name: Sweep.of(s.config) for s in sweep_files}


def run_partition(run: dg.DagsterRun, sweeps: Mapping[str, Sweep]) -> tuple[Sweep, str | None] | None:
    """The sweep a run belongs to and its `dagster/partition` tag; None for a run of none of `sweeps`."""
    sweep = sweep_of_run(run, sweeps)
    return None if sweep is None else (sweep, run.tags.get(PARTITION_TAG))


def run_working_set(
    instance: dg.DagsterInstance, run: dg.DagsterRun, sweeps: Mapping[str, Sweep]
) -> WorkingSet | None:
    """The estimate of a run of one of `sweeps`; None for a run of none of them."""
    found = run_partition(run, sweeps)
    return None if found is None else partition_working_set(instance, *found)


def size_run(
    instance: dg.DagsterInstance, run: dg.DagsterRun, sweeps: Mapping[str, Sweep], profiles: Profiles
) -> RunSizing | None:
    """The sizing of a run of one of `sweeps`; None for a run of none of them (another code location's),
    which keeps the launcher's own resources."""
    found = run_partition(run, sweeps)
    if found is None:
        return None
    return size_partition(instance, *found, profiles, steps_in_pods=run.tags.get(EXECUTOR_TAG) == STEP_PODS)


def set_by_person(tags: Mapping[str, str]) -> bool:
    """Whether the run's `dagster-k8s/config` was set by a person (kept as it is), not by the launcher."""
    return K8S_CONFIG_TAG in tags and PROFILE_TAG not in tags
