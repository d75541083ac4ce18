"""Cross-process locks held in (or beside) the results database: one holder at a time for a name, across
processes and machines. Used for the schema migrations, Optuna's table creation and each HPO study."""

from __future__ import annotations

import fcntl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import sqlalchemy as sa

from cvn_assets.core.hashing import fingerprint


@cache
def _lock_engine(url: str) -> sa.Engine:
    return sa.create_engine(url, pool_pre_ping=True)


@contextmanager
def database_lock(url: str, name: str, on_wait: Callable[[], None] = lambda: None) -> Iterator[None]:
    """An exclusive lock on `name` in the database at `url`, across processes and machines: a PostgreSQL
    session advisory lock, or a file lock beside a SQLite database. Released on exit or when the holder's
    process dies. A second holder calls `on_wait` once, then blocks until the lock is free."""
    if url.startswith("postgresql"):
        key = int(fingerprint(name, length=15), 16)  # 60 bits: fits PostgreSQL's bigint lock key
        with _lock_engine(url).connect() as conn:
            if not conn.execute(sa.select(sa.func.pg_try_advisory_lock(key))).scalar():
                on_wait()
                conn.execute(sa.select(sa.func.pg_advisory_lock(key)))
            conn.commit()  # the lock is the session's: no transaction stays open while it is held
            try:
                yield
            finally:
                conn.execute(sa.select(sa.func.pg_advisory_unlock(key)))
                conn.commit()
        return
    database = sa.engine.make_url(url).database
    if not database or database == ":memory:":  # a private in-memory database: nobody to share it with
        yield
        return
    locks = Path(database).resolve().with_name(Path(database).name + ".locks")
    locks.mkdir(exist_ok=True)
    with (locks / f"{fingerprint(name, length=16)}.lock").open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            on_wait()
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
