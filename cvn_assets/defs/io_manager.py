"""Where asset values live between steps: pickles under a base path, through Dagster's UPathIOManager
(a local directory on the embedded default; the same class takes any fsspec path).

Loading an upstream partition that was never materialized fails with one line naming the asset and
partition to materialize first, not a FileNotFoundError on a pickle path.
"""

from __future__ import annotations

import os
import pickle
from typing import Any

import dagster as dg
from upath import UPath


class MissingUpstreamError(dg.Failure):
    pass


class PickledArtifacts(dg.UPathIOManager):
    extension = ".pkl"

    def dump_to_path(self, context: dg.OutputContext, obj: Any, path: UPath) -> None:
        if path.protocol not in ("", "file", "local"):  # an object store shows an object once it is whole
            with path.open("wb") as file:
                pickle.dump(obj, file, protocol=pickle.HIGHEST_PROTOCOL)
            return
        # A local file is replaced atomically: a run reading it meanwhile (the bars of a crypto while they
        # reload) sees the old value or the new one, never half of one.
        partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
        with partial.open("wb") as file:
            pickle.dump(obj, file, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(partial.path, path.path)

    def load_from_path(self, context: dg.InputContext, path: UPath) -> Any:
        try:
            with path.open("rb") as file:
                return pickle.load(file)
        except FileNotFoundError:
            asset = context.asset_key.to_user_string() if context.has_asset_key else context.name
            partition = f" partition {context.asset_partition_key}" if context.has_asset_partitions else ""
            raise MissingUpstreamError(
                description=f"{asset}{partition} has not been materialized yet: materialize it first "
                "(select it in the UI with this partition, or include it in the backfill)"
            ) from None


class ArtifactStore(dg.ConfigurableIOManagerFactory):
    """The artifact store: `base_dir` is a local directory (the embedded default) or an fsspec URL."""

    base_dir: str

    def create_io_manager(self, context: dg.InitResourceContext) -> PickledArtifacts:
        return PickledArtifacts(base_path=UPath(self.base_dir))
