"""Alembic environment for the results database (SQLite and PostgreSQL alike).

Run through `cvn db upgrade` (or automatically when the store resource starts); the URL comes from the
`sqlalchemy.url` main option set by cvn_assets.store.engine, else from CVN_DATABASE_URL.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import engine_from_config, pool

from cvn_assets.store.engine import VERSION_TABLE, database_url
from cvn_assets.store.schema import metadata

config = context.config
url = config.get_main_option("sqlalchemy.url") or database_url()
# Batch mode lets ALTERs run on SQLite too, so one set of migrations serves both dialects. Our own version
# table: Optuna's RDB storage (HPO studies live in this database too) keeps its schema revision in
# alembic's default `alembic_version`.
OPTIONS = {"target_metadata": metadata, "render_as_batch": True, "version_table": VERSION_TABLE}


def run_migrations_offline() -> None:
    context.configure(url=url, literal_binds=True, **OPTIONS)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = engine_from_config({"sqlalchemy.url": url}, prefix="sqlalchemy.", poolclass=pool.NullPool)
    with connectable.connect() as connection:
        context.configure(connection=connection, **OPTIONS)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
