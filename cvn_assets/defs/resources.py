"""Resources: the results store."""

from __future__ import annotations

import os

import dagster as dg
import sqlalchemy as sa

from cvn_assets.store.engine import database_url, get_engine, upgrade


class ResultsStore(dg.ConfigurableResource):
    """The results database. Its schema is migrated to head the first time a process uses it."""

    database_url: str

    def engine(self) -> sa.Engine:
        upgrade(self.database_url)
        return get_engine(self.database_url)


def results_store_from_env() -> ResultsStore:
    # With CVN_DATABASE_URL set, Dagster reads it at run time and never shows the credentials in the UI.
    if os.environ.get("CVN_DATABASE_URL"):
        return ResultsStore(database_url=dg.EnvVar("CVN_DATABASE_URL"))
    return ResultsStore(database_url=database_url())
