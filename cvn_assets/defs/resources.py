"""Resources: the results store, and the report's published files."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import sqlalchemy as sa

from cvn_assets.artifacts.location import location_from_env
from cvn_assets.artifacts.published import Publisher, publisher
from cvn_assets.store.engine import database_url, get_engine, store_unavailable, upgrade


class ResultsStore(dg.ConfigurableResource):
    """The results database. Its schema is migrated to head the first time a process uses it."""

    database_url: str

    def engine(self) -> sa.Engine:
        """The migrated engine; an unreachable database fails the step in one line, its password masked."""
        try:
            upgrade(self.database_url)
        except sa.exc.OperationalError as exc:
            raise dg.Failure(description=str(store_unavailable(self.database_url, exc))) from None
        return get_engine(self.database_url)


def results_store_from_env() -> ResultsStore:
    # With CVN_DATABASE_URL set, Dagster reads it at run time and never shows the credentials in the UI.
    if os.environ.get("CVN_DATABASE_URL"):
        return ResultsStore(database_url=dg.EnvVar("CVN_DATABASE_URL"))
    return ResultsStore(database_url=database_url())


class ReportFiles(dg.ConfigurableResource):
    """Where the report publishes the files the UI links to (figures, its HTML page): `reports/` of the
    artifact location, read from the environment when a run starts, like the IO manager's."""

    base_dir: str

    def publisher(self) -> Publisher:
        return publisher(location_from_env(Path(self.base_dir), os.environ), os.environ)
