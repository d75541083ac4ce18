"""Resources: the results store."""

from __future__ import annotations

import os

import dagster as dg
import sqlalchemy as sa

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
