"""Where the results database is, how to connect, and bringing its schema to the latest migration.

The embedded default is a SQLite file under CVN_HOME; `CVN_DATABASE_URL` points the same code and the
same alembic migrations at PostgreSQL (e.g. postgresql+psycopg://user:pass@host/db).
"""

from __future__ import annotations

import os
import threading
from functools import cache
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy.dialects import postgresql, sqlite

from cvn_assets.core.config import home_dir
from cvn_assets.core.errors import StoreUnavailableError
from cvn_assets.store.locks import database_lock

# Inside the package (package data), so a normal, non-editable install finds them.
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Not alembic's default `alembic_version`: Optuna's RDB storage, which keeps the HPO studies in this same
# database, records its own schema revision there.
VERSION_TABLE = "cvn_alembic_version"
LEGACY_VERSION_TABLE = "alembic_version"
_upgraded: set[str] = set()
_upgrade_lock = threading.Lock()


def cvn_home() -> Path:
    """Root of the embedded default's local state (results DB, artifacts, Dagster home)."""
    return home_dir()


def database_url() -> str:
    url = os.environ.get("CVN_DATABASE_URL")
    if url:
        return url
    home = cvn_home()
    home.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{home / 'results.db'}"


def redact(url: str) -> str:
    """The URL with its password masked: what may be printed or logged."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy can parse: print nothing of it
        return "<database url>"


def store_unavailable(url: str, exc: Exception) -> StoreUnavailableError:
    """One line naming the database (password masked) and the driver's first line of why."""
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    return StoreUnavailableError(
        f"the results database {redact(url)} is unavailable ({reason}); check CVN_DATABASE_URL and that "
        "the server is up"
    )


def dialect_insert(conn: sa.Connection, table: sa.Table):  # noqa: ANN201 - dialect-specific insert construct
    """The connection's dialect's INSERT, the one with ON CONFLICT (on_conflict_do_update/_do_nothing)."""
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


@cache
def get_engine(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        return sa.create_engine(url, connect_args={"timeout": 60})
    return sa.create_engine(url, pool_pre_ping=True)


def alembic_config(url: str) -> Config:
    if not (MIGRATIONS_DIR / "env.py").is_file():
        raise FileNotFoundError(
            f"alembic migrations not found at {MIGRATIONS_DIR}: the installed package is incomplete; reinstall it"
        )
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str) -> None:
    """Run migrations to head, once per process and URL. Under a lock across processes (a PostgreSQL
    advisory lock, a file lock beside SQLite): the first runs of a sweep on a fresh database all start by
    migrating it, and alembic's steps are not safe to run twice at once; the later ones find it at head."""
    with _upgrade_lock:
        if url in _upgraded:
            return
        with database_lock(url, "cvn-migrations"):
            _adopt_legacy_version_table(url)
            command.upgrade(alembic_config(url), "head")
        _upgraded.add(url)


def _adopt_legacy_version_table(url: str) -> None:
    """A database migrated before the rename keeps its revision in `alembic_version`: move it to ours, so
    Optuna finds that table free (or holding only its own revision)."""
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.begin() as conn:
            tables = set(sa.inspect(conn).get_table_names())
            if VERSION_TABLE in tables or LEGACY_VERSION_TABLE not in tables:
                return
            legacy = sa.table(LEGACY_VERSION_TABLE, sa.column("version_num"))
            known = {s.revision for s in ScriptDirectory.from_config(alembic_config(url)).walk_revisions()}
            ours = [r for r in conn.execute(sa.select(legacy.c.version_num)).scalars() if r in known]
            if not ours:
                return
            conn.execute(
                sa.text(f"CREATE TABLE {VERSION_TABLE} (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
            )
            conn.execute(sa.text(f"INSERT INTO {VERSION_TABLE} (version_num) VALUES (:v)"), {"v": ours[0]})
            conn.execute(sa.delete(legacy).where(legacy.c.version_num.in_(ours)))
    finally:
        engine.dispose()
