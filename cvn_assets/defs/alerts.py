"""Alerts on failed asset checks and failed runs: one sensor, `cvn_alerts`, for every sweep of the location.

Open-source Dagster alerts on no asset check, and a failed non-blocking check does not fail its run, so a
run-failure sensor never hears of it. This sensor follows the instance's run-end events with a cursor
(runs that succeeded, failed or were canceled), reads each finished run's check evaluations, and sends
  * one alert per failed ERROR evaluation,
  * one digest of the tick's failed WARN evaluations,
  * one alert per failed run,
for the runs of this location's sweeps, to the channels `alert_channels.py` reads from the environment.
An alert a channel did not take stays in the cursor and is retried on the next ticks, per channel: nothing
is lost while a receiver is down, and nothing a channel took is sent to it again.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import dagster as dg

from cvn_assets.defs.alert_channels import Alert, AlertChannels, DeliveryError
from cvn_assets.defs.sweep import Sweep, sweep_of_run

SENSOR_NAME = "cvn_alerts"
INTERVAL_S = 30
FIRST_LOOKBACK_S = 24 * 3600  # a sensor without a cursor alerts on runs that ended in the last day
RUNS_PER_TICK = 100  # run-end events read per status per tick; the rest on the next tick
MAX_PENDING = 1000  # undelivered alerts kept for retry; past it the oldest are dropped, with a log line
RUN_ENDS = (
    dg.DagsterEventType.RUN_SUCCESS,
    dg.DagsterEventType.RUN_FAILURE,
    dg.DagsterEventType.RUN_CANCELED,
)


@dataclass
class AlertCursor:
    since: float  # before the first run-end event is read: alert on runs that ended after this
    after: dict[str, str] = field(default_factory=dict)  # run-end event type -> the instance's cursor
    pending: list[dict[str, Any]] = field(default_factory=list)  # {"alert": ..., "to": [channels]}

    @classmethod
    def parse(cls, text: str | None) -> AlertCursor:
        if not text:
            return cls(since=time.time() - FIRST_LOOKBACK_S)
        return cls(**json.loads(text))

    def dump(self) -> str:
        return json.dumps({"since": self.since, "after": self.after, "pending": self.pending}, sort_keys=True)


def build_alerts_sensor(sweeps: list[Sweep]) -> dg.SensorDefinition:
    by_name = {sweep.name: sweep for sweep in sweeps}

    @dg.sensor(
        name=SENSOR_NAME,
        minimum_interval_seconds=INTERVAL_S,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Sends one alert per failed ERROR check and per failed run, and a digest of failed WARN "
        "checks, of the sweeps' runs, to Slack (SLACK_TOKEN, CVN_ALERT_SLACK_CHANNEL) and/or a JSON webhook "
        "(CVN_ALERT_WEBHOOK_URL); undelivered alerts are retried on the next ticks.",
    )
    def cvn_alerts(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        channels = AlertChannels.from_env()
        cursor = AlertCursor.parse(context.cursor)
        new = read_new_alerts(context.instance, cursor, by_name, channels)
        if new and not channels.names:
            context.log.warning(
                f"{len(new)} alerts not sent: no channel is configured (set CVN_ALERT_WEBHOOK_URL, or SLACK_TOKEN "
                "and CVN_ALERT_SLACK_CHANNEL)"
            )
        cursor.pending += [{"alert": alert, "to": channels.names} for alert in new if channels.names]
        sent, problems = deliver(cursor, channels)
        if len(cursor.pending) > MAX_PENDING:
            context.log.error(
                f"{len(cursor.pending) - MAX_PENDING} undelivered alerts dropped (oldest first)"
            )
            cursor.pending = cursor.pending[-MAX_PENDING:]
        for problem in problems:
            context.log.warning(f"{problem}; {len(cursor.pending)} alerts wait for the next tick")
        summary = f"{len(new)} new alerts, {sent} deliveries, {len(cursor.pending)} waiting for a retry"
        context.log.info(summary)
        return dg.SensorResult(cursor=cursor.dump(), skip_reason=dg.SkipReason(summary))

    return cvn_alerts


def read_new_alerts(
    instance: dg.DagsterInstance, cursor: AlertCursor, sweeps: Mapping[str, Sweep], channels: AlertChannels
) -> list[Alert]:
    """Alerts of the runs that ended since the cursor (which moves past them): each ERROR check and each run
    failure on its own, the WARN checks as one digest."""
    errors: list[Alert] = []
    warnings: list[Alert] = []
    for event_type in RUN_ENDS:
        after = cursor.after.get(event_type.value)
        where = dg.RunStatusChangeRecordsFilter(event_type, after_timestamp=None if after else cursor.since)
        found = instance.fetch_run_status_changes(where, limit=RUNS_PER_TICK, cursor=after, ascending=True)
        if found.records:
            cursor.after[event_type.value] = found.cursor
        for record in found.records:
            run = instance.get_run_by_id(record.run_id)
            sweep = sweep_of_run(run, sweeps) if run else None
            if run is None or sweep is None:
                continue  # another code location's run
            for alert in check_alerts(instance, run, sweep, channels):
                (errors if alert["severity"] == "ERROR" else warnings).append(alert)
            if event_type == dg.DagsterEventType.RUN_FAILURE:
                errors.append(run_failure_alert(instance, run, sweep, channels))
    digest = [{"kind": "warn_digest", "severity": "WARN", "failures": warnings}] if warnings else []
    return errors + digest


def check_alerts(
    instance: dg.DagsterInstance, run: dg.DagsterRun, sweep: Sweep, channels: AlertChannels
) -> list[Alert]:
    """The run's failed check evaluations, as alert bodies."""
    cost_of = {
        key: cost
        for cost in sweep.config.costs_bps
        for key in (sweep.keys.economics(cost), sweep.keys.baselines(cost))
    }
    alerts = []
    records = instance.get_records_for_run(
        run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
    ).records
    for record in records:
        event = record.event_log_entry.dagster_event
        evaluation = event.event_specific_data if event else None
        if evaluation is None or evaluation.passed:
            continue
        alerts.append(
            {
                "kind": "check_failed",
                "sweep": sweep.name,
                "asset": evaluation.asset_key.to_user_string(),
                "partition": evaluation.partition,
                "cost_bps": cost_of.get(evaluation.asset_key),
                "check": evaluation.check_name,
                "severity": evaluation.severity.value,
                "description": evaluation.description,
                "metadata": metadata_json(evaluation.metadata),
                **_run_fields(run, channels, record.event_log_entry.timestamp),
            }
        )
    return alerts


def run_failure_alert(
    instance: dg.DagsterInstance, run: dg.DagsterRun, sweep: Sweep, channels: AlertChannels
) -> Alert:
    failures = instance.get_records_for_run(
        run.run_id, of_type={dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RUN_FAILURE}
    ).records
    step = next((r for r in failures if r.event_log_entry.dagster_event.is_step_failure), None)
    last = failures[-1].event_log_entry if failures else None
    return {
        "kind": "run_failed",
        "severity": "ERROR",
        "sweep": sweep.name,
        "job": run.job_name,
        "partition": run.tags.get("dagster/partition"),
        "error": step_error(step.event_log_entry.dagster_event) if step else (last.message if last else None),
        **_run_fields(run, channels, last.timestamp if last else time.time()),
    }


def step_error(event: dg.DagsterEvent) -> str:
    """`step: first line of why`, as a person reads it: the `Failure`'s description or our error's message,
    without Dagster's wrapper errors and without the `module.Class: ` prefix of errors written for people
    (Dagster's and ours). Another library's or Python's error keeps its class name (`ValueError: ...`):
    that names a bug."""
    error = event.step_failure_data.error if event.step_failure_data else None
    # Dagster wraps a user error in its own (`DagsterExecutionStepExecutionError`), whose cause is the user's;
    # a `Failure` raised `from` another error is the message, not its cause.
    while error is not None and error.cause is not None and error.message.startswith(_DAGSTER_WRAPPERS):
        error = error.cause
    message = error.message.strip() if error else ""
    first = message.splitlines()[0] if message else ""
    prefix = _CLASS_PREFIX.match(first)
    if error is not None and prefix and prefix["cls"] == error.cls_name:
        if prefix["module"].startswith(_OWN_MODULES):
            first = first[prefix.end() :]
        elif prefix["module"]:  # e.g. xgboost.core.XGBoostError: keep the class, drop the module path
            first = first[len(prefix["module"]) :]
    if first.strip() in ("", "None"):  # dg.Failure() without a description
        first = "step failed"
    return f"{event.step_key}: {first}"


_DAGSTER_WRAPPERS = "dagster._core.errors."
_OWN_MODULES = ("dagster.", "cvn_assets.")  # errors whose message is written for a person
_CLASS_PREFIX = re.compile(r"(?P<module>(?:[\w<>]+\.)*)(?P<cls>\w+): ")  # `<locals>.` in a qualname


def _run_fields(run: dg.DagsterRun, channels: AlertChannels, timestamp: float) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "run_url": channels.run_url(run.run_id),
        "timestamp": datetime.fromtimestamp(timestamp, UTC).isoformat(),
    }


def metadata_json(metadata: Mapping[str, dg.MetadataValue]) -> dict[str, Any]:
    """Check metadata as plain JSON: tables as lists of rows, everything else its value (text if need be)."""
    out: dict[str, Any] = {}
    for key, value in metadata.items():
        if isinstance(value, dg.TableMetadataValue):
            out[key] = [record.data for record in value.records]
        else:
            raw = getattr(value, "value", value)
            out[key] = raw if isinstance(raw, (str, int, float, bool, list, dict, type(None))) else str(raw)
    return json.loads(json.dumps(out, default=str))


def deliver(cursor: AlertCursor, channels: AlertChannels) -> tuple[int, list[str]]:
    """Send every pending alert to the channels it still owes; a channel that fails is not tried again this
    tick. Returns the deliveries made and why the failed channels failed."""
    sent, down, still = 0, {}, []
    for entry in cursor.pending:
        owed = [c for c in entry["to"] if c in channels.names]  # a channel since unconfigured is dropped
        for channel in list(owed):
            if channel in down:
                continue
            try:
                channels.send(channel, entry["alert"])
            except DeliveryError as exc:
                down[channel] = str(exc)
                continue
            owed.remove(channel)
            sent += 1
        if owed:
            still.append({"alert": entry["alert"], "to": owed})
    cursor.pending = still
    return sent, list(down.values())
