"""Where a sweep's time goes, from step and run durations: p50, p95 and max per asset and per model, run
counts, and the share of run time spent outside the steps (the orchestrator's own overhead: process start,
event writes, the queue inside a run). Pure: the Dagster layer reads the durations from the event log."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class StepTiming:
    run_id: str
    asset: str  # the asset's path inside the sweep (`model/xgboost_model`), or the step's name
    model: str | None  # the model or ensemble a step trains or predicts with; None for the rest
    seconds: float


@dataclass(frozen=True)
class RunTiming:
    run_id: str
    job: str
    seconds: float  # from the run's start to its end
    # From RUN_STARTING (the launch) to its first step's start: the process start and Dagster's setup.
    start_s: float | None = None


DEFAULT_WINDOW = "7d"  # how far back `cvn perf` and the sweep_perf asset look
COLUMNS = ["asset", "model", "runs", "p50_s", "p95_s", "max_s", "total_s"]


def _row(asset: str, model: str | None, durations: list[float], runs: int) -> dict[str, object]:
    values = np.asarray(durations, dtype=float)
    return {
        "asset": asset,
        "model": model,
        "runs": runs,
        "p50_s": float(np.percentile(values, 50)),
        "p95_s": float(np.percentile(values, 95)),
        "max_s": float(values.max()),
        "total_s": float(values.sum()),
    }


def per_asset(steps: list[StepTiming]) -> pd.DataFrame:
    """One row per asset: its step durations' p50, p95 and max, in how many runs, and their total."""
    durations: dict[tuple[str, str | None], list[float]] = defaultdict(list)
    runs: dict[tuple[str, str | None], set[str]] = defaultdict(set)
    for step in steps:
        durations[step.asset, step.model].append(step.seconds)
        runs[step.asset, step.model].add(step.run_id)
    rows = [
        _row(asset, model, durations[asset, model], len(runs[asset, model])) for asset, model in durations
    ]
    return pd.DataFrame(rows, columns=COLUMNS).sort_values("total_s", ascending=False, ignore_index=True)


def per_model(steps: list[StepTiming]) -> pd.DataFrame:
    """One row per model: the time of all its steps in a run (training and predicting), per run."""
    in_run: dict[tuple[str, str], float] = defaultdict(float)
    for step in steps:
        if step.model is not None:
            in_run[step.model, step.run_id] += step.seconds
    durations: dict[str, list[float]] = defaultdict(list)
    for (model, _), seconds in in_run.items():
        durations[model].append(seconds)
    rows = [_row("(all its steps)", model, values, len(values)) for model, values in durations.items()]
    return pd.DataFrame(rows, columns=COLUMNS).sort_values("total_s", ascending=False, ignore_index=True)


@dataclass(frozen=True)
class RunSummary:
    runs: int
    p50_s: float | None
    p95_s: float | None
    max_s: float | None
    outside_steps_share: float | None  # of the runs' total time; None without runs
    start_s: tuple[float, ...] = ()  # each run's launch to its first step (runs with a step)
    steps: int = 0

    @property
    def start_p50_s(self) -> float | None:
        return float(np.percentile(self.start_s, 50)) if self.start_s else None


def per_run(runs: list[RunTiming], steps: list[StepTiming]) -> RunSummary:
    if not runs:
        return RunSummary(0, None, None, None, None)
    seconds = np.asarray([run.seconds for run in runs], dtype=float)
    timed = {run.run_id for run in runs}
    in_steps = sum(step.seconds for step in steps if step.run_id in timed)
    total = float(seconds.sum())
    return RunSummary(
        runs=len(runs),
        p50_s=float(np.percentile(seconds, 50)),
        p95_s=float(np.percentile(seconds, 95)),
        max_s=float(seconds.max()),
        outside_steps_share=max(0.0, 1.0 - in_steps / total) if total > 0 else None,
        start_s=tuple(run.start_s for run in runs if run.start_s is not None),
        steps=sum(step.run_id in timed for step in steps),
    )
