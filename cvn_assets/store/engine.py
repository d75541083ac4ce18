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

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"
_upgraded: set[str] = set()
_upgrade_lock = threading.Lock()


def cvn_home() -> Path:
    """Root of the embedded default's local state (results DB, artifacts, Dagster home)."""
    return Path(os.environ.get("CVN_HOME", Path.cwd() / ".cvn_home")).resolve()


def database_url() -> str:
    url = os.environ.get("CVN_DATABASE_URL")
    if url:
        return url
    home = cvn_home()
    home.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{home / 'results.db'}"


@cache
def get_engine(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        return sa.create_engine(url, connect_args={"timeout": 60})
    return sa.create_engine(url, pool_pre_ping=True)


def alembic_config(url: str) -> Config:
    if not (MIGRATIONS_DIR / "env.py").is_file():
        raise FileNotFoundError(
            f"alembic migrations not found at {MIGRATIONS_DIR}; install from a source checkout"
        )
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str) -> None:
    """Run migrations to head, once per process and URL."""
    with _upgrade_lock:
        if url in _upgraded:
            return
        command.upgrade(alembic_config(url), "head")
        _upgraded.add(url)
