"""A sweep file the code location cannot serve, shown where an operator looks instead of taking the location
down: one asset `<name>/sweep_config` whose description and failing `config_valid` check carry the one-line
error, reported at once by a sensor (no run needed), and a materialization that fails with the same line.
The good sweeps beside it load and run as usual; fixing the file and reloading the location replaces the
entry with the sweep's graph."""

from __future__ import annotations

import logging

import dagster as dg

from cvn_assets.core.config import InvalidSweepFile
from cvn_assets.core.hashing import fingerprint

log = logging.getLogger(__name__)
CHECK_NAME = "config_valid"


def invalid_sweep_key(invalid: InvalidSweepFile) -> dg.AssetKey:
    return dg.AssetKey([invalid.name, "sweep_config"])


def invalid_sweep_definitions(invalid: InvalidSweepFile) -> dg.Definitions:
    key = invalid_sweep_key(invalid)
    log.error("sweep file %s is not served: %s", invalid.path, invalid.error)
    metadata = {
        "file": dg.MetadataValue.path(str(invalid.path)),
        "error": dg.MetadataValue.text(invalid.error),
    }

    @dg.asset(
        key=key,
        group_name=f"{invalid.name}_invalid",
        description=f"INVALID sweep file, not served: {invalid.error}\n\nFix the file, then reload the code "
        "location (Deployment > Reload).",
        metadata=metadata,
        kinds={"yaml"},
    )
    def sweep_config() -> None:
        raise dg.Failure(description=f"sweep file not served: {invalid.error}")

    @dg.asset_check(asset=key, name=CHECK_NAME, description="The sweep file loads and validates.")
    def config_valid() -> dg.AssetCheckResult:
        return _failed_check(invalid, key)

    @dg.sensor(
        name=f"{invalid.name}_invalid_config",
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=30,
        description=f"Reports the {CHECK_NAME} check of {key.to_user_string()} as failed: {invalid.error}",
    )
    def report_invalid(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        # Once per distinct error: the check turns red without a run, and stays so until the file is fixed.
        seen = fingerprint([str(invalid.path), invalid.error], length=16)
        if context.cursor == seen:
            return dg.SkipReason(f"already reported: {invalid.error}")
        evaluation = dg.AssetCheckEvaluation(
            asset_key=key,
            check_name=CHECK_NAME,
            passed=False,
            severity=dg.AssetCheckSeverity.ERROR,
            description=invalid.error,
            metadata=metadata,
        )
        return dg.SensorResult(asset_events=[evaluation], cursor=seen)

    return dg.Definitions(assets=[sweep_config], asset_checks=[config_valid], sensors=[report_invalid])


def _failed_check(invalid: InvalidSweepFile, key: dg.AssetKey) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        asset_key=key,
        passed=False,
        severity=dg.AssetCheckSeverity.ERROR,
        description=invalid.error,
        metadata={"file": str(invalid.path)},
    )
