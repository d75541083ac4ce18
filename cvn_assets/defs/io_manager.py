"""Where asset values live between steps: one folder per asset partition, through Dagster's UPathIOManager,
on a local directory (the embedded default) or S3 (`CVN_ARTIFACTS_BUCKET`), in the formats of
`cvn_assets/artifacts/formats.py`: parquet, the model libraries' own files, JSON. Nothing is pickled, so
another process, pod or library version reads what one wrote.

Paths read like the asset graph: `<root>/<sweep>/<asset>/<crypto>/<fold>/<file>`, e.g.
`s3://bucket/cvn-artifacts/demo/model/xgboost/BTCUSD/f02_2019-02-24/model.ubj`.

Loading an upstream partition that was never materialized fails with one line naming the asset and
partition to materialize first, not a FileNotFoundError on a path.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dagster as dg
from upath import UPath

from cvn_assets.artifacts.formats import MANIFEST, read_value, write_value
from cvn_assets.artifacts.location import ArtifactFolder, ArtifactLocation, location_from_env


class MissingUpstreamError(dg.Failure):
    pass


class Reused:
    """What a step returns for a value that is already stored and current (a captured fold an audit
    reuses, `defs/capture.py`): the store keeps the stored files and writes nothing."""

    def __init__(self, run_id: str | None) -> None:
        self.run_id = run_id  # the run that wrote it


class ArtifactIOManager(dg.UPathIOManager):
    extension = None  # each value is a folder of files

    def __init__(self, location: ArtifactLocation) -> None:
        super().__init__(base_path=location.path())
        self.location = location

    def dump_to_path(self, context: dg.OutputContext, obj: Any, path: UPath) -> None:
        if isinstance(obj, Reused):
            if not ArtifactFolder(path, self.location).names() >= {MANIFEST}:
                raise MissingUpstreamError(description=f"{_what(context)}: the stored value to reuse is gone")
            context.add_output_metadata({"reused_from_run": obj.run_id or "unknown"})
            return
        self.make_directory(path)
        manifest = write_value(ArtifactFolder(path, self.location), obj, _what(context))
        context.add_output_metadata(
            {
                "artifact_kind": manifest["kind"],
                "artifact_files": ", ".join(manifest["files"]) or "artifact.json",
                **(
                    {"model_file": dg.MetadataValue.json(manifest["model_file"])}
                    if "model_file" in manifest
                    else {}
                ),
            }
        )

    def load_from_path(self, context: dg.InputContext, path: UPath) -> Any:
        return self._read(path, _what(context))

    def partition_path(self, asset_key: dg.AssetKey, partition: str | dg.MultiPartitionKey) -> UPath:
        """Where `handle_output` writes a partition: a crypto x fold key as `<crypto>/<fold>`, as Dagster's
        UPathIOManager lays out a multi-partition key (its dimensions in name order)."""
        if isinstance(partition, dg.MultiPartitionKey):
            partition = "/".join(v for _, v in sorted(partition.keys_by_dimension.items()))
        elif "|" in partition:  # a crypto x fold key as a string: its dimensions are already in name order
            partition = partition.replace("|", "/")
        return self.make_safe_partition_path(self._base_path.joinpath(*asset_key.path), partition)

    def load_partition(self, asset_key: dg.AssetKey, partition: str | dg.MultiPartitionKey) -> Any:
        """One partition of an asset, from where `handle_output` wrote it: for a value a step needs beyond
        its inputs (a cross-asset feature set's other crypto's bars, an audit's captured fold)."""
        return self._read(
            self.partition_path(asset_key, partition), f"{asset_key.to_user_string()} partition {partition}"
        )

    def is_stored(self, asset_key: dg.AssetKey, partition: str | dg.MultiPartitionKey) -> bool:
        folder = ArtifactFolder(self.partition_path(asset_key, partition), self.location)
        return MANIFEST in folder.names()

    def _read(self, path: UPath, what: str) -> Any:
        try:
            return read_value(ArtifactFolder(path, self.location))
        except FileNotFoundError:
            raise MissingUpstreamError(
                description=f"{what} has not been materialized yet: materialize it first (select it in the "
                f"UI with this partition, or include it in the backfill; nothing is stored at "
                f"{_shown(path, self.location)})"
            ) from None

    def make_directory(self, path: UPath) -> None:
        if not self.location.is_s3:  # an object store has no folders to make
            path.mkdir(parents=True, exist_ok=True)


def _what(context: dg.InputContext | dg.OutputContext) -> str:
    asset = context.asset_key.to_user_string() if context.has_asset_key else context.name
    partition = f" partition {context.asset_partition_key}" if context.has_asset_partitions else ""
    return f"{asset}{partition}"


def _shown(path: UPath, location: ArtifactLocation) -> str:
    return f"s3://{path.path}" if location.is_s3 else str(path)


class ArtifactStore(dg.ConfigurableIOManagerFactory):
    """The artifact store: a local directory by default; S3 when `CVN_ARTIFACTS_BUCKET` is set (prefix,
    endpoint and region from the environment, read when a run starts, never stored in the definitions)."""

    base_dir: str

    def create_io_manager(self, context: dg.InitResourceContext) -> ArtifactIOManager:
        return ArtifactIOManager(location_from_env(Path(self.base_dir), os.environ))
