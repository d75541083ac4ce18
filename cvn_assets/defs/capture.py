"""Captured-fold reuse: in an audit run, a capture step (a feature set, the fold dataset, a model) whose
stored value is current is not computed again.

Current means what Dagster's staleness means: the partition's latest materialization was made by this
asset's code version from the data versions its input partitions have now (recorded on it as
`input_versions`), and its files are still stored. Then the
step returns `Reused` (the artifact store keeps the stored files) with the stored data version, so
everything downstream stays fresh; anything else (changed code, changed upstream data, never materialized,
files gone) is computed as usual. A sweep run always computes: re-running a partition replaces it.

Concurrent audits of one cell are serialized by the run queue's limit of one run per partition
(`dagster.yaml`, `deploy/`): the second waits, then finds the first one's capture current and reuses it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import dagster as dg

from cvn_assets.defs.io_manager import ArtifactIOManager, Reused
from cvn_assets.diagnostics.audit import FULL, LIGHT

AUDIT_TAG = "cvn/audit"  # on every audit run: "full", or "light" (the reproducibility anchor skipped)
# Dagster's own tags on a materialization (dagster._core.definitions.data_version), read here to tell
# whether a stored value is current; test_diagnostics checks them against Dagster's constants.
CODE_VERSION_TAG = "dagster/code_version"
DATA_VERSION_TAG = "dagster/data_version"
INPUT_VERSIONS = "input_versions"  # ours: the data version of each input partition a value was computed from


def audit_mode(run: dg.DagsterRun) -> str | None:
    """full or light for an audit run; None for any other run."""
    mode = run.tags.get(AUDIT_TAG)
    return None if mode is None else LIGHT if mode.strip().lower() == LIGHT else FULL


def latest_materialization(
    instance: dg.DagsterInstance, key: dg.AssetKey, partition: str
) -> dg.EventLogRecord | None:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), limit=1
    ).records
    return records[0] if records else None


def _tags(record: dg.EventLogRecord | None) -> Mapping[str, str]:
    materialization = record.asset_materialization if record else None
    return (materialization.tags or {}) if materialization else {}


@dataclass(frozen=True)
class Capture:
    """One capture step's provenance: the data versions its inputs' partitions have now. Recorded on every
    materialization (`INPUT_VERSIONS`; Dagster's own input tags name a partitioned input's latest event
    of any partition, so they cannot tell), and compared in an audit to decide whether to reuse."""

    context: dg.AssetExecutionContext
    io_manager: ArtifactIOManager
    input_versions: dict[str, str | None]

    @classmethod
    def of(
        cls,
        context: dg.AssetExecutionContext,
        io_manager: ArtifactIOManager,
        inputs: Mapping[dg.AssetKey, str],
    ) -> Capture:
        """`inputs`: each input asset and the partition the step reads of it."""
        versions = {
            key.to_user_string(): _tags(latest_materialization(context.instance, key, partition)).get(
                DATA_VERSION_TAG
            )
            for key, partition in inputs.items()
        }
        return cls(context, io_manager, versions)

    @property
    def metadata(self) -> dict[str, dg.MetadataValue]:
        return {INPUT_VERSIONS: dg.MetadataValue.json(self.input_versions)}

    def reuse_if_current(self) -> dg.Output | None:
        """In an audit run: the output that reuses the stored value, when it is current; else None, and
        the step computes."""
        context = self.context
        if audit_mode(context.run) is None:
            return None
        key, partition = context.asset_key, context.partition_key
        stored = latest_materialization(context.instance, key, partition)
        if stored is None or stored.asset_materialization is None:
            return None
        tags, meta = _tags(stored), stored.asset_materialization.metadata
        recorded = meta.get(INPUT_VERSIONS)
        current = (
            tags.get(CODE_VERSION_TAG) == context.assets_def.code_versions_by_key.get(key)
            and recorded is not None
            and recorded.value == self.input_versions
            and None not in self.input_versions.values()
            and DATA_VERSION_TAG in tags
            and self.io_manager.is_stored(key, partition)
        )
        if not current:
            return None
        context.log.info(
            f"{key.to_user_string()} {partition} is current: reusing run {stored.run_id}'s value"
        )
        return dg.Output(
            Reused(stored.run_id),
            data_version=dg.DataVersion(tags[DATA_VERSION_TAG]),
            metadata={"reused": True, "captured_by_run": stored.run_id, **self.metadata},
        )
