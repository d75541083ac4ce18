"""The run coordinator: Dagster's run queue, and every run of a sweep tagged with the sweep it belongs to.

A sweep's own jobs, its sensors and `cvn sweep` tag their runs (`cvn/sweep`, `cvn/run_id`); a Materialize
from an asset page, an asset backfill or a launchpad run of Dagster's implicit `__ASSET_JOB` carries no
job tags, so "filter runs by sweep", the alerts and `cvn perf` would miss it. Every asset of a sweep
carries those two as asset tags (`Sweep.run_tags`); whatever submits a run (webserver, daemon, backfill,
sensor, automation), the run queue takes it here first, and a run without them gets the tags its
selected assets agree on before it is queued. A run whose assets belong to several sweeps, or to none,
is queued as it came.

It is Dagster's QueuedRunCoordinator otherwise, with the same configuration (the single flight per
partition and the run limit come from the instance's `concurrency` settings).
"""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg

from cvn_assets.dagster_internals import QueuedRunCoordinator, SubmitRunContext
from cvn_assets.defs.keys import selected_assets

SWEEP_TAGS = ("cvn/sweep", "cvn/run_id")


class SweepRunCoordinator(QueuedRunCoordinator):
    def submit_run(self, context: SubmitRunContext) -> dg.DagsterRun:
        run = context.dagster_run
        keys = selected_assets(run)
        graph = context.workspace.asset_graph if keys else None
        tags = sweep_tags(run, {key: graph.get(key).tags for key in keys if graph and graph.has(key)})
        if tags:
            self._instance.add_run_tags(run.run_id, tags)
            tagged = self._instance.get_run_by_id(run.run_id)
            context = context._replace(dagster_run=tagged or run.with_tags({**run.tags, **tags}))
        return super().submit_run(context)


def sweep_tags(run: dg.DagsterRun, asset_tags: Mapping[dg.AssetKey, Mapping[str, str]]) -> dict[str, str]:
    """The sweep tags to add to `run`: those every asset it selected agrees on, when it has none yet."""
    if any(key in run.tags for key in SWEEP_TAGS):
        return {}
    found = {tuple(asset_tags.get(key, {}).get(tag) for tag in SWEEP_TAGS) for key in selected_assets(run)}
    if len(found) != 1:  # no selection, or assets of several sweeps
        return {}
    (agreed,) = found
    return dict(zip(SWEEP_TAGS, agreed, strict=True)) if None not in agreed else {}
