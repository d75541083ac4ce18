"""The embedded default's Dagster storage: Dagster's own SQLite storage, with its connections kept.

Dagster's SQLite storages build a new SQLAlchemy engine and open a new connection for every transaction
(`poolclass=NullPool`), and commit each with a full fsync: about 7 ms per event, 23 ms per asset event
(mirrored into the index) and 3 ms per read on this machine, against 0.5, 2 and 0.6 ms here. A run stores
about 19 events per step and the daemon and webserver read all the time. These subclasses
change only how a connection is obtained:

* one engine per database file and process, keeping its connection between transactions (the run shards
  most recently used stay open, the others are closed);
* `PRAGMA synchronous=NORMAL` on each connection. Dagster's files are in WAL mode, where NORMAL keeps a
  committed transaction through a crash of any process (an OOM-killed run included) and never corrupts the
  file; only a power loss may roll back the last transactions. Production uses PostgreSQL.

Same files, same schema, same statements: a home written by Dagster's plain SQLite storage reads the same,
and back. `dagster.yaml` selects it (`storage: custom:`); the test in `test_instance_storage.py` checks that
each storage still obtains its connections through the method overridden here.
"""

from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from cvn_assets.dagster_internals import (
    SQLITE_BUSY_TIMEOUT_SECONDS,
    DagsterSqliteStorage,
    SqliteEventLogStorage,
    SqliteRunStorage,
    SqliteScheduleStorage,
    event_logs_directory,
    runs_directory,
    schedule_directory,
)

# The shipped dagster.yaml's storage base directory, written out as the home's own path when the file is
# copied into a home: an instance loaded from its folder (`DagsterInstance.from_config(folder)`) with
# another DAGSTER_HOME set, or none, still reads its own files, as with Dagster's default storage.
BASE_DIR_FROM_ENV = "base_dir: {env: DAGSTER_HOME}"

# Run shards (one file per run) kept open per process, beyond the index, runs and schedules files: a
# webserver that has shown many runs holds at most this many open.
OPEN_RUN_SHARDS = 16
INDEX_SHARD = "index"  # the event log's cross-run file, index.db
PINNED = (f"{INDEX_SHARD}.db", "runs.db", "schedules.db")


def instance_yaml(shipped: Path, dagster_home: Path) -> str:
    """The shipped `dagster.yaml` as a home's copy: its storage under that home, by absolute path."""
    text = shipped.read_text()
    return text.replace(BASE_DIR_FROM_ENV, f"base_dir: {json.dumps(str(dagster_home.resolve()))}")


def _pragmas(dbapi_connection: Any, _record: object) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class _Engines:
    """One engine per SQLite file in this process. Keyed by pid too: a forked child never uses (nor closes)
    its parent's connections; it opens its own."""

    def __init__(self) -> None:
        self._engines: OrderedDict[tuple[int, str], sa.Engine] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, conn_string: str) -> sa.Engine:
        key = (os.getpid(), conn_string)
        with self._lock:
            engine = self._engines.get(key)
            if engine is not None:
                self._engines.move_to_end(key)
                return engine
            engine = sa.create_engine(
                conn_string,
                poolclass=sa.pool.QueuePool,
                pool_size=1,  # one idle connection kept; a second thread at once gets its own, closed after
                max_overflow=-1,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
            )
            sa.event.listen(engine, "connect", _pragmas)
            self._engines[key] = engine
            self._close_unused_shards()
            return engine

    def _close_unused_shards(self) -> None:
        pid = os.getpid()
        shards = [k for k in self._engines if k[0] == pid and not k[1].endswith(PINNED)]
        for key in shards[:-OPEN_RUN_SHARDS]:
            # A connection checked out right now stays usable; it is closed when given back.
            self._engines.pop(key).dispose()

    def open_files(self) -> list[str]:
        """The SQLite files this process holds an engine for."""
        return sorted(k[1].removeprefix("sqlite:///") for k in self._engines if k[0] == os.getpid())

    def forget(self, directory: str) -> None:
        """Close this process's connections to the files in a directory (before they are deleted)."""
        prefix = "sqlite:///" + os.path.abspath(directory).rstrip(os.sep) + os.sep
        with self._lock:
            for key in [k for k in self._engines if k[0] == os.getpid() and k[1].startswith(prefix)]:
                self._engines.pop(key).dispose()


ENGINES = _Engines()


@contextmanager
def _transaction(conn_string: str) -> Iterator[sa.Connection]:
    with ENGINES.get(conn_string).connect() as conn, conn.begin():
        yield conn


class PooledSqliteEventLogStorage(SqliteEventLogStorage):
    """Dagster's run-sharded SQLite event log, with its connections kept."""

    @contextmanager
    def _connect(self, shard: str) -> Iterator[sa.Connection]:
        with self._db_lock:  # as Dagster's: the event log watcher's thread and the writer take turns
            conn_string = self.conn_string_for_shard(shard)
            if shard not in self._initialized_dbs:
                self._initdb(ENGINES.get(conn_string))
                self._initialized_dbs.add(shard)
            with _transaction(conn_string) as conn:
                yield conn

    def has_table(self, table_name: str) -> bool:
        # Asked for every asset event (whether the index has a table of tags); Dagster's opens an engine
        # each time. A table once there stays there (a migration adds tables, none drops one).
        present: set[str] = self.__dict__.setdefault("_present_tables", set())
        if table_name not in present:
            engine = ENGINES.get(self.conn_string_for_shard(INDEX_SHARD))
            with engine.connect() as conn:
                if engine.dialect.has_table(conn, table_name):
                    present.add(table_name)
        return table_name in present

    def wipe(self) -> None:
        ENGINES.forget(self._base_dir)  # the run shards' files are deleted
        super().wipe()


class PooledSqliteRunStorage(SqliteRunStorage):
    """Dagster's SQLite run storage (runs, backfills, daemon heartbeats), with its connection kept."""

    @contextmanager
    def connect(self) -> Iterator[sa.Connection]:
        with _transaction(self._conn_string) as conn:
            yield conn


class PooledSqliteScheduleStorage(SqliteScheduleStorage):
    """Dagster's SQLite schedule storage (sensor and schedule ticks), with its connection kept."""

    @contextmanager
    def connect(self) -> Iterator[sa.Connection]:
        with _transaction(self._conn_string) as conn:
            yield conn


class PooledSqliteStorage(DagsterSqliteStorage):
    """Dagster's SQLite storage under one base directory (`$DAGSTER_HOME` by default, the same files Dagster
    uses with no storage configured), built from the pooled storages above."""

    def __init__(self, base_dir: str, inst_data: Any = None) -> None:
        self.base_dir = base_dir
        self._run_storage = PooledSqliteRunStorage.from_local(runs_directory(base_dir))
        self._event_log_storage = PooledSqliteEventLogStorage(event_logs_directory(base_dir))
        self._schedule_storage = PooledSqliteScheduleStorage.from_local(schedule_directory(base_dir))
        self._inst_data = inst_data
        super(DagsterSqliteStorage, self).__init__()  # DagsterStorage's, not the plain storages' again

    @classmethod
    def from_config_value(cls, inst_data: Any, config_value: dict[str, str]) -> PooledSqliteStorage:
        return cls.from_local(inst_data=inst_data, **config_value)
