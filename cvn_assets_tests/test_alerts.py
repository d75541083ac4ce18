"""Alerts end to end: real runs on a real instance (SQLite and PostgreSQL storage), the `cvn_alerts` sensor
ticking over them with its cursor, and a receiver on loopback standing in for the webhook and Slack's API."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from cvn_assets.core.config import SweepConfig, parse_config
from cvn_assets.core.errors import DataValidationError
from cvn_assets.definitions import build_definitions
from cvn_assets.defs.alerts import SENSOR_NAME, AlertCursor, step_error
from cvn_assets.defs.keys import partition_key
from cvn_assets.defs.resources import ResultsStore
from cvn_assets.defs.sweep import Sweep
from cvn_assets.hyperparams.keys import default_key
from cvn_assets.store.engine import get_engine, upgrade
from cvn_assets_tests.conftest import small_raw_config
from cvn_assets_tests.in_process import load_bars
from cvn_assets_tests.services import Receiver, http_receiver

pytestmark = pytest.mark.usefixtures("small_hyperparams")
SLACK_TOKEN = "xoxb-secret-token-123"
HOOK_KEY = "hook-secret-456"
UI = "http://dagster.example:3000"


class AlertTicks:
    """The alerts sensor, ticked by hand as the daemon ticks it: each call one evaluation, cursor kept."""

    def __init__(self, defs: dg.Definitions, instance: dg.DagsterInstance) -> None:
        self.sensor = defs.resolve_sensor_def(SENSOR_NAME)
        self.instance, self.defs, self.cursor = instance, defs, None

    def __call__(self) -> AlertCursor:
        with dg.build_sensor_context(
            instance=self.instance, cursor=self.cursor, definitions=self.defs
        ) as ctx:
            result = self.sensor(ctx)
        self.cursor = result.cursor
        return AlertCursor.parse(self.cursor)


def _alerts(receiver: Receiver) -> tuple[list[dict[str, Any]], list[str]]:
    """Webhook bodies and Slack texts received since the last call."""
    hooks, slack = [], []
    for path, body in receiver.take():
        if path.startswith("/api/chat.postMessage"):
            slack.append(json.loads(body)["text"])
        else:
            assert path == f"/hook?key={HOOK_KEY}"
            hooks.append(json.loads(body))
    return hooks, slack


def _run(
    defs: dg.Definitions, job: str, instance: dg.DagsterInstance, key: str, ops: list[str] | None = None
) -> dg.ExecuteInProcessResult:
    return defs.resolve_job_def(job).execute_in_process(
        partition_key=key, instance=instance, raise_on_error=False, op_selection=ops
    )


def _recheck(
    defs: dg.Definitions, sweep: Sweep, instance: dg.DagsterInstance, key: str
) -> dg.ExecuteInProcessResult:
    """The partition's results checks alone, as the UI's "Execute checks" runs them."""
    return _run(defs, sweep.keys.sweep_job, instance, key, ops=[f"{sweep.name}_results_checks"])


def test_failed_checks_and_runs_alert_once_and_survive_an_outage(
    dagster_instance: dg.DagsterInstance,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.INFO)
    instance = dagster_instance
    strict = parse_config(small_raw_config(costs_bps=[10]))
    lenient = parse_config(small_raw_config(name="lenient", costs_bps=[10], hpo={"allow_fallback": True}))
    db_url = f"sqlite:///{tmp_path / 'results.db'}"
    upgrade(db_url)
    configs: list[SweepConfig] = [strict, lenient]
    tiny = Sweep.of(strict)
    defs = build_definitions(
        configs, artifacts_dir=tmp_path / "artifacts", results_store=ResultsStore(database_url=db_url)
    )

    with http_receiver() as receiver:
        monkeypatch.setenv("SLACK_TOKEN", SLACK_TOKEN)
        monkeypatch.setenv("CVN_ALERT_SLACK_CHANNEL", "#sweeps")
        monkeypatch.setenv("CVN_ALERT_SLACK_API_URL", f"{receiver.url}/api/")
        monkeypatch.setenv("CVN_ALERT_WEBHOOK_URL", f"{receiver.url}/hook?key={HOOK_KEY}")
        monkeypatch.setenv("CVN_UI_BASE_URL", UI)
        tick = AlertTicks(defs, instance)
        everything: list[Any] = []

        # A partition whose checks all pass alerts nothing.
        fold = load_bars(defs, strict, instance, "SYNA").folds[0].fold_id
        key = str(partition_key("SYNA", fold))
        assert _run(defs, tiny.keys.sweep_job, instance, key).success
        tick()
        assert receiver.take() == []

        # A failed ERROR check: exactly one alert per channel, with what and where; the next tick sends nothing.
        with get_engine(db_url).begin() as conn:
            conn.execute(sa.text("delete from finetune_baselines where baseline_type = 'random'"))
        recheck = _recheck(defs, tiny, instance, key)
        assert recheck.success  # a non-blocking check's failure does not fail its run
        tick()
        hooks, slack = _alerts(receiver)
        everything += [hooks, slack]
        assert len(hooks) == 1 and len(slack) == 1
        alert = hooks[0]
        assert {
            k: alert[k] for k in ("kind", "sweep", "asset", "partition", "cost_bps", "check", "severity")
        } == {
            "kind": "check_failed",
            "sweep": "tiny",
            "asset": "tiny/economics/economics_10bps",
            "partition": key,
            "cost_bps": 10,
            "check": "baselines_complete",
            "severity": "ERROR",
        }
        assert alert["run_id"] == recheck.run_id and alert["run_url"] == f"{UI}/runs/{recheck.run_id}"
        assert alert["metadata"]["violations"] == 1 and alert["metadata"]["crypto"] == "SYNA"
        assert alert["metadata"]["violating_rows"][0]["baseline_type"] == "random"
        assert "baselines_complete" in slack[0] and key in slack[0] and alert["run_url"] in slack[0]
        tick()
        assert receiver.take() == []

        # The receiver is down: nothing is lost, and each channel gets the alert once when it is back.
        receiver.down = True
        again = _recheck(defs, tiny, instance, key)
        assert tick().pending and tick().pending and receiver.refused == 4  # 2 ticks x 2 channels
        receiver.down = False
        assert tick().pending == []
        hooks, slack = _alerts(receiver)
        everything += [hooks, slack]
        assert [h["run_id"] for h in hooks] == [again.run_id] and len(slack) == 1
        tick()
        assert receiver.take() == []

        # A failed run (a required hyperparameter unset): the blocking ERROR check and the run, one alert each;
        # the lenient sweep's same gap is a WARN, in one digest.
        monkeypatch.delenv(default_key("xgboost", "1h", "max_depth"))
        failed = _run(defs, tiny.keys.sweep_job, instance, str(partition_key("SYNB", fold)))
        assert not failed.success
        lenient_fold = load_bars(defs, lenient, instance, "SYNA").folds[0].fold_id
        assert _run(defs, "lenient_sweep", instance, str(partition_key("SYNA", lenient_fold))).success
        tick()
        hooks, slack = _alerts(receiver)
        everything += [hooks, slack]
        assert sorted((h["kind"], h.get("check"), h.get("sweep")) for h in hooks) == [
            ("check_failed", "hyperparameters_complete", "tiny"),
            ("run_failed", None, "tiny"),
            ("warn_digest", None, None),
        ]
        run_failed = next(h for h in hooks if h["kind"] == "run_failed")
        assert run_failed["partition"] == f"SYNB|{fold}" and run_failed["run_id"] == failed.run_id
        digest = next(h for h in hooks if h["kind"] == "warn_digest")
        assert [(f["sweep"], f["check"], f["severity"]) for f in digest["failures"]] == [
            ("lenient", "hyperparameters_complete", "WARN")
        ]
        assert len(slack) == 3
        tick()
        assert receiver.take() == []

    # No alert and no log line carries a secret; the outage was logged by its kind only.
    logged = caplog.text + capfd.readouterr().err  # the sensor's log lines, and every library's
    said = json.dumps(everything) + logged
    assert "the webhook answered HTTP 503" in logged and "Slack refused the message" in logged
    assert SLACK_TOKEN not in said and HOOK_KEY not in said


def test_step_error_reads_as_the_failure_says_not_as_dagster_wraps_it(tmp_path: Path) -> None:
    # A real step failure of our own: ohlcv of a crypto whose source file does not exist.
    missing = tmp_path / "nowhere.csv"
    config = parse_config(small_raw_config(universe={"BTC": {"kind": "table", "path": str(missing)}}))
    defs = build_definitions([config], artifacts_dir=tmp_path / "artifacts")
    with dg.DagsterInstance.ephemeral() as instance:
        result = _run(defs, Sweep.of(config).keys.ohlcv_job, instance, "BTC")
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "dagster._core.definitions.events.Failure: " in failure.step_failure_data.error.message
    assert step_error(failure) == (
        f"tiny__ohlcv: ohlcv[BTC] of sweep tiny: {missing}: no data files found (looked for "
        ".csv, .csv.gz, .parquet, .pq)"
    )

    # How other exceptions read: ours and Dagster's without their class path, a bug with its class name.
    class Unwritten(Exception):
        pass

    def raises(exc: Exception, cause: Exception | None = None) -> dg.DagsterEvent:
        @dg.op(name="step")
        def step() -> None:
            raise exc from cause

        @dg.job(name="j")
        def job() -> None:
            step()

        return next(e for e in job.execute_in_process(raise_on_error=False).all_events if e.is_step_failure)

    assert step_error(raises(DataValidationError("a.csv", "bad", 3))) == "step: a.csv: row 3: bad"
    assert step_error(raises(dg.Failure(description="why\nmore"), KeyError("k"))) == "step: why"
    assert step_error(raises(dg.Failure())) == "step: step failed"
    assert step_error(raises(ValueError("plain"))) == "step: ValueError: plain"
    assert step_error(raises(Unwritten("x"))) == "step: Unwritten: x"
